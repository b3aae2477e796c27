"""`kore-connect up`: the whole local twin in one command, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from rich.console import Console

from kore_connect import config
from kore_connect.cli.errors import fail, warn
from kore_connect.cli.ports import bind_tcp, check_free
from kore_connect.cli.store_options import DynamoDBEndpoint, Table
from kore_connect.errors import KoreConnectError
from kore_connect.private_files import private_folder
from kore_connect.twin.local.parts import PartStartError

if TYPE_CHECKING:
    from kore_connect.twin.local.store import LocalStore

console = Console(highlight=False, soft_wrap=True)
DEFAULT_HOME = Path(".kore-connect")
HOST = "127.0.0.1"  # every part of the twin listens on loopback only


def up(
    home: Annotated[
        Path, typer.Option(help="Where the twin keeps its token, store, calls and logs.")
    ] = DEFAULT_HOME,
    api_port: Annotated[int, typer.Option(min=0, max=65535, help="The metadata API's port.")] = 3000,
    sip_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The Kore gateway's SIP port (UDP and TCP).")
    ] = 5080,
    dashboard_port: Annotated[int, typer.Option(min=0, max=65535, help="The dashboard's port.")] = 8080,
    did: Annotated[str, typer.Option(help="The Kore DID the default flow transfers to.")] = "+12065551118",
    dynamodb_endpoint: DynamoDBEndpoint = None,
    table: Table = config.DEFAULT_TABLE_NAME,
) -> None:
    """Start the local twin: the metadata API (API Gateway and the three functions on SQLite, or on
    DynamoDB with --dynamodb-endpoint), the Kore voice gateway with the default bot, Amazon Connect
    with the default flow, and the dashboard. Everything listens on 127.0.0.1. Ctrl-C stops it all."""
    from kore_connect.twin.local.api_token import resolve_token
    from kore_connect.twin.local.store import LocalStore
    from kore_connect.twin.local.twin import PHONE_NUMBER

    if not PHONE_NUMBER.fullmatch(did):
        fail(f"--did {did!r}: expected a phone number such as +12065551118")
    if home.exists() and not home.is_dir():
        fail(f"--home {home}: not a folder")
    try:
        # Each port checked before anything starts: a port in use is one line naming the option.
        listener = bind_tcp(HOST, dashboard_port, part="the dashboard", option="--dashboard-port")
        check_free(HOST, api_port, part="the metadata API", option="--api-port", transports=("tcp",))
        check_free(HOST, sip_port, part="the Kore gateway", option="--sip-port", transports=("udp", "tcp"))
        store = LocalStore(home / "sessions.db", dynamodb_endpoint, table)
        private_home(home)
        token = resolve_token(home / "api-token")
    except KoreConnectError as exc:
        fail(str(exc))
    options = {"metadata API": ("--api-port", api_port), "Kore gateway": ("--sip-port", sip_port)}
    try:
        asyncio.run(
            _up(
                home,
                token.value,
                token.generated,
                token.source,
                api_port,
                sip_port,
                listener,
                did,
                store,
            )
        )
    except PartStartError as exc:
        option, port = options.get(exc.part, ("", 0))
        where = f" (port {port}, {option})" if port else f" (a free port; {option} sets one)"
        fail(f"the {exc.part}{where} did not start: {exc.reason} (see {exc.log})")
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
    listener: socket.socket,
    did: str,
    store: LocalStore,
) -> None:
    from kore_connect.twin.dashboard.app import dashboard
    from kore_connect.twin.local.running import RunningUp
    from kore_connect.twin.local.twin import GATEWAY_TRANSPORTS, LocalTwin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        loop.add_signal_handler(number, stop.set)
    twin = LocalTwin(home, token=token, did=did, api_port=api_port, sip_port=sip_port, store=store)
    server = uvicorn.Server(
        uvicorn.Config(
            dashboard(twin, token),
            lifespan="off",
            access_log=False,
            log_config=None,
            # Longer than a client keeps an idle connection (httpx: 5 s, uvicorn's default here too):
            # else a connection the server is closing is reused, and the call on it fails (ReadError).
            timeout_keep_alive=30,
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]  # ours to handle
    serving: asyncio.Task[None] | None = None
    running: RunningUp | None = None
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
        url = f"http://{HOST}:{listener.getsockname()[1]}"
        host, sip = twin.sip_address
        console.print(f"Dashboard:         {url}")
        console.print(f"Metadata API:      POST {twin.api_url}?contactId=...")
        console.print(f"Kore gateway:      sip:{did}@{host}:{sip} (UDP and TCP)")
        console.print(f"Amazon Connect:    the default flow, transferring to {did}")
        console.print(f"Session store:     {store.describe()}")
        console.print(f"State and logs:    {home.resolve()}")
        if generated:
            console.print(f"Token (generated, saved in {source}; shown this once): {token}")
        else:
            console.print(f"Token: from {source}")
        place = f"{typed_command()} call" + ("" if home == DEFAULT_HOME else f" --home {home}")
        console.print(f"Place a call:      {place}")
        console.print("Ctrl-C stops everything.")
        console.file.flush()
        running = RunningUp(
            home=home.resolve(),
            pid=os.getpid(),
            dashboard=url,
            sip_host=host,
            sip_port=sip,
            transports=tuple(GATEWAY_TRANSPORTS),
            sqlite_path=store.sqlite_path.resolve(),
            dynamodb_endpoint=store.dynamodb_endpoint,
            table=store.table,
        )
        running.announce()  # last: from now on `call` and `connect run` may use the twin
        await stop.wait()
    finally:
        if running is not None:
            running.withdraw()
        if serving is not None:
            server.should_exit = True
            await serving
        listener.close()
        await twin.stop()
    console.print("Stopped.")


def private_home(home: Path) -> None:
    """Make `home` the twin's private folder (see private_files): created 0700; one open to others,
    as earlier versions made it, tightened with a warning; a link or another user's is refused
    (KoreConnectError)."""
    former = private_folder(home)
    if former is not None:
        warn(
            f"{home} was open to other users (mode {former:04o}); made 0700: it holds the twin's token "
            "and callers' numbers"
        )


def typed_command() -> str:
    """kore-connect as the user can type it: its name when PATH finds this one, else its path
    (relative to the current folder when inside it, as `.venv/bin/kore-connect`)."""
    ours = Path(sys.executable).parent / "kore-connect"
    found = shutil.which("kore-connect")
    if found is not None and Path(found).resolve() == ours.resolve():
        return "kore-connect"
    try:
        return str(ours.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(ours.absolute())
