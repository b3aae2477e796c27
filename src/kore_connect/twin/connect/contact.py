"""A contact as Amazon Connect keeps it while a flow runs, with the trace of everything it did."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ContactState(StrEnum):
    IN_FLOW = "in flow"
    QUEUED = "queued"  # transferred to a queue: an agent's desktop would show it
    DISCONNECTED = "disconnected"  # the flow hung up (DisconnectParticipant, or the flow ended)
    CALLER_HUNG_UP = "caller hung up"
    FLOW_ERROR = "flow error"  # the flow could not go on (a loop, an action that cannot run)


@dataclass(frozen=True, slots=True)
class Step:
    """One action run: where it went and why."""

    action_id: str
    action_type: str
    branch: str  # "Success", an error type ("NoMatchingError"...), or "Condition: Equals 200"
    reason: str  # one readable line
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the SIP messages of a transfer
    at: float = field(default_factory=time.monotonic)  # when the action ended (monotonic seconds)


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
    heard: list[str] = field(default_factory=list)  # what the caller was played
    trace: list[Step] = field(default_factory=list)
    state: ContactState = ContactState.IN_FLOW
    logging_enabled: bool = False

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
