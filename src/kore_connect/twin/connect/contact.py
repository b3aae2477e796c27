"""A contact as Amazon Connect keeps it while a flow runs, with the trace of everything it did, and
the record of it that reports show (`ContactRecord`, whose JSON form `connect run --json` prints).

Time on a contact is the contact's own clock (`Contact.clock`, seconds since it arrived): prompts,
waits and input time limits advance it without sleeping; real network legs (a Lambda function, a
SIP transfer) add the time they really took."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kore_connect.twin.sip.trace import TracedMessage


class ContactState(StrEnum):
    IN_FLOW = "in flow"
    QUEUED = "queued"  # transferred to a queue (or an agent, or a callback): an agent's desktop would show it
    TRANSFERRED = "transferred"  # joined to a third party, and the flow did not resume
    DISCONNECTED = "disconnected"  # the flow hung up (DisconnectParticipant, or the flow ended)
    CALLER_HUNG_UP = "caller hung up"
    FLOW_ERROR = "flow error"  # the flow could not go on (it ran the most actions a contact may)


@dataclass(frozen=True, slots=True)
class Step:
    """One action run: where it went and why."""

    action_id: str
    action_type: str
    branch: str  # "Success", an error type ("NoMatchingError"...), or "Condition: Equals 200"
    reason: str  # one readable line
    sip: tuple[TracedMessage, ...] | None = None  # a transfer's SIP messages (None: no transfer)
    at: float = field(default_factory=time.monotonic)  # when the action ended (monotonic seconds)
    clock: float = 0.0  # the contact's clock when the action ended


@dataclass(frozen=True, slots=True)
class CallerInput:
    """What the caller gave an action: keys pressed, words said, or nothing (None: silence)."""

    action_id: str
    kind: str  # "dtmf" or "speech"
    value: str | None
    clock: float

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action_id,
            "kind": self.kind,
            "value": self.value,
            "clock": round(self.clock, 3),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> CallerInput:
        return cls(document["action"], document["kind"], document["value"], float(document["clock"]))


@dataclass
class Contact:
    contact_id: str
    initial_contact_id: str
    customer_address: str
    system_address: str
    instance_arn: str
    channel: str = "VOICE"
    attributes: dict[str, str] = field(default_factory=dict)
    external: dict[str, Any] = field(default_factory=dict)  # the latest Lambda response
    queue_arn: str | None = None
    heard: list[str] = field(default_factory=list)  # what the caller was played, as text
    trace: list[Step] = field(default_factory=list)
    state: ContactState = ContactState.IN_FLOW
    logging_enabled: bool = False
    clock: float = 0.0  # seconds since the contact arrived, on the contact's own clock
    ended_because: str = ""  # one line: how the contact ended
    flow_attributes: dict[str, str] = field(default_factory=dict)  # the running flow's ($.FlowAttributes)
    inputs: list[CallerInput] = field(default_factory=list)
    system: dict[str, str] = field(default_factory=dict)  # values actions set: $.StoredCustomerInput...
    keyed: dict[str, dict[str, Any]] = field(default_factory=dict)  # $.Lex.Slots, $.Customer... by namespace
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # recorded actions' parameters, by type
    warnings: list[str] = field(default_factory=list)  # what the flow named and the local world lacks

    @classmethod
    def inbound(
        cls, *, customer: str, system: str, instance_arn: str, contact_id: str | None = None
    ) -> Contact:
        """A new inbound voice contact: a fresh contact ID, which is also its initial contact ID."""
        contact_id = contact_id or str(uuid.uuid4())
        return cls(contact_id, contact_id, customer, system, instance_arn)

    @property
    def ended(self) -> bool:
        return self.state is not ContactState.IN_FLOW


@dataclass(frozen=True, slots=True)
class ActionTaken:
    """One step of the trace as a report shows it."""

    identifier: str
    type: str
    branch: str
    reason: str
    clock: float = 0.0  # the contact's clock when the action ended

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "type": self.type,
            "branch": self.branch,
            "reason": self.reason,
            "clock": round(self.clock, 3),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ActionTaken:
        return cls(
            document["identifier"],
            document["type"],
            document["branch"],
            document["reason"],
            float(document.get("clock", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """What a contact came to once its flow ended."""

    contact_id: str
    initial_contact_id: str
    customer: str
    ended: ContactState
    queue: str | None
    attributes: dict[str, str]
    heard: tuple[str, ...]
    actions: tuple[ActionTaken, ...]
    transfers: tuple[tuple[TracedMessage, ...], ...]  # each transfer's SIP messages, in order
    ended_because: str = ""
    clock: float = 0.0  # how long the contact lasted on its own clock
    flow_attributes: dict[str, str] = field(default_factory=dict)
    inputs: tuple[CallerInput, ...] = ()
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, contact: Contact) -> ContactRecord:
        return cls(
            contact_id=contact.contact_id,
            initial_contact_id=contact.initial_contact_id,
            customer=contact.customer_address,
            ended=contact.state,
            queue=contact.queue_arn,
            attributes=dict(contact.attributes),
            heard=tuple(contact.heard),
            actions=tuple(
                ActionTaken(s.action_id, s.action_type, s.branch, s.reason, s.clock) for s in contact.trace
            ),
            transfers=tuple(step.sip for step in contact.trace if step.sip is not None),
            ended_because=contact.ended_because,
            clock=contact.clock,
            flow_attributes=dict(contact.flow_attributes),
            inputs=tuple(contact.inputs),
            settings={kind: dict(values) for kind, values in contact.settings.items()},
            warnings=tuple(contact.warnings),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "contactId": self.contact_id,
            "initialContactId": self.initial_contact_id,
            "customer": self.customer,
            "ended": str(self.ended),
            "queue": self.queue,
            "attributes": dict(self.attributes),
            "heard": list(self.heard),
            "actions": [action.to_json() for action in self.actions],
            "sip": [[message.to_json() for message in transfer] for transfer in self.transfers],
            "endedBecause": self.ended_because,
            "seconds": round(self.clock, 3),
            "flowAttributes": dict(self.flow_attributes),
            "inputs": [given.to_json() for given in self.inputs],
            "settings": {kind: dict(values) for kind, values in self.settings.items()},
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ContactRecord:
        return cls(
            contact_id=document["contactId"],
            initial_contact_id=document["initialContactId"],
            customer=document["customer"],
            ended=ContactState(document["ended"]),
            queue=document.get("queue"),
            attributes=dict(document["attributes"]),
            heard=tuple(document["heard"]),
            actions=tuple(ActionTaken.from_json(action) for action in document["actions"]),
            transfers=tuple(
                tuple(TracedMessage.from_json(message) for message in transfer)
                for transfer in document["sip"]
            ),
            # absent from the rows of versions before the whole flow language (calls.db outlives them)
            ended_because=document.get("endedBecause", ""),
            clock=float(document.get("seconds", 0.0)),
            flow_attributes=dict(document.get("flowAttributes", {})),
            inputs=tuple(CallerInput.from_json(given) for given in document.get("inputs", [])),
            settings={kind: dict(values) for kind, values in document.get("settings", {}).items()},
            warnings=tuple(document.get("warnings", [])),
        )
