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
    """Every action type of the documented flow language (the Administrator Guide's action
    reference: contact actions, flow control actions, interactions, participant actions)."""

    # participant actions
    CONNECT_PARTICIPANT_WITH_LEX_BOT = "ConnectParticipantWithLexBot"
    DISCONNECT_PARTICIPANT = "DisconnectParticipant"
    GET_PARTICIPANT_INPUT = "GetParticipantInput"
    MESSAGE_PARTICIPANT = "MessageParticipant"
    MESSAGE_PARTICIPANT_ITERATIVELY = "MessageParticipantIteratively"
    SHOW_VIEW = "ShowView"
    TRANSFER_PARTICIPANT_TO_THIRD_PARTY = "TransferParticipantToThirdParty"
    # flow control actions
    CHECK_HOURS_OF_OPERATION = "CheckHoursOfOperation"
    CHECK_METRIC_DATA = "CheckMetricData"
    CHECK_OUTBOUND_CALL_STATUS = "CheckOutboundCallStatus"
    CHECK_VOICE_ID = "CheckVoiceId"
    COMPARE = "Compare"
    DISTRIBUTE_BY_PERCENTAGE = "DistributeByPercentage"
    END_FLOW_EXECUTION = "EndFlowExecution"
    GET_METRIC_DATA = "GetMetricData"
    LOOP = "Loop"
    START_VOICE_ID_STREAM = "StartVoiceIdStream"
    TRANSFER_TO_FLOW = "TransferToFlow"
    UPDATE_FLOW_ATTRIBUTES = "UpdateFlowAttributes"
    UPDATE_FLOW_LOGGING_BEHAVIOR = "UpdateFlowLoggingBehavior"
    UPDATE_ROUTING_CRITERIA = "UpdateRoutingCriteria"
    UPDATE_CONTACT_ROUTING_CRITERIA = "UpdateContactRoutingCriteria"  # the name console exports use
    WAIT = "Wait"
    # interactions
    ASSOCIATE_CONTACT_TO_CUSTOMER_PROFILE = "AssociateContactToCustomerProfile"
    CREATE_CALLBACK_CONTACT = "CreateCallbackContact"
    CREATE_CUSTOMER_PROFILE = "CreateCustomerProfile"
    GET_CALCULATED_ATTRIBUTES_FOR_CUSTOMER_PROFILE = "GetCalculatedAttributesForCustomerProfile"
    GET_CUSTOMER_PROFILE = "GetCustomerProfile"
    GET_CUSTOMER_PROFILE_OBJECT = "GetCustomerProfileObject"
    INVOKE_LAMBDA_FUNCTION = "InvokeLambdaFunction"
    UPDATE_CUSTOMER_PROFILE = "UpdateCustomerProfile"
    # contact actions
    COMPLETE_OUTBOUND_CALL = "CompleteOutboundCall"
    CREATE_CASE = "CreateCase"
    CREATE_TASK = "CreateTask"
    CREATE_WISDOM_SESSION = "CreateWisdomSession"
    DEQUEUE_CONTACT_AND_TRANSFER_TO_QUEUE = "DequeueContactAndTransferToQueue"
    END_FLOW_MODULE_EXECUTION = "EndFlowModuleExecution"
    GET_CASE = "GetCase"
    INVOKE_FLOW_MODULE = "InvokeFlowModule"
    RESUME_CONTACT = "ResumeContact"
    TAG_CONTACT = "TagContact"
    TRANSFER_CONTACT_TO_AGENT = "TransferContactToAgent"
    TRANSFER_CONTACT_TO_QUEUE = "TransferContactToQueue"
    UNTAG_CONTACT = "UnTagContact"
    UPDATE_CASE = "UpdateCase"
    UPDATE_CONTACT_ATTRIBUTES = "UpdateContactAttributes"
    UPDATE_CONTACT_CALLBACK_NUMBER = "UpdateContactCallbackNumber"
    UPDATE_CONTACT_DATA = "UpdateContactData"
    UPDATE_CONTACT_EVENT_HOOKS = "UpdateContactEventHooks"
    UPDATE_CONTACT_MEDIA_STREAMING_BEHAVIOR = "UpdateContactMediaStreamingBehavior"
    UPDATE_CONTACT_RECORDING_BEHAVIOR = "UpdateContactRecordingBehavior"
    UPDATE_CONTACT_ROUTING_BEHAVIOR = "UpdateContactRoutingBehavior"
    UPDATE_CONTACT_TARGET_QUEUE = "UpdateContactTargetQueue"
    UPDATE_CONTACT_TEXT_TO_SPEECH_VOICE = "UpdateContactTextToSpeechVoice"
    UPDATE_PREVIOUS_CONTACT_PARTICIPANT_STATE = "UpdatePreviousContactParticipantState"
    # contact actions the Developer Guide's list adds
    START_OUTBOUND_CHAT_CONTACT = "StartOutboundChatContact"
    UPDATE_CONTACT_MEDIA_PROCESSING = "UpdateContactMediaProcessing"
    UPDATE_CONTACT_RECORDING_AND_ANALYTICS_BEHAVIOR = "UpdateContactRecordingAndAnalyticsBehavior"


