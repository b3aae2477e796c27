"""The local Kore bot: the shipped snippets run unchanged in V8, the Service node POSTs to the real
served API (API Gateway, authorizer, store on SQLite), and every path ends in the agent transfer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from kore_connect import config
from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge import container
from kore_connect.bridge.retrieve import lambda_handler as retrieve
from kore_connect.korebot.service_node import DEFAULT_TOKEN_VARIABLE
from kore_connect.twin.kore import templates
from kore_connect.twin.kore.bot import BotRun, run_bot
from kore_connect.twin.kore.dialog import (
    AgentTransferNode,
    Dialog,
    ScriptNode,
    ServiceRequestNode,
    default_dialog,
)
from kore_connect.twin.kore.session import KoreSession
from kore_connect.twin.kore.templates import TemplateError
from tests.conftest import CONTACT_ID, EVENTS, context
from tests.kore_fakes import sip_headers
from tests.servers import serving_metadata_api

TOKEN = "kore-bot-local-token-0123456789"
INVITE_HEADERS = sip_headers((EVENTS / "connect-invite.sip").read_text())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    database = tmp_path_factory.mktemp("kore") / "sessions.db"
    with serving_metadata_api(database, TOKEN) as base:
        yield f"{base}/prod/kore-metadata", database


def bot(
    headers: Any, dialog: Dialog, *, environment: dict[str, str] | None = None, transport: Any = None
) -> tuple[BotRun, KoreSession]:
    session = KoreSession(headers)

    async def scenario() -> BotRun:
        async with httpx.AsyncClient(transport=transport) as http:
            return await run_bot(
                session, dialog, environment=environment or {DEFAULT_TOKEN_VARIABLE: TOKEN}, http=http
            )

    return asyncio.run(scenario()), session


def statuses(run: BotRun) -> list[tuple[str, str]]:
    return [(r.kind, r.status) for r in run.results]


def stored(database: Path, contact_id: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    monkeypatch.setenv(config.SQLITE_PATH, str(database))
    container.reset()
    answer: dict[str, Any] = retrieve(contact_flow_event(contact_id), context("retrieve"))
    return answer


def test_the_reference_dialog_stores_the_metadata_for_the_callers_contact(
    served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Connect's INVITE headers (tests/events) and the reference dialog
    url, database = served
    run, session = bot(INVITE_HEADERS, default_dialog(url))
    # THEN every node ran, the Service node was answered 200 and the call ends in the agent transfer
    assert statuses(run) == [
        ("script", "ok"),
        ("message", "ok"),
        ("script", "ok"),
        ("service", "ok"),
        ("transfer", "ok"),
    ]
    assert run.results[3].http_status == 200 and run.transfer is not None
    assert session.bot_user_session["ContactId"] == CONTACT_ID
    # AND the Connect flow reads back exactly what the Service node sent
    answer = stored(database, CONTACT_ID, monkeypatch)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {
        "x_metadata": f"Hello from Kore for contact {CONTACT_ID}",
        "kore-instanceSessionId": session.instance_session_id,
    }


def test_without_the_contact_id_header_the_metadata_is_not_sent_but_the_caller_is_transferred(
    served: tuple[str, Path],
) -> None:
    url, _ = served
    headers = [h for h in INVITE_HEADERS if h["name"] != "X-Amzn-ConnectContactId"]
    run, session = bot(headers, default_dialog(url))
    assert statuses(run)[-2:] == [("service", "skipped"), ("transfer", "ok")]
    assert session.bot_user_session["ContactIdStatus"] == "missing"


def test_a_wrong_token_fails_the_service_node_and_the_caller_is_still_transferred(
    served: tuple[str, Path],
) -> None:
    url, _ = served
    run, _ = bot(
        INVITE_HEADERS, default_dialog(url), environment={DEFAULT_TOKEN_VARIABLE: "not-the-token-xxxxxxxx"}
    )
    service = run.results[3]
    assert (service.status, service.http_status, service.attempts) == ("error", 401, 1)  # 401 is not retried
    assert run.transfer is not None and run.failed


def test_a_service_answering_503_is_retried_with_backoff() -> None:
    answers = iter([503, 503, 200])
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers), json={})

    node = ServiceRequestNode(
        "send",
        "http://gateway.test/prod/kore-metadata?contactId={{context.session.BotUserSession.ContactId}}",
        "POST",
        (("authorizationToken", "{{env.koreApiToken}}"),),
        '{"a": "{{context.session.BotUserSession.ContactId}}"}',
        backoff_seconds=0.01,
    )
    dialog = Dialog(start_flow=(), nodes=(ScriptNode("set", "BotUserSession.put('ContactId', 'c-1');"), node))
    run, _ = bot(INVITE_HEADERS, dialog, transport=httpx.MockTransport(answer))
    assert run.results[-1].status == "ok" and run.results[-1].attempts == 3
    assert str(seen[0].url) == "http://gateway.test/prod/kore-metadata?contactId=c-1"
    assert seen[0].headers["authorizationToken"] == TOKEN and seen[0].content == b'{"a": "c-1"}'


def test_the_service_request_line_is_recorded_without_any_environment_value() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    node = ServiceRequestNode(  # a node's author who put the token in the URL
        "send",
        "http://gateway.test/x?t={{env.koreApiToken}}&c={{context.session.BotUserSession.ContactId}}",
        "POST",
        (),
        "{}",
    )
    dialog = Dialog(start_flow=(), nodes=(ScriptNode("set", "BotUserSession.put('ContactId', 'c-1');"), node))
    run, _ = bot(INVITE_HEADERS, dialog, transport=httpx.MockTransport(answer))
    assert run.results[-1].request == "POST http://gateway.test/x?t=[env]&c=c-1"
    assert TOKEN not in repr(run.results)


def test_a_service_that_never_recovers_fails_after_its_retries() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    node = ServiceRequestNode(
        "send", "http://gateway.test/x", "POST", (), "{}", retries=1, backoff_seconds=0.01
    )
    run, _ = bot(INVITE_HEADERS, Dialog(start_flow=(), nodes=(node,)), transport=httpx.MockTransport(answer))
    assert run.results[-1].status == "error" and "after 2 attempts" in run.results[-1].detail


def test_a_script_that_throws_goes_straight_to_the_agent_transfer(served: tuple[str, Path]) -> None:
    url, _ = served
    reference = default_dialog(url)
    broken = ScriptNode("broken", "throw new Error('the bot broke');")
    dialog = Dialog(reference.start_flow, (reference.nodes[0], broken, *reference.nodes[1:]))
    run, _ = bot(INVITE_HEADERS, dialog)
    assert statuses(run) == [
        ("script", "ok"),
        ("message", "ok"),
        ("script", "error"),
        ("script", "skipped"),
        ("service", "skipped"),
        ("transfer", "ok"),
    ]
    assert "the bot broke" in run.results[2].detail


def test_a_script_that_runs_forever_is_stopped() -> None:
    run, _ = bot(INVITE_HEADERS, Dialog(start_flow=(), nodes=(ScriptNode("loop", "while (true) {}"),)))
    assert run.results[0].status == "error"


def test_placeholders_in_plain_text_render_as_kore_renders_them() -> None:
    session = KoreSession(INVITE_HEADERS)
    session.run("BotUserSession.put('ContactId', 'abc'); BotUserSession.put('n', 1.5);")
    values = templates.lookup(session.value, {"token": "t"})
    rendered = templates.render_body(
        "{{context.session.BotUserSession.ContactId}}/{{ context.session.BotUserSession.n }}/{{env.token}}",
        values,
        "text/plain",
    )
    assert rendered == templates.Rendered("abc/1.5/t")
    for bad in ("{{env.missing}}", "{{context.session.BotUserSession.nothing}}", "{{other.thing}}"):
        with pytest.raises(TemplateError):
            templates.render_body(bad, values, "text/plain")


# ---------------------------------------------------------------- a caller's values in a Service node

INJECTED_NOTE = 'hi","isVip":"true","agentNote":"caller is verified - skip ID&V'
COPY_NOTE = ScriptNode(
    "copy the caller's note",
    "var all = context.BotUserSession.channels[0].handle.sipHeaders;"
    "var h = all.filter(function (x) { return x.name === 'X-Caller-Note'; });"
    "BotUserSession.put('note', h[0].value);",
)


def with_note(note: str) -> list[dict[str, str]]:
    return [*INVITE_HEADERS, {"name": "X-Caller-Note", "value": note}]


def test_a_callers_sip_header_in_a_json_body_cannot_add_keys_to_the_stored_metadata(
    served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a dialog whose script node copies a caller's SIP header into the body, as a team might
    url, database = served
    reference = default_dialog(url)
    service = next(node for node in reference.nodes if isinstance(node, ServiceRequestNode))
    body = '{"x_metadata": "{{context.session.BotUserSession.note}}", "kore-instanceSessionId": "s-1"}'
    nodes = [replace(node, body=body) if node is service else node for node in reference.nodes]
    dialog = Dialog(start_flow=reference.start_flow, nodes=(COPY_NOTE, *nodes))
    # WHEN a caller sends a note written to break out of its JSON string
    run, _ = bot(with_note(INJECTED_NOTE), dialog)
    # THEN the store holds exactly the two keys of the node, the note as the caller wrote it
    answer = stored(database, CONTACT_ID, monkeypatch)
    assert json.loads(answer["body"]) == {"x_metadata": INJECTED_NOTE, "kore-instanceSessionId": "s-1"}
    # AND the node's result warns that real Kore would have pasted the note raw
    (sent,) = [r for r in run.results if r.kind == "service"]
    assert sent.status == "ok"
    assert "Kore would paste {{context.session.BotUserSession.note}} unescaped" in sent.detail


def test_a_callers_value_in_a_url_stays_one_piece_of_the_path() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    node = ServiceRequestNode(
        "notify CRM", "http://crm.test/calls/{{context.session.BotUserSession.note}}", "PUT", (), "{}"
    )
    dialog = Dialog(start_flow=(), nodes=(COPY_NOTE, node))
    run, _ = bot(with_note("../../admin/delete?all=1"), dialog, transport=httpx.MockTransport(answer))
    assert run.results[-1].status == "ok"
    (request,) = seen
    assert request.method == "PUT"
    assert request.url.raw_path == b"/calls/..%2F..%2Fadmin%2Fdelete%3Fall%3D1"
    assert request.url.query == b""


def test_a_line_break_in_a_header_value_fails_the_node_and_the_caller_still_reaches_an_agent() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    node = ServiceRequestNode(
        "send", "http://crm.test/x", "POST", (("X-Note", "{{context.session.BotUserSession.note}}"),), "{}"
    )
    dialog = Dialog(start_flow=(), nodes=(COPY_NOTE, node, AgentTransferNode("transfer")))
    run, _ = bot(with_note("ok\r\nX-Admin: yes"), dialog, transport=httpx.MockTransport(answer))
    assert statuses(run) == [("script", "ok"), ("service", "error"), ("transfer", "ok")]
    assert "holds a line break, which cannot go in a header" in run.results[1].detail


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ('{"a": "x {{context.v}} y"}', 'q"uote\\back', '{"a": "x q\\"uote\\\\back y"}'),
        ('{"a": {{context.v}}}', 'x", "b": "y', '{"a": "x\\", \\"b\\": \\"y"}'),  # text outside a string
        ('{"a": {{context.v}}}', "42", '{"a": 42}'),  # a number as text stays a number
        ('{"a": {{context.v}}}', 1.10, '{"a": 1.1}'),
        ('{"a": {{context.v}}}', {"k": [1, "two"]}, '{"a": {"k": [1, "two"]}}'),
        ('{"a\\"{{context.v}}": "\\\\", "b": "{{context.v}}"}', "é", '{"a\\"é": "\\\\", "b": "é"}'),
    ],
)
def test_json_bodies_escape_each_value_for_its_position(template: str, value: Any, expected: str) -> None:
    rendered = templates.render_body(template, lambda path: value, "application/json; charset=utf-8")
    assert rendered.text == expected
    json.loads(rendered.text)


def test_form_bodies_are_percent_encoded() -> None:
    rendered = templates.render_body(
        "note={{context.v}}&x=1", lambda path: "a&admin=1", "application/x-www-form-urlencoded"
    )
    assert rendered.text == "note=a%26admin%3D1&x=1"
    assert rendered.escaped == ("{{context.v}}",)


# ---------------------------------------------------------------- retries, counted where they arrive


@pytest.mark.parametrize(("hang_ups", "retries", "status"), [(2, 2, "ok"), (3, 2, "error"), (1, 0, "error")])
def test_the_service_node_retries_connection_errors_as_a_real_peer_counts_them(
    hang_ups: int, retries: int, status: str
) -> None:
    # A peer that closes the first connections without a word (as a dying API does), then answers 200.
    arrived: list[bytes] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.append(await reader.readuntil(b"\r\n\r\n"))
        if len(arrived) > hang_ups:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            await writer.drain()
        writer.close()

    async def scenario() -> BotRun:
        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        node = ServiceRequestNode(
            "send", f"http://127.0.0.1:{port}/x", "POST", (), "{}", retries=retries, backoff_seconds=0.01
        )
        async with server, httpx.AsyncClient() as http:
            return await run_bot(
                KoreSession(INVITE_HEADERS), Dialog(start_flow=(), nodes=(node,)), environment={}, http=http
            )

    run = asyncio.run(scenario())
    (result,) = run.results
    assert len(arrived) == min(hang_ups + 1, retries + 1)  # attempts made, as the peer saw them
    assert result.status == status and result.attempts == len(arrived)
