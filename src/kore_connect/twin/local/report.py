"""The report of one call through the twin: Connect's side (the contact), Kore's side (the gateway's
interaction), the data handed back (what the store holds and what the agent sees) and the timings.
`kore-connect call --json` prints its JSON form, the dashboard lists and shows it, `call` checks it
for losses and mix-ups; the form is defined here once.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from kore_connect.sessions.base import SessionStore, SessionStoreError
from kore_connect.twin.connect.contact import Contact, ContactRecord, Step
from kore_connect.twin.kore.interactions import Interaction, InteractionStore

INTERACTION_WAIT_SECONDS = 40.0
_INVITED = re.compile(r"INVITE sips?:([^@;> ]+)@")


@dataclass(frozen=True, slots=True)
class Handback:
    """The bot's metadata on its way back to the agent."""

    stored: Any  # what the session store holds for the contact (the bot's metadata), or None
    custom_data: Any  # the contact's customData attribute, read as JSON where it is JSON
    store_error: str | None = None  # the store failed when the report was made

    @property
    def handed_back(self) -> bool:
        """The agent sees exactly what the bot stored."""
        return self.stored is not None and self.custom_data == self.stored

    def to_json(self) -> dict[str, Any]:
        document = {"stored": self.stored, "customData": self.custom_data}
        if self.store_error is not None:
            document["storeError"] = self.store_error
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Handback:
        return cls(document["stored"], document["customData"], document.get("storeError"))


@dataclass(frozen=True, slots=True)
class Timings:
    """In milliseconds. Setup: INVITE -> 200 at the connector. Handoff: the transfer's end (the
    gateway's BYE answered) -> the contact attributes set. Total: the whole contact."""

    setup_ms: float | None
    handoff_ms: float | None
    total_ms: float

    def to_json(self) -> dict[str, float | None]:
        return {"setupMs": self.setup_ms, "handoffMs": self.handoff_ms, "totalMs": self.total_ms}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Timings:
        return cls(document["setupMs"], document["handoffMs"], document["totalMs"])


@dataclass(frozen=True, slots=True)
class CallReport:
    contact: ContactRecord
    did: str  # the Kore DID the call was for
    kore: Interaction | None  # None: the gateway never saw the call
    metadata: Handback
    timings: Timings

    def to_json(self) -> dict[str, Any]:
        return {
            **self.contact.to_json(),
            "did": self.did,
            "kore": self.kore.to_json() if self.kore is not None else None,
            "metadata": self.metadata.to_json(),
            "timings": self.timings.to_json(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> CallReport:
        return cls(
            contact=ContactRecord.from_json(document),
            did=document["did"],
            kore=Interaction.from_json(document["kore"]) if document.get("kore") is not None else None,
            metadata=Handback.from_json(document["metadata"]),
            timings=Timings.from_json(document["timings"]),
        )


async def report_contact(
    contact: Contact, *, did: str, store: SessionStore, interactions: InteractionStore, started: float
) -> CallReport:
    """The report of a contact that has ended: Connect's side, what the gateway recorded of the call
    (in `interactions`) and what the session store holds for it. `started`: time.monotonic() when
    the contact began."""
    store_error = None
    try:
        record = await asyncio.to_thread(store.get, contact.contact_id)
    except SessionStoreError as exc:  # the store is failing: the report says so, the call is over
        record, store_error = None, str(exc)
    report = call_report(
        contact,
        did=did,
        interaction=await _interaction(interactions, contact.contact_id, reached=_transferred(contact)),
        stored=json.loads(record.metadata) if record is not None else None,
        started=started,
    )
    if store_error is not None:
        report = replace(report, metadata=replace(report.metadata, store_error=store_error))
    return report


def call_report(
    contact: Contact, *, did: str, interaction: Interaction | None, stored: Any, started: float
) -> CallReport:
    custom = contact.attributes.get("customData")
    try:
        custom_data = json.loads(custom) if custom is not None else None
    except json.JSONDecodeError:
        custom_data = custom
    return CallReport(
        contact=ContactRecord.of(contact),
        did=did,
        kore=interaction,
        metadata=Handback(stored, custom_data),
        timings=_timings(contact.trace, started),
    )


async def _interaction(
    interactions: InteractionStore, contact_id: str, *, reached: bool
) -> Interaction | None:
    """The gateway's record of the call, from its database. The gateway saves it when our 200
    answers its BYE, which is as the flow goes on, so it is nearly always there by the time the
    flow has ended; a call that never reached the gateway has none."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (INTERACTION_WAIT_SECONDS if reached else 0.5)
    wait = 0.005
    while (found := interactions.for_contact(contact_id)) is None and loop.time() < deadline:
        await asyncio.sleep(wait)
        wait = min(wait * 2, 0.25)
    return found


def dialled_number(contact: Contact) -> str:
    """The number the contact's first transfer dialled (its INVITE's Request-URI user); "" if none."""
    for step in contact.trace:
        for message in step.sip or ():
            found = _INVITED.match(message.first_line)
            if message.direction == "sent" and found is not None:
                return found.group(1)
    return ""


def _transferred(contact: Contact) -> bool:
    """Did the gateway answer the transfer at all (then it records the call, and we wait for that)?"""
    return any(message.direction == "received" for step in contact.trace for message in step.sip or ())


def _timings(trace: list[Step], started: float) -> Timings:
    transfer = next((step for step in trace if step.sip is not None), None)
    setup = None
    if transfer is not None and transfer.sip is not None:
        invite = next((m.at for m in transfer.sip if m.first_line.startswith("INVITE")), None)
        answer = next((m.at for m in transfer.sip if m.first_line.startswith("SIP/2.0 200")), None)
        if invite is not None and answer is not None:
            setup = round((answer - invite) * 1000, 3)
    after = trace[trace.index(transfer) + 1 :] if transfer is not None else []
    attributes = next((s for s in after if s.action_type == "UpdateContactAttributes"), None)
    handoff = (
        round((attributes.at - transfer.at) * 1000, 3)
        if transfer is not None and attributes is not None and attributes.branch == "Success"
        else None
    )
    end = trace[-1].at if trace else started
    return Timings(setup, handoff, round((end - started) * 1000, 3))
