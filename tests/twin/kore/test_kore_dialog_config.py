"""The bot's dialogs from the gateway's YAML: each node kind, the reference defaults, and clear errors
for every malformed node; a YAML dialog then runs in V8 and posts to the real served API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kore_connect import config
from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge import container
from kore_connect.bridge.retrieve import lambda_handler as retrieve
from kore_connect.errors import ConfigError
from kore_connect.korebot import snippets
from kore_connect.korebot.service_node import DEFAULT_TOKEN_VARIABLE
from kore_connect.twin.kore.bot import run_bot
from kore_connect.twin.kore.config import GatewayConfig
from kore_connect.twin.kore.dialog import (
    AgentTransferNode,
    MessageNode,
    ScriptNode,
    ServiceRequestNode,
    default_dialog,
)
from kore_connect.twin.kore.session import KoreSession
from tests.conftest import CONTACT_ID, EVENTS, context
from tests.kore_fakes import sip_headers
from tests.servers import serving_metadata_api

TOKEN = "dialog-yaml-token-0123456789"
ENV = {"KORE_CONNECT_API_TOKEN": TOKEN}
URL = "http://127.0.0.1:3000/prod/kore-metadata"

BILLING = """
metadata: {url: "%(url)s"}
dids:
  - {number: "+12065551118", flow: billing}
  - {number: "*", flow: default}
flows:
  billing:
    nodes:
      - message: "Billing here. One moment."
      - script: {name: tag the call, code: "BotUserSession.put('tier', 'gold');"}
      - script: {name: find the contact ID, snippet: agent_transfer_script}
      - script: {file: scripts/note.js}
      - service:
          name: send the tier
          url: "%(url)s?contactId={{context.session.BotUserSession.ContactId}}"
          headers:
            authorizationToken: "{{env.koreApiToken}}"
            Content-Type: application/json
          body: >-
            {"tier": "{{context.session.BotUserSession.tier}}",
            "note": "{{context.session.BotUserSession.note}}"}
          retries: 0
      - transfer: {bye_headers: {X-Kore-Reason: billing}}
