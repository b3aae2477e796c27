"""Typed views of an exported contact flow, and the checks that make one safe to import or run.

`Flow.parse` takes the JSON exactly as the Amazon Connect console exports it and either returns a
`Flow` or raises `FlowError` listing every problem found, each naming the action it is about:
action types outside the flow language, transitions to actions that do not exist, error types an
action cannot raise, and parameters Connect would refuse. What Connect imports but cannot resolve
(a `$.` reference to nothing Connect knows) loads, with a warning in `Flow.warnings`: Connect
resolves it to nothing at run time. `Metadata` (the editor's layout) is kept as it is and never
read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kore_connect.contactflow.language import (
    ATTRIBUTE_KEY,
    CONDITION_OPERATORS,
    ERRORS,
    LAMBDA_TIME_LIMIT_SECONDS,
    LOOP_COUNT_LIMIT,
    PROMPT_KEYS,
    REFERENCE_TEXT,
    VERSION,
    ActionType,
    BadReference,
    ErrorType,
    is_whole_reference,
    parse_reference,
)
from kore_connect.errors import KoreConnectError


class FlowError(KoreConnectError):
    """A flow that cannot be imported or run; `problems` holds one precise line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid contact flow:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # "Equals", "NumberGreaterThan", ...
    operands: tuple[str, ...]
    next_action: str


@dataclass(frozen=True, slots=True)
class Action:
    identifier: str
    type: ActionType
    parameters: Mapping[str, Any]
    next_action: str | None  # None: the flow ends after this action
    errors: Mapping[ErrorType, str] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()

    @property
    def label(self) -> str:
        return f"action {self.identifier} ({self.type})"


@dataclass(frozen=True, slots=True)
class Flow:
    start_action: str
    actions: Mapping[str, Action]
    metadata: Mapping[str, Any]
    source: Mapping[str, Any]  # the document as given, for writing back unchanged
    warnings: tuple[str, ...] = ()  # what loads but Connect would resolve to nothing, one line each

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    def action(self, identifier: str) -> Action:
        return self.actions[identifier]

    @classmethod
    def parse(cls, document: Any) -> Flow:
        """Validate `document` (a parsed flow JSON) completely; raise FlowError naming every problem."""
        problems: list[str] = []
        if not isinstance(document, dict):
            raise FlowError(["the flow must be a JSON object"])
        if document.get("Version") != VERSION:
            problems.append(f"Version must be {VERSION!r}, found {document.get('Version')!r}")
        raw_actions = document.get("Actions")
        if not isinstance(raw_actions, list) or not raw_actions:
            raise FlowError([*problems, "Actions must be a non-empty list"])
        actions: dict[str, Action] = {}
        # Every identifier given, also of actions refused below, so one bad action is reported once
        # and not again by each transition that leads to it.
        identifiers = {
            raw["Identifier"]
            for raw in raw_actions
            if isinstance(raw, dict) and isinstance(raw.get("Identifier"), str)
        }
        for index, raw in enumerate(raw_actions):
            action = _parse_action(index, raw, problems)
            if action is None:
                continue
            if action.identifier in actions:
                problems.append(f"{action.label}: the identifier is used by more than one action")
            actions[action.identifier] = action
        start = document.get("StartAction")
        if not isinstance(start, str) or not start:
            problems.append("StartAction is missing")
        elif start not in identifiers:
            problems.append(f"StartAction {start!r} names no action in the flow")
        for action in actions.values():
            problems.extend(_check_action(action, identifiers))
        if problems:
            raise FlowError(problems)
        warnings = [warning for action in actions.values() for warning in _unresolvable(action)]
        metadata = document.get("Metadata")
        return cls(
            str(start), actions, metadata if isinstance(metadata, dict) else {}, document, tuple(warnings)
        )

    @classmethod
    def loads(cls, text: str | bytes) -> Flow:
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FlowError([f"the flow is not valid JSON: {exc}"]) from None
        return cls.parse(document)


