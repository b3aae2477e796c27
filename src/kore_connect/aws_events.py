"""The events AWS hands the three functions, built from plain values (shapes as in REFERENCE.md §2-3),
and the local account, region and instance they name: used by the twin and by `doctor`."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"
LOCAL_API_ID = "kclocal"
LOCAL_STAGE = "local"
METADATA_PATH = "/kore-metadata"
LOCAL_INSTANCE_ARN = (
    f"arn:aws:connect:{LOCAL_REGION}:{LOCAL_ACCOUNT}:instance/00000000-0000-4000-8000-000000000000"
)


def method_arn(verb: str = "POST", path: str = METADATA_PATH) -> str:
    api = f"arn:aws:execute-api:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{LOCAL_API_ID}"
    return f"{api}/{LOCAL_STAGE}/{verb}/{path.lstrip('/')}"


def token_event(token: str | None, *, arn: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "TOKEN", "methodArn": arn or method_arn()}
    if token is not None:
        event["authorizationToken"] = token
    return event


def store_request_event(
    contact_id: str | None,
    body: str | None,
    *,
    token: str,
    principal_id: str = "kore-bot",
    authorizer_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The proxy event API Gateway sends the store function for the Kore Service node's POST."""
    headers = {"Content-Type": "application/json", "authorizationToken": token, "Host": "localhost"}
    query = None if contact_id is None else {"contactId": contact_id}
    now = datetime.now(UTC)
    return {
        "resource": METADATA_PATH,
        "path": METADATA_PATH,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": None if query is None else {k: [v] for k, v in query.items()},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": METADATA_PATH,
            "httpMethod": "POST",
            "path": f"/{LOCAL_STAGE}{METADATA_PATH}",
            "accountId": LOCAL_ACCOUNT,
            "stage": LOCAL_STAGE,
            "apiId": LOCAL_API_ID,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "kore-connect"},
            "authorizer": {"principalId": principal_id, **(authorizer_context or {})},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def contact_flow_event(
    contact_id: str, *, parameters: dict[str, str] | None = None, caller: str = "+14155550123"
) -> dict[str, Any]:
    """The event the Connect flow's Invoke AWS Lambda function block sends (`contactId = $.ContactId`),
    for a new inbound contact of the local instance."""
    return connect_lambda_event(
        contact_id=contact_id,
        initial_contact_id=contact_id,
        customer=caller,
        parameters={"contactId": contact_id} if parameters is None else parameters,
    )


def connect_lambda_event(
    *,
    contact_id: str,
    initial_contact_id: str,
    customer: str,
    parameters: dict[str, str],
    system: str = "+18005550100",
    instance_arn: str = LOCAL_INSTANCE_ARN,
    attributes: dict[str, str] | None = None,
    channel: str = "VOICE",
    queue_arn: str | None = None,
) -> dict[str, Any]:
    """The event Connect sends a Lambda function from the Invoke AWS Lambda function block
    (REFERENCE.md §2): the contact's data, and the block's parameters."""
    region = instance_arn.split(":")[3] if instance_arn.count(":") >= 3 else ""
    queue = {"ARN": queue_arn, "Name": queue_arn.rpartition("/")[2]} if queue_arn else None
    return {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Attributes": dict(attributes or {}),
                "AwsRegion": region,
                "Channel": channel,
                "ContactId": contact_id,
                "CustomerEndpoint": {"Address": customer, "Type": "TELEPHONE_NUMBER"},
                "InitialContactId": initial_contact_id,
                "InitiationMethod": "INBOUND",
                "InstanceARN": instance_arn,
                "LanguageCode": "en-US",
                "MediaStreams": {"Customer": {"Audio": None}},
                "PreviousContactId": contact_id,
                "Queue": queue,
                "SystemEndpoint": {"Address": system, "Type": "TELEPHONE_NUMBER"},
            },
            "Parameters": parameters,
        },
    }
