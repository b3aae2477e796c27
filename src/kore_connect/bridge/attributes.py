"""From stored metadata to the answer Amazon Connect reads (pure, no I/O).

The reference flow sets `customData = $.External.body`, so `body` is the stored JSON text,
unchanged. Beside it, each top-level key of the metadata is returned as its own flat string
attribute, so a flow can use `$.External.<key>` directly:

- the key keeps only the characters Connect allows in attribute keys (letters, digits, `-`,
  `_`); any other character becomes `_`. A key that is already valid wins over one that only
  becomes that name once sanitised; `statusCode` and `body` are never overwritten;
- a string value is returned as the string itself; any other value (number, boolean, null,
  object, array) as its compact JSON text exactly as stored: `42`, `1.10`, `true`, `null`,
  `{"a":[1,2]}`.

Connect refuses a Lambda response over 32 KB, which would send the flow to its Error branch after
three retries. So the response never exceeds `CONNECT_RESPONSE_LIMIT` bytes, measured as the Lambda
runtime serialises it (ASCII-escaped JSON, the larger encoding): flat attributes that do not fit are
left out (the rest still come, in document order), and when even `body` alone does not fit the
answer is `{"statusCode": 413, "body": "\\"Data too large\\""}`, so the flow sees a clear status
instead of an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

CONNECT_RESPONSE_LIMIT = 32 * 1024
RESERVED_KEYS = frozenset({"statusCode", "body"})

NOT_FOUND: dict[str, Any] = {"statusCode": 404, "body": json.dumps("Data not found")}
TOO_LARGE: dict[str, Any] = {"statusCode": 413, "body": json.dumps("Data too large")}
INVALID_CONTACT_ID: dict[str, Any] = {"statusCode": 400, "body": json.dumps("Invalid contactId")}

_INVALID_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
_VALID_KEY = re.compile(r"[A-Za-z0-9_-]+")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    payload: dict[str, Any]
    omitted_keys: int = 0  # flat attributes left out to stay under the limit

    @property
    def too_large(self) -> bool:
        return bool(self.payload["statusCode"] == TOO_LARGE["statusCode"])


def found_response(metadata: str, *, limit: int = CONNECT_RESPONSE_LIMIT) -> ConnectResponse:
    """The answer for stored `metadata` (a JSON object's text), never larger than `limit` bytes."""
    payload: dict[str, Any] = {"statusCode": 200, "body": metadata}
    size = _size(payload)
    if size > limit:
        return ConnectResponse(dict(TOO_LARGE))
    omitted = 0
    for name, value in flat_attributes(metadata).items():
        # json.dumps's default separators: ", " before each further member, ": " inside it.
        added = len(json.dumps(name)) + len(json.dumps(value)) + 4
        if size + added > limit:
            omitted += 1
            continue
        payload[name] = value
        size += added
    return ConnectResponse(payload, omitted_keys=omitted)


def flat_attributes(metadata: str) -> dict[str, str]:
    """Each top-level key of `metadata` as a Connect attribute name and a string value, in document order."""
    members = list(_top_level_members(metadata))
    valid_as_is = {key for key, _ in members if _VALID_KEY.fullmatch(key)}
    attributes: dict[str, str] = {}
    for key, value in members:
        name = _INVALID_KEY_CHARACTERS.sub("_", key)
        if not name or name in RESERVED_KEYS or name in attributes:
            continue
        if name != key and name in valid_as_is:
            continue  # the key that is valid as it is wins
        attributes[name] = value
    return attributes


def _top_level_members(text: str) -> Iterator[tuple[str, str]]:
    """(key, rendered value) for each member of the JSON object `text`, in order; none when `text` is
    another JSON value (the reference setup kept a body that was not JSON as a string)."""
    start = _skip_whitespace(text, 0)
    if not text.startswith("{", start):
        return
    index = _skip_whitespace(text, start + 1)  # past "{"
    if text[index] == "}":
        return
    while True:
        key, index = scanstring(text, index + 1)  # from past the opening quote
        start = _skip_whitespace(text, _skip_whitespace(text, index) + 1)  # past ":"
        value, index = _decoder.raw_decode(text, start)
        yield key, value if isinstance(value, str) else text[start:index]
        index = _skip_whitespace(text, index)
        if text[index] == "}":
            return
        index = _skip_whitespace(text, index + 1)  # past ","


def _skip_whitespace(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]  # "*" always matches


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload))
