"""`kore-connect up`: the whole local twin in one command, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kore_connect.cli.errors import fail
from kore_connect.errors import KoreConnectError

console = Console(highlight=False, soft_wrap=True)
DEFAULT_HOME = Path(".kore-connect")
RUNNING_FILE = "up.json"  # in the home folder while `up` runs: where `kore-connect call` finds it


def up(
    home: Annotated[
        Path, typer.Option(help="Where the twin keeps its token, store, calls and logs.")
    ] = DEFAULT_HOME,
    api_port: Annotated[int, typer.Option(min=0, max=65535, help="The metadata API's port.")] = 3000,
    sip_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The Kore gateway's SIP port (UDP).")
    ] = 5080,
    dashboard_port: Annotated[int, typer.Option(min=0, max=65535, help="The dashboard's port.")] = 8080,
    did: Annotated[str, typer.Option(help="The Kore DID the default flow transfers to.")] = "+12065551118",
) -> None:
    """Start the local twin: the metadata API (API Gateway and the three functions on SQLite), the
    Kore voice gateway with the default bot, Amazon Connect with the default flow, and the dashboard.
    Everything listens on 127.0.0.1. Ctrl-C stops it all."""
    from kore_connect.twin.local_token import resolve_token
    from kore_connect.twin.local_twin import PHONE_NUMBER

    if not PHONE_NUMBER.fullmatch(did):
        fail(f"--did {did!r}: expected a phone number such as +12065551118")
    if home.exists() and not home.is_dir():
        fail(f"--home {home}: not a folder")
    try:
        token = resolve_token(home / "api-token")
    except KoreConnectError as exc:
        fail(str(exc))
    try:
        asyncio.run(
            _up(home, token.value, token.generated, token.source, api_port, sip_port, dashboard_port, did)
        )
    except OSError as exc:
        fail(f"the local twin could not start: {exc.strerror or exc}")


async def _up(
    home: Path,
    token: str,
    generated: bool,
    source: str,
    api_port: int,
    sip_port: int,
    dashboard_port: int,
    did: str,
) -> None:
    from kore_connect.twin.dashboard.app import dashboard
    from kore_connect.twin.local_twin import LocalTwin, embedded_server, started

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    async with LocalTwin(home, token=token, did=did, api_port=api_port, sip_port=sip_port) as twin:
        server = embedded_server(dashboard(twin, token), dashboard_port)
        task = loop.create_task(server.serve())
        try:
            port = await started(server, task)
            url = f"http://127.0.0.1:{port}"
            host, sip = twin.sip_address
            console.print(f"Dashboard:         {url}")
            console.print(f"Metadata API:      POST {twin.api_url}?contactId=...")
            console.print(f"Kore gateway:      sip:{did}@{host}:{sip} (UDP)")
            console.print(f"Amazon Connect:    the default flow, transferring to {did}")
            console.print(f"Store and logs:    {home.resolve()}")
            if generated:
                console.print(f"Token (generated, saved in {source}; shown this once): {token}")
            else:
                console.print(f"Token: from {source}")
            console.print("Place a call: kore-connect call    Ctrl-C stops everything.")
            console.file.flush()
            # Last: once this file is there, `kore-connect call` (and a test) may use the twin.
            (home / RUNNING_FILE).write_text(json.dumps({"dashboard": url, "pid": os.getpid(), "did": did}))
            await stop.wait()
        finally:
            (home / RUNNING_FILE).unlink(missing_ok=True)
            server.should_exit = True
            with contextlib.suppress(SystemExit):  # uvicorn's way of failing to bind, reported above
                await task
    console.print("Stopped.")
