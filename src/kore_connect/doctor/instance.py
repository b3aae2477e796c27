"""What the Amazon Connect instance needs for a first real call, checked with the user's credentials:
its flow logs on, a published flow that invokes the deployed retrieve function, and the external
voice connector that flow transfers to.

Each check calls AWS and hands the answer to a pure function (`*_result`) that judges it.
Connect's API limits are low (a few requests a second), so without `--flow` the doctor reads at
most `MAX_FLOWS_READ` flows and says so when there are more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from kore_connect import arns
from kore_connect.doctor.report import Check, CheckResult, CheckStatus
from kore_connect.doctor.resources import aws_failure, aws_unreachable, error_code, names_function

if TYPE_CHECKING:
    from mypy_boto3_connect import ConnectClient

MAX_FLOWS_READ = 50
THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException", "LimitExceededException"})
CALL_TRANSFER_CONNECTOR = "CONNECT_CALL_TRANSFER_CONNECTOR"
BY_HAND = (
    "check by hand: Amazon Connect console > your instance > External voice systems > Voice transfer "
    "integrations lists the connector, with destination type AudioCodes, encryption Disabled, and an "
    "outbound route to the Kore gateway's host and port"
)


# ---------------------------------------------------------------- flow logs


def check_flow_logs(connect: ConnectClient, instance_id: str) -> CheckResult:
    """The instance writes its flows' logs to CloudWatch (the first place to look when a call fails)."""
    try:
        attribute = connect.describe_instance_attribute(
            InstanceId=instance_id, AttributeType="CONTACTFLOW_LOGS"
        )
    except ClientError as exc:
        return aws_failure(Check.FLOW_LOGS, "connect:DescribeInstanceAttribute", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.FLOW_LOGS, "Amazon Connect", exc)
    return flow_logs_result(str(attribute.get("Attribute", {}).get("Value", "")), instance_id)


def flow_logs_result(value: str, instance_id: str) -> CheckResult:
    if value.lower() == "true":
        return CheckResult.passed(Check.FLOW_LOGS, f"instance {instance_id} writes flow logs to CloudWatch")
    return CheckResult.failed(
        Check.FLOW_LOGS,
        f"instance {instance_id} does not write flow logs",
        cause="without them a failed transfer or Lambda call leaves no trace of which block failed",
        fix=(
            f"`aws connect update-instance-attribute --instance-id {instance_id} "
            "--attribute-type CONTACTFLOW_LOGS --value true` (or the Amazon Connect console: your "
            "instance > Flows > Enable flow logs > Save)"
        ),
    )


# ---------------------------------------------------------------- the flow


@dataclass(frozen=True)
class FlowRead:
    """One contact flow as the doctor read it: what it invokes and where it transfers."""

    name: str
    status: str  # PUBLISHED or SAVED
    functions: tuple[str, ...]  # LambdaFunctionARN of each Invoke AWS Lambda function block
    connectors: tuple[str, ...]  # VoiceConnectorArn of each transfer to a voice connector

    def invokes(self, function_arn: str) -> bool:
        return any(names_function(arn, function_arn) for arn in self.functions)


