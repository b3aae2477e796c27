"""Runs a contact through a contact flow, as Amazon Connect does (flow language 2019-10-30).

How it works. Starting at `StartAction`, each action is run and takes one branch: its
`NextAction` on success, the `NextAction` of one of its `Errors` on failure, or the `NextAction`
of the first matching condition (`Compare`). Every action run is appended to the contact's trace
with the branch taken and why. The flow ends when an action has no transition to take, when the
contact is queued or disconnected, or when the caller hangs up.

What an action does outside the contact (invoke a Lambda function, transfer the caller to a third
party over SIP, put the contact in a queue) goes through collaborators given to the interpreter,
so the interpreter itself is plain logic: tests pass coroutines, the local twin passes the Lambda
runtime and the SIP connector.
"""

from __future__ import annotations

import asyncio
import json
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from kore_connect.aws_events import connect_lambda_event
from kore_connect.contactflow.language import (
    ATTRIBUTE_KEY,
    ATTRIBUTES_LIMIT_BYTES,
    ActionType,
    ErrorType,
)
from kore_connect.contactflow.model import Action, Flow
from kore_connect.twin.connect.contact import Contact, ContactState, Step
from kore_connect.twin.connect.lambdas import function_name
from kore_connect.twin.connect.references import resolve
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.sip.trace import TracedMessage

LAMBDA_RESPONSE_LIMIT_BYTES = 32 * 1024
LAMBDA_RETRIES = 3  # Connect retries a failed synchronous invocation up to 3 times within its limit
MAX_STEPS = 1000  # a flow that loops forever is stopped
ASYNCHRONOUS_WAIT_SECONDS = 60.0  # how long a finished contact waits for its asynchronous invocations


class LambdaInvoker(Protocol):
    """Runs a function. `time_limit` (None: no limit) is how long the flow waits once the function
    runs; past it the invoker answers `Invocation.no_answer_within(time_limit)`."""

    async def __call__(
        self, function_arn: str, event: dict[str, Any], time_limit: float | None = None
    ) -> Invocation: ...


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

    def enqueue(self, contact: Contact, queue_arn: str) -> bool:
        """Put `contact` in the queue; False when the queue is at capacity."""
        waiting = self.waiting.setdefault(queue_arn, [])
        if len(waiting) >= self.capacity:
            return False
        waiting.append(contact)
        return True


@dataclass(frozen=True, slots=True)
class _Branch:
    """What an action did: the branch it takes, why, and where that leads (None: the flow ends)."""

    name: str
    reason: str
    next_action: str | None
    sip: tuple[TracedMessage, ...] | None = None  # a transfer's SIP messages (None: no transfer)


async def _unavailable_lambda(
    function_arn: str, event: dict[str, Any], time_limit: float | None = None
) -> Invocation:
    return Invocation(
        error_type="ResourceNotFoundException", error_message=f"no local function for {function_arn}"
    )


