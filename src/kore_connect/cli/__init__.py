"""The `kore-connect` command. Each command group lives in its own module."""

from __future__ import annotations

import typer

from kore_connect.cli import demo

app = typer.Typer(
    name="kore-connect",
    help="Hand calls between Amazon Connect and a Kore.ai voice bot, and back, without losing data.",
    no_args_is_help=True,
    add_completion=False,
)
app.command(name="demo")(demo.demo)


@app.callback()
def _root() -> None:
    """kore-connect: the metadata bridge and its local twin."""


def main() -> None:
    app()
