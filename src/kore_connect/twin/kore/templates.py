"""Kore's `{{...}}` placeholders in a Service node's URL, headers and body (pure).

`{{context.<path>}}` reads the call's session, `{{env.<name>}}` a bot environment variable. Kore
substitutes values as raw text: a string as itself, anything else as its JSON text. A placeholder
that names nothing is an error here (Kore would send an empty value, which our store would refuse
anyway), so the node fails with a message that names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from kore_connect.errors import KoreConnectError

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


class TemplateError(KoreConnectError):
    """A placeholder that names nothing."""


def placeholders(template: str) -> list[str]:
    """The paths the template's placeholders name, in order: "{{ env.x }}" -> "env.x"."""
    return _PLACEHOLDER.findall(template)


def render(template: str, context: Callable[[str], Any], environment: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        path = match.group(1)
        if path.startswith("env."):
            name = path.removeprefix("env.")
            if name not in environment:
                raise TemplateError(f"{{{{{path}}}}}: the bot has no environment variable {name!r}")
            return environment[name]
        if path == "context" or path.startswith("context."):
            found = context(path)
            if found is None:
                raise TemplateError(f"{{{{{path}}}}} names nothing in the session")
            return found if isinstance(found, str) else json.dumps(found)
        raise TemplateError(f"{{{{{path}}}}}: only context.* and env.* placeholders are known")

    return _PLACEHOLDER.sub(value, template)
