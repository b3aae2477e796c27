"""Kore's `{{...}}` placeholders in a Service node's URL, headers and body, rendered by position (pure).

`{{context.<path>}}` reads the call's session, `{{env.<name>}}` a bot environment variable. Real
Kore pastes values as raw text (a string as itself, anything else as its JSON text), so a value a
caller controls, such as a SIP header a script node copied, could add keys to a JSON body or turn
a URL into another request. The twin renders each value for where it stands instead:
- in a URL, percent-encoded (a value is one piece of a path or a query, never a `/`, `?` or `&`);
  the scheme and host are the node's own text, so a URL may not start with a placeholder;
- in a header, as is, but refused when it holds a line break (it would start another header);
- in a JSON body, JSON-escaped inside a string, and as a JSON value outside one;
- in a form body, percent-encoded; in any other body, as is.
A value the twin had to escape is reported, because real Kore would have pasted it raw: the
node's result says so, and our guidance shows how to validate such values in a script node.

A placeholder that names nothing is an error here (Kore would send an empty value, which our store
would refuse anyway), so the node fails with a message that names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kore_connect.errors import KoreConnectError

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_LINE_BREAKS = ("\r", "\n", "\0")
MASK = "[env]"  # what an environment value shows as where a request is displayed
_MASKED = object()  # an environment value being displayed: shown as MASK, never encoded


class TemplateError(KoreConnectError):
    """A placeholder that names nothing, or a value that cannot stand where its placeholder is."""


@dataclass(frozen=True)
class Rendered:
    text: str
    escaped: tuple[str, ...] = ()  # placeholders whose value real Kore would have pasted differently


Lookup = Callable[[str], Any]  # a placeholder's path -> its value; raises TemplateError


def placeholders(template: str) -> list[str]:
    """The paths the template's placeholders name, in order: "{{ env.x }}" -> "env.x"."""
    return _PLACEHOLDER.findall(template)


def url_problem(template: str) -> str | None:
    """Why `template` cannot be a Service node's URL, or None: its scheme and host must be its own."""
    if re.match(r"https?://[^/?#{}]+", template) is None:
        return "must start with http:// or https:// and a host, not with a placeholder"
    return None


def lookup(context: Callable[[str], Any], environment: Mapping[str, str], *, mask: bool = False) -> Lookup:
    """Where placeholder values come from: the session for `context.*`, the bot's variables for `env.*`.
    With `mask`, every environment value reads as MASK (for display: the token is among them)."""

    def value(path: str) -> Any:
        if path.startswith("env."):
            name = path.removeprefix("env.")
            if name not in environment:
                raise TemplateError(f"{{{{{path}}}}}: the bot has no environment variable {name!r}")
            return _MASKED if mask else environment[name]
        if path == "context" or path.startswith("context."):
            found = context(path)
            if found is None:
                raise TemplateError(f"{{{{{path}}}}} names nothing in the session")
            return found
        raise TemplateError(f"{{{{{path}}}}}: only context.* and env.* placeholders are known")

    return value


def render_url(template: str, values: Lookup) -> Rendered:
    problem = url_problem(template)
    if problem is not None:
        raise TemplateError(f"the URL {problem}")
    return _render(template, values, lambda raw, _: quote(raw, safe=""))


def render_header(template: str, values: Lookup) -> Rendered:
    def as_header(raw: str, path: str) -> str:
        if any(character in raw for character in _LINE_BREAKS):
            raise TemplateError(f"{{{{{path}}}}} holds a line break, which cannot go in a header")
        return raw

    return _render(template, values, as_header)


def render_body(template: str, values: Lookup, content_type: str | None) -> Rendered:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json") or (not kind and template.lstrip()[:1] in "{["):
        return _render_json(template, values)
    if kind == "application/x-www-form-urlencoded":
        return _render(template, values, lambda raw, _: quote(raw, safe=""))
    return _render(template, values, lambda raw, _: raw)


def _raw(value: Any) -> str:
    """What Kore pastes: a string as itself, anything else as its JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def _render(template: str, values: Lookup, encode: Callable[[str, str], str]) -> Rendered:
    escaped: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        path = match.group(1)
        value = values(path)
        if value is _MASKED:
            return MASK
        raw = _raw(value)
        text = encode(raw, path)
        if text != raw:
            escaped.append(match.group(0))
        return text

    return Rendered(_PLACEHOLDER.sub(substitute, template), tuple(dict.fromkeys(escaped)))


def _render_json(template: str, values: Lookup) -> Rendered:
    """Walks the template as JSON text, so that each placeholder knows whether it is inside a string."""
    out: list[str] = []
    escaped: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        match = _PLACEHOLDER.match(template, position)
        if match is not None:
            value = values(match.group(1))
            raw = MASK if value is _MASKED else _raw(value)
            if value is _MASKED:
                text = raw
            elif in_string:
                text = json.dumps(raw, ensure_ascii=False)[1:-1]
            elif isinstance(value, str) and not _JSON_NUMBER.fullmatch(value):
                text = json.dumps(value, ensure_ascii=False)  # text outside a string: a JSON string
            else:
                text = raw  # a number, true, false, null, an object or an array: already JSON
            if text != raw:
                escaped.append(match.group(0))
            out.append(text)
            position = match.end()
            continue
        character = template[position]
        if in_string and character == "\\":
            out.append(template[position : position + 2])  # an escape: the next character is literal
            position += 2
            continue
        if character == '"':
            in_string = not in_string
        out.append(character)
        position += 1
    return Rendered("".join(out), tuple(dict.fromkeys(escaped)))
