"""The switch from the reference setup (docs/migration.md): with KORE_REFERENCE_TABLE_NAME set, the
retrieve function also finds what the reference store function wrote (`kore_session_data`), so a
call in flight at the switch keeps its metadata. On moto and on dynalite over HTTP; the reference
items are written as the reference store writes them (boto3's Table.put_item of the parsed body)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from kore_connect import config
from kore_connect.bridge import container, retrieve, store
from kore_connect.errors import ConfigError
from kore_connect.sessions import SessionStoreError
from kore_connect.sessions.reference import json_text
from tests.conftest import CONTACT_ID, context, load_event

KORE_SAYS = {"x_metadata": "Hello from Kore", "kore-instanceSessionId": "6593f0a8c5f2", "turns": 7}


@pytest.fixture(params=["moto", "dynalite"])
def reference_table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Our table (the backend's) and the reference setup's, named in KORE_REFERENCE_TABLE_NAME."""
    request.getfixturevalue(f"{request.param}_env")
    name = f"reference-{os.urandom(4).hex()}"
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "contactId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "contactId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.wait_until_exists()
    monkeypatch.setenv(config.REFERENCE_TABLE_NAME, name)
    container.reset()
    yield table
    container.reset()


def reference_store(table: Any, contact_id: str, body: str) -> None:
    """What the reference store function does with a request body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = body
    table.put_item(Item={"contactId": contact_id, "kore_session_data": data})


def retrieve_contact(contact_id: str = CONTACT_ID) -> dict[str, Any]:
    event = load_event("connect-retrieve-event.json")
    event["Details"]["Parameters"]["contactId"] = contact_id
    return retrieve.lambda_handler(event, context("koreRetrieveSessionMetadata"))


def test_metadata_the_reference_store_kept_is_found_numbers_and_all(reference_table: Any) -> None:
    # GIVEN the bot still posting to the reference API: its item is in the reference table only
    reference_store(reference_table, CONTACT_ID, json.dumps(KORE_SAYS))
    # WHEN the flow, already switched, calls kore-connect's retrieve function
    answer = retrieve_contact()
    # THEN the metadata comes back (the reference's own retrieve failed on the number)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == KORE_SAYS
    assert answer["x_metadata"] == "Hello from Kore" and answer["turns"] == "7"


def test_a_body_that_was_not_json_comes_back_as_the_reference_answered_it(reference_table: Any) -> None:
    reference_store(reference_table, CONTACT_ID, "caller wants billing")
    answer = retrieve_contact()
    assert answer["statusCode"] == 200
    assert answer["body"] == json.dumps("caller wants billing")


def test_kore_connects_own_item_wins_over_the_reference_one(reference_table: Any) -> None:
    reference_store(reference_table, CONTACT_ID, json.dumps({"from": "reference"}))
    event = load_event("apigw-store-request.json")
    event["body"] = json.dumps({"from": "kore-connect"})
    assert store.lambda_handler(event, context("koreStoreSessionMetadata"))["statusCode"] == 200
    assert json.loads(retrieve_contact()["body"]) == {"from": "kore-connect"}


def test_a_contact_in_neither_table_is_not_found(reference_table: Any) -> None:
    reference_store(reference_table, "0b7e4f7c-3d1a-4a52-9f0e-2c8d6b1a9e33", json.dumps(KORE_SAYS))
    assert retrieve_contact()["statusCode"] == 404


def test_a_reference_item_kore_connect_cannot_read_fails_the_call_rather_than_guess(
    reference_table: Any,
) -> None:
    # GIVEN an item no reference store wrote: a string set
    reference_table.put_item(Item={"contactId": CONTACT_ID, "kore_session_data": {"a", "b"}})
    # THEN the function fails (Connect takes the block's Error branch), and the item is left as it was
    with pytest.raises(SessionStoreError, match="the reference item is malformed"):
        retrieve_contact()
    assert reference_table.get_item(Key={"contactId": CONTACT_ID})["Item"]["kore_session_data"] == {"a", "b"}


def test_a_reference_table_that_is_not_there_fails_the_call(
    reference_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.REFERENCE_TABLE_NAME, "no-such-table")
    container.reset()
    with pytest.raises(SessionStoreError, match="ResourceNotFoundException"):
        retrieve_contact()


def test_without_the_variable_the_reference_table_is_never_read(moto_env: str) -> None:
    container.reset()
    assert container.reference_table() is None
    assert retrieve_contact()["statusCode"] == 404


@pytest.mark.parametrize("name", ["ab", "koreCcSessions!", "x" * 256])
def test_a_reference_table_name_dynamodb_would_refuse_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=config.REFERENCE_TABLE_NAME):
        config.Settings.from_env({config.REFERENCE_TABLE_NAME: name})


# Anything the reference store could have kept: JSON without floats (boto3 refused those).
JSON_WITHOUT_FLOATS = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**37), max_value=10**37) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_WITHOUT_FLOATS)
def test_whatever_the_reference_kept_reads_back_as_the_same_json(value: Any) -> None:
    attribute = TypeSerializer().serialize(value)
    assert json.loads(json_text(attribute)) == value
