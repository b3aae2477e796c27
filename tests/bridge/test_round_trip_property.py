"""Property: any JSON object the bot sends is what the flow gets back, exactly, through the real handlers."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_connect.bridge import container, retrieve, store
from tests.conftest import context, load_event

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
objects = st.dictionaries(st.text(), values, max_size=8)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: same types (1 is not 1.0), same float bits (0.0 is not -0.0), same order of keys."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return isinstance(b, float) and a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


def round_trip(document: dict[str, Any], *, ensure_ascii: bool) -> dict[str, Any]:
    event = load_event("apigw-store-request.json")
    event["body"] = json.dumps(document, ensure_ascii=ensure_ascii)
    stored = store.lambda_handler(event, context())
    assert stored["statusCode"] == 200, stored["body"]
    answer = retrieve.lambda_handler(load_event("connect-retrieve-event.json"), context())
    assert answer["statusCode"] == 200
    result: dict[str, Any] = json.loads(answer["body"])
    return result


@pytest.mark.parametrize("backend", ["sqlite", "dynalite"])
def test_any_object_round_trips_exactly(backend: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(f"{backend}_env")
    container.reset()

    @settings(
        max_examples=150 if backend == "sqlite" else 60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(objects, st.booleans())
    def check(document: dict[str, Any], ensure_ascii: bool) -> None:
        assert same(round_trip(document, ensure_ascii=ensure_ascii), document)

    check()


def test_documented_edge_values_round_trip(sqlite_env: str) -> None:
    document = {
        "max_safe_plus_one": 2**53 + 1,
        "huge": 10**40,
        "tiny": 5e-324,
        "negative_zero": -0.0,
        "float_like_int": 1.0,
        "unicode": "名前 Zoë 👋 \u2028",
        "escapes": 'quote " backslash \\ newline \n',
        "null": None,
        "flags": [True, False],
        "nested": {"deep": [[[{"x": [1.5]}]]]},
        "": "empty key",
    }
    assert same(round_trip(document, ensure_ascii=False), document)
