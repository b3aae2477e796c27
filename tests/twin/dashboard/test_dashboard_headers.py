"""Every dashboard response tells the browser to keep it to itself (issue 19): no framing by another
site, no script or style but the dashboard's own files, no type sniffing. In Chromium, the pages
still work under that policy (tests/cli/test_cli_up.py: the list updates live, search, the call page)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from kore_connect.twin.dashboard.app import TOKEN_HEADER, dashboard
from kore_connect.twin.local.call_log import CallLog

TOKEN = "dashboard-test-token-0123456789"


class Client:
    """Requests straight to the ASGI app, as uvicorn hands them on."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                return await http.request(method, path, **options)

        return asyncio.run(send())

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)


@pytest.fixture
def client(tmp_path: Path) -> Client:
    twin = SimpleNamespace(calls=CallLog(tmp_path / "calls.db"), did="+12065551118")
    return Client(dashboard(twin, TOKEN))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/fragments/calls?q=x", 200),
        ("GET", "/calls/5d3b9a2a-afe5-485f-a07c-b763c635156b", 404),
        ("POST", "/api/calls", 401),
        ("GET", "/static/calls.js", 200),
        ("GET", "/static/dashboard.css", 200),
        ("GET", "/static/missing.js", 404),
    ],
)
def test_every_response_carries_the_security_headers(
    client: Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_refused_host_gets_the_headers_too(client: Client) -> None:
    response = client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400 and response.headers["x-frame-options"] == "DENY"


def test_pages_hold_no_inline_script_or_style_the_policy_would_block(client: Client) -> None:
    page = client.get("/").text
    assert "<script>" not in page and "<style>" not in page and " style=" not in page
    assert '<script src="/static/calls.js"></script>' in page
    assert (
        client.get("/static/calls.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_the_place_call_endpoint_still_wants_the_token(client: Client) -> None:
    assert client.post("/api/calls", headers={TOKEN_HEADER: "wrong"}).status_code == 401
