"""Placeholders deployment templates leave in flows (`${QueueArn}`), found and filled as data."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.contactflow.placeholders import BadAssignment, fill, parse_assignments, placeholders


def test_placeholders_are_found_in_values_and_keys_at_any_depth() -> None:
    document = {
        "a": "arn:aws:lambda:${REGION}:${ACCT_ID}:function:f",
        "b": [{"${Key}": 1}, "plain", 7, None],
        "c": "$.Attributes.x",  # a reference, not a placeholder
    }
    assert placeholders(document) == {"REGION", "ACCT_ID", "Key"}


def test_fill_replaces_the_given_names_and_leaves_the_others() -> None:
    document = {"q": "${QueueArn}", "f": "arn:${REGION}:${ACCT_ID}", "${Key}": ["${REGION}"]}
    filled = fill(document, {"REGION": "eu-west-2", "Key": "k", "QueueArn": "arn:q"})
    assert filled == {"q": "arn:q", "f": "arn:eu-west-2:${ACCT_ID}", "k": ["eu-west-2"]}
    assert document["q"] == "${QueueArn}"  # the document given is not changed


@given(
    st.recursive(
        st.text() | st.integers() | st.none(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_filling_nothing_changes_nothing(document: object) -> None:
    assert fill(document, {}) == document


def test_assignments_are_read_and_bad_ones_named() -> None:
    assert parse_assignments(["A=1", "B.c=x=y", "C="]) == {"A": "1", "B.c": "x=y", "C": ""}
    for bad in ("A", "=1", "A B=1", "A=${B}"):
        with pytest.raises(BadAssignment, match=rf"^{re.escape(repr(bad))}: "):
            parse_assignments([bad])
