"""What the flow interpreter asks of the world outside the contact, as protocols and plain data: a
Lambda invocation, a transfer to a third party over the external voice connector, the queues."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.sip.trace import TracedMessage

if TYPE_CHECKING:
    from kore_connect.twin.connect.contact import Contact


class LambdaInvoker(Protocol):
    """Runs a function. `time_limit` (None: no limit) is how long the flow waits once the function
    runs; past it the invoker answers `Invocation.no_answer_within(time_limit)`."""

    async def __call__(
        self, function_arn: str, event: dict[str, Any], time_limit: float | None = None
    ) -> Invocation: ...


async def no_lambdas(function_arn: str, event: dict[str, Any], time_limit: float | None = None) -> Invocation:
    """The invoker of a world with no functions."""
    return Invocation(
        error_type="ResourceNotFoundException", error_message=f"no local function for {function_arn}"
    )


class TransferOutcome(StrEnum):
    FAR_END_HUNG_UP = "far end hung up"  # the bot's BYE: the flow may resume
    FAILED = "failed"  # rejected (4xx/5xx/6xx) or unreachable
    TIMED_OUT = "timed out"  # no answer within the time limit
    CALLER_HUNG_UP = "caller hung up"  # while transferred: the contact ends


@dataclass(frozen=True, slots=True)
class TransferRequest:
    connector_arn: str
    to_user: str
    from_user: str
    time_limit_seconds: int
    user_to_user: str | None = None


@dataclass(frozen=True, slots=True)
class TransferResult:
    outcome: TransferOutcome
    reason: str
    messages: tuple[TracedMessage, ...] = ()  # the SIP messages sent and received, in full


class ThirdPartyTransfer(Protocol):
    async def __call__(self, contact: Contact, request: TransferRequest) -> TransferResult: ...


class LocalQueues:
    """Queues as an agent's desktop would see them: the contacts waiting, per queue ARN."""

    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self.waiting: dict[str, list[Contact]] = {}

    def enqueue(
        self, contact: Contact, queue_arn: str, capacity: int | None = None, *, already_waiting: int = 0
    ) -> bool:
        """Put `contact` in the queue; False when the queue is at capacity: `capacity` (else this
        one's), counting `already_waiting` contacts besides the ones queued here."""
        waiting = self.waiting.setdefault(queue_arn, [])
        if already_waiting + len(waiting) >= (self.capacity if capacity is None else capacity):
            return False
        waiting.append(contact)
        return True
