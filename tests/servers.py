"""Serve an ASGI application on a loopback port for the duration of a test (uvicorn in a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.peers import free_port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Yield the base URL of `app` served by uvicorn on 127.0.0.1; stop it (lifespan included) after."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,  # as `serve api`: longer than httpx keeps a connection idle
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serving_metadata_api(database: Any, token: str) -> Iterator[str]:
    """The local API Gateway with the real functions on the SQLite store `database`, the authorizer
    accepting `token`; yields the base URL (the endpoint is `<base>/prod/kore-metadata`)."""
    from kore_connect.twin.apigw.app import LocalApi
    from kore_connect.twin.local_store import LocalStore

    api = LocalApi.on_store(LocalStore(Path(database)), token, containers=1)
    with serving(api.app) as base:
        yield base


@contextmanager
def serving_moto() -> Iterator[str]:
    """moto over HTTP on 127.0.0.1, as `moto_server` serves it; yields the endpoint URL for `endpoint_url`
    or `AWS_ENDPOINT_URL`. Its own API answers there too (`POST <endpoint>/moto-api/reset`).

    `moto_server` (ThreadedMotoServer) needs Flask, which we do not install; moto's proxy mode routes a
    request to its backends without Flask (`MotoRequestHandler`), given the AWS host the request was
    meant for. Behind a single endpoint that host is not in the URL: as `moto_server` does, it is read from
    the service and region the request is signed for. The backends are this process's own, shared with
    any `mock_aws` (which resets them when it starts).
    """
    with serving(_moto_app()) as endpoint:
        yield endpoint


_OWN_HEADERS = {"content-length", "date", "server"}  # uvicorn writes its own
_MOTO_API_HOST = "http://localhost:0"  # the host moto's handler built with port 0 takes for its own API


def _moto_app() -> Any:
    from moto.moto_proxy.proxy3 import MotoRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send
    from werkzeug.exceptions import HTTPException

    moto = MotoRequestHandler(port=0)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        # An unsigned request is for moto's own API (/moto-api/reset...)
        host = _signed_for(request.headers.get("authorization", "")) or _MOTO_API_HOST
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # moto's backends are not made for concurrent calls: they run one at a time, on the event loop.
        try:
            answer = moto.parse_request(request.method, host, target, dict(request.headers), body)
        except HTTPException as refused:
            answer = (refused.code or 500, dict(refused.get_headers()), refused.get_body())
        status, headers, content = answer if isinstance(answer, tuple) else (200, {}, answer)
        headers = {name: str(value) for name, value in headers.items() if name.lower() not in _OWN_HEADERS}
        await Response(content, status_code=int(status), headers=headers)(scope, receive, send)

    app = Starlette()
    app.router.default = dispatch
    return app


def _signed_for(authorization: str) -> str | None:
    """The AWS host a SigV4 request was signed for, from its credential scope in `Authorization`:
    `Credential=<key>/<date>/<region>/<service>/aws4_request`."""
    _, found, scope = authorization.partition("Credential=")
    parts = scope.split(",")[0].split("/")
    if not found or len(parts) != 5:
        return None
    region, service = parts[2], parts[3]
    return f"https://{service}.{region}.amazonaws.com"
