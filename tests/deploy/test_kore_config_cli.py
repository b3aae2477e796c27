"""`kore-connect kore-config`: what a team pastes into Kore, for a deployed metadata endpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kore_connect.cli import kore_config
from kore_connect.korebot.service_node import (
    CONTACT_ID_PLACEHOLDER,
    INSTANCE_SESSION_ID_PLACEHOLDER,
    KoreConfigError,
    ServiceNode,
    validate_api_url,
)
from tests.conftest import CONTACT_ID, REPO, TOKEN

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"
SNIPPETS_DIR = REPO / "src" / "kore_connect" / "korebot" / "snippets"
API_URL = "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata"
SECRET_TOKEN = "tok-7c1d9e0f2a4b6c8d0e1f3a5b7c9d"
INSTANCE_SESSION_ID = "67a1f0c2e4b5d6a7b8c9d0e1"
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")

# The command on its own, as cli/__init__.py registers it.
app = typer.Typer()
app.command(name="kore-config")(kore_config.kore_config)


@app.callback()
def _root() -> None:
    """A group, so that the command is called by its name as in `kore-connect`."""


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["kore-config", *args], env=env)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KORE_CONNECT), "kore-config", *args],
        env=dict(os.environ, AUTH_TOKEN=SECRET_TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )


def snippet_file(name: str) -> str:
    return (SNIPPETS_DIR / f"{name}.js").read_bytes().decode("utf-8")


def render(template: str, values: dict[str, str]) -> str:
    """What Kore sends: each placeholder replaced by its value as raw text."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


VALUES = {
    CONTACT_ID_PLACEHOLDER[2:-2]: CONTACT_ID,
    INSTANCE_SESSION_ID_PLACEHOLDER[2:-2]: INSTANCE_SESSION_ID,
    "env.koreApiToken": TOKEN,
}


def assert_one_line_error(stderr: str, *expected: str) -> None:
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for text in expected:
        assert text in stderr


# The Service node, pure.


def test_the_service_node_posts_to_the_endpoint_with_the_contact_id_and_the_token_variable() -> None:
    # WHEN the node is built for the stack's endpoint
    node = ServiceNode.for_endpoint(API_URL)

    # THEN it is the request the store expects, with Kore placeholders and no token
    assert node.url == f"{API_URL}?contactId={{{{context.session.BotUserSession.ContactId}}}}"
    assert node.method == "POST"
    assert dict(node.headers) == {
        "authorizationToken": "{{env.koreApiToken}}",
        "Content-Type": "application/json",
    }
    assert node.placeholders() == (
        "context.session.BotUserSession.ContactId",
        "env.koreApiToken",
        "context.session.BotUserSession.lastMessage.messagePayload.instanceSessionId",
    )


def test_the_body_renders_to_the_json_object_the_store_expects() -> None:
    # GIVEN the node's body template
    node = ServiceNode.for_endpoint(API_URL)

    # WHEN Kore replaces its placeholders
    body = json.loads(render(node.body, VALUES))

    # THEN it is one JSON object with the reference's two keys
    assert body == {
        "x_metadata": f"Hello from Kore for contact {CONTACT_ID}",
        "kore-instanceSessionId": INSTANCE_SESSION_ID,
    }


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        (API_URL, API_URL),
        (f"  {API_URL}/ ", API_URL),
        ("HTTPS://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata", API_URL),
        ("http://127.0.0.1:3000/prod/kore-metadata", "http://127.0.0.1:3000/prod/kore-metadata"),
        ("http://localhost:8080/kore-metadata", "http://localhost:8080/kore-metadata"),
        ("http://[::1]:8080/prod/kore-metadata", "http://[::1]:8080/prod/kore-metadata"),
        ("https://metadata.example.com/kore-metadata", "https://metadata.example.com/kore-metadata"),
    ],
)
def test_endpoints_that_are_accepted(given: str, endpoint: str) -> None:
    assert validate_api_url(given) == endpoint


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is empty"),
        ("http://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata", "must use https"),
        ("http://10.0.0.5/prod/kore-metadata", "must use https"),
        ("ftp://example.com/kore-metadata", "must start with https://"),
        ("a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata", "must start with https://"),
        ("https:///prod/kore-metadata", "has no host"),
        ("https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod", "must end with /kore-metadata"),
        (
            "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata/x",
            "must end with /kore-metadata",
        ),
        (f"{API_URL}?contactId=1", "must not have a query string"),
        (f"{API_URL}#top", "must not have a fragment"),
        (
            "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com:99999/prod/kore-metadata",
            "not a valid URL",
        ),
        (f"{API_URL} x", "must not contain spaces"),
    ],
)
def test_endpoints_that_are_refused_say_why_and_what_to_pass(url: str, message: str) -> None:
    with pytest.raises(KoreConfigError, match=re.escape(message)) as raised:
        validate_api_url(url)
    assert "MetadataEndpointUrl" in str(raised.value)