@dataclass
class Interpreter:
    flow: Flow
    invoke_lambda: LambdaInvoker = _unavailable_lambda
    transfer: ThirdPartyTransfer | None = None
    queues: LocalQueues = field(default_factory=LocalQueues)
    _asynchronous: set[asyncio.Future[Invocation]] = field(default_factory=set)

    async def run(self, contact: Contact) -> Contact:
        """Run `contact` through the flow until it ends; the contact holds the outcome and the trace."""
        action_id: str | None = self.flow.start_action
        for _ in range(MAX_STEPS):
            if action_id is None or contact.ended:
                break
            action = self.flow.action(action_id)
            try:
                branch = await self._run(action, contact)
            except Exception as exc:  # a collaborator failed: the action fails, the contact goes on
                branch = _error(action, ErrorType.NO_MATCHING_ERROR, f"{type(exc).__name__}: {exc}")
            contact.trace.append(
                Step(action.identifier, str(action.type), branch.name, branch.reason, branch.sip)
            )
            action_id = branch.next_action
        else:
            contact.state = ContactState.FLOW_ERROR
            contact.trace.append(Step("", "", "Stopped", f"the flow ran {MAX_STEPS} actions without ending"))
        if not contact.ended:
            contact.state = ContactState.DISCONNECTED  # a flow that runs out of actions hangs up
        if self._asynchronous:  # asynchronous invocations run to their end, as they do in Lambda
            await asyncio.wait(self._asynchronous, timeout=ASYNCHRONOUS_WAIT_SECONDS)
        return contact

    async def _run(self, action: Action, contact: Contact) -> _Branch:
        handlers: dict[ActionType, Callable[[Action, Contact], Awaitable[_Branch]]] = {
            ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR: self._logging,
            ActionType.MESSAGE_PARTICIPANT: self._message,
            ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY: self._third_party,
            ActionType.INVOKE_LAMBDA_FUNCTION: self._lambda,
            ActionType.UPDATE_CONTACT_ATTRIBUTES: self._attributes,
            ActionType.UPDATE_CONTACT_TARGET_QUEUE: self._target_queue,
            ActionType.TRANSFER_CONTACT_TO_QUEUE: self._to_queue,
            ActionType.DISCONNECT_PARTICIPANT: self._disconnect,
            ActionType.COMPARE: self._compare,
        }
        return await handlers[action.type](action, contact)

    # ------------------------------------------------------------ the actions

    async def _logging(self, action: Action, contact: Contact) -> _Branch:
        contact.logging_enabled = action.parameters.get("FlowLoggingBehavior") == "Enabled"
        return _success(action, f"flow logging {'enabled' if contact.logging_enabled else 'disabled'}")

    async def _message(self, action: Action, contact: Contact) -> _Branch:
        for key in ("Text", "SSML", "PromptId", "Media"):
            if key in action.parameters:
                raw = action.parameters[key]
                played = resolve(raw, contact) if isinstance(raw, str) else json.dumps(raw)
                if played is None:
                    return _error(action, ErrorType.NO_MATCHING_ERROR, f"{key} {raw} resolves to nothing")
                contact.heard.append(played if key != "PromptId" else f"[prompt {played}]")
                return _success(action, f"played: {played}")
        return _error(action, ErrorType.NO_MATCHING_ERROR, "nothing to play")

    async def _third_party(self, action: Action, contact: Contact) -> _Branch:
        parameters = action.parameters
        connector = parameters.get("VoiceConnector", {})
        limit = parameters.get(
            "ThirdPartyConnectionTimeLimitSeconds", parameters.get("ThirdPartyConnectionTimeoutSeconds")
        )
        if self.transfer is None:
            return _error(action, ErrorType.NO_MATCHING_ERROR, "no external voice connector is configured")
        to_user = resolve(connector.get("ToUser", ""), contact)
        if not to_user:
            return _error(
                action, ErrorType.NO_MATCHING_ERROR, f"ToUser {connector.get('ToUser')!r} resolves to nothing"
            )
        request = TransferRequest(
            connector_arn=resolve(connector.get("VoiceConnectorArn", ""), contact) or "",
            to_user=to_user,
            from_user=resolve(connector.get("FromUser", ""), contact) or "anonymous",
            time_limit_seconds=int(str(limit)),
            user_to_user=resolve(connector["UserToUserInformation"], contact)
            if "UserToUserInformation" in connector
            else None,
        )
        result = await self.transfer(contact, request)
        sip = result.messages  # the transfer's trace, whichever branch it takes
        if result.outcome is TransferOutcome.FAR_END_HUNG_UP:
            if parameters.get("ContinueFlowExecution") == "True":
                return _success(action, f"{result.reason}; the flow resumes", sip)
            contact.state = ContactState.DISCONNECTED
            return _Branch("Success", f"{result.reason}; the flow does not resume", None, sip)
        if result.outcome is TransferOutcome.CALLER_HUNG_UP:
            contact.state = ContactState.CALLER_HUNG_UP
            return _Branch("CallerHungUp", result.reason, None, sip)
        error = (
            ErrorType.CALL_FAILED
            if result.outcome is TransferOutcome.FAILED
            else ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED
        )
        return _error(action, error, result.reason, sip)

    async def _lambda(self, action: Action, contact: Contact) -> _Branch:
        parameters = action.parameters
        arn = resolve(str(parameters["LambdaFunctionARN"]), contact) or ""
        invocation_parameters = {}
        for key, value in parameters.get("LambdaInvocationAttributes", {}).items():
            resolved = resolve(value, contact)
            invocation_parameters[key] = "" if resolved is None else resolved
        event = contact_flow_event(contact, invocation_parameters)
        if parameters.get("InvocationType") == "ASYNCHRONOUS":
            task = asyncio.ensure_future(self.invoke_lambda(arn, event))  # the flow does not wait
            self._asynchronous.add(task)
            task.add_done_callback(self._asynchronous.discard)
            contact.external = {}
            return _success(action, "invoked asynchronously")
        limit = float(parameters["InvocationTimeLimitSeconds"])
        response_type = parameters.get("ResponseValidation", {}).get("ResponseType", "STRING_MAP")
        budget = limit  # Connect's limit covers all attempts: what each ran is taken from it
        problems = []
        for attempt in range(1 + LAMBDA_RETRIES):
            if budget <= 0:
                break
            invocation = await self.invoke_lambda(arn, event, budget)
            budget -= invocation.duration_ms / 1000
            if invocation.unanswered:
                problems.append(f"attempt {attempt + 1}: no answer within {limit:g} s")
                break
            problem = _invalid_response(invocation, response_type)
            if problem is None:
                contact.external = dict(invocation.result)
                return _success(action, f"{function_name(arn)} answered (attempt {attempt + 1})")
            problems.append(f"attempt {attempt + 1}: {problem}")
            if invocation.ok:
                break  # an answer Connect cannot use is not retried: only errors are
        contact.external = {}  # $.External is the latest response only: there is none now
        return _error(
            action, ErrorType.NO_MATCHING_ERROR, f"{function_name(arn)} failed: " + "; ".join(problems)
        )

    async def _attributes(self, action: Action, contact: Contact) -> _Branch:
        updated = dict(contact.attributes)
        for key, value in action.parameters.get("Attributes", {}).items():
            if not ATTRIBUTE_KEY.fullmatch(key):
                return _error(action, ErrorType.NO_MATCHING_ERROR, f"{key!r} is not a valid attribute key")
            resolved = resolve(value, contact)
            if resolved is None:
                return _error(action, ErrorType.NO_MATCHING_ERROR, f"{key}: {value} resolves to nothing")
            updated[key] = resolved
        size = sum(len(k.encode()) + len(v.encode()) for k, v in updated.items())
        if size > ATTRIBUTES_LIMIT_BYTES:
            return _error(
                action,
                ErrorType.NO_MATCHING_ERROR,
                f"the attributes would total {size} bytes (limit {ATTRIBUTES_LIMIT_BYTES})",
            )
        contact.attributes = updated
        return _success(action, "set " + ", ".join(action.parameters.get("Attributes", {})))

    async def _target_queue(self, action: Action, contact: Contact) -> _Branch:
        queue = resolve(str(action.parameters.get("QueueId", "")), contact)
        if not queue:
            return _error(action, ErrorType.NO_MATCHING_ERROR, "the queue resolves to nothing")
        contact.queue_arn = queue
        return _success(action, f"target queue {queue}")

    async def _to_queue(self, action: Action, contact: Contact) -> _Branch:
        if contact.queue_arn is None:
            return _error(action, ErrorType.NO_MATCHING_ERROR, "no target queue was set")
        if not self.queues.enqueue(contact, contact.queue_arn):
            return _error(action, ErrorType.QUEUE_AT_CAPACITY, f"{contact.queue_arn} is at capacity")
        contact.state = ContactState.QUEUED
        # Transferring to a queue ends the flow: the contact now waits for an agent.
        return _Branch("Success", f"in queue {contact.queue_arn}, waiting for an agent", None)

    async def _disconnect(self, action: Action, contact: Contact) -> _Branch:
        contact.state = ContactState.DISCONNECTED
        return _Branch("Success", "disconnected", None)

    async def _compare(self, action: Action, contact: Contact) -> _Branch:
        raw = str(action.parameters.get("ComparisonValue", ""))
        value = resolve(raw, contact)
        for condition in action.conditions:
            operand = resolve(condition.operands[0], contact) if condition.operands else None
            if value is not None and operand is not None and _holds(condition.operator, value, operand):
                name = f"Condition: {condition.operator} {operand}"
                return _Branch(name, f"{raw} = {value!r}", condition.next_action)
        return _error(action, ErrorType.NO_MATCHING_CONDITION, f"{raw} = {value!r} matches no condition")


