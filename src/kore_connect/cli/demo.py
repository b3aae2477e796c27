"""`kore-connect demo`: start the local store and prove a metadata round trip through the real handlers."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kore_connect import config
from kore_connect.cli.errors import fail
from kore_connect.errors import KoreConnectError

console = Console()
errors = Console(stderr=True)


def demo(
    backend: Annotated[
        config.Backend, typer.Option(help="Where sessions are stored: the embedded SQLite file, or DynamoDB.")
    ] = config.Backend.SQLITE,
    db: Annotated[Path, typer.Option(help="The SQLite file (sqlite backend).")] = config.DEFAULT_SQLITE_PATH,
    table: Annotated[
        str, typer.Option(help="The DynamoDB table (dynamodb backend; created when missing).")
    ] = config.DEFAULT_TABLE_NAME,
    metadata: Annotated[
        Path | None, typer.Option(help="A JSON file with the metadata the bot sends (default: a sample).")
    ] = None,
    show_logs: Annotated[bool, typer.Option(help="Show the functions' JSON logs and metrics.")] = False,
) -> None:
    """Run one metadata round trip locally: authorize, store, retrieve, compare."""
    sent = _read_metadata(metadata) if metadata else None
    token = secrets.token_urlsafe(32)  # this run's token; never printed
    os.environ.update(
        {
            config.AUTH_TOKEN: token,
            config.SESSION_BACKEND: backend.value,
            config.SQLITE_PATH: str(db),
            config.TABLE_NAME: table,
        }
    )
    os.environ.pop(config.AUTH_TOKEN_SECRET_ARN, None)
    if not show_logs:
        # Read when the bridge modules are imported, below.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"

    from kore_connect.twin.local.roundtrip import run_round_trip

    try:
        if backend is config.Backend.DYNAMODB:
            _ensure_table(table)
        trip = run_round_trip(token, metadata=sent)
    except KoreConnectError as exc:
        fail(str(exc))

    where = db.resolve() if backend is config.Backend.SQLITE else f"DynamoDB table {table}"
    console.print(f"Session store: [bold]{where}[/bold]")
    console.print(f"Contact ID:    [bold]{trip.contact_id}[/bold]\n")
    steps = Table(show_header=True, header_style="bold")
    steps.add_column("")
    steps.add_column("Step")
    steps.add_column("What happened", overflow="fold")
    for step in trip.steps:
        steps.add_row("[green]✓[/green]" if step.ok else "[red]✗[/red]", step.name, step.detail)
    console.print(steps)
    console.print_json(json.dumps(trip.retrieved))
    if not trip.ok:
        errors.print("[red]The round trip failed.[/red]")
        raise typer.Exit(1)
    console.print("[green]Round trip OK: the flow got back exactly what the bot sent.[/green]")


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--metadata") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not valid JSON: {exc}", param_hint="--metadata") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object", param_hint="--metadata")
    return value


def _ensure_table(table: str) -> None:
    from kore_connect.sessions.dynamodb import dynamodb_client, ensure_table

    ensure_table(dynamodb_client(), table)
