"""The doctor's checks, in order, over injectable clients; `run_doctor` runs them all.

The stack check is here; the API's are in `api`, the other resources' in `resources`. Each check
calls AWS (or the API) and hands what came back to a pure function that judges it, so every
verdict can be tested with plain data. A check whose prerequisite failed is reported as skipped,
never run. The synthetic item is deleted in a `finally`, whatever failed.

Errors that mean the doctor cannot even start (a malformed stack name or region, a missing stack,
no credentials, AWS unreachable) raise `DoctorError` with a one-line message instead.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from kore_connect import arns
from kore_connect.doctor import api, instance
from kore_connect.doctor.report import Check, CheckResult, CheckStatus, Report
from kore_connect.doctor.resources import (
    check_connect,
    check_reference_table,
    check_retrieve,
    check_table,
    clean_up,
    instance_id_of,
    read_token,
)
from kore_connect.errors import KoreConnectError
from kore_connect.stack import (
    OUTPUT_CONNECT_INSTANCE_ARN,
    OUTPUT_METADATA_URL,
    OUTPUT_RETRIEVE_FUNCTION_ARN,
    OUTPUT_TABLE_NAME,
    OUTPUT_TOKEN_SECRET_ARN,
    PARAMETER_REFERENCE_TABLE,
    REQUIRED_OUTPUTS,
)

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_connect import ConnectClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "Check",
    "CheckResult",
    "CheckStatus",
    "DoctorClients",
    "DoctorError",
    "Report",
    "run_doctor",
    "validate_flow_name",
    "validate_region",
    "validate_stack_name",
]


# CloudFormation's rule for stack names.
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, ap-southeast-5, ...
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
# Codes meaning "these credentials cannot be used at all" rather than "this call failed".
_CREDENTIAL_ERROR_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)


class DoctorError(KoreConnectError):
    """The doctor cannot start; the message is one line naming the problem and what to do."""


@dataclass(frozen=True)
class DoctorClients:
    """Everything the doctor talks to; tests pass their own (clients of a moto server, Stubbers)."""

    cloudformation: CloudFormationClient
    dynamodb: DynamoDBClient
    secretsmanager: SecretsManagerClient
    lambda_: LambdaClient
    connect: ConnectClient
    voice: Any  # chime-sdk-voice: the external voice connectors are Chime SDK Voice Connectors
    http: httpx.Client

    @property
    def region(self) -> str:
        return str(self.cloudformation.meta.region_name)

    def close(self) -> None:
        self.http.close()
        clients = (
            self.cloudformation,
            self.dynamodb,
            self.secretsmanager,
            self.lambda_,
            self.connect,
            self.voice,
        )
        for client in clients:
            client.close()


def validate_stack_name(name: str) -> str:
    """`name` when CloudFormation would accept it as a stack name; DoctorError otherwise."""
    if not _STACK_NAME.fullmatch(name):
        raise DoctorError(
            f"--stack-name {name!r} is not a CloudFormation stack name: use letters, digits and hyphens, "
            "starting with a letter, at most 128 characters"
        )
    return name


def validate_region(region: str) -> str:
    """`region` when it looks like an AWS region (us-east-1); DoctorError otherwise."""
    if not _REGION.fullmatch(region):
        raise DoctorError(f"--region {region!r} is not an AWS region: use a code such as us-east-1")
    return region


def validate_flow_name(name: str) -> str:
    """`name` when Connect could have a flow of that name (1 to 127 characters, no control characters)."""
    if not name.strip() or len(name) > 127 or any(ord(c) < 32 for c in name):
        raise DoctorError(
            f"--flow {name!r} is not a contact flow name: "
            "give the name the flow designer shows (1 to 127 characters)"
        )
    return name


def doctor_metadata(now: datetime) -> dict[str, Any]:
    """What the doctor stores: a float among the values, because the reference functions lose floats."""
    return {"doctor": True, "checkedAt": now.isoformat(timespec="seconds"), "n": 1.5}


def run_doctor(
    clients: DoctorClients,
    stack_name: str,
    *,
    contact_id: str | None = None,
    flow_name: str | None = None,
    now: Callable[[], datetime] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run every check against the stack `stack_name`, in order; `on_result` sees each line as it is decided.
    `flow_name` is the contact flow to examine (default: every flow, up to instance.MAX_FLOWS_READ).

    Raises DoctorError when the stack cannot be read at all (missing, no credentials, AWS unreachable).
    """
    contact_id = contact_id or str(uuid.uuid4())
    results: list[CheckResult] = []

    def record(result: CheckResult) -> CheckResult:
        results.append(result)
        if on_result is not None:
            on_result(result)
        return result

    stack, outputs, parameters = check_stack(clients.cloudformation, stack_name)
    if record(stack).status is CheckStatus.FAILED:
        for check in list(Check)[1:]:
            record(CheckResult.skipped(check, "the stack check failed"))
        return Report(stack_name, contact_id, tuple(results))

    table = outputs[OUTPUT_TABLE_NAME]
    url = outputs[OUTPUT_METADATA_URL]
    function_arn = outputs[OUTPUT_RETRIEVE_FUNCTION_ARN]
    secret_arn = outputs[OUTPUT_TOKEN_SECRET_ARN]
    metadata = doctor_metadata((now or _utc_now)())
    body = json.dumps(metadata).encode("utf-8")

    record(check_table(clients.dynamodb, table))
    record(check_reference_table(clients.dynamodb, parameters.get(PARAMETER_REFERENCE_TABLE, "")))
    try:
        for token in (None, api.wrong_token()):
            record(api.check_refused(clients.http, url, contact_id, body, token=token, stack_name=stack_name))
        token_or_failure = read_token(clients.secretsmanager, secret_arn)
        if isinstance(token_or_failure, CheckResult):
            stored = record(token_or_failure)
        else:
            stored = record(
                api.check_stored(
                    clients.http,
                    url,
                    contact_id,
                    body,
                    token=token_or_failure,
                    secret_arn=secret_arn,
                    stack_name=stack_name,
                )
            )
        if stored.status is CheckStatus.PASSED:
            record(check_retrieve(clients.lambda_, function_arn, contact_id, metadata, stack_name=stack_name))
        else:
            record(CheckResult.skipped(Check.RETRIEVE, "nothing was stored to read back"))
        instance_arn = outputs.get(OUTPUT_CONNECT_INSTANCE_ARN)
        record(check_connect(clients.connect, instance_arn, function_arn))
        for result in _instance_checks(clients, instance_arn, function_arn, flow_name):
            record(result)
    finally:
        record(clean_up(clients.dynamodb, table, contact_id))
    return Report(stack_name, contact_id, tuple(results))