def _parse_action(index: int, raw: Any, problems: list[str]) -> Action | None:
    where = f"Actions[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: an action must be a JSON object")
        return None
    identifier = raw.get("Identifier")
    if not isinstance(identifier, str) or not identifier:
        problems.append(f"{where}: Identifier is missing")
        return None
    where = f"action {identifier}"
    try:
        action_type = ActionType(str(raw.get("Type")))
    except ValueError:
        problems.append(f"{where}: unknown action type {raw.get('Type')!r} (not in the flow language)")
        return None
    parameters = raw.get("Parameters", {})
    transitions = raw.get("Transitions", {})
    if not isinstance(parameters, dict) or not isinstance(transitions, dict):
        problems.append(f"{where} ({action_type}): Parameters and Transitions must be JSON objects")
        return None
    raw_errors, raw_conditions = transitions.get("Errors", []), transitions.get("Conditions", [])
    if not isinstance(raw_errors, list) or not isinstance(raw_conditions, list):
        problems.append(f"{where} ({action_type}): Transitions.Errors and .Conditions must be lists")
        return None
    errors: dict[ErrorType, str] = {}
    for error in raw_errors:
        if not isinstance(error, dict):
            problems.append(f"{where} ({action_type}): each of Transitions.Errors must be an object")
            continue
        try:
            error_type = ErrorType(str(error.get("ErrorType")))
        except ValueError:
            problems.append(f"{where} ({action_type}): unknown error type {error.get('ErrorType')!r}")
            continue
        errors[error_type] = str(error.get("NextAction", ""))
    conditions = []
    for condition in raw_conditions:
        body = condition.get("Condition") if isinstance(condition, dict) else None
        operands = body.get("Operands", []) if isinstance(body, dict) else None
        if (
            not isinstance(condition, dict)
            or not isinstance(body, dict)
            or not isinstance(operands, list)
            or not all(isinstance(operand, str) for operand in operands)
        ):
            problems.append(
                f"{where} ({action_type}): each of Transitions.Conditions must be an object with "
                "Condition.Operator and Condition.Operands (a list of strings)"
            )
            continue
        conditions.append(
            Condition(
                str(body.get("Operator", "")), tuple(map(str, operands)), str(condition.get("NextAction", ""))
            )
        )
    next_action = transitions.get("NextAction")
    return Action(
        identifier=identifier,
        type=action_type,
        parameters=parameters,
        next_action=str(next_action) if next_action is not None else None,
        errors=errors,
        conditions=tuple(conditions),
    )


def _check_action(action: Action, identifiers: set[Any]) -> Iterator[str]:
    label = action.label
    targets = [("NextAction", action.next_action)] if action.next_action is not None else []
    targets += [(f"the {error} branch", target) for error, target in action.errors.items()]
    targets += [(f"the condition {c.operator} {list(c.operands)}", c.next_action) for c in action.conditions]
    for what, target in targets:
        if target not in identifiers:
            yield f"{label}: {what} points at {target!r}, which is not an action in the flow"
    for error in action.errors:
        if error not in ERRORS[action.type]:
            allowed = ", ".join(ERRORS[action.type]) or "none"
            yield f"{label}: {action.type} cannot raise {error} (it raises: {allowed})"
    for condition in action.conditions:
        if condition.operator not in CONDITION_OPERATORS:
            known = ", ".join(sorted(CONDITION_OPERATORS))
            yield f"{label}: unknown condition operator {condition.operator!r} (operators: {known})"
        elif len(condition.operands) != 1:
            yield f"{label}: the condition {condition.operator} needs exactly one operand"
    yield from _PARAMETER_CHECKS.get(action.type, _no_checks)(action)


