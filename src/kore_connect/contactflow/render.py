"""The default kore-connect contact flow, rendered from options (`kore-connect flow`).

It does what Kore's reference flow does, and closes its gaps:

    logging on -> welcome prompt -> transfer to the Kore bot (resume after its BYE)
      -> invoke the retrieve function with contactId = $.ContactId
      -> customData = $.External.body
      -> when the bot's metadata was found: kore_instanceSessionId = $.External.kore-instanceSessionId
      -> set the agent queue -> transfer to the queue

Every error branch plays its own prompt. Unlike the reference, which hangs up when the bot cannot
be reached or the metadata cannot be read, a caller whose transfer or lookup failed still reaches
the agent queue: losing the bot's context must not lose the caller.

The output is deterministic: action identifiers are UUIDs derived from each block's role, and the
JSON is written with a fixed key order, so the same options always give the same bytes. The flow
is validated (`Flow.parse`) before it is returned.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from kore_connect import arns
from kore_connect.contactflow.language import (
    LAMBDA_TIME_LIMIT_SECONDS,
    VERSION,
    ActionType,
    BadReference,
    ErrorType,
    is_reference,
    parse_reference,
)
from kore_connect.contactflow.model import Flow
from kore_connect.errors import KoreConnectError

# Block identifiers: stable across renders and distinct from any other tool's.
_NAMESPACE = uuid.UUID("7d1e35a8-2b7c-4d8e-9f0a-6c5b4e3d2a19")
_SIP_USER = re.compile(r"\+?[A-Za-z0-9._-]{1,64}")  # a DID or SIP user: the INVITE's To (or From) user
TRANSFER_TIME_LIMIT_SECONDS = range(1, 601)
DEFAULT_FLOW_NAME = "kore-connect: Kore voice bot with metadata handback"


class FlowOptionError(KoreConnectError):
    """An option Connect would refuse; `option` is the FlowOptions field (`prompts.welcome` for a prompt)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Prompts:
    welcome: str = "Welcome. Connecting you to our virtual assistant."
    transfer_failed: str = "Our virtual assistant is not available right now. Connecting you to an agent."
    transfer_timeout: str = "Our virtual assistant did not answer. Connecting you to an agent."
    transfer_error: str = "Something went wrong with our virtual assistant. Connecting you to an agent."
    lookup_failed: str = "Connecting you to an agent."
    queue_failed: str = "We are sorry, we cannot connect you to an agent right now. Please call again later."
    queue_full: str = "All our agents are busy and the queue is full. Please call again later."