def test_credentials_in_the_url_are_refused_without_being_echoed() -> None:
    with pytest.raises(KoreConfigError, match="must not hold credentials") as raised:
        validate_api_url(
            f"https://kore:{SECRET_TOKEN}@a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata"
        )
    assert SECRET_TOKEN not in str(raised.value)


# The command.


def test_the_text_names_each_place_and_holds_each_piece_verbatim() -> None:
    # WHEN a team asks for the configuration of its endpoint
    result = invoke("--api-url", API_URL)

    # THEN every piece is there exactly as it must be pasted, unwrapped, under its heading
    assert result.exit_code == 0, result.output
    out = result.stdout
    node = ServiceNode.for_endpoint(API_URL)
    for piece in (
        snippet_file("start_flow"),
        snippet_file("agent_transfer_script"),
        snippet_file("caller_value_script"),
        node.url,
        node.body,
        "authorizationToken\n{{env.koreApiToken}}\n",
        "Content-Type\napplication/json\n",
        "aws secretsmanager get-secret-value --secret-id <TokenSecretArn> --query SecretString "
        "--output text --region eu-west-2\n",
    ):
        assert f"\n{piece}" in out
    headings = [
        "Start Flow: Script node",
        "Agent Transfer dialog: Script node",
        "Agent Transfer dialog: Service node",
        "Values the caller controls",
    ]
    assert [out.index(heading) for heading in headings] == sorted(out.index(heading) for heading in headings)
    assert "SIP BYE" in out and "koreApiToken" in out


def test_json_holds_the_shipped_snippets_byte_for_byte_and_the_service_node() -> None:
    # WHEN the configuration is asked for as JSON
    result = invoke("--api-url", API_URL, "--json")

    # THEN it is one JSON document with the shipped files and the request to define
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["apiUrl"] == API_URL
    assert document["startFlow"]["scriptNode"] == snippet_file("start_flow")
    dialog = document["agentTransferDialog"]
    assert dialog["scriptNode"] == snippet_file("agent_transfer_script")
    assert dialog["serviceNode"] == ServiceNode.for_endpoint(API_URL).as_dict()
    assert dialog["serviceNode"]["url"].startswith(f"{API_URL}?contactId=")
    assert dialog["agentTransferNode"] == {"sipTransferMethod": "SIP BYE"}
    assert dialog["callerValues"]["scriptNodeExample"] == snippet_file("caller_value_script")
    assert "Kore pastes placeholder values" in dialog["callerValues"]["why"]
    assert document["tokenVariable"] == {
        "name": "koreApiToken",
        "placeholder": "{{env.koreApiToken}}",
        "secure": True,
        "valueFrom": "TokenSecretArn",
        "readWith": "aws secretsmanager get-secret-value --secret-id <TokenSecretArn> "
        "--query SecretString --output text --region eu-west-2",
    }


