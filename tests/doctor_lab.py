"""A deployed kore-connect stack for `kore-connect doctor` to examine: moto over HTTP, the served local
API with our real functions in their worker processes, and two Stubbers.

- CloudFormation, DynamoDB, Secrets Manager: moto's own server (`moto_server`) on loopback (`serving_moto` in
  tests/servers.py), so that the functions' worker processes and the doctor's clients reach the same
  account. The stack is a real moto stack; its template holds the sessions table and the outputs
  `kore_connect.stack` names. moto's CloudFormation ignores the table's TimeToLiveSpecification, so TTL
  is switched on through the DynamoDB API instead; the doctor reads it back from moto.
- The metadata API: the REAL served local API Gateway (`twin.apigw.app.LocalApi` under uvicorn on
  loopback) from template.yaml: its real rules (a missing header is API Gateway's 401 without invoking
  the authorizer, an unknown path its 403), the REAL authorizer reading the token from the moto secret
  and the REAL store function writing into the moto table, each in its own worker process. An API
  deployed without the authorizer is the same template with the authorizer taken off the route.
  `Lab.api.requests` is every request the API received, noted by a thin ASGI wrapper in front of it;
  the functions' logs go to a file (`Lab.function_logs`).
- lambda:Invoke of the retrieve function: moto runs functions only in Docker, so a botocore Stubber
  answers. Its payload is not canned: when the doctor reads it, the REAL retrieve handler runs in this
  process on the very event the doctor sent, against the moto table the store wrote (through
  `AWS_ENDPOINT_URL`). So the doctor's comparison is checked against what our function really returns,
  through the real client's response handling. (The alternative, an injected `invoke_retrieve`
  callable, would leave the boto3 call untested.)
- connect:ListLambdaFunctions, DescribeInstanceAttribute, ListContactFlows, DescribeContactFlow and
  chime-sdk-voice:GetVoiceConnector: not in moto; Stubbers with the answers Connect would give. The
  flow they describe is the one `kore-connect flow` writes (render_flow), as a user imports it.

The servers and the functions' workers start once, for the first lab of the session, and are shared:
each lab resets moto (`POST /moto-api/reset`) and forgets the requests seen. The API Gateway cache of
authorizer answers is off, so that every lab's requests reach the authorizer.
"""

from __future__ import annotations

import dataclasses
import io
import json
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from starlette.datastructures import URL as StarletteURL
from starlette.types import ASGIApp, Receive, Scope, Send

from kore_connect import config
from kore_connect.bridge import container, retrieve
from kore_connect.contactflow.render import FlowOptions, flow_json, render_flow
from kore_connect.doctor.checks import DoctorClients
from kore_connect.stack import (
    AUTHORIZER_FUNCTION,
    OUTPUT_CONNECT_INSTANCE_ARN,
    OUTPUT_METADATA_URL,
    OUTPUT_RETRIEVE_FUNCTION_ARN,
    OUTPUT_TABLE_NAME,
    OUTPUT_TOKEN_SECRET_ARN,
    PARAMETER_REFERENCE_TABLE,
    RESOURCE_PATH,
    RETRIEVE_FUNCTION,
)
from kore_connect.twin.apigw.app import FunctionOverrides, LocalApi
from kore_connect.twin.apigw.gateway import GatewaySettings
from kore_connect.twin.template import ApiDescription, describe_api, load_template
from tests.conftest import TABLE, context
from tests.servers import serving, serving_moto

STACK = "kore-connect"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
RETRIEVE_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:kore-connect-KoreRetrieveSessionMetad-Xy12"
INSTANCE_ID = "9d3f0f5e-1c2b-4a5d-8e7f-0a1b2c3d4e5f"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:{ACCOUNT}:instance/{INSTANCE_ID}"
BOT_TOKEN = "doctor-lab-bot-token-7f3a9c2e5b1d"  # the secret's value; must never be printed
SECRET_NAME = "kore-connect/token"
# The authorizer's workers start once with their environment, while moto gives each new secret a random
# ARN suffix: the authorizer names the secret by its partial ARN, which Secrets Manager accepts.
SECRET_PARTIAL_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_NAME}"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# The doctor's clients, all on moto's endpoint; lambda and connect never reach it (Stubbers answer).
SERVICES = ("cloudformation", "dynamodb", "secretsmanager", "lambda", "connect", "chime-sdk-voice")
CONNECTOR_ID = "daxr840zmmndqkhqechuca"
CONNECTOR_ARN = f"arn:aws:chime:us-east-1:{ACCOUNT}:vc/{CONNECTOR_ID}"
QUEUE_ARN = f"{INSTANCE_ARN}/queue/2f1c5b8e-7d3a-4e6b-9a0c-1d2e3f4a5b6c"
FLOW_NAME = "Kore voice bot"
HEALTHY_CONNECTOR = {
    "VoiceConnectorId": CONNECTOR_ID,
    "AwsRegion": REGION,
    "Name": "kore-gateway",
    "OutboundHostName": f"{CONNECTOR_ID}.voiceconnector.chime.aws",
    "RequireEncryption": False,
    "IntegrationType": "CONNECT_CALL_TRANSFER_CONNECTOR",
}