def _instance_checks(
    clients: DoctorClients, instance_arn: str | None, function_arn: str, flow_name: str | None
) -> Iterator[CheckResult]:
    """Flow logs, the flow, its connector: what the instance needs for a real call."""
    if not instance_arn:
        why = "no Connect instance given to the stack (deploy with ConnectInstanceArn)"
        for check in (Check.FLOW_LOGS, Check.FLOW, Check.CONNECTOR):
            yield CheckResult.skipped(check, why)
        return
    instance_id = instance_id_of(instance_arn)
    yield instance.check_flow_logs(clients.connect, instance_id)
    read = instance.read_flows(clients.connect, instance_id, flow_name)
    if isinstance(read, CheckResult):
        yield read
        yield CheckResult.skipped(Check.CONNECTOR, "the flows could not be read")
        return
    flows, total = read
    found = instance.flows_result(flows, total, function_arn, flow_name, instance_id)
    yield found
    if found.status is not CheckStatus.PASSED:
        yield CheckResult.skipped(Check.CONNECTOR, f"no flow to read it from; {instance.BY_HAND}")
        return
    region = arns.Place.of(instance_arn).region
    yield instance.check_connectors(clients.voice, flows, function_arn, region)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- 1. the stack


def check_stack(
    cloudformation: CloudFormationClient, stack_name: str
) -> tuple[CheckResult, dict[str, str], dict[str, str]]:
    """The stack's status, outputs and parameters. Raises DoctorError when the stack cannot be read at all."""
    region = cloudformation.meta.region_name
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise _stack_unreadable(exc, stack_name, region) from exc
    except NoCredentialsError as exc:
        raise DoctorError(
            "no AWS credentials found: run `aws configure` (or `aws sso login`), or pass --profile"
        ) from exc
    except NoRegionError as exc:
        raise DoctorError("no AWS region: pass --region or set AWS_DEFAULT_REGION") from exc
    except EndpointConnectionError as exc:
        raise DoctorError(
            f"cannot reach CloudFormation in {region} ({exc.kwargs.get('endpoint_url')}): "
            "check your network and --region"
        ) from exc
    except BotoCoreError as exc:
        raise DoctorError(f"cannot call CloudFormation in {region}: {exc}") from exc
    if not stacks:
        raise _missing_stack(stack_name, region)
    result, outputs = stack_result(stacks[0])
    parameters = {
        str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in stacks[0].get("Parameters", [])
    }
    return result, outputs, parameters


