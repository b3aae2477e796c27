"""The checks of the stack's resources, after the stack itself: the table, the bot's token, the
retrieve function, Connect's association, and the clean-up.

Each `check_*` calls AWS and hands what came back to a pure `*_result` that judges it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge.tokens import MIN_TOKEN_LENGTH
from kore_connect.doctor.report import Check, CheckResult
from kore_connect.stack import RETRIEVE_FUNCTION

if TYPE_CHECKING:
    from mypy_boto3_connect import ConnectClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

KEY_ATTRIBUTE = "contactId"  # the table's partition key, a string (template.yaml, sessions.dynamodb)
TTL_ATTRIBUTE = "expiresAt"


# ---------------------------------------------------------------- 2. the table


def check_table(dynamodb: DynamoDBClient, table: str) -> CheckResult:
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except ClientError as exc:
        code = error_code(exc)
        if code in ("ResourceNotFoundException", "ResourceNotFound"):
            return CheckResult.failed(
                Check.TABLE,
                f"{table} does not exist",
                cause="the stack's SessionsTableName names a table that is not there (deleted by hand?)",
                fix="redeploy the stack (`sam deploy`) to create it again",
            )
        return aws_failure(Check.TABLE, "dynamodb:DescribeTable / DescribeTimeToLive", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.TABLE, "DynamoDB", exc)
    return table_result(description, ttl)


def table_result(table: Mapping[str, Any], ttl: Mapping[str, Any]) -> CheckResult:
    """Judge `describe_table`'s Table and `describe_time_to_live`'s TimeToLiveDescription."""
    name, status = str(table["TableName"]), str(table.get("TableStatus"))
    recreate = "recreate the table as template.yaml defines it (a key schema cannot be changed in place)"
    if status != "ACTIVE":
        return CheckResult.failed(
            Check.TABLE,
            f"{name} is {status}",
            cause="the table cannot serve reads and writes until it is ACTIVE",
            fix="wait until it is ACTIVE, then run the doctor again",
        )
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if keys != [(KEY_ATTRIBUTE, "HASH")] or types.get(KEY_ATTRIBUTE) != "S":
        found = ", ".join(f"{key} ({types.get(key, '?')}) {kind}" for key, kind in keys)
        return CheckResult.failed(
            Check.TABLE,
            f"{name} is keyed by {found}",
            cause=f"the bridge reads and writes items by {KEY_ATTRIBUTE} (S) HASH only",
            fix=recreate,
        )
    ttl_status, ttl_attribute = ttl.get("TimeToLiveStatus", "DISABLED"), ttl.get("AttributeName")
    enable = (
        f"`aws dynamodb update-time-to-live --table-name {name} "
        f"--time-to-live-specification Enabled=true,AttributeName={TTL_ATTRIBUTE}`"
    )
    if ttl_status == "ENABLED" and ttl_attribute == TTL_ATTRIBUTE:
        return CheckResult.passed(
            Check.TABLE, f"{name} is ACTIVE, keyed by {KEY_ATTRIBUTE} (S), TTL on {TTL_ATTRIBUTE}"
        )
    if ttl_status in ("ENABLED", "ENABLING") and ttl_attribute != TTL_ATTRIBUTE:
        return CheckResult.failed(
            Check.TABLE,
            f"TTL is {ttl_status} on {ttl_attribute}, not {TTL_ATTRIBUTE}",
            cause=f"the bridge writes each item's expiry to {TTL_ATTRIBUTE}, so DynamoDB never deletes them",
            fix=f"disable TTL on {ttl_attribute}, then enable it on {TTL_ATTRIBUTE}: {enable}",
        )
    if ttl_status == "ENABLING":
        return CheckResult.failed(
            Check.TABLE,
            f"TTL on {TTL_ATTRIBUTE} is still ENABLING",
            cause="DynamoDB takes up to an hour to enable TTL",
            fix="wait, then run the doctor again",
        )
    return CheckResult.failed(
        Check.TABLE,
        f"TTL is {ttl_status}",
        cause=(
            f"without TTL on {TTL_ATTRIBUTE}, expired metadata (personal data) is never deleted: "
            "the bridge hides it, but it stays in the table"
        ),
        fix=f"enable TTL on {TTL_ATTRIBUTE}: {enable}",
    )


def check_reference_table(dynamodb: DynamoDBClient, table: str) -> CheckResult:
    """While switching from the reference setup, the retrieve function reads its table: it must be there."""
    if not table:
        return CheckResult.skipped(
            Check.REFERENCE_TABLE, "no switch in progress (ReferenceTableName is empty)"
        )
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) in ("ResourceNotFoundException", "ResourceNotFound"):
            return CheckResult.failed(
                Check.REFERENCE_TABLE,
                f"{table} does not exist in {dynamodb.meta.region_name}",
                cause=(
                    "the retrieve function fails for every contact without metadata of its own, so "
                    "the flow takes its error branch instead of finding nothing"
                ),
                fix=(
                    "redeploy with ReferenceTableName set to the reference setup's table in this account "
                    "and region, or empty once the switch is done (docs/migration.md)"
                ),
            )
        return aws_failure(Check.REFERENCE_TABLE, "dynamodb:DescribeTable", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.REFERENCE_TABLE, "DynamoDB", exc)
    return reference_table_result(description)


def reference_table_result(table: Mapping[str, Any]) -> CheckResult:
    name = str(table["TableName"])
    keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if keys != [(KEY_ATTRIBUTE, "HASH")]:
        return CheckResult.failed(
            Check.REFERENCE_TABLE,
            f"{name} is not keyed by {KEY_ATTRIBUTE} alone",
            cause="it is not the reference setup's table (koreCcSessions, keyed by contactId)",
            fix="redeploy with ReferenceTableName naming the reference setup's table, or empty",
        )
    return CheckResult.passed(
        Check.REFERENCE_TABLE,
        f"{name} is {table.get('TableStatus')}: read for contacts without metadata of ours; "
        "empty ReferenceTableName once the switch is done",
    )


# ---------------------------------------------------------------- 3. the token the bot sends


def read_token(secretsmanager: SecretsManagerClient, secret_arn: str) -> str | CheckResult:
    """The bot's token from the stack's secret, or the failed API_STORES line saying why it cannot be read."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_arn).get("SecretString")
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return CheckResult.failed(
                Check.API_STORES,
                f"the token secret does not exist: {secret_arn}",
                cause="the stack's TokenSecretArn names a secret that is gone (deleted, or elsewhere)",
                fix="redeploy with ExistingTokenSecretArn empty (to generate a token) or naming your secret",
            )
        return aws_failure(Check.API_STORES, f"secretsmanager:GetSecretValue on {secret_arn}", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.API_STORES, "Secrets Manager", exc)
    token = (value or "").strip()
    if len(token) < MIN_TOKEN_LENGTH:
        return CheckResult.failed(
            Check.API_STORES,
            "the token secret holds no usable token",
            cause=(
                f"its SecretString is missing or shorter than {MIN_TOKEN_LENGTH} characters, "
                "so the authorizer ignores it and refuses every request"
            ),
            fix=(
                f"`aws secretsmanager put-secret-value --secret-id {secret_arn} --secret-string <token>` "
                f"with a token of at least {MIN_TOKEN_LENGTH} characters; give the Kore bot the same token"
            ),
        )
    return token


