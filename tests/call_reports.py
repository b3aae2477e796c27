"""Call reports made up for unit tests of what reads them (the load generator's checks)."""

from __future__ import annotations

from typing import Any

from kore_connect.twin.connect.contact import ActionTaken, ContactRecord, ContactState
from kore_connect.twin.kore.interactions import Interaction
from kore_connect.twin.local.report import CallReport, Handback, Timings


def a_report(
    contact: str,
    instance: str,
    *,
    stored: Any,
    custom: Any,
    ended: ContactState = ContactState.QUEUED,
    timings: Timings | None = None,
    actions: tuple[ActionTaken, ...] = (),
) -> CallReport:
    """A queued call whose bot ran in Kore session `instance`, with `stored` in the session store and
    `custom` as its customData."""
    return CallReport(
        contact=ContactRecord(contact, contact, "+14155550123", ended, None, {}, (), actions, ()),
        did="+12065551118",
        kore=Interaction(
            call_id=f"call-{contact}",
            contact_id=contact,
            did="+12065551118",
            source="127.0.0.1:5060",
            started_at=0.0,
            instance_session_id=instance,
        ),
        metadata=Handback(stored, custom),
        timings=timings or Timings(None, None, 0.0),
    )
