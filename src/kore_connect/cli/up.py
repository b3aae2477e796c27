"""`kore-connect up`: the whole local twin in one command, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from rich.console import Console

from kore_connect import config
from kore_connect.cli.errors import fail
from kore_connect.cli.store_options import DynamoDBEndpoint, Table
from kore_connect.errors import KoreConnectError

if TYPE_CHECKING:
    from kore_connect.twin.local_store import LocalStore

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
    dynamodb_endpoint: DynamoDBEndpoint = None,
    table: Table = config.DEFAULT_TABLE_NAME,
) -> None:
    """Start the local twin: the metadata API (API Gateway and the three functions on SQLite, or on
    DynamoDB with --dynamodb-endpoint), the Kore voice gateway with the default bot, Amazon Connect
    with the default flow, and the dashboard. Everything listens on 127.0.0.1. Ctrl-C stops it all."""
    from kore_connect.twin.local_store import LocalStore
    from kore_connect.twin.local_token import resolve_token
    from kore_connect.twin.local_twin import PHONE_NUMBER

    if not PHONE_NUMBER.fullmatch(did):
        fail(f"--did {did!r}: expected a phone number such as +12065551118")
    if home.exists() and not home.is_dir():
        fail(f"--home {home}: not a folder")
    try:
        store = LocalStore(home / "sessions.db", dynamodb_endpoint, table)
        token = resolve_token(home / "api-token")
    except KoreConnectError as exc:
        fail(str(exc))
    try:
        asyncio.run(
            _up(
                home,
                token.value,
                token.generated,
                token.source,
                api_port,
                sip_port,
                dashboard_port,
                did,
                store,
            )
        )
    except KoreConnectError as exc:  # e.g. the DynamoDB server is not there
        fail(f"the local twin could not start: {exc}")
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
    store: LocalStore,
) -> None:
    from kore_connect.twin.dashboard.app import dashboard
    from kore_connect.twin.local_twin import LocalTwin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        loop.add_signal_handler(number, stop.set)
    twin = LocalTwin(home, token=token, did=did, api_port=api_port, sip_port=sip_port, store=store)
    listener = _listen(dashboard_port)  # ours, so that a port in use is a clear error, not uvicorn's exit
    server = uvicorn.Server(
        uvicorn.Config(dashboard(twin, token), lifespan="off", access_log=False, log_config=None)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]  # ours to handle
    serving: asyncio.Task[None] | None = None
    try:
        starting = loop.create_task(twin.start())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # Ctrl-C while starting: stop at once
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return
        stopping.cancel()
        starting.result()  # raises why the twin could not start
        serving = loop.create_task(server.serve(sockets=[listener]))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        host, sip = twin.sip_address
        console.print(f"Dashboard:         {url}")
        console.print(f"Metadata API:      POST {twin.api_url}?contactId=...")
        console.print(f"Kore gateway:      sip:{did}@{host}:{sip} (UDP)")
        console.print(f"Amazon Connect:    the default flow, transferring to {did}")
        console.print(f"Session store:     {store.describe()}")
        console.print(f"State and logs:    {home.resolve()}")
        if generated:
            console.print(f"Token (generated, saved in {source}; shown this once): {token}")
        else:
            console.print(f"Token: from {source}")
        console.print("Place a call: kore-connect call    Ctrl-C stops everything.")
        console.file.flush()
        # Last, and whole at once: once this file is there, `kore-connect call` may use the twin.
        running = home / f".{RUNNING_FILE}.tmp"
        running.write_text(json.dumps({"dashboard": url}))
        os.replace(running, home / RUNNING_FILE)
        await stop.wait()
    finally:
        (home / RUNNING_FILE).unlink(missing_ok=True)
        if serving is not None:
            server.should_exit = True
            await serving
        listener.close()
        await twin.stop()
    console.print("Stopped.")


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        raise OSError(f"the dashboard cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    listener.listen(128)
    return listener
