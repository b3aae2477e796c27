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


NOT_JSON = "the body is not valid JSON: "


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "the body is empty; send the metadata as a JSON object"),
        ("", "the body is empty; send the metadata as a JSON object"),
        ("[1, 2]", "the body must be a JSON object, not an array"),
        ('"text"', "the body must be a JSON object, not a string"),
        ("42", "the body must be a JSON object, not a number"),
        ("null", "the body must be a JSON object, not null"),
        ("true", "the body must be a JSON object, not a boolean"),
        (
            "{'single': 'quotes'}",
            NOT_JSON + "Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
        ('{"a": 1,}', NOT_JSON + "Expecting property name enclosed in double quotes (line 1, column 9)"),
        ("x_metadata=Hello", NOT_JSON + "Expecting value (line 1, column 1)"),
        ('{"a": NaN}', NOT_JSON + "NaN is not a JSON number"),
        ('{"a": Infinity}', NOT_JSON + "Infinity is not a JSON number"),
        ('{"a": 1, "a": 2}', 'the body has the key "a" more than once in one object'),
        ('{"b": 1, "a": 2, "a": 3}', 'the body has the key "a" more than once in one object'),  # not "b"
        ('{"o": {"k": 1, "k": 1}}', 'the body has the key "k" more than once in one object'),
        ('{"a": "\\ud800"}', "the body contains a \\u escape of an unpaired surrogate"),
        ('{"a": 1} trailing', NOT_JSON + "Extra data (line 1, column 10)"),
        ("\ufeff{}", NOT_JSON + "Unexpected UTF-8 BOM (decode using utf-8-sig) (line 1, column 1)"),
        ('{"deep": ' + "[" * 5000 + "]" * 5000 + "}", "the body is nested too deeply"),
    ],
)
def test_bad_bodies_get_a_precise_400(body: str | None, message: str) -> None:
    error = refuse(body)
    assert (error.status, error.message) == (400, message)  # the whole sentence the bot's developer reads


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


@pytest.mark.parametrize("limit", [2, 9, LIMIT])
def test_a_body_of_exactly_the_limit_is_kept_and_one_byte_more_is_413(limit: int) -> None:
    exact = "{" + " " * (limit - 2) + "}"
    assert accept(exact, limit=limit) == "{}"
    error = refuse(exact + " ", limit=limit)
    assert (error.status, error.message) == (413, f"the body is larger than {limit} bytes")


def test_a_body_holding_an_unpaired_surrogate_itself_is_not_utf8() -> None:
    # API Gateway hands the body over as text; one with a lone surrogate (not a \u escape of one)
    # has no UTF-8 form at all
    error = refuse('{"a": "\ud800"}')  # the character itself, not an escape of it
    assert (error.status, error.message) == (400, "the body is not valid UTF-8")


def test_the_size_limit_applies_to_decoded_base64() -> None:
    raw = json.dumps({"pad": "x" * 100}).encode()
    body = base64.b64encode(raw).decode()
    assert accept(body, b64=True, limit=len(raw))
    assert refuse(body, b64=True, limit=len(raw) - 1).status == 413


@pytest.mark.parametrize("limit", [*range(2, 10), LIMIT])
def test_base64_is_measured_decoded_at_the_exact_edge(limit: int) -> None:
    # a JSON object of exactly `limit` bytes passes; one byte more is a 413, whatever base64's padding
    exact = "{" + " " * (limit - 2) + "}"
    assert accept(base64.b64encode(exact.encode()).decode(), b64=True, limit=limit) == "{}"
    error = refuse(base64.b64encode(exact.encode() + b" ").decode(), b64=True, limit=limit)
    assert (error.status, error.message) == (413, f"the body is larger than {limit} bytes")
    # a body far too long is refused before it is decoded, with the same answer
    error = refuse("A" * (limit * 2 + 16), b64=True, limit=limit)
    assert (error.status, error.message) == (413, f"the body is larger than {limit} bytes")


@pytest.mark.parametrize("limit", [9, 10, 11, 12])
def test_a_base64_body_longer_than_any_encoding_of_the_limit_is_refused_without_decoding(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN base64 of `limit` bytes: at most (limit + 2) // 3 * 4 characters (and 4 more are let by)
    longest = (limit + 2) // 3 * 4 + 4
    decoded: list[int] = []
    real = base64.b64decode

    def spy(text: str, validate: bool = False) -> bytes:
        decoded.append(len(text))
        return real(text, validate=validate)

    monkeypatch.setattr("kore_connect.bridge.payload.base64.b64decode", spy)
    # THEN a body of that length is decoded (and measured), one character longer is not
    assert refuse("A" * longest, b64=True, limit=limit).status == 413
    assert decoded == [longest]
    assert refuse("A" * (longest + 1), b64=True, limit=limit).status == 413
    assert decoded == [longest]


def test_base64_with_characters_outside_its_alphabet_is_a_400() -> None:
    # a lenient decoder would drop the junk and store what is left
    body = base64.b64encode(b'{"a": 1}').decode()
    error = refuse(body[:4] + "!*" + body[4:], b64=True)
    assert (error.status, error.message) == (400, "the body is marked base64-encoded but is not valid base64")


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


def test_a_number_longer_than_python_converts_is_kept_as_written() -> None:
    # Found by ./dev mutate's triage: int() refuses more than 4,300 digits, and that was a crash (a 500)
    body = '{"a": ' + "1" * 5000 + ', "b": ' + "2" * 5000 + ".5e-3}"
    assert accept(body) == body.replace(" ", "")