def _unresolvable(action: Action) -> Iterator[str]:
    """A warning for each `$.` reference, whole or within text, that Connect resolves to nothing,
    and for a resource the action needs and does not name."""
    names = _RESOURCES.get(action.type, ())
    if names and not any(action.parameters.get(name) for name in names):
        yield f"{action.label}: {' or '.join(names)} names nothing: it takes its error branch when it runs"
    texts = list(_strings(action.parameters)) + [
        (f"the condition {c.operator}", operand) for c in action.conditions for operand in c.operands
    ]
    for path, value in texts:
        for found in REFERENCE_TEXT.finditer(value):
            try:
                parse_reference(found.group(0))
            except BadReference as exc:
                whole = "" if is_whole_reference(value) else " (within text: left as written)"
                yield f"{action.label}: {path}: {exc}; it resolves to nothing{whole}"


def _strings(value: Any, path: str = "Parameters") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _no_checks(action: Action) -> Iterator[str]:
    return iter(())


def _check_message(action: Action) -> Iterator[str]:
    yield from _check_prompt(action, action.parameters, "", required=True)


def _check_prompt(
    action: Action, parameters: Mapping[str, Any], where: str, *, required: bool
) -> Iterator[str]:
    """A prompt: one of Text, SSML or PromptId (text) or Media (an object); `required` or not."""
    given = [key for key in PROMPT_KEYS if key in parameters]
    if len(given) > 1 or (required and not given):
        found = ", ".join(given) or "none"
        yield f"{action.label}: {where}exactly one of Text, SSML, PromptId or Media is needed, found {found}"
    for key in given:
        if (key == "Media") != isinstance(parameters[key], dict) or (
            key != "Media" and not isinstance(parameters[key], str)
        ):
            kind = "an object" if key == "Media" else "text or a $. reference"
            yield f"{action.label}: {where}{key} must be {kind}"


def _check_iterative_messages(action: Action) -> Iterator[str]:
    messages = action.parameters.get("Messages")
    if not isinstance(messages, list) or not messages:
        yield f"{action.label}: Messages must be a non-empty list of prompts"
        return
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            yield f"{action.label}: Messages[{index}] must be an object holding one prompt"
        else:
            yield from _check_prompt(action, message, f"Messages[{index}]: ", required=True)
    interval = action.parameters.get("InterruptFrequencySeconds", "1")
    if not isinstance(interval, str) or not re.fullmatch(r"[0-9]{1,6}", interval) or int(interval) < 1:
        yield f"{action.label}: InterruptFrequencySeconds must be whole seconds >= 1"


