"""`kore-connect serve`: run parts of the local twin on loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kore_connect import config
from kore_connect.cli.errors import fail
from kore_connect.cli.store_options import DynamoDBEndpoint, Table
from kore_connect.errors import KoreConnectError
from kore_connect.twin.local_token import DEFAULT_TOKEN_FILE, resolve_token

app = typer.Typer(help="Run parts of the local twin on loopback.", no_args_is_help=True)
console = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command("api")
def api(
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="The loopback address to listen on.")] = "127.0.0.1",
    db: Annotated[Path, typer.Option(help="The SQLite session store.")] = config.DEFAULT_SQLITE_PATH,
    dynamodb_endpoint: DynamoDBEndpoint = None,
    table: Table = config.DEFAULT_TABLE_NAME,
    token_file: Annotated[
        Path, typer.Option(help="Where the bot's token is kept (generated on first run).")
    ] = DEFAULT_TOKEN_FILE,
    containers: Annotated[
        int, typer.Option(min=1, max=32, help="Worker processes per function at start.")
    ] = 2,
    max_containers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes per function when busy (scale-out limit).")
    ] = 4,
    integration_timeout: Annotated[
        float, typer.Option(min=0.1, max=29.0, help="Seconds API Gateway waits for the function.")
    ] = 29.0,
    authorizer_cache_ttl: Annotated[
        int | None,
        typer.Option(min=0, max=3600, help="Seconds an authorizer answer is cached (default: template)."),
    ] = None,
) -> None:
    """Serve the metadata API as API Gateway does, in front of the real functions, on the embedded
    SQLite store (--db) or a DynamoDB table on this machine (--dynamodb-endpoint).

    The Kore bot's Service node (or curl) POSTs to http://<host>:<port>/<stage>/kore-metadata?contactId=...
    with the token in the authorizationToken header. The token comes from KORE_CONNECT_API_TOKEN, else
    from --token-file, else it is generated, saved there and shown once.
    """
    if dynamodb_endpoint is not None and db != config.DEFAULT_SQLITE_PATH:
        fail("--db and --dynamodb-endpoint: the sessions are kept in one store; choose one")
    if not _is_loopback(host):
        fail(f"--host {host} is not a loopback address: the local twin serves on 127.0.0.1 or ::1 only")
    try:
        token = resolve_token(token_file)
    except KoreConnectError as exc:
        fail(str(exc))

    import uvicorn

    from kore_connect.twin.apigw.app import LocalApi
    from kore_connect.twin.apigw.gateway import GatewaySettings
    from kore_connect.twin.local_store import LocalStore

    try:
        store = LocalStore(db, dynamodb_endpoint, table)
        if store.on_dynamodb:
            store.open().close()  # the table, created now: a server that is not there is told here
        served = LocalApi.on_store(
            store,
            token.value,
            settings=GatewaySettings(
                integration_timeout_seconds=integration_timeout,
                authorizer_cache_ttl_seconds=authorizer_cache_ttl,
            ),
            containers=containers,
            max_containers=max_containers,
        )
    except KoreConnectError as exc:
        fail(str(exc))
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    for route in served.api.routes:
        guard = (
            f" (authorizer {route.authorizer.name}, header {route.authorizer.header})"
            if route.authorizer
            else ""
        )
        console.print(f"{route.method} {base}/{served.api.stage}{route.path}{guard}")
    console.print(f"OpenAPI: {base}/openapi.json")
    console.print(f"Session store: {store.describe()}")
    if token.generated:
        console.print(f"Token (generated, saved in {token.source}; shown this once): {token.value}")
    else:
        console.print(f"Token: from {token.source}")
    console.print("Ctrl-C stops it.")

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    server = uvicorn.Server(
        uvicorn.Config(
            served.app,
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=10,  # requests still running then are cut off
        )
    )
    # uvicorn re-raises Ctrl-C once it has shut down cleanly: that is a normal end.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise typer.Exit(1)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("gateway")
def gateway(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="The gateway's YAML configuration (default: built-in defaults)."),
    ] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Override listen.port.")] = None,
) -> None:
    """Serve the local Kore voice gateway: answers Connect's calls, runs the bot, hangs up with a BYE.

    Calls from sources not allow-listed get 403, unknown DIDs 404. The bot posts its metadata to the
    local API (kore-connect serve api) with the token from KORE_CONNECT_API_TOKEN or .kore-connect/api-token.
    """
    import asyncio
    import dataclasses
    import signal

    from kore_connect.twin.kore.config import GatewayConfig
    from kore_connect.twin.kore.gateway import KoreGateway

    try:
        settings = GatewayConfig.load(config_file)
    except KoreConnectError as exc:
        fail(str(exc))
    if port is not None:
        settings = dataclasses.replace(settings, port=port)
    if not _is_loopback(settings.host):
        fail(
            f"listen.host {settings.host} is not a loopback address: the local twin listens on loopback only"
        )

    async def run() -> None:
        served = KoreGateway(settings)
        try:
            await served.start()
        except OSError as exc:
            fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        for transport, (host, bound) in served.addresses.items():
            console.print(f"Kore voice gateway: sip:{host}:{bound};transport={transport}")
        console.print(f"Metadata endpoint: {settings.metadata_url}; interactions: {settings.interactions}")
        console.print("Ctrl-C stops it.")
        try:
            await stop.wait()
        finally:
            await served.stop()

    asyncio.run(run())
