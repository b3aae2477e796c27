"""What an action did: the branch it takes, why, and where that leads; and the condition operators
of `Transitions.Conditions`, evaluated as Connect evaluates them (pure)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from kore_connect.contactflow.language import ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.sip.trace import TracedMessage


@dataclass(frozen=True, slots=True)
class Branch:
    """`next_action` None: the flow ends here (in a module too: the contact's flow ends)."""

    name: str  # "Success", an error type, or "Condition: Equals 1"
    reason: str
    next_action: str | None
    sip: tuple[TracedMessage, ...] | None = None  # a transfer's SIP messages (None: no transfer)


def success(action: Action, reason: str, sip: tuple[TracedMessage, ...] | None = None) -> Branch:
    return Branch("Success", reason, action.next_action, sip)


def error(
    action: Action, kind: ErrorType, reason: str, sip: tuple[TracedMessage, ...] | None = None
) -> Branch:
    """The branch of the error `kind`; without one, NoMatchingError's ("if no other Error
    matches"); without that either, the flow ends."""
    target = action.errors.get(kind)
    if target is not None:
        return Branch(str(kind), reason, target, sip)
    fallback = action.errors.get(ErrorType.NO_MATCHING_ERROR)
    if fallback is not None:
        return Branch(
            str(ErrorType.NO_MATCHING_ERROR), f"{kind}: {reason} (no {kind} branch here)", fallback, sip
        )
    return Branch(str(kind), f"{reason} (the flow has no {kind} branch here: it ends)", None, sip)


def hung_up(reason: str) -> Branch:
    """The caller hung up while the action ran: the contact ends."""
    return Branch(CALLER_HUNG_UP, reason, None)


CALLER_HUNG_UP = "CallerHungUp"


def by_condition(action: Action, value: str, reason: str, resolve: Callable[[str], str | None]) -> Branch:
    """The first condition `value` meets; else the NoMatchingCondition error."""
    for condition in action.conditions:
        operand = resolve(condition.operands[0]) if condition.operands else None
        if operand is not None and holds(condition.operator, value, operand):
            return Branch(f"Condition: {condition.operator} {operand}", reason, condition.next_action)
    return error(action, ErrorType.NO_MATCHING_CONDITION, f"{reason}, which matches no condition")


def result(action: Action, name: str, reason: str) -> Branch:
    """The branch of a result Connect names (ContinueLooping, WaitCompleted...): its `Equals`
    condition, else the action's NextAction."""
    return Branch(f"Condition: Equals {name}", reason, condition_target(action, name) or action.next_action)


def condition_target(action: Action, result: str) -> str | None:
    """Where the condition `Equals <result>` leads (Loop, Wait, hours: results Connect names)."""
    for condition in action.conditions:
        if condition.operator == "Equals" and condition.operands == (result,):
            return condition.next_action
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


def holds(name: str, value: str, operand: str) -> bool:
    if name in _NUMERIC:
        try:
            return _NUMERIC[name](float(value), float(operand))
        except ValueError:
            return False
    return name in _TEXT and _TEXT[name](value, operand)