def _check_lex(action: Action) -> Iterator[str]:
    p = action.parameters
    yield from _check_prompt(action, p, "", required=False)
    for key in ("LexV2Bot", "LexBot", "LexTimeoutSeconds"):
        if key in p and not isinstance(p[key], dict):
            yield f"{action.label}: {key} must be an object"
    attributes = p.get("LexSessionAttributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        yield f"{action.label}: LexSessionAttributes must be an object of keys to text or $. references"


def _check_third_party(action: Action) -> Iterator[str]:
    p = action.parameters
    limit = p.get("ThirdPartyConnectionTimeLimitSeconds", p.get("ThirdPartyConnectionTimeoutSeconds"))
    if limit is None or not re.fullmatch(r"[0-9]{1,9}", str(limit)) or int(limit) < 1:
        yield f"{action.label}: ThirdPartyConnectionTimeLimitSeconds must be a whole number of seconds >= 1"
    if p.get("ContinueFlowExecution", "True") not in ("True", "False"):
        yield f"{action.label}: ContinueFlowExecution must be 'True' or 'False'"
    if "ThirdPartyPhoneNumber" in p and "VoiceConnector" not in p:
        if not isinstance(p["ThirdPartyPhoneNumber"], str) or not p["ThirdPartyPhoneNumber"]:
            yield f"{action.label}: ThirdPartyPhoneNumber must be a phone number or a $. reference"
        return
    connector = p.get("VoiceConnector")
    if not isinstance(connector, dict):
        yield f"{action.label}: a ThirdPartyPhoneNumber or a VoiceConnector is needed"
        return
    if connector.get("VoiceConnectorType") not in ("CallTransferConnector", "ChimeConnector"):
        yield f"{action.label}: VoiceConnector.VoiceConnectorType must be CallTransferConnector"
    for key in ("VoiceConnectorArn", "ToUser"):
        if not isinstance(connector.get(key), str) or not connector[key]:
            yield f"{action.label}: VoiceConnector.{key} is missing"
    for key in ("FromUser", "UserToUserInformation"):
        if key in connector and not isinstance(connector[key], str):
            yield f"{action.label}: VoiceConnector.{key} must be text or a $. reference"


def _check_lambda(action: Action) -> Iterator[str]:
    p = action.parameters
    if not isinstance(p.get("LambdaFunctionARN", ""), str):
        yield f"{action.label}: LambdaFunctionARN must be an ARN or a $. reference"
    limit = str(p.get("InvocationTimeLimitSeconds", ""))
    if not re.fullmatch(r"[0-9]{1,9}", limit) or int(limit) not in LAMBDA_TIME_LIMIT_SECONDS:
        yield f"{action.label}: InvocationTimeLimitSeconds must be whole seconds from 1 to 8, found {limit!r}"
    if p.get("InvocationType", "SYNCHRONOUS") not in ("SYNCHRONOUS", "ASYNCHRONOUS"):
        yield f"{action.label}: InvocationType must be SYNCHRONOUS or ASYNCHRONOUS"
    validation = p.get("ResponseValidation", {"ResponseType": "STRING_MAP"})
    if not isinstance(validation, dict) or validation.get("ResponseType") not in ("JSON", "STRING_MAP"):
        yield f"{action.label}: ResponseValidation.ResponseType must be JSON or STRING_MAP"
    yield from _check_keys(action, "LambdaInvocationAttributes")


def _check_attributes(action: Action) -> Iterator[str]:
    if not action.parameters.get("Attributes"):
        yield f"{action.label}: Attributes is missing"
    yield from _check_keys(action, "Attributes")
    if action.parameters.get("TargetContact", "Current") not in ("Current", "Related"):
        yield f"{action.label}: TargetContact must be Current or Related"


def _check_keys(action: Action, parameter: str) -> Iterator[str]:
    values = action.parameters.get(parameter, {})
    if not isinstance(values, dict):
        yield f"{action.label}: {parameter} must be an object of keys to values"
        return
    for key, value in values.items():
        if not ATTRIBUTE_KEY.fullmatch(REFERENCE_TEXT.sub("x", key)):  # a key may hold references
            yield f"{action.label}: {parameter} key {key!r} may hold only letters, digits, '-' and '_'"
        if not isinstance(value, str):
            yield f"{action.label}: {parameter}.{key} must be a string or a $. reference"


def _check_queue(action: Action) -> Iterator[str]:
    for key in ("QueueId", "AgentId"):
        if not isinstance(action.parameters.get(key, ""), str):
            yield f"{action.label}: {key} must be an ARN, an ID or a $. reference"


def _check_compare(action: Action) -> Iterator[str]:
    if not isinstance(action.parameters.get("ComparisonValue"), str):
        yield f"{action.label}: ComparisonValue is missing"
    if not action.conditions:
        yield f"{action.label}: a Compare needs at least one condition"


def _check_input(action: Action) -> Iterator[str]:
    p = action.parameters
    yield from _check_prompt(action, p, "", required=False)
    limit = p.get("InputTimeLimitSeconds", "5")
    if not isinstance(limit, str) or not (is_whole_reference(limit) or re.fullmatch(r"[0-9]{1,4}", limit)):
        yield f"{action.label}: InputTimeLimitSeconds must be whole seconds, found {limit!r}"
    if p.get("StoreInput", "False") not in ("True", "False"):
        yield f"{action.label}: StoreInput must be 'True' or 'False'"
    for key in ("DTMFConfiguration", "InputValidation"):
        if key in p and not isinstance(p[key], dict):
            yield f"{action.label}: {key} must be an object"
    validation = p.get("InputValidation", {})
    custom = validation.get("CustomValidation", {}) if isinstance(validation, dict) else {}
    maximum = custom.get("MaximumLength", "1") if isinstance(custom, dict) else None
    if not isinstance(maximum, str) or not re.fullmatch(r"[0-9]{1,3}", maximum):
        yield f"{action.label}: InputValidation.CustomValidation.MaximumLength must be digits"
    phone = validation.get("PhoneNumberValidation", {}) if isinstance(validation, dict) else {}
    if not isinstance(phone, dict) or phone.get("NumberFormat", "E164") not in ("E164", "Local"):
        yield f"{action.label}: InputValidation.PhoneNumberValidation.NumberFormat must be E164 or Local"


def _check_wait(action: Action) -> Iterator[str]:
    limit = action.parameters.get("TimeLimitSeconds", action.parameters.get("TimeoutSeconds", "0"))
    if not isinstance(limit, str) or not (is_whole_reference(limit) or re.fullmatch(r"[0-9]{1,7}", limit)):
        yield f"{action.label}: TimeLimitSeconds must be whole seconds or a $. reference, found {limit!r}"


def _check_loop(action: Action) -> Iterator[str]:
    count = action.parameters.get("LoopCount", "")
    static = isinstance(count, str) and re.fullmatch(r"[0-9]{1,3}", count) and int(count) <= LOOP_COUNT_LIMIT
    if not static and not (isinstance(count, str) and is_whole_reference(count)):
        yield f"{action.label}: LoopCount must be 0 to {LOOP_COUNT_LIMIT} or a $. reference, found {count!r}"


def _check_named(parameter: str) -> Callable[[Action], Iterator[str]]:
    """A check that `parameter`, which names a resource (a flow, a module), is a string."""

    def check(action: Action) -> Iterator[str]:
        if not isinstance(action.parameters.get(parameter, ""), str):
            yield f"{action.label}: {parameter} must be an ARN, an ID, a name or a $. reference"

    return check


# The parameters that name a resource of the instance. One left empty (a sample whose author
# removed their own ARN) loads: the action takes its error branch at run time, as in Connect.
_RESOURCES: dict[ActionType, tuple[str, ...]] = {
    ActionType.INVOKE_LAMBDA_FUNCTION: ("LambdaFunctionARN",),
    ActionType.TRANSFER_TO_FLOW: ("ContactFlowId",),
    ActionType.INVOKE_FLOW_MODULE: ("FlowModuleId",),
    ActionType.UPDATE_CONTACT_TARGET_QUEUE: ("QueueId", "AgentId"),
}


def _check_flow_attributes(action: Action) -> Iterator[str]:
    values = action.parameters.get("FlowAttributes")
    if not isinstance(values, dict) or not values:
        yield f'{action.label}: FlowAttributes must be an object of keys to {{"Value": ...}}'
        return
    for key, value in values.items():
        if not key:
            yield f"{action.label}: a FlowAttributes key is empty"
        if not isinstance(value, dict) or not isinstance(value.get("Value"), str):
            yield f'{action.label}: FlowAttributes.{key} must be {{"Value": a string or a $. reference}}'


_PARAMETER_CHECKS = {
    ActionType.MESSAGE_PARTICIPANT: _check_message,
    ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY: _check_third_party,
    ActionType.INVOKE_LAMBDA_FUNCTION: _check_lambda,
    ActionType.UPDATE_CONTACT_ATTRIBUTES: _check_attributes,
    ActionType.UPDATE_CONTACT_TARGET_QUEUE: _check_queue,
    ActionType.COMPARE: _check_compare,
    ActionType.GET_PARTICIPANT_INPUT: _check_input,
    ActionType.MESSAGE_PARTICIPANT_ITERATIVELY: _check_iterative_messages,
    ActionType.CONNECT_PARTICIPANT_WITH_LEX_BOT: _check_lex,
    ActionType.WAIT: _check_wait,
    ActionType.LOOP: _check_loop,
    ActionType.TRANSFER_TO_FLOW: _check_named("ContactFlowId"),
    ActionType.INVOKE_FLOW_MODULE: _check_named("FlowModuleId"),
    ActionType.UPDATE_FLOW_ATTRIBUTES: _check_flow_attributes,
}
