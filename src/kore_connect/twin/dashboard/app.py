"""The dashboard's routes. Pages are rendered on the server; the calls list refreshes its rows
from a fragment while calls come in. `POST /api/calls` places a call (for `kore-connect call`
against a running `kore-connect up`), guarded by the twin's token."""

from __future__ import annotations

import hmac
import json
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kore_connect.contactflow.model import Flow
from kore_connect.errors import KoreConnectError
from kore_connect.twin.dashboard.ladder import LEFT, RIGHT, WIDTH, ladder
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.twin import PHONE_NUMBER, LocalTwin

LOCAL_HOSTS = ["127.0.0.1", "localhost"]  # it listens on 127.0.0.1 only
TOKEN_HEADER = "x-kore-connect-token"  # noqa: S105 (a header's name, not a token)
# Pages hold callers' numbers and bots' metadata: no other site may frame them, no script or
# style runs but our own files, and no response is read as another type than it says.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        (
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_STATIC = resources.files("kore_connect.twin.dashboard") / "static"
_templates = Environment(
    loader=FileSystemLoader(str(resources.files("kore_connect.twin.dashboard") / "templates")),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a field a template names wrongly fails the page, not shows nothing
)


def dashboard(twin: LocalTwin, token: str) -> Starlette:
    async def calls_page(request: Request) -> Response:
        query = request.query_params.get("q", "")[:100]
        return _page("calls.html", calls=_calls(twin, query), query=query, total=_total(twin))

    async def calls_rows(request: Request) -> Response:
        query = request.query_params.get("q", "")[:100]
        return _page("rows.html", calls=_calls(twin, query), query=query)

    async def call_page(request: Request) -> Response:
        assert twin.calls is not None
        report = twin.calls.get(request.path_params["contact_id"])
        if report is None:
            return _page("missing.html", contact_id=request.path_params["contact_id"], status=404)
        arrows, height = ladder([message for transfer in report.contact.transfers for message in transfer])
        return _page(
            "call.html",
            call=report,
            arrows=arrows,
            height=height,
            width=WIDTH,
            lanes=(LEFT, RIGHT),
            metadata=json.dumps(report.metadata.stored, indent=2, ensure_ascii=False),
        )

    async def place_call(request: Request) -> Response:
        # As bytes: a header may hold any byte, and compare_digest refuses non-ASCII text.
        given = request.headers.get(TOKEN_HEADER, "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, token.encode("utf-8")):
            return JSONResponse({"error": f"the {TOKEN_HEADER} header must hold the twin's token"}, 401)
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            return JSONResponse({"error": "the body must be JSON: {caller, did}"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object: {caller, did}"}, 400)
        caller, did = body.get("caller", "+14155550123"), body.get("did", twin.did)
        for name, value in (("caller", caller), ("did", did)):
            if not isinstance(value, str) or not PHONE_NUMBER.fullmatch(value):
                return JSONResponse({"error": f"{name} must be a phone number such as +14155550123"}, 400)
        if did != twin.did:
            return JSONResponse({"error": f"this twin's Kore gateway answers DID {twin.did} only"}, 400)
        flow = None
        if body.get("flow") is not None:
            try:
                flow = Flow.parse(body["flow"])
            except KoreConnectError as exc:
                return JSONResponse({"error": f"flow: {' '.join(str(exc).split())}"}, 400)
        report = await twin.call(caller=caller, did=did, flow=flow)
        return JSONResponse(report.to_json())

    return Starlette(
        routes=[
            Route("/", calls_page),
            Route("/fragments/calls", calls_rows),
            Route("/calls/{contact_id}", call_page),
            Route("/api/calls", place_call, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(_STATIC))),
        ],
        middleware=[
            Middleware(_SecurityHeaders),
            # Only names for this machine: a page from elsewhere whose name a DNS trick points at
            # 127.0.0.1 (DNS rebinding) sends its own name as Host, and is refused.
            Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS),
        ],
    )


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, refusals and errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _calls(twin: LocalTwin, query: str) -> list[CallReport]:
    assert twin.calls is not None
    return twin.calls.search(query)


def _total(twin: LocalTwin) -> int:
    assert twin.calls is not None
    return twin.calls.count()


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**values), status_code=status)