class ErrorType(StrEnum):
    NO_MATCHING_ERROR = "NoMatchingError"
    NO_MATCHING_CONDITION = "NoMatchingCondition"
    CALL_FAILED = "CallFailed"
    CONNECTION_TIME_LIMIT_EXCEEDED = "ConnectionTimeLimitExceeded"
    QUEUE_AT_CAPACITY = "QueueAtCapacity"
    INPUT_TIME_LIMIT_EXCEEDED = "InputTimeLimitExceeded"
    INVALID_PHONE_NUMBER = "InvalidPhoneNumber"
    TIME_LIMIT_EXCEEDED = "TimeLimitExceeded"
    INVALID_CALLBACK_NUMBER = "InvalidCallbackNumber"
    CALLBACK_NUMBER_NOT_DIALABLE = "CallbackNumberNotDialable"
    MULTIPLE_FOUND_ERROR = "MultipleFoundError"
    NONE_FOUND_ERROR = "NoneFoundError"
    CONTACT_NOT_LINKED = "ContactNotLinked"
    MULTIPLE_FOUND = "MultipleFound"
    NONE_FOUND = "NoneFound"
    PARTICIPANT_NOT_FOUND = "ParticipantNotFound"


class Kind(StrEnum):
    """What the local twin does with an action: `modelled`, its effect on the contact is Connect's;
    `recorded`, a setting with no audible effect in a local call, kept on the contact and shown in
    the trace, taking the branch the local world says (Success by default)."""

    MODELLED = "modelled"
    RECORDED = "recorded"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    kind: Kind
    errors: tuple[ErrorType, ...]  # the error types it can raise, in the order the console exports them


