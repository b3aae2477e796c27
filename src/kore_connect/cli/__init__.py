"""The `kore-connect` command. Each command group lives in its own module."""

from __future__ import annotations

import sys

import typer

# Typer (0.29+) carries its own copy of click; its usage errors are these classes.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from kore_connect.cli import call, connect, demo, doctor, flow, kore_config, serve, up
from kore_connect.cli.errors import say_error

app = typer.Typer(
    name="kore-connect",
    help="Hand calls between Amazon Connect and a Kore.ai voice bot, and back, without losing data.",
    no_args_is_help=True,
    add_completion=False,
)
app.command(name="demo")(demo.demo)
app.command(name="flow")(flow.flow)
app.command(name="kore-config")(kore_config.kore_config)
app.command(name="doctor")(doctor.doctor)
app.command(name="up")(up.up)
app.command(name="call")(call.call)
app.add_typer(serve.app, name="serve")
app.add_typer(connect.app, name="connect")


@app.callback()
def _root() -> None:
    """kore-connect: the metadata bridge and its local twin."""


def main(argv: list[str] | None = None) -> None:
    """Run the command line. A usage mistake (unknown option, missing or bad value) is one line on
    stderr naming the problem and where help is, with exit code 2, never a traceback or a panel."""
    try:
        code = app(args=argv, standalone_mode=False)
    except NoArgsIsHelpError:
        code = 2  # the help was shown
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        say_error(f"{exc.format_message()}{hint}")
        code = 2
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