def test_the_json_request_renders_to_what_the_store_accepts() -> None:
    # GIVEN the Service node from the JSON output
    service = json.loads(invoke("--api-url", API_URL, "--json").stdout)["agentTransferDialog"]["serviceNode"]

    # WHEN Kore renders it for a call
    url = render(service["url"], VALUES)
    headers = {name: render(value, VALUES) for name, value in service["headers"].items()}
    body = json.loads(render(service["body"], VALUES))

    # THEN it is the reference request
    assert url == f"{API_URL}?contactId={CONTACT_ID}"
    assert headers == {"authorizationToken": TOKEN, "Content-Type": "application/json"}
    assert body["kore-instanceSessionId"] == INSTANCE_SESSION_ID


def test_a_custom_token_variable_is_what_the_header_reads() -> None:
    result = invoke("--api-url", API_URL, "--json", "--token-variable", "metaApiToken_2")
    service = json.loads(result.stdout)["agentTransferDialog"]["serviceNode"]
    assert service["headers"]["authorizationToken"] == "{{env.metaApiToken_2}}"


def test_the_local_twins_endpoint_has_no_region_to_name() -> None:
    result = invoke("--api-url", "http://127.0.0.1:3000/prod/kore-metadata", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokenVariable"]["readWith"].endswith("--output text")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_no_token_is_ever_printed(json_flag: list[str]) -> None:
    # GIVEN a shell where the token is at hand
    env = {"AUTH_TOKEN": SECRET_TOKEN, "AUTH_TOKEN_PREVIOUS": TOKEN}

    # WHEN the configuration is printed
    result = invoke("--api-url", API_URL, *json_flag, env=env)

    # THEN only the variable's placeholder appears
    assert result.exit_code == 0
    assert SECRET_TOKEN not in result.output and TOKEN not in result.output
    assert "{{env.koreApiToken}}" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata", "must use https"),
        (f"{API_URL}?contactId={CONTACT_ID}", "must not have a query string"),
        (
            "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/metadata",
            "must end with /kore-metadata",
        ),
    ],
)
def test_a_bad_url_is_one_line_on_stderr_and_exit_2(url: str, message: str) -> None:
    result = invoke("--api-url", url)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result.stderr, message, "MetadataEndpointUrl")


# A token as the stack generates it: 48 letters and digits, a valid identifier.
GENERATED_TOKEN = "Q7kLm2Xv9RtB4nWc8YhJ3pZs6DfG1aEu5KoT0iNr2MqVxC7b"


@pytest.mark.parametrize(
    "name",
    [
        "1token",
        "kore-token",
        "",
        "token value",
        "{{env.x}}",
        SECRET_TOKEN,
        GENERATED_TOKEN,
        "a" * 16,
        "koreMetadataToken",
    ],
)
def test_a_bad_token_variable_is_one_line_on_stderr_exit_2_and_not_echoed(name: str) -> None:
    result = invoke("--api-url", API_URL, "--token-variable", name)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "token variable name is not valid", "koreApiToken")
    if name:
        assert name not in result.stderr


# The installed command, as a team runs it.