_E = ErrorType
_ONLY_NO_MATCHING = (_E.NO_MATCHING_ERROR,)
_M, _R = Kind.MODELLED, Kind.RECORDED
ACTIONS: dict[ActionType, ActionSpec] = {
    ActionType.CONNECT_PARTICIPANT_WITH_LEX_BOT: ActionSpec(
        _M, (_E.INPUT_TIME_LIMIT_EXCEEDED, _E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)
    ),
    ActionType.DISCONNECT_PARTICIPANT: ActionSpec(_M, ()),
    ActionType.GET_PARTICIPANT_INPUT: ActionSpec(
        _M,
        (
            _E.INPUT_TIME_LIMIT_EXCEEDED,
            _E.NO_MATCHING_CONDITION,
            _E.INVALID_PHONE_NUMBER,
            _E.NO_MATCHING_ERROR,
        ),
    ),
    ActionType.MESSAGE_PARTICIPANT: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.MESSAGE_PARTICIPANT_ITERATIVELY: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.SHOW_VIEW: ActionSpec(
        _R, (_E.TIME_LIMIT_EXCEEDED, _E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)
    ),
    ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY: ActionSpec(
        _M, (_E.CALL_FAILED, _E.CONNECTION_TIME_LIMIT_EXCEEDED, _E.NO_MATCHING_ERROR)
    ),
    ActionType.CHECK_HOURS_OF_OPERATION: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.CHECK_METRIC_DATA: ActionSpec(_M, (_E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)),
    ActionType.CHECK_OUTBOUND_CALL_STATUS: ActionSpec(_R, (_E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)),
    ActionType.CHECK_VOICE_ID: ActionSpec(_R, (_E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)),
    ActionType.COMPARE: ActionSpec(_M, (_E.NO_MATCHING_CONDITION,)),
    ActionType.DISTRIBUTE_BY_PERCENTAGE: ActionSpec(_M, (_E.NO_MATCHING_CONDITION, _E.NO_MATCHING_ERROR)),
    ActionType.END_FLOW_EXECUTION: ActionSpec(_M, ()),
    ActionType.GET_METRIC_DATA: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.LOOP: ActionSpec(_M, ()),
    ActionType.START_VOICE_ID_STREAM: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.TRANSFER_TO_FLOW: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_FLOW_ATTRIBUTES: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR: ActionSpec(_M, ()),
    ActionType.UPDATE_ROUTING_CRITERIA: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_ROUTING_CRITERIA: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.WAIT: ActionSpec(_M, (_E.PARTICIPANT_NOT_FOUND, _E.NO_MATCHING_ERROR)),
    ActionType.ASSOCIATE_CONTACT_TO_CUSTOMER_PROFILE: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.CREATE_CALLBACK_CONTACT: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.CREATE_CUSTOMER_PROFILE: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.GET_CALCULATED_ATTRIBUTES_FOR_CUSTOMER_PROFILE: ActionSpec(
        _R, (_E.NONE_FOUND_ERROR, _E.NO_MATCHING_ERROR)
    ),
    ActionType.GET_CUSTOMER_PROFILE: ActionSpec(
        _R, (_E.MULTIPLE_FOUND_ERROR, _E.NONE_FOUND_ERROR, _E.NO_MATCHING_ERROR)
    ),
    ActionType.GET_CUSTOMER_PROFILE_OBJECT: ActionSpec(
        _R, (_E.MULTIPLE_FOUND_ERROR, _E.NONE_FOUND_ERROR, _E.NO_MATCHING_ERROR)
    ),
    ActionType.INVOKE_LAMBDA_FUNCTION: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CUSTOMER_PROFILE: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.COMPLETE_OUTBOUND_CALL: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.CREATE_CASE: ActionSpec(_R, (_E.CONTACT_NOT_LINKED, _E.NO_MATCHING_ERROR)),
    ActionType.CREATE_TASK: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.CREATE_WISDOM_SESSION: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.DEQUEUE_CONTACT_AND_TRANSFER_TO_QUEUE: ActionSpec(
        _M, (_E.QUEUE_AT_CAPACITY, _E.NO_MATCHING_ERROR)
    ),
    ActionType.END_FLOW_MODULE_EXECUTION: ActionSpec(_M, ()),
    ActionType.GET_CASE: ActionSpec(
        _R, (_E.CONTACT_NOT_LINKED, _E.MULTIPLE_FOUND, _E.NONE_FOUND, _E.NO_MATCHING_ERROR)
    ),
    ActionType.INVOKE_FLOW_MODULE: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.RESUME_CONTACT: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.TAG_CONTACT: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.TRANSFER_CONTACT_TO_AGENT: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.TRANSFER_CONTACT_TO_QUEUE: ActionSpec(_M, (_E.QUEUE_AT_CAPACITY, _E.NO_MATCHING_ERROR)),
    ActionType.UNTAG_CONTACT: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CASE: ActionSpec(_R, (_E.CONTACT_NOT_LINKED, _E.NO_MATCHING_ERROR)),
    ActionType.UPDATE_CONTACT_ATTRIBUTES: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_CALLBACK_NUMBER: ActionSpec(
        _M, (_E.INVALID_CALLBACK_NUMBER, _E.CALLBACK_NUMBER_NOT_DIALABLE, _E.NO_MATCHING_ERROR)
    ),
    ActionType.UPDATE_CONTACT_DATA: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_EVENT_HOOKS: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_MEDIA_STREAMING_BEHAVIOR: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_RECORDING_BEHAVIOR: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_ROUTING_BEHAVIOR: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_TARGET_QUEUE: ActionSpec(_M, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_TEXT_TO_SPEECH_VOICE: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_PREVIOUS_CONTACT_PARTICIPANT_STATE: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.START_OUTBOUND_CHAT_CONTACT: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_MEDIA_PROCESSING: ActionSpec(_R, _ONLY_NO_MATCHING),
    ActionType.UPDATE_CONTACT_RECORDING_AND_ANALYTICS_BEHAVIOR: ActionSpec(_R, _ONLY_NO_MATCHING),
}

# The error types each action can raise, in the order the console exports them.
ERRORS: dict[ActionType, tuple[ErrorType, ...]] = {kind: spec.errors for kind, spec in ACTIONS.items()}

# What a prompt can be: exactly one of these (Media: an S3 audio file, an object).
PROMPT_KEYS = ("Text", "SSML", "PromptId", "Media")
LOOP_COUNT_LIMIT = 100  # LoopCount: 0..100

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

# The references Connect resolves on a voice contact that name one value (the Administrator
# Guide's "List of available contact attributes and their JSONPath reference").
SYSTEM_REFERENCES = frozenset(
    {
        "ContactId",
        "InitialContactId",
        "PreviousContactId",
        "RelatedContactId",
        "Channel",
        "InstanceARN",
        "InitiationMethod",
        "Name",
        "Description",
        "LanguageCode",
        "TextToSpeechVoice",
        "TextToSpeechVoiceId",
        "AwsRegion",
        "CustomerId",
        "CustomerCallbackNumber",
        "StoredCustomerInput",
        "CustomerEndpoint.Address",
        "CustomerEndpoint.Type",
        "CustomerEndpoint.DisplayName",
        "SystemEndpoint.Address",
        "SystemEndpoint.Type",
        "Queue.Name",
        "Queue.ARN",
        "Queue.OutboundCallerId.Address",
        "Agent.UserName",
        "Agent.FirstName",
        "Agent.LastName",
        "Agent.ARN",
        "MediaStreams.Customer.Audio.StreamARN",
        "MediaStreams.Customer.Audio.StartTimestamp",
        "MediaStreams.Customer.Audio.StartFragmentNumber",
        "MediaStreams.Customer.Audio.StopTimestamp",
        "MediaStreams.Customer.Audio.StopFragmentNumber",
        "Metrics.Queue.Name",
        "Metrics.Queue.ARN",
        "Metrics.Queue.Size",
        "Metrics.Queue.OldestContactAge",
        *(
            f"Metrics.Agents.{state}.Count"
            for state in (
                "Online",
                "Available",
                "Staffed",
                "AfterContactWork",
                "Busy",
                "Missed",
                "NonProductive",
            )
        ),
        "Lex.IntentName",
        "Lex.IntentConfidence.Score",
        "Lex.SentimentResponse.Label",
        *(f"Lex.SentimentResponse.Scores.{s}" for s in ("Positive", "Negative", "Neutral", "Mixed")),
        "Wisdom.SessionArn",
        "Views.Action",
        "Case.CaseId",
        # the fields of Customer Profiles' standard profile ($.Customer.<field>)
        *(
            f"Customer.{field}"
            for field in (
                "ProfileId",
                "ProfileARN",
                "AccountNumber",
                "AdditionalInformation",
                "PartyType",
                "BusinessName",
                "FirstName",
                "MiddleName",
                "LastName",
                "BirthDate",
                "Gender",
                "PhoneNumber",
                "MobilePhoneNumber",
                "HomePhoneNumber",
                "BusinessPhoneNumber",
                "EmailAddress",
                "PersonalEmailAddress",
                "BusinessEmailAddress",
                "Address1",
                "Address2",
                "Address3",
                "Address4",
                "City",
                "County",
                "Country",
                "PostalCode",
                "Province",
                "State",
            )
        ),
    }
)

# The namespaces whose names are keys the flow or a resource chose: `$.<namespace>.<key>`.
# `External` and `Views.ViewResultData` hold JSON: their keys may go deeper (`a.b.0`).
KEYED_NAMESPACES = (
    "Attributes",
    "External",
    "FlowAttributes",
    "Lex.Slots",
    "Lex.SessionAttributes",
    "Customer.Attributes",
    "Case",
    "Views.ViewResultData",
    "Tags",
    "SegmentAttributes",
)
_NESTED = {"External", "Views.ViewResultData"}
_KEY = r"[A-Za-z0-9_-]+"
_KEYED_REFERENCE = re.compile(
    r"(?P<namespace>"
    + "|".join(re.escape(n) for n in sorted(KEYED_NAMESPACES, key=len, reverse=True))
    + rf")\.(?P<key>{_KEY}(?:\.{_KEY})*)"
)
# A value that is one reference as a whole; within text, each such run is replaced by its value.
REFERENCE_TEXT = re.compile(r"\$\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed `$.` reference: a system value, or a key in one of the keyed namespaces."""

    namespace: str  # "System", or one of KEYED_NAMESPACES
    name: str  # "ContactId", "CustomerEndpoint.Address", or the key ("customData", "a.b" in External)

    def __str__(self) -> str:
        return f"$.{self.name}" if self.namespace == "System" else f"$.{self.namespace}.{self.name}"


class BadReference(ValueError):
    """A `$.` value Connect would not resolve."""


def is_reference(value: str) -> bool:
    return value.startswith("$.")


def is_whole_reference(value: str) -> bool:
    """Whether `value` is one reference and nothing else (else it is text, where references are
    replaced by their values: `"Hello $.Attributes.name, welcome"`)."""
    return REFERENCE_TEXT.fullmatch(value) is not None


def parse_reference(value: str) -> Reference:
    """Parse a system reference (`$.ContactId`) or a keyed one (`$.Attributes.<key>`,
    `$.External.<key>`, `$.Lex.Slots.<slot>`...); raise BadReference otherwise."""
    if not is_reference(value):
        raise BadReference(f"{value!r} is not a reference (references start with '$.')")
    path = value[2:]
    if path in SYSTEM_REFERENCES:
        return Reference("System", path)
    keyed = _KEYED_REFERENCE.fullmatch(path)
    if keyed and ("." not in keyed["key"] or keyed["namespace"] in _NESTED):
        return Reference(keyed["namespace"], keyed["key"])
    for namespace in KEYED_NAMESPACES:
        if path.startswith(namespace + "."):
            deeper = " (only $.External and $.Views.ViewResultData go deeper)" if keyed else ""
            raise BadReference(f"{value!r}: a key may hold only letters, digits, '-' and '_'{deeper}")
    known = ", ".join(["$.ContactId", "$.CustomerEndpoint.Address", "$.Queue.Name", "..."])
    keyed_forms = ", ".join(f"$.{n}.<key>" for n in KEYED_NAMESPACES)
    raise BadReference(f"{value!r} is not a reference Connect resolves ({known}, {keyed_forms})")
