"""A deployed kore-connect stack for `kore-connect doctor` to examine: moto, Stubbers and our real handlers.

- CloudFormation, DynamoDB, Secrets Manager: moto. The stack is a real moto stack; its template holds
  the sessions table and the outputs `kore_connect.stack` names. moto's CloudFormation ignores the
  table's TimeToLiveSpecification, so TTL is switched on through the DynamoDB API instead.
- The metadata API: an `httpx.MockTransport` doing API Gateway's job (REFERENCE.md §3): a missing
  header is a 401 without invoking the authorizer; otherwise the REAL authorizer handler decides, and
  an Allow hands the proxy event to the REAL store handler, which writes into the moto table.
- lambda:Invoke of the retrieve function: moto runs functions only in Docker, so a botocore Stubber
  answers. Its payload is not canned: when the doctor reads it, the REAL retrieve handler runs on the
  very event the doctor sent, against the moto table the store wrote. So the doctor's comparison is
  checked against what our function really returns, through the real client's response handling.
  (The alternative, an injected `invoke_retrieve` callable, would leave the boto3 call untested.)
- connect:ListLambdaFunctions: not in moto; a Stubber with the pages Connect would return.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from kore_connect import config
from kore_connect.bridge import authorizer, container, retrieve, store
from kore_connect.doctor.checks import DoctorClients
from kore_connect.stack import (
    AUTHORIZER_FUNCTION,
    OUTPUT_CONNECT_INSTANCE_ARN,
    OUTPUT_METADATA_URL,
    OUTPUT_RETRIEVE_FUNCTION_ARN,
    OUTPUT_TABLE_NAME,
    OUTPUT_TOKEN_SECRET_ARN,
    RETRIEVE_FUNCTION,
    STORE_FUNCTION,
    TOKEN_HEADER,
)
from kore_connect.twin.events import store_request_event, token_event
from tests.conftest import TABLE, context

STACK = "kore-connect"
ACCOUNT = "123456789012"
URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/kore-metadata"
RETRIEVE_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:kore-connect-KoreRetrieveSessionMetad-Xy12"
INSTANCE_ID = "9d3f0f5e-1c2b-4a5d-8e7f-0a1b2c3d4e5f"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/{INSTANCE_ID}"
BOT_TOKEN = "doctor-lab-bot-token-7f3a9c2e5b1d"  # the secret's value; must never be printed


class ApiGateway:
    """POST /kore-metadata as API Gateway serves it, the real authorizer and store functions behind it."""

    def __init__(self) -> None:
        self.has_authorizer = True
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method != "POST" or request.url.copy_with(query=None) != httpx.URL(URL):
            return httpx.Response(403, json={"message": "Missing Authentication Token"})
        token = request.headers.get(TOKEN_HEADER)
        if self.has_authorizer:
            if token is None:
                return httpx.Response(401, json={"message": "Unauthorized"})
            try:
                authorizer.lambda_handler(token_event(token), context(AUTHORIZER_FUNCTION))
            except authorizer.Unauthorized:
                return httpx.Response(401, json={"message": "Unauthorized"})
            except authorizer.AuthorizerUnavailable:
                return httpx.Response(500, json={"message": None})
        event = store_request_event(
            request.url.params.get("contactId"), request.content.decode("utf-8"), token=token or ""
        )
        answer = store.lambda_handler(event, context(STORE_FUNCTION))
        return httpx.Response(answer["statusCode"], headers=answer["headers"], content=answer["body"])


class _Deferred:
    """A payload stream whose bytes are produced when read, as the doctor reads lambda:Invoke's Payload."""

    def __init__(self, produce: Callable[[], bytes]) -> None:
        self._produce = produce

    def read(self, amt: int | None = None) -> bytes:
        return self._produce()


_CAPTURE = "before-parameter-build.lambda.Invoke"