# ---------------------------------------------------------------- 4. the retrieve function


def check_retrieve(
    lambda_client: LambdaClient, function_arn: str, contact_id: str, expected: object, *, stack_name: str
) -> CheckResult:
    """Invoke the function as the Connect flow does; it must return exactly `expected` for `contact_id`."""
    event = contact_flow_event(contact_id)
    try:
        response = lambda_client.invoke(
            FunctionName=function_arn,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode("utf-8"),
        )
        payload = response["Payload"].read()
    except ClientError as exc:
        return aws_failure(Check.RETRIEVE, f"lambda:InvokeFunction on {function_arn}", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.RETRIEVE, "Lambda", exc)
    return retrieve_result(payload, response.get("FunctionError"), expected, stack_name=stack_name)


def retrieve_result(
    payload: bytes, function_error: str | None, expected: object, *, stack_name: str
) -> CheckResult:
    """Judge the invoke's payload: statusCode 200 and a body whose JSON equals `expected`, types included."""
    name = Check.RETRIEVE
    logs = f"`sam logs --stack-name {stack_name} -n {RETRIEVE_FUNCTION} --start-time '10min ago'`"
    answer = _json_or_none(payload)
    if function_error:
        error = answer if isinstance(answer, dict) else {}
        error_type = str(error.get("errorType", function_error))
        message = str(error.get("errorMessage", "")).strip()[:200]
        return CheckResult.failed(
            name,
            f"the function failed: {error_type}",
            cause=f"{error_type}: {message}" if message else f"the invocation ended in {function_error}",
            fix=f"read its logs: {logs}; the flow would take the Error branch",
        )
    if not isinstance(answer, dict):
        return CheckResult.failed(
            name,
            "the function did not answer a JSON object",
            cause="Connect cannot read this answer and takes the Error branch",
            fix=f"deploy the current template.yaml (`sam deploy --stack-name {stack_name}`)",
        )
    status = answer.get("statusCode")
    if status == 404:
        return CheckResult.failed(
            name,
            "statusCode 404: no metadata for the contact the API had just stored",
            cause="the store and retrieve functions use different tables (TABLE_NAME), or the item expired",
            fix=f"redeploy (`sam deploy --stack-name {stack_name}`) so both functions use SessionsTableName",
        )
    if status != 200:
        return CheckResult.failed(
            name,
            f"statusCode {status}",
            cause="expected statusCode 200 with the stored metadata",
            fix=f"read its logs: {logs}",
        )
    returned = _json_or_none(answer.get("body"))
    if not _same_json(returned, expected):
        return CheckResult.failed(
            name,
            f"the metadata came back different: {_difference(returned, expected)}",
            cause="the function changes what the bot stored (the reference function fails on numbers)",
            fix=f"deploy the current template.yaml (`sam deploy --stack-name {stack_name}`)",
        )
    return CheckResult.passed(name, "statusCode 200, the body is exactly the metadata stored (1.5 stays 1.5)")