def contact_flow_event(contact: Contact, parameters: dict[str, str]) -> dict[str, Any]:
    """The event Connect sends a Lambda function from the Invoke AWS Lambda function block."""
    return connect_lambda_event(
        contact_id=contact.contact_id,
        initial_contact_id=contact.initial_contact_id,
        customer=contact.customer_address,
        system=contact.system_address,
        instance_arn=contact.instance_arn,
        attributes=dict(contact.attributes),
        channel=contact.channel,
        queue_arn=contact.queue_arn,
        parameters=parameters,
    )


def _invalid_response(invocation: Invocation, response_type: str) -> str | None:
    """Why Connect would refuse this invocation's answer, or None when it takes it."""
    if not invocation.ok:
        return f"{invocation.error_type}: {invocation.error_message}"
    result = invocation.result
    if not isinstance(result, dict):
        return "the response is not a JSON object"
    if response_type == "STRING_MAP" and not all(isinstance(v, str) for v in result.values()):
        return "the response is not a flat map of strings (STRING_MAP)"
    size = len(json.dumps(result).encode())
    if size > LAMBDA_RESPONSE_LIMIT_BYTES:
        return f"the response is {size} bytes (limit {LAMBDA_RESPONSE_LIMIT_BYTES})"
    return None


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "NumberGreaterThan": operator.gt,
    "NumberLessThan": operator.lt,
    "NumberGreaterOrEqualTo": operator.ge,
    "NumberLessOrEqualTo": operator.le,
}
_TEXT: dict[str, Callable[[str, str], bool]] = {
    "Equals": operator.eq,
    "TextContains": lambda value, operand: operand in value,
    "TextStartsWith": str.startswith,
    "TextEndsWith": str.endswith,
}


def _holds(name: str, value: str, operand: str) -> bool:
    if name in _NUMERIC:
        try:
            return _NUMERIC[name](float(value), float(operand))
        except ValueError:
            return False
    return name in _TEXT and _TEXT[name](value, operand)


def _success(action: Action, reason: str, sip: tuple[TracedMessage, ...] | None = None) -> _Branch:
    return _Branch("Success", reason, action.next_action, sip)


def _error(
    action: Action, error: ErrorType, reason: str, sip: tuple[TracedMessage, ...] | None = None
) -> _Branch:
    target = action.errors.get(error)
    if target is None:
        reason = f"{reason} (the flow has no {error} branch here: it ends)"
    return _Branch(str(error), reason, target, sip)