def stack_result(stack: Mapping[str, Any]) -> tuple[CheckResult, dict[str, str]]:
    """Judge a `describe_stacks` entry; also return its outputs by key."""
    name, status = str(stack["StackName"]), str(stack["StackStatus"])
    outputs = {
        str(output["OutputKey"]): str(output.get("OutputValue", ""))
        for output in stack.get("Outputs", [])
        if output.get("OutputValue")
    }
    events = f"`aws cloudformation describe-stack-events --stack-name {name}`"
    if "ROLLBACK" in status or not status.endswith("_COMPLETE"):
        if status.endswith("_IN_PROGRESS"):
            cause = "the stack is being changed right now"
            fix = "wait until it finishes, then run the doctor again"
        elif status == "ROLLBACK_COMPLETE":
            cause = "creating the stack failed and was rolled back: nothing of it is deployed"
            fix = f"find the failed resource with {events}, delete the stack, fix it, `sam deploy` again"
        elif status.endswith("ROLLBACK_COMPLETE"):
            cause = "the last update failed and was rolled back: the stack runs its previous version"
            fix = f"find the first failed resource with {events}, fix it and `sam deploy` again"
        else:
            cause = "the last change of the stack failed"
            fix = f"find the first failed resource with {events}, fix it and `sam deploy` again"
        return CheckResult.failed(Check.STACK, f"{name} is {status}", cause=cause, fix=fix), outputs
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        return (
            CheckResult.failed(
                Check.STACK,
                f"{name} is {status} but has no output {', '.join(missing)}",
                cause="the stack was deployed from another (older) template than this kore-connect's",
                fix=f"deploy the current template.yaml: `sam deploy --stack-name {name}`",
            ),
            outputs,
        )
    detail = f"{name} is {status}, with its {len(REQUIRED_OUTPUTS)} outputs"
    return CheckResult.passed(Check.STACK, detail), outputs


def _stack_unreadable(exc: ClientError, stack_name: str, region: str) -> DoctorError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    if code == "ValidationError" and "does not exist" in message:
        return _missing_stack(stack_name, region)
    if code in _CREDENTIAL_ERROR_CODES:
        return DoctorError(
            f"AWS refused your credentials ({code}): refresh them (`aws sso login`) or pass --profile"
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return DoctorError(
            f"your AWS identity may not call cloudformation:DescribeStacks in {region}: "
            "use a profile that may read the stack (--profile)"
        )
    return DoctorError(f"CloudFormation refused to describe stack {stack_name!r} ({code}): {message}")


def _missing_stack(stack_name: str, region: str) -> DoctorError:
    return DoctorError(
        f"no stack {stack_name!r} in {region}: check --stack-name, --region and --profile, "
        "or deploy it with `sam deploy --guided`"
    )