def flow_references(content: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Lambda function ARNs and voice connector ARNs an exported flow's JSON names."""
    try:
        actions = json.loads(content).get("Actions", [])
    except (ValueError, AttributeError):
        return (), ()
    functions, connectors = [], []
    for action in actions if isinstance(actions, list) else []:
        parameters = action.get("Parameters") if isinstance(action, dict) else None
        if not isinstance(parameters, dict):
            continue
        if action.get("Type") == "InvokeLambdaFunction" and isinstance(
            parameters.get("LambdaFunctionARN"), str
        ):
            functions.append(parameters["LambdaFunctionARN"])
        connector = parameters.get("VoiceConnector")
        if isinstance(connector, dict) and isinstance(connector.get("VoiceConnectorArn"), str):
            connectors.append(connector["VoiceConnectorArn"])
    return tuple(functions), tuple(connectors)


def read_flows(
    connect: ConnectClient, instance_id: str, flow_name: str | None
) -> tuple[list[FlowRead], int] | CheckResult:
    """The instance's active contact flows (only `flow_name` when given, at most MAX_FLOWS_READ
    otherwise), read, and how many there are in all; a failed CheckResult when Connect refused."""
    try:
        pages = connect.get_paginator("list_contact_flows").paginate(
            InstanceId=instance_id, ContactFlowTypes=["CONTACT_FLOW"]
        )
        summaries = [
            summary
            for page in pages
            for summary in page.get("ContactFlowSummaryList", [])
            if summary.get("ContactFlowState", "ACTIVE") == "ACTIVE"
        ]
        chosen = [s for s in summaries if flow_name is None or s.get("Name") == flow_name]
        # the published first: calls run those (sorted() keeps the list's order otherwise)
        chosen = sorted(chosen, key=lambda s: s.get("ContactFlowStatus") != "PUBLISHED")[:MAX_FLOWS_READ]
        flows = []
        for summary in chosen:
            flow = connect.describe_contact_flow(InstanceId=instance_id, ContactFlowId=str(summary["Id"]))
            described = flow["ContactFlow"]
            functions, connectors = flow_references(str(described.get("Content", "")))
            flows.append(
                FlowRead(str(described.get("Name")), str(described.get("Status", "")), functions, connectors)
            )
    except ClientError as exc:
        if error_code(exc) in THROTTLED:
            return CheckResult.failed(
                Check.FLOW,
                "Amazon Connect throttled the doctor's reading of the flows",
                cause="its API allows a few requests a second, and the instance has many flows",
                fix="pass --flow NAME, so that the doctor reads that one flow",
            )
        return aws_failure(Check.FLOW, "connect:ListContactFlows / DescribeContactFlow", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.FLOW, "Amazon Connect", exc)
    return flows, len(summaries)


def flows_result(
    flows: Sequence[FlowRead], total: int, function_arn: str, flow_name: str | None, instance_id: str
) -> CheckResult:
    """Judge the flows read: one (or `flow_name`) must invoke `function_arn` and be published."""
    function = function_arn.rpartition(":function:")[2] or function_arn
    reimport = (
        "write the flow with `kore-connect flow` (it names the deployed function), import it in the "
        "flow designer (Import flow), then Save and Publish"
    )
    if flow_name is not None and not flows:
        return CheckResult.failed(
            Check.FLOW,
            f"instance {instance_id} has no active contact flow named {flow_name!r} (it has {total})",
            cause="the flow was not imported, was archived, or has another name",
            fix=f"{reimport}; or pass the flow's exact name with --flow",
        )
    using = [flow for flow in flows if flow.invokes(function_arn)]
    if not using:
        others = sorted({arn.rpartition(":function:")[2] or arn for flow in flows for arn in flow.functions})
        if flow_name is not None:
            detail = f"flow {flow_name!r} does not invoke {function}"
            detail += f" (it invokes {', '.join(others)})" if others else " (it invokes no function)"
        else:
            read = f"{len(flows)} of {total}" if total > len(flows) else f"{total}"
            detail = f"none of the {read} contact flows read invokes {function}"
        reference = any("koreRetrieveSessionMetadata" in name for name in others)
        cause = (
            "the flow still invokes the reference setup's function, not the deployed one"
            if reference
            else "no published flow reads the bot's metadata back after the transfer"
        )
        more = "; with more flows than the doctor reads, pass --flow NAME" if total > len(flows) else ""
        return CheckResult.failed(Check.FLOW, detail, cause=cause, fix=reimport + more)
    published = [flow for flow in using if flow.status.upper() == "PUBLISHED"]
    if not published:
        return CheckResult.failed(
            Check.FLOW,
            f"flow {using[0].name!r} invokes {function} but is saved, not published",
            cause="calls run the published version of a flow",
            fix="open it in the flow designer and Publish it",
        )
    names = ", ".join(repr(flow.name) for flow in published)
    detail = f"{names} invoke{'s' if len(published) == 1 else ''} {function}"
    saved = [flow.name for flow in using if flow not in published]
    if saved:
        detail += f" (saved, not published: {', '.join(map(repr, saved))})"
    return CheckResult.passed(Check.FLOW, detail)


# ---------------------------------------------------------------- the voice connector


def check_connectors(chime: Any, flows: Sequence[FlowRead], function_arn: str, region: str) -> CheckResult:
    """Each voice connector the flows (those invoking the retrieve function) transfer to exists in this
    account and region and is an external voice transfer connector."""
    arns = sorted({arn for flow in flows if flow.invokes(function_arn) for arn in flow.connectors})
    if not arns:
        return CheckResult.failed(
            Check.CONNECTOR,
            "the flow has no transfer to a voice connector",
            cause="without a Transfer to phone number block to a voice connector, the bot is never called",
            fix="write the flow with `kore-connect flow --connector-arn <the connector's ARN>`, import it",
        )
    details = []
    for arn in arns:
        result = _check_connector(chime, arn, region)
        if result.status is not CheckStatus.PASSED:
            return result
        details.append(result.detail)
    return CheckResult.passed(Check.CONNECTOR, "; ".join(details))


def _check_connector(chime: Any, arn: str, region: str) -> CheckResult:
    if arn.startswith("${"):
        return CheckResult.failed(
            Check.CONNECTOR,
            f"the flow still holds the placeholder {arn}",
            cause="it was written with `kore-connect flow --as-template` and imported without filling it",
            fix="fill the placeholder when deploying it, or write the flow with --connector-arn",
        )
    if not arns.VOICE_CONNECTOR.pattern.fullmatch(arn):
        return CheckResult.failed(
            Check.CONNECTOR,
            f"{arn} is not a voice connector ARN (arn:aws:chime:<region>:<account>:vc/<id>)",
            cause="the transfer block names something else as its voice connector",
            fix="copy the ARN from Amazon Connect console > External voice systems, then `kore-connect flow`",
        )
    place = arns.Place.of(arn)
    if place.region != region:
        return CheckResult.failed(
            Check.CONNECTOR,
            f"the connector is in {place.region}, the instance in {region}",
            cause="a flow can transfer only to a connector of its own instance's region",
            fix="create a connector in the instance's region (External voice systems), write the flow again",
        )
    connector_id = arn.rpartition(":vc/")[2]
    try:
        connector = chime.get_voice_connector(VoiceConnectorId=connector_id)["VoiceConnector"]
    except ClientError as exc:
        code = error_code(exc)
        if code in ("NotFoundException", "NotFound", "ResourceNotFoundException"):
            return CheckResult.failed(
                Check.CONNECTOR,
                f"no voice connector {connector_id} in {region} for this account",
                cause="it was deleted, or belongs to another account",
                fix=(
                    "copy the ARN of your connector from Amazon Connect console > External voice systems "
                    "and write the flow again with `kore-connect flow --connector-arn`"
                ),
            )
        if "AccessDenied" in code or code in ("ForbiddenException", "UnauthorizedClientException"):
            return CheckResult.skipped(
                Check.CONNECTOR, f"chime:GetVoiceConnector is not allowed to you ({code}); {BY_HAND}"
            )
        return aws_failure(Check.CONNECTOR, "chime:GetVoiceConnector", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.CONNECTOR, "the Chime SDK Voice API", exc)
    return connector_result(connector)


def connector_result(connector: Mapping[str, Any]) -> CheckResult:
    integration = str(connector.get("IntegrationType", ""))
    name = str(connector.get("Name") or connector.get("VoiceConnectorId"))
    sip = "SIP over TLS, port 5061" if connector.get("RequireEncryption") else "SIP over UDP/TCP, port 5060"
    host = connector.get("OutboundHostName")
    if integration != CALL_TRANSFER_CONNECTOR:
        return CheckResult.failed(
            Check.CONNECTOR,
            f"{name} is a Voice Connector but not an external voice transfer connector "
            f"(integration type {integration or 'none'})",
            cause="Connect transfers only through connectors it created (External voice systems)",
            fix="create the connector in Amazon Connect console > External voice systems and use its ARN",
        )
    detail = f"{name} is an external voice transfer connector ({sip}{f', host {host}' if host else ''})"
    return CheckResult.passed(Check.CONNECTOR, detail)