@dataclass(frozen=True, slots=True)
class FlowOptions:
    connector_arn: str
    to_user: str  # the Kore DID: the INVITE's Request-URI and To user
    retrieve_function_arn: str
    queue_arn: str
    from_user: str = "$.CustomerEndpoint.Address"
    transfer_time_limit_seconds: int = 60
    lambda_time_limit_seconds: int = 3
    prompts: Prompts = Prompts()
    queue_name: str = "BasicQueue"  # how the flow designer labels the queue block
    name: str = DEFAULT_FLOW_NAME
    description: str = "Rendered by kore-connect flow."
    function_elsewhere: bool = False  # the retrieve function may be in another Region or account

    def check(self) -> None:
        """Raise FlowOptionError naming the first option Connect would refuse."""
        for option, kind in (
            ("connector_arn", arns.VOICE_CONNECTOR),
            ("retrieve_function_arn", arns.LAMBDA_FUNCTION),
            ("queue_arn", arns.CONNECT_QUEUE),
        ):
            try:
                kind.check(getattr(self, option))
            except arns.BadArn as exc:
                raise FlowOptionError(option, str(exc)) from None
        self._check_places()
        _check_sip_user("to_user", self.to_user)
        if is_reference(self.from_user):
            try:
                parse_reference(self.from_user)
            except BadReference as exc:
                raise FlowOptionError("from_user", str(exc)) from None
        else:
            _check_sip_user("from_user", self.from_user)
        if self.transfer_time_limit_seconds not in TRANSFER_TIME_LIMIT_SECONDS:
            raise FlowOptionError(
                "transfer_time_limit_seconds", "the transfer time limit must be 1 to 600 seconds"
            )
        if self.lambda_time_limit_seconds not in LAMBDA_TIME_LIMIT_SECONDS:
            raise FlowOptionError(
                "lambda_time_limit_seconds", "the Lambda time limit must be 1 to 8 seconds (Connect's limit)"
            )
        for name in Prompts.__dataclass_fields__:
            if not getattr(self.prompts, name).strip():
                raise FlowOptionError(f"prompts.{name}", f"the {name.replace('_', ' ')} prompt is empty")
        for option in ("queue_name", "name"):
            if not getattr(self, option).strip():
                raise FlowOptionError(option, "must not be empty")

    def _check_places(self) -> None:
        """The connector belongs to the instance (its Region and account, which the queue ARN
        names); the function too unless `function_elsewhere`; and the Region has external voice
        transfer."""
        instance = arns.Place.of(self.queue_arn)
        connector = arns.Place.of(self.connector_arn)
        if connector != instance:
            raise FlowOptionError(
                "connector_arn",
                f"the connector is in {connector} and the queue (the Connect instance) in {instance}: "
                "an external voice transfer connector serves the instance of its own Region and account",
            )
        if instance.region not in arns.EXTERNAL_VOICE_TRANSFER_REGIONS:
            regions = ", ".join(arns.EXTERNAL_VOICE_TRANSFER_REGIONS)
            raise FlowOptionError(
                "connector_arn",
                f"{instance.region} has no external voice transfer (Regions that have it: {regions})",
            )
        function = arns.Place.of(self.retrieve_function_arn)
        if function != instance and not self.function_elsewhere:
            raise FlowOptionError(
                "retrieve_function_arn",
                f"the function is in {function} and the queue (the Connect instance) in {instance}: "
                "deploy the stack where the instance is, or, having granted connect.amazonaws.com "
                "leave to invoke it yourself, pass --function-elsewhere",
            )


def _check_sip_user(option: str, value: str) -> None:
    problem = sip_user_problem(value)
    if problem is not None:
        raise FlowOptionError(option, problem)


def sip_user_problem(value: str) -> str | None:
    """Why `value` cannot be a DID or SIP user (the INVITE's To or From user); None when it can."""
    if _SIP_USER.fullmatch(value):
        return None
    return f"{value!r} is not a number or SIP user (1-64 of: digits, letters, + . _ -)"


# For teams that deploy flows with CloudFormation (Fn::Sub) or Terraform (templatefile): where each
# ARN goes, a `${Name}` placeholder; and a stand-in ARN that passes the checks while rendering.
TEMPLATE_PLACEHOLDERS = {
    "connector_arn": ("ConnectorArn", "arn:aws:chime:us-east-1:000000000000:vc/connector"),
    "retrieve_function_arn": (
        "RetrieveFunctionArn",
        "arn:aws:lambda:us-east-1:000000000000:function:koreRetrieveSessionMetadata",
    ),
    "queue_arn": (
        "QueueArn",
        "arn:aws:connect:us-east-1:000000000000:instance/00000000-0000-4000-8000-000000000000"
        "/queue/00000000-0000-4000-8000-000000000001",
    ),
}


def render_template(options: FlowOptions) -> dict[str, Any]:
    """The flow with `${ConnectorArn}`, `${RetrieveFunctionArn}` and `${QueueArn}` where the ARNs go
    (the options' own ARNs are not used); everything else is checked as `render_flow` checks it."""
    stand_in = {option: arn for option, (_, arn) in TEMPLATE_PLACEHOLDERS.items()}
    with_stand_ins = dataclasses.replace(
        options,
        connector_arn=stand_in["connector_arn"],
        retrieve_function_arn=stand_in["retrieve_function_arn"],
        queue_arn=stand_in["queue_arn"],
    )
    text = json.dumps(render_flow(with_stand_ins))
    for name, arn in TEMPLATE_PLACEHOLDERS.values():
        text = text.replace(arn, "${" + name + "}")
    document: dict[str, Any] = json.loads(text)
    return document


