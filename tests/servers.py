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
    from kore_connect.twin.local.store import LocalStore

    api = LocalApi.on_store(LocalStore(Path(database)), token, containers=1)
    with serving(api.app) as base:
        yield base


@contextmanager
def serving_moto() -> Iterator[str]:
    """moto's own server (`moto_server`) on 127.0.0.1; yields the endpoint URL for `endpoint_url` or
    `AWS_ENDPOINT_URL`. Its API answers there too (`POST <endpoint>/moto-api/reset`).

    The server's backends are this process's own, shared with any `mock_aws` (which resets them when
    it starts)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
