"""From the body the Kore bot POSTs to the metadata text we store (pure, no I/O).

The bot's body must be one JSON object (RFC 8259, and I-JSON's rules: no duplicate keys, no
unpaired surrogates, no NaN/Infinity). It is stored as compact JSON text with every number,
string and key exactly as sent, only the whitespace between tokens removed: so a float, an
integer beyond 2**53 or `1.10` comes back the way the bot wrote it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn

from kore_connect.errors import KoreConnectError


class MetadataError(KoreConnectError):
    """The body cannot be stored; `status` is the HTTP answer (400 or 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NumberText(str):
    """A JSON number as written: what the parser gives for numbers, never converted."""


# A JSON string token, or a run of JSON whitespace outside one.
_STRING_OR_WHITESPACE = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")|[ \t\n\r]+')


def metadata_from_body(body: str | None, *, is_base64_encoded: bool, max_bytes: int) -> str:
    """The compact JSON text of the object in `body`, or MetadataError saying what is wrong with it."""
    text = _body_text(body, is_base64_encoded=is_base64_encoded, max_bytes=max_bytes)
    document = _parse(text)
    if not isinstance(document, dict):
        raise MetadataError(400, f"the body must be a JSON object, not {_json_kind(document)}")
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(400, "the body contains a \\u escape of an unpaired surrogate") from None
    return compact(text)


def compact(text: str) -> str:
    """`text` (valid JSON) without whitespace between tokens; strings and numbers untouched."""
    return _STRING_OR_WHITESPACE.sub(r"\1", text)


def _body_text(body: str | None, *, is_base64_encoded: bool, max_bytes: int) -> str:
    if body is None or body == "":
        raise MetadataError(400, "the body is empty; send the metadata as a JSON object")
    if is_base64_encoded:
        # Every 4 base64 characters carry 3 bytes: refuse oversized bodies before decoding them.
        if len(body) > (max_bytes + 2) // 3 * 4 + 4:
            raise _too_large(max_bytes)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MetadataError(400, "the body is marked base64-encoded but is not valid base64") from None
        if len(raw) > max_bytes:
            raise _too_large(max_bytes)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError(400, "the body is not valid UTF-8") from None
    # A UTF-8 encoding is at least one byte a character: most oversized bodies stop here.
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise MetadataError(400, "the body is not valid UTF-8") from None
    if size > max_bytes:
        raise _too_large(max_bytes)
    return body


def _parse(text: str) -> Any:
    try:
        # Numbers stay text: the document is only checked, and converting one may fail on valid JSON
        # (int() refuses more than 4,300 digits).
        return json.loads(
            text,
            parse_int=NumberText,
            parse_float=NumberText,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise MetadataError(
            400, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise MetadataError(400, "the body is nested too deeply") from None


def _reject_constant(name: str) -> NoReturn:
    raise MetadataError(400, f"the body is not valid JSON: {name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MetadataError(
                    400, f"the body has the key {json.dumps(key)} more than once in one object"
                )
            seen.add(key)
    return document


def _json_kind(value: Any) -> str:
    """What a JSON value other than an object is, as `_parse` returns it (numbers as NumberText)."""
    if isinstance(value, NumberText):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null"


def _too_large(max_bytes: int) -> MetadataError:
    return MetadataError(413, f"the body is larger than {max_bytes} bytes")
