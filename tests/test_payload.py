"""What the store accepts as metadata, and the exact text it keeps."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.bridge.payload import MetadataError, compact, metadata_from_body

LIMIT = 32 * 1024


def accept(body: str, *, b64: bool = False, limit: int = LIMIT) -> str:
    return metadata_from_body(body, is_base64_encoded=b64, max_bytes=limit)


def refuse(body: str | None, *, b64: bool = False, limit: int = LIMIT) -> MetadataError:
    with pytest.raises(MetadataError) as raised:
        metadata_from_body(body, is_base64_encoded=b64, max_bytes=limit)
    return raised.value


def test_numbers_keep_their_exact_text() -> None:
    body = '{"f": 0.1, "g": 1.10, "e": 1e400, "big": 123456789012345678901234567890, "neg": -0.0}'
    assert accept(body) == '{"f":0.1,"g":1.10,"e":1e400,"big":123456789012345678901234567890,"neg":-0.0}'


def test_whitespace_inside_strings_is_kept() -> None:
    assert accept('{ "a b" : " x \\" y\\n " ,\n "c":[ 1 , 2 ] }') == '{"a b":" x \\" y\\n ","c":[1,2]}'


def test_a_base64_body_is_decoded() -> None:
    body = base64.b64encode('{"name": "Zoë"}'.encode()).decode()
    assert accept(body, b64=True) == '{"name":"Zoë"}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "empty"),
        ("", "empty"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ('"text"', "not a string"),
        ("42", "not a number"),
        ("null", "not null"),
        ("true", "not a boolean"),
        (
            "{'single': 'quotes'}",
            "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
        ('{"a": 1,}', "not valid JSON"),
        ("x_metadata=Hello", "not valid JSON"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ('{"a": 1, "a": 2}', 'the key "a" more than once'),
        ('{"o": {"k": 1, "k": 1}}', 'the key "k" more than once'),
        ('{"a": "\\ud800"}', "unpaired surrogate"),
        ('{"a": 1} trailing', "Extra data"),
        ("\ufeff{}", "BOM"),
        ('{"deep": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ],
)
def test_bad_bodies_get_a_precise_400(body: str | None, message: str) -> None:
    error = refuse(body)
    assert error.status == 400
    assert message in error.message


def test_bad_base64_gets_a_400() -> None:
    error = refuse("not base64!!", b64=True)
    assert (error.status, error.message) == (400, "the body is marked base64-encoded but is not valid base64")


def test_base64_of_bytes_that_are_not_utf8_gets_a_400() -> None:
    error = refuse(base64.b64encode(b'{"a": "\xff"}').decode(), b64=True)
    assert (error.status, error.message) == (400, "the body is not valid UTF-8")


def test_the_size_limit_counts_utf8_bytes() -> None:
    # 10 characters, 20 bytes
    body = '{"a":"' + "é" * 7 + '"}'
    assert len(body.encode()) == 22
    assert accept(body, limit=22)
    error = refuse(body, limit=21)
    assert (error.status, error.message) == (413, "the body is larger than 21 bytes")


def test_the_size_limit_applies_to_decoded_base64() -> None:
    raw = json.dumps({"pad": "x" * 100}).encode()
    body = base64.b64encode(raw).decode()
    assert accept(body, b64=True, limit=len(raw))
    assert refuse(body, b64=True, limit=len(raw) - 1).status == 413


def test_a_huge_body_is_refused_before_parsing() -> None:
    assert refuse('{"a":"' + "x" * 10_000_000 + '"}').status == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


@given(json_objects, st.sampled_from([None, 2]), st.booleans())
def test_any_object_is_kept_exactly(document: dict[str, Any], indent: int | None, ascii_only: bool) -> None:
    body = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    stored = accept(body, limit=10**7)
    assert json.loads(stored) == document
    # compact and canonical: re-serialising what we stored gives the same text
    assert stored == compact(stored)
    assert stored == compact(json.dumps(json.loads(stored), ensure_ascii=ascii_only))