def test_the_installed_command_prints_the_json_document() -> None:
    result = run("--api-url", API_URL, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["startFlow"]["scriptNode"] == snippet_file("start_flow")
    assert document["agentTransferDialog"]["scriptNode"] == snippet_file("agent_transfer_script")
    assert SECRET_TOKEN not in result.stdout + result.stderr


def test_the_installed_command_prints_the_scripts_unwrapped() -> None:
    result = run("--api-url", API_URL)
    assert result.returncode == 0, result.stderr
    assert snippet_file("agent_transfer_script") in result.stdout
    assert ServiceNode.for_endpoint(API_URL).url in result.stdout


def test_the_installed_command_refuses_a_bad_url_in_one_line() -> None:
    # a URL long enough that a wrapping console would break the message
    result = run(
        "--api-url",
        f"http://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/{'very-long-stage-' * 5}/kore-metadata",
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "must use https")


def test_the_shortest_token_the_variable_check_refuses_is_the_shortest_the_authorizer_accepts() -> None:
    from kore_connect.bridge.tokens import MIN_TOKEN_LENGTH
    from kore_connect.korebot import service_node

    assert service_node._SHORTEST_TOKEN == MIN_TOKEN_LENGTH


@pytest.mark.parametrize("name", ["koreApiToken", "KORE_TOKEN_2", "koreMetaToken_2"])
def test_reasonable_variable_names_are_accepted(name: str) -> None:
    result = invoke("--api-url", API_URL, "--token-variable", name)
    assert result.exit_code == 0, result.stderr
    assert f"{{{{env.{name}}}}}" in result.stdout


# The SIP trunk: what Kore's CCAI configuration holds for Connect's INVITEs to be accepted.

TRUNK_URL = "https://abc123defg.execute-api.us-west-2.amazonaws.com/prod/kore-metadata"


def test_the_trunk_names_the_allow_list_the_did_the_transport_and_the_agent_transfer() -> None:
    result = run("--api-url", TRUNK_URL, "--did", "+12065551118", "--connector-address", "52.94.0.10",
                 "--connector-address", "52.94.0.11:5060", "--connector-address", "3.80.16.0/23",
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    trunk = json.loads(result.stdout)["sipTrunk"]
    assert trunk == {
        "allowList": ["52.94.0.10", "52.94.0.11:5060", "3.80.16.0/23"],
        "did": "+12065551118",
        "transport": "UDP",
        "port": 5060,
        "didAttachedTo": "the Start Flow (section 1)",
        "agentTransfer": {"type": "SIP Transfer", "method": "SIP BYE"},
    }
    text = run("--api-url", TRUNK_URL, "--did", "+12065551118", "--connector-address", "52.94.0.10").stdout
    assert "Incoming IP addresses" in text and "\n52.94.0.10\n" in text and "\n+12065551118\n" in text
    assert "SIP Transfer" in text and "SIP BYE" in text
    bare = run("--api-url", TRUNK_URL).stdout  # nothing given: it says what to pass, and why
    assert "pass --connector-address" in bare and "pass --did" in bare and "likeliest reason" in bare


def test_the_flows_did_is_the_trunks_and_a_disagreement_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import HANDOFF_EXPORT

    taken = run("--api-url", TRUNK_URL, "--check-flow", str(HANDOFF_EXPORT), "--json")
    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout)["sipTrunk"]["did"] == "+12065551118"
    agreed = run(
        "--api-url", TRUNK_URL, "--check-flow", str(HANDOFF_EXPORT), "--did", "+12065551118", "--json"
    )
    assert agreed.returncode == 0, agreed.stderr
    disagreed = run("--api-url", TRUNK_URL, "--check-flow", str(HANDOFF_EXPORT), "--did", "+12065550000")
    assert disagreed.returncode == 2
    assert_one_line_error(
        disagreed.stderr, "--check-flow", "transfers to +12065551118, not to --did +12065550000"
    )
    (tmp_path / "broken.json").write_text("{")
    broken = run("--api-url", TRUNK_URL, "--check-flow", str(tmp_path / "broken.json"))
    assert broken.returncode == 2
    assert_one_line_error(broken.stderr, "--check-flow", "not valid JSON")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--connector-address", "connector.example.com"],
            "--connector-address: 'connector.example.com' is not an IP",
        ),
        (["--connector-address", "52.94.0.10:70000"], "the port must be 1 to 65535"),
        (["--connector-address", "3.80.16.1/23"], "'3.80.16.1/23' is not a CIDR range"),
        (["--connector-address", "3.80.16.0/33"], "is not a CIDR range"),
        (["--did", "+1 206"], "--did: '+1 206' is not a number or SIP user"),
        (["--transport", "tls"], "--transport: 'tls'"),
    ],
)
def test_bad_trunk_options_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = run("--api-url", TRUNK_URL, *args)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, expected)


def test_flow_takes_the_did_as_kore_config_does(tmp_path: Path) -> None:
    from tests.deploy.test_flow_render import OPTIONS, cli_options
    from tests.deploy.test_flow_render import run as kore_connect

    args = cli_options(OPTIONS)
    by_did = kore_connect("flow", *[("--did" if a == "--to-user" else a) for a in args], cwd=tmp_path)
    by_to_user = kore_connect("flow", *args, cwd=tmp_path)
    assert by_did.returncode == 0 and by_did.stdout == by_to_user.stdout
