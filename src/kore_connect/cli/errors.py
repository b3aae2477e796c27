"""How every kore-connect command reports a problem it cannot get past: one line on stderr,
`error: <what is wrong and what to do>`, and an exit code (2: bad input or setup). A problem it
goes on past (a file it ignores, a folder it tightened) is one `warning:` line."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

_stderr = Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` as one line (whitespace folded) and exit with `code`."""
    say_error(message)
    raise typer.Exit(code)


def say_error(message: str) -> None:
    _stderr.print(f"error: {' '.join(message.split())}", markup=False)


def warn(message: str) -> None:
    """Print `message` as one `warning:` line on stderr (whitespace folded); the command goes on."""
    _stderr.print(f"warning: {' '.join(message.split())}", markup=False)
