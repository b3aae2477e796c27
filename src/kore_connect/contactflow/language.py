"""The Amazon Connect flow language (version 2019-10-30), as far as kore-connect speaks it: which
actions exist, which error types each can raise, and which `$.` references Connect resolves.

Pure data and small parsers, shared by `kore-connect flow` (which validates what it writes) and the
local twin's flow interpreter (which validates what it runs). Sources: the flow language reference
(https://docs.aws.amazon.com/connect/latest/APIReference/flow-language.html) and the actions of
real console exports such as Kore's reference flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

VERSION = "2019-10-30"


class ActionType(StrEnum):
    UPDATE_FLOW_LOGGING_BEHAVIOR = "UpdateFlowLoggingBehavior"
    MESSAGE_PARTICIPANT = "MessageParticipant"
    TRANSFER_PARTICIPANT_TO_THIRD_PARTY = "TransferParticipantToThirdParty"
    INVOKE_LAMBDA_FUNCTION = "InvokeLambdaFunction"
    UPDATE_CONTACT_ATTRIBUTES = "UpdateContactAttributes"
    UPDATE_CONTACT_TARGET_QUEUE = "UpdateContactTargetQueue"
    TRANSFER_CONTACT_TO_QUEUE = "TransferContactToQueue"
    DISCONNECT_PARTICIPANT = "DisconnectParticipant"
    COMPARE = "Compare"


class ErrorType(StrEnum):
    NO_MATCHING_ERROR = "NoMatchingError"
    NO_MATCHING_CONDITION = "NoMatchingCondition"
    CALL_FAILED = "CallFailed"
    CONNECTION_TIME_LIMIT_EXCEEDED = "ConnectionTimeLimitExceeded"
    QUEUE_AT_CAPACITY = "QueueAtCapacity"


# The error types each action can raise, in the order the console exports them.
ERRORS: dict[ActionType, tuple[ErrorType, ...]] = {
    ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR: (),
    ActionType.MESSAGE_PARTICIPANT: (ErrorType.NO_MATCHING_ERROR,),
    ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY: (
        ErrorType.CALL_FAILED,
        ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED,
        ErrorType.NO_MATCHING_ERROR,
    ),
    ActionType.INVOKE_LAMBDA_FUNCTION: (ErrorType.NO_MATCHING_ERROR,),
    ActionType.UPDATE_CONTACT_ATTRIBUTES: (ErrorType.NO_MATCHING_ERROR,),
    ActionType.UPDATE_CONTACT_TARGET_QUEUE: (ErrorType.NO_MATCHING_ERROR,),
    ActionType.TRANSFER_CONTACT_TO_QUEUE: (ErrorType.QUEUE_AT_CAPACITY, ErrorType.NO_MATCHING_ERROR),
    ActionType.DISCONNECT_PARTICIPANT: (),
    ActionType.COMPARE: (ErrorType.NO_MATCHING_CONDITION,),
}

# The operators of Transitions.Conditions (Check contact attributes / Compare).
CONDITION_OPERATORS = frozenset(
    {
        "Equals",
        "NumberGreaterThan",
        "NumberLessThan",
        "NumberGreaterOrEqualTo",
        "NumberLessOrEqualTo",
        "TextContains",
        "TextStartsWith",
        "TextEndsWith",
    }
)

# Connect's rule for contact attribute keys and for the keys of a Lambda's flat response.
ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_-]+")
ATTRIBUTES_LIMIT_BYTES = 32_768
LAMBDA_TIME_LIMIT_SECONDS = range(1, 9)  # InvocationTimeLimitSeconds: 1..8

# System references Connect resolves on a voice contact (the ones kore-connect's flows use and
# the local twin knows). User-defined and Lambda values come through Attributes and External.
SYSTEM_REFERENCES = frozenset(
    {
        "ContactId",
        "InitialContactId",
        "PreviousContactId",
        "Channel",
        "InstanceARN",
        "InitiationMethod",
        "LanguageCode",
        "CustomerEndpoint.Address",
        "CustomerEndpoint.Type",
        "SystemEndpoint.Address",
        "SystemEndpoint.Type",
        "Queue.Name",
        "Queue.ARN",
    }
)
_KEYED_REFERENCE = re.compile(r"(?P<namespace>Attributes|External)\.(?P<key>[A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed `$.` reference: a system value, a contact attribute, or a key of the last Lambda response."""

    namespace: str  # "System", "Attributes" or "External"
    name: str  # "ContactId", "CustomerEndpoint.Address", or the attribute/response key

    def __str__(self) -> str:
        return f"$.{self.name}" if self.namespace == "System" else f"$.{self.namespace}.{self.name}"


class BadReference(ValueError):
    """A `$.` value Connect would not resolve."""


def is_reference(value: str) -> bool:
    return value.startswith("$.")


def parse_reference(value: str) -> Reference:
    """Parse `$.ContactId`, `$.Attributes.<key>` or `$.External.<key>`; raise BadReference otherwise."""
    if not is_reference(value):
        raise BadReference(f"{value!r} is not a reference (references start with '$.')")
    path = value[2:]
    if path in SYSTEM_REFERENCES:
        return Reference("System", path)
    keyed = _KEYED_REFERENCE.fullmatch(path)
    if keyed:
        return Reference(keyed["namespace"], keyed["key"])
    if path.startswith(("Attributes.", "External.")):
        raise BadReference(f"{value!r}: a key may hold only letters, digits, '-' and '_'")
    known = ", ".join(sorted(f"$.{name}" for name in SYSTEM_REFERENCES))
    raise BadReference(
        f"{value!r} is not a reference Connect resolves ({known}, $.Attributes.<key>, $.External.<key>)"
    )