def block_id(role: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, role))


def render_flow(options: FlowOptions) -> dict[str, Any]:
    """The flow document for `options`, validated; raises a KoreConnectError on a bad option."""
    options.check()
    blocks = _Blocks()
    prompts = options.prompts
    blocks.add(
        "logging", ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR, {"FlowLoggingBehavior": "Enabled"}, "welcome"
    )
    blocks.message("welcome", prompts.welcome, then="to-kore", on_error="to-kore")
    blocks.add(
        "to-kore",
        ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY,
        {
            "ThirdPartyConnectionTimeLimitSeconds": str(options.transfer_time_limit_seconds),
            "ContinueFlowExecution": "True",
            "VoiceConnector": {
                "VoiceConnectorType": "CallTransferConnector",
                "VoiceConnectorArn": options.connector_arn,
                "ToUser": options.to_user,
                "FromUser": options.from_user,
            },
        },
        "retrieve",
        editor={
            "parameters": {
                "VoiceConnector": {
                    "VoiceConnectorArn": {"displayName": options.connector_arn.rpartition("/")[2]},
                    "FromUser": {"useDynamic": options.from_user.startswith("$.")},
                }
            },
            "useDynamicFromUser": options.from_user.startswith("$."),
        },
        errors={
            ErrorType.CALL_FAILED: "transfer-failed",
            ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED: "transfer-timeout",
            ErrorType.NO_MATCHING_ERROR: "transfer-error",
        },
    )
    blocks.message("transfer-failed", prompts.transfer_failed, then="set-queue")
    blocks.message("transfer-timeout", prompts.transfer_timeout, then="set-queue")
    blocks.message("transfer-error", prompts.transfer_error, then="set-queue")
    blocks.add(
        "retrieve",
        ActionType.INVOKE_LAMBDA_FUNCTION,
        {
            "LambdaFunctionARN": options.retrieve_function_arn,
            "InvocationTimeLimitSeconds": str(options.lambda_time_limit_seconds),
            "InvocationType": "SYNCHRONOUS",
            "LambdaInvocationAttributes": {"contactId": "$.ContactId"},
            "ResponseValidation": {"ResponseType": "JSON"},
        },
        "set-custom-data",
        editor={
            "parameters": {
                "LambdaFunctionARN": {"displayName": options.retrieve_function_arn.split(":")[6]},
                "LambdaInvocationAttributes": {"contactId": {"useDynamic": True}},
            },
            "dynamicMetadata": {"contactId": True},
        },
        errors={ErrorType.NO_MATCHING_ERROR: "lookup-failed"},
    )
    blocks.message("lookup-failed", prompts.lookup_failed, then="set-queue")
    blocks.add(
        "set-custom-data",
        ActionType.UPDATE_CONTACT_ATTRIBUTES,
        {"Attributes": {"customData": "$.External.body"}, "TargetContact": "Current"},
        "found",
        editor=_dynamic_attributes("customData"),
        errors={ErrorType.NO_MATCHING_ERROR: "lookup-failed"},
    )
    # Only a found item has kore-instanceSessionId; a 404 goes straight to the queue.
    blocks.add(
        "found",
        ActionType.COMPARE,
        {"ComparisonValue": "$.External.statusCode"},
        None,
        errors={ErrorType.NO_MATCHING_CONDITION: "set-queue"},
        conditions=[("Equals", "200", "set-session-id")],
        editor={
            "conditionMetadata": [
                {
                    "id": block_id("found/200"),
                    "operator": {"name": "Equals", "value": "Equals", "shortDisplay": "="},
                    "value": "200",
                }
            ]
        },
    )
    blocks.add(
        "set-session-id",
        ActionType.UPDATE_CONTACT_ATTRIBUTES,
        {
            "Attributes": {"kore_instanceSessionId": "$.External.kore-instanceSessionId"},
            "TargetContact": "Current",
        },
        "set-queue",
        editor=_dynamic_attributes("kore_instanceSessionId"),
        errors={ErrorType.NO_MATCHING_ERROR: "lookup-failed"},
    )
    blocks.add(
        "set-queue",
        ActionType.UPDATE_CONTACT_TARGET_QUEUE,
        {"QueueId": options.queue_arn},
        "to-queue",
        editor={
            "parameters": {"QueueId": {"displayName": options.queue_name}},
            "queue": {"text": options.queue_name},
        },
        errors={ErrorType.NO_MATCHING_ERROR: "queue-failed"},
    )
    blocks.add(
        "to-queue",
        ActionType.TRANSFER_CONTACT_TO_QUEUE,
        {},
        "disconnect",
        errors={ErrorType.QUEUE_AT_CAPACITY: "queue-full", ErrorType.NO_MATCHING_ERROR: "queue-failed"},
    )
    blocks.message("queue-failed", prompts.queue_failed, then="disconnect")
    blocks.message("queue-full", prompts.queue_full, then="disconnect")
    blocks.add("disconnect", ActionType.DISCONNECT_PARTICIPANT, {}, None)

    document = {
        "Version": VERSION,
        "StartAction": block_id("logging"),
        "Metadata": {
            "entryPointPosition": {"x": 40, "y": 40},
            "ActionMetadata": blocks.layout(),
            "Annotations": [],
            "name": options.name,
            "description": options.description,
            "type": "contactFlow",
            "status": "SAVED",
            "hash": {},
        },
        "Actions": blocks.actions,
    }
    Flow.parse(document)  # never hand out a flow that would not import or run
    return document


