"""The Kore script-node snippets, read from the package's `snippets/*.js` files.

The `.js` files are package data, not Python strings, so that they can be linted and run as
JavaScript and so that the command that prints them and the twin that runs them share one source.
"""

from __future__ import annotations

import enum
from importlib import resources


class Snippet(enum.StrEnum):
    """The snippets we ship, named after their files."""

    START_FLOW = "start_flow"  # Start Flow > Script node: keeps the INVITE's SIP headers
    AGENT_TRANSFER_SCRIPT = "agent_transfer_script"  # Agent Transfer dialog > Script node: ContactId
    CALLER_VALUE_SCRIPT = "caller_value_script"  # an example: a caller's value made safe for a Service node


def load(name: str) -> str:
    """The source of the snippet `name` (a `Snippet` or its value), exactly as shipped.

    Read as bytes and decoded, with no newline translation, so that what is printed or run is the
    file byte for byte. An unknown name raises ValueError listing the known ones.
    """
    try:
        snippet = Snippet(name)
    except ValueError:
        known = ", ".join(s.value for s in Snippet)
        raise ValueError(f"no Kore snippet named {name!r}; known: {known}") from None
    resource = resources.files("kore_connect.korebot") / "snippets" / f"{snippet.value}.js"
    return resource.read_bytes().decode("utf-8")