def _json_or_none(text: object) -> object:
    if not isinstance(text, str | bytes):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _same_json(a: object, b: object) -> bool:
    """Equal as JSON documents: 1, 1.0 and True are three different values here."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _difference(returned: object, expected: object) -> str:
    """Which keys differ, and how, without showing any value."""
    if not isinstance(returned, dict) or not isinstance(expected, dict):
        return f"the body is {type(returned).__name__ if returned is not None else 'not JSON'}, not an object"
    parts = [f"{key} missing" for key in expected if key not in returned]
    parts += [f"{key} added" for key in returned if key not in expected]
    for key in expected.keys() & returned.keys():
        if not _same_json(returned[key], expected[key]):
            sent, got = type(expected[key]).__name__, type(returned[key]).__name__
            parts.append(f"{key} changed" if sent == got else f"{key} sent as {sent}, came back as {got}")
    return ", ".join(sorted(parts))


# ---------------------------------------------------------------- 5. Amazon Connect


def check_connect(connect: ConnectClient, instance_arn: str | None, function_arn: str) -> CheckResult:
    """The Connect instance lists the retrieve function among the Lambda functions its flows may invoke.

    Connect's ListLambdaFunctions answers exactly that ("the Lambda functions that display in the
    dropdown options in the relevant flow blocks"). ListIntegrationAssociations does not: its
    IntegrationType has no LAMBDA_FUNCTION value, although the template's
    AWS::Connect::IntegrationAssociation uses one to create the association.
    See https://docs.aws.amazon.com/connect/latest/APIReference/API_ListLambdaFunctions.html
    """
    if not instance_arn:
        return CheckResult.skipped(Check.CONNECT, "no Connect instance given to the stack")
    instance_id = instance_id_of(instance_arn)
    try:
        pages = connect.get_paginator("list_lambda_functions").paginate(InstanceId=instance_id)
        associated = [str(arn) for page in pages for arn in page.get("LambdaFunctions", [])]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return CheckResult.failed(
                Check.CONNECT,
                f"no Connect instance {instance_id} in {connect.meta.region_name}",
                cause="the stack's ConnectInstanceArn names an instance this account and region do not have",
                fix="redeploy with the ConnectInstanceArn of your instance (same account and region)",
            )
        return aws_failure(Check.CONNECT, "connect:ListLambdaFunctions", exc)
    except BotoCoreError as exc:
        return aws_unreachable(Check.CONNECT, "Amazon Connect", exc)
    return connect_result(associated, instance_id, function_arn)


def names_function(arn: str, function_arn: str) -> bool:
    """`arn` is the function `function_arn`, perhaps with a version or alias (`:live`) after it."""
    return arn == function_arn or arn.startswith(function_arn + ":")


def instance_id_of(instance_arn: str) -> str:
    return instance_arn.rpartition("instance/")[2] or instance_arn


def connect_result(associated: list[str], instance_id: str, function_arn: str) -> CheckResult:
    """Judge the function ARNs associated with the instance (each perhaps with a :version or :alias)."""
    if any(names_function(arn, function_arn) for arn in associated):
        return CheckResult.passed(Check.CONNECT, f"instance {instance_id} lists the retrieve function")
    return CheckResult.failed(
        Check.CONNECT,
        f"instance {instance_id} does not list the retrieve function among its {len(associated)}",
        cause="the contact flow cannot invoke a function that is not associated with its instance",
        fix=(
            f"`aws connect associate-lambda-function --instance-id {instance_id} "
            f"--function-arn {function_arn}`, or redeploy with the ConnectInstanceArn parameter set"
        ),
    )


# ---------------------------------------------------------------- 6. clean-up


def clean_up(dynamodb: DynamoDBClient, table: str, contact_id: str) -> CheckResult:
    """Delete the synthetic contact's item: it would expire on its own, but it is no caller's data."""
    key = {KEY_ATTRIBUTE: {"S": contact_id}}
    try:
        response = dynamodb.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    except ClientError as exc:
        if error_code(exc) in ("ResourceNotFoundException", "ResourceNotFound"):
            return CheckResult.skipped(Check.CLEANUP, f"table {table} does not exist: nothing to delete")
        failure = aws_failure(Check.CLEANUP, f"dynamodb:DeleteItem on {table}", exc)
    except BotoCoreError as exc:
        failure = aws_unreachable(Check.CLEANUP, "DynamoDB", exc)
    else:
        if response.get("Attributes"):
            return CheckResult.passed(Check.CLEANUP, f"deleted the synthetic contact's item ({contact_id})")
        return CheckResult.passed(Check.CLEANUP, f"no item was left for the synthetic contact {contact_id}")
    by_hand = (
        f"`aws dynamodb delete-item --table-name {table} "
        f'--key \'{{"{KEY_ATTRIBUTE}": {{"S": "{contact_id}"}}}}\'` (TTL removes it within a day anyway)'
    )
    return CheckResult.failed(failure.name, failure.detail, cause=failure.cause, fix=f"delete it: {by_hand}")


# ---------------------------------------------------------------- shared failures


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def aws_failure(name: str, action: str, exc: ClientError) -> CheckResult:
    code = error_code(exc)
    if "AccessDenied" in code:
        return CheckResult.failed(
            name,
            f"access denied: {action}",
            cause="your AWS identity may not do this",
            fix=f"run the doctor with a profile that may ({action}), using --profile",
        )
    message = str(exc.response.get("Error", {}).get("Message", ""))[:200]
    return CheckResult.failed(
        name,
        f"AWS refused {action}: {code}",
        cause=message or code,
        fix="fix what the message says and run the doctor again",
    )


def aws_unreachable(name: str, service: str, exc: BotoCoreError) -> CheckResult:
    return CheckResult.failed(
        name,
        f"cannot reach {service}: {type(exc).__name__}",
        cause=str(exc),
        fix="check your network and --region, then run the doctor again",
    )