def flow_json(document: dict[str, Any]) -> str:
    """The text `kore-connect flow` writes: stable key order, UTF-8, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class _Blocks:
    """Collects actions in order, naming them by role and laying them out left to right."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self._roles: list[str] = []
        self._editor: dict[str, dict[str, Any]] = {}  # what the flow designer keeps beside a block

    def add(
        self,
        role: str,
        action_type: ActionType,
        parameters: dict[str, Any],
        then: str | None,
        *,
        errors: dict[ErrorType, str] | None = None,
        conditions: list[tuple[str, str, str]] | None = None,
        editor: dict[str, Any] | None = None,
    ) -> None:
        transitions: dict[str, Any] = {}
        if then is not None:
            transitions["NextAction"] = block_id(then)
        if conditions:
            transitions["Conditions"] = [
                {"NextAction": block_id(target), "Condition": {"Operator": operator, "Operands": [operand]}}
                for operator, operand, target in conditions
            ]
        if errors:
            transitions["Errors"] = [
                {"NextAction": block_id(target), "ErrorType": str(error)} for error, target in errors.items()
            ]
        self.actions.append(
            {
                "Parameters": parameters,
                "Identifier": block_id(role),
                "Type": str(action_type),
                "Transitions": transitions,
            }
        )
        self._roles.append(role)
        self._editor[role] = editor or {}

    def message(self, role: str, text: str, *, then: str, on_error: str | None = None) -> None:
        self.add(
            role,
            ActionType.MESSAGE_PARTICIPANT,
            {"Text": text},
            then,
            errors={ErrorType.NO_MATCHING_ERROR: on_error or then},
        )

    def layout(self) -> dict[str, Any]:
        # A readable grid for the flow designer, five blocks a row, and what the designer needs to
        # show a `$.` value as "set dynamically" (as in a console export) rather than as text.
        return {
            block_id(role): {
                "position": {"x": 40 + 260 * (i % 5), "y": 200 + 220 * (i // 5)},
                **self._editor[role],
            }
            for i, role in enumerate(self._roles)
        }


def _dynamic_attributes(*keys: str) -> dict[str, Any]:
    return {
        "parameters": {"Attributes": {key: {"useDynamic": True} for key in keys}},
        "dynamicParams": list(keys),
    }
