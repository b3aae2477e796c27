"""What the retrieve function returns to Connect: the reference body plus flat attributes, under 32 KB."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given

from kore_connect.bridge.attributes import CONNECT_RESPONSE_LIMIT, flat_attributes, found_response
from kore_connect.bridge.payload import compact
from tests.bridge.test_payload import json_objects

CONNECT_KEY_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_body_is_the_stored_text_and_keys_come_flat() -> None:
    stored = (
        '{"x_metadata":"Hello from Kore","kore-instanceSessionId":"6744a1f2","n":1.10,"ok":true,"none":null}'
    )
    response = found_response(stored).payload
    assert response == {
        "statusCode": 200,
        "body": stored,
        "x_metadata": "Hello from Kore",
        "kore-instanceSessionId": "6744a1f2",
        "n": "1.10",
        "ok": "true",
        "none": "null",
    }


def test_nested_values_are_rendered_as_their_compact_json() -> None:
    stored = '{"slots":{"amount":42.50,"tags":["a","b"]},"list":[1,{"k":null}],"s":"{not json}"}'
    assert flat_attributes(stored) == {
        "slots": '{"amount":42.50,"tags":["a","b"]}',
        "list": '[1,{"k":null}]',
        "s": "{not json}",
    }


def test_keys_are_sanitised_to_connects_charset() -> None:
    stored = compact('{"customer name": "Ann", "é": 1, "a.b/c": 2, "": 3, "ok-key_1": 4}')
    assert flat_attributes(stored) == {"customer_name": "Ann", "_": "1", "a_b_c": "2", "ok-key_1": "4"}


def test_a_valid_key_wins_over_one_that_only_sanitises_to_it() -> None:
    stored = '{"a b":"sanitised","a_b":"exact","c d":"first","c.d":"second"}'
    assert flat_attributes(stored) == {"a_b": "exact", "c_d": "first"}


def test_status_code_and_body_are_never_overwritten() -> None:
    stored = '{"statusCode":500,"body":"evil","status Code":1}'
    response = found_response(stored).payload
    assert response["statusCode"] == 200
    assert response["body"] == stored
    assert response["status_Code"] == "1"


def test_whitespace_in_stored_text_is_tolerated() -> None:
    assert flat_attributes('{ "a" : [ 1, 2 ] , "b" :"x" }') == {"a": "[ 1, 2 ]", "b": "x"}
    assert flat_attributes("{ }") == {}


def test_flat_attributes_that_do_not_fit_are_left_out_and_the_rest_kept() -> None:
    # GIVEN metadata whose body fits but whose body plus every flat copy would not
    stored = json.dumps({"big": "x" * 20_000, "small": "kept"}, separators=(",", ":"))
    response = found_response(stored)
    # THEN the large copy is dropped, the small one kept, and the body is whole
    assert response.omitted_keys == 1
    assert response.payload["body"] == stored
    assert response.payload["small"] == "kept"
    assert "big" not in response.payload
    assert len(json.dumps(response.payload)) <= CONNECT_RESPONSE_LIMIT


def test_a_body_that_cannot_fit_answers_413() -> None:
    stored = json.dumps({"big": "x" * 33_000})
    response = found_response(stored)
    assert response.too_large
    assert response.payload == {"statusCode": 413, "body": '"Data too large"'}


def test_non_ascii_is_measured_as_the_runtime_escapes_it() -> None:
    # 6,000 CJK characters are 18 KB in UTF-8 but 36 KB as \\uXXXX escapes
    stored = json.dumps({"text": "語" * 6_000}, ensure_ascii=False)
    assert len(stored.encode()) < CONNECT_RESPONSE_LIMIT
    assert found_response(stored).too_large


@given(json_objects)
def test_any_stored_object_yields_a_valid_response(document: dict[str, Any]) -> None:
    stored = compact(json.dumps(document))
    response = found_response(stored, limit=2_000)
    payload = response.payload
    assert len(json.dumps(payload)) <= 2_000
    if response.too_large:
        return
    assert json.loads(payload["body"]) == document
    for name, value in payload.items():
        assert set(name) <= CONNECT_KEY_CHARACTERS
        if name not in ("statusCode", "body"):
            assert isinstance(value, str)
    # every flat value is the value itself (strings) or its JSON text (anything else)
    originals = {
        key.translate({ord(c): "_" for c in key if c not in CONNECT_KEY_CHARACTERS}): v
        for key, v in reversed(document.items())
    }
    for name, value in flat_attributes(stored).items():
        original = document.get(name, originals.get(name))
        assert value == original if isinstance(original, str) else json.loads(value) == original