def flow_content(function_arn: str = RETRIEVE_ARN, connector_arn: str = CONNECTOR_ARN) -> str:
    """The flow `kore-connect flow` writes for these ARNs, as Connect's DescribeContactFlow returns it."""
    options = FlowOptions(
        connector_arn=connector_arn,
        to_user="+12065551118",
        retrieve_function_arn=function_arn,
        queue_arn=QUEUE_ARN,
    )
    return flow_json(render_flow(options))


@dataclass(frozen=True)
class ContactFlow:
    """A contact flow of the lab's instance."""

    name: str = FLOW_NAME
    content: str = field(default_factory=flow_content)
    status: str = "PUBLISHED"
    state: str = "ACTIVE"


@dataclass(frozen=True)
class Received:
    """A request as the API received it (the names `httpx.Request` gives them)."""

    method: str
    url: httpx.URL
    headers: httpx.Headers


class Recording:
    """An ASGI application that notes every HTTP request it receives, then hands it to `app`."""

    def __init__(self, app: ASGIApp, requests: list[Received]) -> None:
        self._app = app
        self._requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
            url = httpx.URL(str(StarletteURL(scope=scope)))
            self._requests.append(Received(scope["method"], url, httpx.Headers(headers)))
        await self._app(scope, receive, send)


class ServedApi:
    """POST /kore-metadata served by the local API Gateway, the real functions behind it on moto; with
    the template's authorizer, or deployed without it. Each is started the first time it is asked for."""

    def __init__(self, moto: str, function_log: Path) -> None:
        self.requests: list[Received] = []  # by either, in order
        self._moto = moto
        self._function_log = function_log
        self._template = describe_api(load_template())
        self._urls: dict[bool, str] = {}
        self._running = ExitStack()

    def url(self, *, authorizer: bool = True) -> str:
        if authorizer not in self._urls:
            description = self._template if authorizer else _without_authorizer(self._template)
            base = self._running.enter_context(
                serving(Recording(self._local_api(description).app, self.requests))
            )
            self._urls[authorizer] = f"{base}/{description.stage}{RESOURCE_PATH}"
        return self._urls[authorizer]

    def close(self) -> None:
        self._running.close()

    def _local_api(self, description: ApiDescription) -> LocalApi:
        api = LocalApi(
            description,
            overrides=FunctionOverrides(
                all_functions={
                    config.SESSION_BACKEND: "dynamodb",
                    config.TABLE_NAME: TABLE,
                    "AWS_ENDPOINT_URL": self._moto,
                    **CREDENTIALS,
                },
                by_function={AUTHORIZER_FUNCTION: {config.AUTH_TOKEN_SECRET_ARN: SECRET_PARTIAL_ARN}},
            ),
            settings=GatewaySettings(account_id=ACCOUNT, authorizer_cache_ttl_seconds=0),
            containers=1,
            max_containers=1,
        )
        # LocalApi takes no log path (its functions log to our stderr); the lab reads their logs back.
        for function in api.functions.values():
            function.spec = dataclasses.replace(function.spec, log_path=self._function_log)
        return api


def _without_authorizer(api: ApiDescription) -> ApiDescription:
    return dataclasses.replace(api, routes=tuple(dataclasses.replace(r, authorizer=None) for r in api.routes))


