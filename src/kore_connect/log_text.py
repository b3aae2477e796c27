"""Text that came from outside (a SIP message, an HTTP request line) made safe for a log line.

A peer's bytes may hold line breaks (a forged log line) or terminal escape sequences (which act on
the terminal of whoever reads the log). Every such value is escaped before it is logged, with
`printable`; the twin's servers also log through `EscapingFormatter`, so that a library's message
or an exception's text that quotes a peer's bytes is escaped as well.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

LIMIT = 200  # characters of one value: a 60 KB header is not a log line


def printable(value: object, limit: int | None = LIMIT) -> str:
    """`value` on one line: every character that is not printable (a line break, ESC, a bidi
    override) as its Python escape (\\n, \\x1b, \\u202e); printable text, accents included, as is."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text  # the usual case, and the output of printable() itself: nothing to escape twice
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class EscapingFormatter(logging.Formatter):
    """Formats each record with its message and each line of its traceback escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record), limit=None)

    def formatException(self, ei: Any) -> str:
        # Frames are our code's lines; an exception's message may quote a peer's bytes, line
        # breaks included, so each message is escaped whole: it cannot start a line of its own.
        chain: list[traceback.TracebackException] = []
        link: traceback.TracebackException | None = traceback.TracebackException(*ei)
        while link is not None:
            chain.append(link)
            link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        parts: list[str] = []
        for exception in reversed(chain):
            if parts:
                parts.append("\nWhile handling the exception above, another one occurred:\n\n")
            if exception.stack:
                parts.append("Traceback (most recent call last):\n")
                frames = "".join(exception.stack.format()).splitlines()
                parts.extend(printable(line, limit=None) + "\n" for line in frames)
            message = "".join(exception.format_exception_only()).rstrip("\n")
            parts.append(printable(message, limit=None) + "\n")
        return "".join(parts).rstrip("\n")


def log_to_stderr(level: int) -> None:
    """The root logger writes escaped lines to stderr, where `up` collects each part's log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