class RetrieveFunction:
    """lambda:Invoke of the retrieve function on a real client, answered through a Stubber."""

    def __init__(self, client: Any) -> None:
        self.stubber = Stubber(client)
        self.events: list[dict[str, Any]] = []
        self._client = client
        client.meta.events.register(_CAPTURE, self._capture, unique_id=_CAPTURE)

    def close(self) -> None:
        self._client.meta.events.unregister(_CAPTURE, unique_id=_CAPTURE)

    def _capture(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.events.append(json.loads(params["Payload"]))

    def runs_the_handler(self) -> None:
        """The next invocation runs the real handler on the event sent, against the moto table."""

        def run() -> bytes:
            answer = retrieve.lambda_handler(self.events[-1], context(RETRIEVE_FUNCTION))
            return json.dumps(answer).encode()

        self._respond({"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _Deferred(run)})

    def answers(self, payload: dict[str, Any]) -> None:
        self._respond({"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _stream(payload)})

    def fails(self, error_type: str, message: str) -> None:
        """The function raised: Lambda answers 200 with FunctionError and the runtime's error document."""
        document = {"errorMessage": message, "errorType": error_type, "requestId": "r-1", "stackTrace": []}
        self._respond(
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": _stream(document),
            }
        )

    def _respond(self, response: dict[str, Any]) -> None:
        expected = {"FunctionName": RETRIEVE_ARN, "InvocationType": "RequestResponse", "Payload": ANY}
        self.stubber.add_response("invoke", response, expected)


def _stream(document: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(document).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@dataclass
class Lab:
    clients: DoctorClients
    api: ApiGateway
    retrieve: RetrieveFunction
    connect: Stubber
    secret_arn: str
    stubbers: list[Stubber] = field(default_factory=list)

    def deploy(
        self,
        *,
        ttl: bool = True,
        connect_instance: bool = True,
        without_outputs: Iterable[str] = (),
    ) -> None:
        """Create the stack as `sam deploy` leaves it (outputs, table), with or without TTL and Connect."""
        outputs: dict[str, Any] = {
            OUTPUT_METADATA_URL: {"Value": URL},
            OUTPUT_RETRIEVE_FUNCTION_ARN: {"Value": RETRIEVE_ARN},
            OUTPUT_TOKEN_SECRET_ARN: {"Value": self.secret_arn},
            OUTPUT_TABLE_NAME: {"Value": {"Ref": "SessionsTable"}},
        }
        if connect_instance:
            outputs[OUTPUT_CONNECT_INSTANCE_ARN] = {"Value": INSTANCE_ARN}
        for key in without_outputs:
            del outputs[key]
        template = {
            "Resources": {
                "SessionsTable": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {
                        "TableName": TABLE,
                        "BillingMode": "PAY_PER_REQUEST",
                        "AttributeDefinitions": [{"AttributeName": "contactId", "AttributeType": "S"}],
                        "KeySchema": [{"AttributeName": "contactId", "KeyType": "HASH"}],
                    },
                }
            },
            "Outputs": outputs,
        }
        self.clients.cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        if ttl:
            self.clients.dynamodb.update_time_to_live(
                TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
            )

    def connect_lists(self, *pages: list[str]) -> None:
        """Connect's ListLambdaFunctions answers with these pages of function ARNs."""
        for number, functions in enumerate(pages):
            expected: dict[str, Any] = {"InstanceId": INSTANCE_ID}
            if number:
                expected["NextToken"] = f"page-{number}"
            response: dict[str, Any] = {"LambdaFunctions": functions}
            if number + 1 < len(pages):
                response["NextToken"] = f"page-{number + 1}"
            self.connect.add_response("list_lambda_functions", response, expected)

    def item(self, contact_id: str) -> dict[str, Any] | None:
        response = self.clients.dynamodb.get_item(TableName=TABLE, Key={"contactId": {"S": contact_id}})
        return response.get("Item")


@functools.cache
def _client(service: str) -> Any:
    """One client per service for the whole session: creating seven per test took most of each test's time.

    moto intercepts every client's calls whenever a mock is active, and each test's Stubbers and
    hooks are removed from the shared clients when it ends.
    """
    return boto3.client(service)


def make_lab(monkeypatch: pytest.MonkeyPatch) -> Lab:
    """Inside mock_aws: the secret, the functions' environment and the doctor's clients (no stack yet)."""
    secret_arn = _client("secretsmanager").create_secret(Name="kore-connect/token", SecretString=BOT_TOKEN)[
        "ARN"
    ]
    monkeypatch.setenv(config.SESSION_BACKEND, "dynamodb")
    monkeypatch.setenv(config.TABLE_NAME, TABLE)
    monkeypatch.setenv(config.AUTH_TOKEN_SECRET_ARN, secret_arn)
    container.reset()

    api = ApiGateway()
    lambda_client, connect_client = _client("lambda"), _client("connect")
    retrieve_function = RetrieveFunction(lambda_client)
    connect = Stubber(connect_client)
    clients = DoctorClients(
        cloudformation=_client("cloudformation"),
        dynamodb=_client("dynamodb"),
        secretsmanager=_client("secretsmanager"),
        lambda_=lambda_client,
        connect=connect_client,
        http=httpx.Client(transport=httpx.MockTransport(api)),
    )
    lab = Lab(clients, api, retrieve_function, connect, secret_arn)
    lab.stubbers = [retrieve_function.stubber, connect]
    for stubber in lab.stubbers:
        stubber.activate()
    return lab


def lab_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """The body of each test module's `lab` fixture: a fresh moto account per test."""
    with mock_aws():
        lab = make_lab(monkeypatch)
        try:
            yield lab
            for stubber in lab.stubbers:
                stubber.assert_no_pending_responses()
        finally:
            for stubber in lab.stubbers:
                stubber.deactivate()
            lab.retrieve.close()