class LabServers:
    """moto over HTTP, the served API and the doctor's AWS clients, shared by every lab of the session."""

    def __init__(self, folder: Path) -> None:
        self.function_log = folder / "functions.log"
        self._running = ExitStack()
        self.moto = self._running.enter_context(serving_moto())
        self.api = ServedApi(self.moto, self.function_log)
        self._running.callback(self.api.close)
        # Built once: an httpx.Client loading the CA certificates itself takes 50 ms, per test.
        self.tls = ssl.create_default_context()
        self._moto_api = self._running.enter_context(httpx.Client(base_url=self.moto, verify=self.tls))
        # One client per service for the whole session: creating them per test took most of its time.
        # Each test's Stubbers and hooks are removed from them when it ends.
        self.clients = {
            service: boto3.client(
                service,
                endpoint_url=self.moto,
                region_name=REGION,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
            for service in SERVICES
        }

    def reset(self) -> None:
        """A fresh moto account, no request seen."""
        self._moto_api.post("/moto-api/reset").raise_for_status()
        self.api.requests.clear()

    def close(self) -> None:
        self._running.close()


_SERVERS = pytest.StashKey[LabServers]()


def lab_servers(request: pytest.FixtureRequest) -> LabServers:
    """The session's servers: started for the first lab that asks, stopped when the session ends."""
    stash = request.config.stash
    if _SERVERS not in stash:
        folder = request.getfixturevalue("tmp_path_factory").mktemp("doctor-lab")
        servers = LabServers(folder)
        request.config.add_cleanup(servers.close)
        stash[_SERVERS] = servers
    return stash[_SERVERS]


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
    api: ServedApi
    retrieve: RetrieveFunction
    connect: Stubber
    voice: Stubber
    secret_arn: str
    function_log: Path
    log_start: int = 0  # where this lab's lines begin in the functions' log
    stubbers: list[Stubber] = field(default_factory=list)

    def deploy(
        self,
        *,
        ttl: bool = True,
        connect_instance: bool = True,
        authorizer: bool = True,
        token_secret_arn: str | None = None,
        metadata_url: str | None = None,
        without_outputs: Iterable[str] = (),
        reference_table: str = "",
    ) -> None:
        """Create the stack as `sam deploy` leaves it (outputs, table), with or without TTL, Connect and
        the API's authorizer. Its outputs name the lab's secret (the one the authorizer reads) and the
        served API's URL, unless `token_secret_arn` or `metadata_url` say otherwise."""
        outputs: dict[str, Any] = {
            OUTPUT_METADATA_URL: {"Value": metadata_url or self.api.url(authorizer=authorizer)},
            OUTPUT_RETRIEVE_FUNCTION_ARN: {"Value": RETRIEVE_ARN},
            OUTPUT_TOKEN_SECRET_ARN: {"Value": token_secret_arn or self.secret_arn},
            OUTPUT_TABLE_NAME: {"Value": {"Ref": "SessionsTable"}},
        }
        if connect_instance:
            outputs[OUTPUT_CONNECT_INSTANCE_ARN] = {"Value": INSTANCE_ARN}
        for key in without_outputs:
            del outputs[key]
        template = {
            "Parameters": {PARAMETER_REFERENCE_TABLE: {"Type": "String", "Default": ""}},
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
        self.clients.cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": PARAMETER_REFERENCE_TABLE, "ParameterValue": reference_table}],
        )
        if ttl:
            self.clients.dynamodb.update_time_to_live(
                TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
            )

    def connect_lists(self, *pages: list[str], healthy_instance: bool = True) -> None:
        """Connect's ListLambdaFunctions answers with these pages of function ARNs; then, unless told
        otherwise, the instance answers as a healthy one does (`instance_has`)."""
        for number, functions in enumerate(pages):
            expected: dict[str, Any] = {"InstanceId": INSTANCE_ID}
            if number:
                expected["NextToken"] = f"page-{number}"
            response: dict[str, Any] = {"LambdaFunctions": functions}
            if number + 1 < len(pages):
                response["NextToken"] = f"page-{number + 1}"
            self.connect.add_response("list_lambda_functions", response, expected)
        if healthy_instance:
            self.instance_has()

    def instance_has(
        self,
        *,
        flow_logs: str = "true",
        flows: Iterable[ContactFlow] = (ContactFlow(),),
        described: Iterable[str] | None = None,
        connector: dict[str, Any] | str | None = None,
    ) -> None:
        """Connect's answers about the instance: its CONTACTFLOW_LOGS attribute, its contact flows (all
        of them described, or only those named in `described`), and GetVoiceConnector's answer (the
        connector, an error code, or none expected when None and no flow passes)."""
        self.connect.add_response(
            "describe_instance_attribute",
            {"Attribute": {"AttributeType": "CONTACTFLOW_LOGS", "Value": flow_logs}},
            {"InstanceId": INSTANCE_ID, "AttributeType": "CONTACTFLOW_LOGS"},
        )
        flows = list(flows)
        summaries = [
            {
                "Id": f"flow-{number}",
                "Arn": f"{INSTANCE_ARN}/contact-flow/flow-{number}",
                "Name": flow.name,
                "ContactFlowType": "CONTACT_FLOW",
                "ContactFlowState": flow.state,
                "ContactFlowStatus": flow.status,
            }
            for number, flow in enumerate(flows)
        ]
        self.connect.add_response(
            "list_contact_flows",
            {"ContactFlowSummaryList": summaries},
            {"InstanceId": INSTANCE_ID, "ContactFlowTypes": ["CONTACT_FLOW"]},
        )
        for summary, flow in zip(summaries, flows, strict=True):
            if flow.state != "ACTIVE" or (described is not None and flow.name not in described):
                continue
            self.connect.add_response(
                "describe_contact_flow",
                {
                    "ContactFlow": {
                        "Arn": summary["Arn"],
                        "Id": summary["Id"],
                        "Name": flow.name,
                        "Type": "CONTACT_FLOW",
                        "State": flow.state,
                        "Status": flow.status,
                        "Content": flow.content,
                    }
                },
                {"InstanceId": INSTANCE_ID, "ContactFlowId": summary["Id"]},
            )
        if isinstance(connector, str):
            self.voice.add_client_error("get_voice_connector", connector, http_status_code=404)
        elif connector is not None or (described is None and flows == [ContactFlow()]):
            answer = connector if connector is not None else HEALTHY_CONNECTOR
            self.voice.add_response(
                "get_voice_connector", {"VoiceConnector": answer}, {"VoiceConnectorId": CONNECTOR_ID}
            )

    def item(self, contact_id: str) -> dict[str, Any] | None:
        response = self.clients.dynamodb.get_item(TableName=TABLE, Key={"contactId": {"S": contact_id}})
        return response.get("Item")

    def function_logs(self) -> str:
        """What the served functions (authorizer, store) logged during this lab, as in CloudWatch."""
        with self.function_log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode("utf-8", "replace")


def make_lab(monkeypatch: pytest.MonkeyPatch, servers: LabServers) -> Lab:
    """A fresh moto account holding the secret, the retrieve function's environment and the doctor's
    clients (no stack yet)."""
    servers.reset()
    clients = servers.clients
    secret_arn = clients["secretsmanager"].create_secret(Name=SECRET_NAME, SecretString=BOT_TOKEN)["ARN"]
    # The retrieve function runs in this process (see RetrieveFunction), on moto's table.
    monkeypatch.setenv(config.SESSION_BACKEND, "dynamodb")
    monkeypatch.setenv(config.TABLE_NAME, TABLE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", servers.moto)
    container.reset()

    retrieve_function = RetrieveFunction(clients["lambda"])
    connect = Stubber(clients["connect"])
    voice = Stubber(clients["chime-sdk-voice"])
    doctor_clients = DoctorClients(
        cloudformation=clients["cloudformation"],
        dynamodb=clients["dynamodb"],
        secretsmanager=clients["secretsmanager"],
        lambda_=clients["lambda"],
        connect=clients["connect"],
        voice=clients["chime-sdk-voice"],
        http=httpx.Client(verify=servers.tls),
    )
    log_start = servers.function_log.stat().st_size if servers.function_log.exists() else 0
    lab = Lab(
        doctor_clients,
        servers.api,
        retrieve_function,
        connect,
        voice,
        secret_arn,
        servers.function_log,
        log_start,
    )
    lab.stubbers = [retrieve_function.stubber, connect, voice]
    for stubber in lab.stubbers:
        stubber.activate()
    return lab


def lab_fixture(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The body of each test module's `lab` fixture: a fresh moto account per test, shared servers."""
    lab = make_lab(monkeypatch, lab_servers(request))
    try:
        yield lab
        for stubber in lab.stubbers:
            stubber.assert_no_pending_responses()
    finally:
        for stubber in lab.stubbers:
            stubber.deactivate()
        lab.retrieve.close()
        lab.clients.http.close()