"""


def load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return GatewayConfig.load(path, ENV)


def billing_config(tmp_path: Path, url: str = URL) -> GatewayConfig:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "note.js").write_text("BotUserSession.put('note', 'from a file');\n")
    return load(tmp_path, BILLING % {"url": url})


def test_a_flow_in_the_yaml_becomes_the_dialog_its_did_is_attached_to(tmp_path: Path) -> None:
    settings = billing_config(tmp_path)
    route = settings.route("+12065551118")
    assert route is not None and route.flow == "billing"
    dialog = settings.dialog(route.flow)
    message, tag, find, note, service, transfer = dialog.nodes
    assert message == MessageNode("message 1", "Billing here. One moment.")
    assert tag == ScriptNode("tag the call", "BotUserSession.put('tier', 'gold');")
    assert find.script == snippets.load(snippets.Snippet.AGENT_TRANSFER_SCRIPT)  # the shipped file, unchanged
    assert note == ScriptNode("script 4", "BotUserSession.put('note', 'from a file');\n")
    assert isinstance(service, ServiceRequestNode) and service.method == "POST" and service.retries == 0
    assert service.only_when is None  # a custom URL carries no connection rule of its own
    assert transfer == AgentTransferNode("agent transfer (SIP BYE)", (("X-Kore-Reason", "billing"),))
    # the Start Flow defaults to the shipped script, and other numbers keep the reference dialog
    assert dialog.start_flow == (ScriptNode("script 1", snippets.load(snippets.Snippet.START_FLOW)),)
    other = settings.route("+44")
    assert other is not None and settings.dialog(other.flow) == default_dialog(URL)


def test_an_empty_service_node_is_the_reference_service_node(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f"metadata: {{url: '{URL}'}}\nflows:\n  short:\n    nodes: [{{service: {{}}}}, {{transfer: }}]\n",
    )
    (reference,) = [n for n in default_dialog(URL).nodes if isinstance(n, ServiceRequestNode)]
    service, _ = settings.dialog("short").nodes
    assert isinstance(service, ServiceRequestNode)
    assert (service.url, service.method, service.headers, service.body, service.only_when) == (
        reference.url,
        reference.method,
        reference.headers,
        reference.body,
        reference.only_when,
    )


def test_a_yaml_dialog_runs_in_v8_and_posts_what_its_templates_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "sessions.db"
    headers = sip_headers((EVENTS / "connect-invite.sip").read_text())
    with serving_metadata_api(database, TOKEN) as base:
        settings = billing_config(tmp_path, f"{base}/prod/kore-metadata")
        session = KoreSession(headers)

        async def scenario() -> Any:
            async with httpx.AsyncClient() as http:
                return await run_bot(
                    session,
                    settings.dialog("billing"),
                    environment={DEFAULT_TOKEN_VARIABLE: TOKEN},
                    http=http,
                )

        try:
            run = asyncio.run(scenario())
        finally:
            session.close()
    assert [(r.node, r.status) for r in run.results] == [
        ("script 1", "ok"),
        ("message 1", "ok"),
        ("tag the call", "ok"),
        ("find the contact ID", "ok"),
        ("script 4", "ok"),
        ("send the tier", "ok"),
        ("agent transfer (SIP BYE)", "ok"),
    ]
    assert run.said == ["Billing here. One moment."]
    assert run.transfer is not None and run.transfer.bye_headers == (("X-Kore-Reason", "billing"),)
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    monkeypatch.setenv(config.SQLITE_PATH, str(database))
    container.reset()
    answer = retrieve(contact_flow_event(CONTACT_ID), context("retrieve"))
    assert json.loads(answer["body"]) == {"tier": "gold", "note": "from a file"}


@pytest.mark.parametrize(
    ("flows", "message"),
    [
        ("flows: [a, b]", "flows must map flow names"),
        ("flows: {x: {nodes: []}}", "flows.x.nodes must list at least one node"),
        ("flows: {x: {nodes: oops}}", "flows.x.nodes must be a list of nodes"),
        ("flows: {x: {nodes: [{message: hi}], colour: red}}", "flows.x: unknown key(s) colour"),
        ("flows: {x: {nodes: [{message: hi}], on_error: panic}}", "flows.x.on_error must be transfer or"),
        ("flows: {x: {nodes: [{speak: hi}]}}", "flows.x.nodes[0]: a node is one of message, script"),
        ("flows: {x: {nodes: [{message: hi, script: {code: x}}]}}", "flows.x.nodes[0]: a node is one of"),
        ("flows: {x: {nodes: [{message: ''}]}}", "flows.x.nodes[0].message must be non-empty text"),
        ("flows: {x: {nodes: [{script: {}}]}}", "needs exactly one of snippet, code, file"),
        ("flows: {x: {nodes: [{script: {code: a, file: b}}]}}", "needs exactly one of snippet, code, file"),
        ("flows: {x: {nodes: [{script: {snippet: nope}}]}}", "no Kore snippet named 'nope'"),
        ("flows: {x: {nodes: [{script: {file: missing.js}}]}}", "flows.x.nodes[0].file: cannot read"),
        ("flows: {x: {nodes: [{service: {method: BREW}}]}}", "flows.x.nodes[0].method must be one of"),
        ("flows: {x: {nodes: [{service: {url: 'ftp://x'}}]}}", "url must start with http:// or https://"),
        (
            "flows: {x: {nodes: [{service: {url: '{{context.session.BotUserSession.next}}/x'}}]}}",
            "url must start with http:// or https:// and a host, not with a placeholder",
        ),
        (
            "flows: {x: {nodes: [{service: {url: 'https://{{context.session.BotUserSession.host}}/x'}}]}}",
            "url must start with http:// or https:// and a host, not with a placeholder",
        ),
        ("flows: {x: {nodes: [{service: {url: 'http://x/{{secrets.a}}'}}]}}", "only context.* and env.*"),
        ("flows: {x: {nodes: [{service: {headers: {'a b': c}}}]}}", "'a b' is not an HTTP header name"),
        ("flows: {x: {nodes: [{service: {headers: [a]}}]}}", "headers must map header names"),
        ("flows: {x: {nodes: [{service: {timeout_seconds: 0}}]}}", "timeout_seconds must be a number"),
        ("flows: {x: {nodes: [{service: {retries: 9}}]}}", "retries must be a whole number from 0 to 5"),
        ("flows: {x: {nodes: [{service: {only_when: {path: a.b, equals: c}}}]}}", "only_when.path must"),
        ("flows: {x: {nodes: [{service: {bogus: 1}}]}}", "nodes[0]: unknown key(s) bogus"),
        ("flows: {x: {nodes: [{transfer: {bye_headers: {Call-ID: x}}}]}}", "Call-ID belongs to the dialog"),
        ("flows: {x: {nodes: [{transfer: {bye_headers: {i: x}}}]}}", "i belongs to the dialog"),  # compact
        ("flows: {x: {nodes: [{transfer: {bye_headers: {X-A: true}}}]}}", "must be one line of text"),
        ('flows: {x: {nodes: [{transfer: {bye_headers: {X-A: "a\\r\\nVia: x"}}}]}}', "must be one line"),
        ("flows: {x: {nodes: [{transfer: }, {message: hi}]}}", "nodes[0]: the transfer ends the dialog"),
        ("flows: {x: {nodes: [{message: hi}], start_flow: [{message: hi}]}}", "runs script nodes only"),
        ("dids: [{number: '1', flow: nowhere}]", "dids[0]: no flow named 'nowhere' (known: default)"),
    ],
)
def test_a_malformed_flow_is_refused_with_an_error_naming_it(
    tmp_path: Path, flows: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, flows + "\n")
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(tmp_path / "gateway.yaml"))
