"""koreRetrieveSessionMetadata, invoked from the Connect flow, on every backend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kore_connect.bridge import container, retrieve
from kore_connect.sessions import SessionStoreError
from tests.conftest import CONTACT_ID, context, load_event
from tests.peers import free_port

METADATA = '{"x_metadata":"Hello from Kore","kore-instanceSessionId":"6744a1f2c0ffee0011223344","score":0.87}'


def invoke(event: dict[str, Any] | None = None) -> dict[str, Any]:
    event = event if event is not None else load_event("connect-retrieve-event.json")
    response = retrieve.lambda_handler(event, context("koreRetrieveSessionMetadata"))
    json.dumps(response)  # what the runtime does; must not fail
    return response


def put(metadata: str = METADATA, contact_id: str = CONTACT_ID, ttl: int = 3600) -> None:
    container.session_store().put(contact_id, metadata, ttl_seconds=ttl)


def test_stored_metadata_comes_back_as_the_reference_flow_reads_it(backend_env: str) -> None:
    # GIVEN the bot's metadata stored for the fixture contact
    put()
    # WHEN the flow invokes the function with contactId = $.ContactId
    response = invoke()
    # THEN statusCode 200, body the metadata JSON (customData = $.External.body), and flat keys beside it
    assert response == {
        "statusCode": 200,
        "body": METADATA,
        "x_metadata": "Hello from Kore",
        "kore-instanceSessionId": "6744a1f2c0ffee0011223344",
        "score": "0.87",
    }


def test_nothing_stored_is_the_reference_404(backend_env: str) -> None:
    assert invoke() == {"statusCode": 404, "body": '"Data not found"'}


def test_an_expired_record_is_not_found_before_any_sweeper_runs(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(ttl=60)
    real_time = __import__("time").time
    monkeypatch.setattr("kore_connect.sessions.base.time.time", lambda: real_time() + 61)
    container.reset()  # the store's clock is bound when it is built
    assert invoke() == {"statusCode": 404, "body": '"Data not found"'}


def test_contact_id_falls_back_to_the_contacts_own_id(sqlite_env: str) -> None:
    put()
    event = load_event("connect-retrieve-event.json")
    event["Details"]["Parameters"] = {}
    assert invoke(event)["statusCode"] == 200


def test_the_parameter_wins_over_the_contacts_own_id(sqlite_env: str) -> None:
    other = "0b6a7c1e-9d2f-4a38-8e51-3f2c4d5e6a7b"
    put('{"who":"other"}', contact_id=other)
    event = load_event("connect-retrieve-event.json")
    event["Details"]["Parameters"] = {"contactId": other}
    assert invoke(event)["body"] == '{"who":"other"}'


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Details": None},
        {"Details": {"Parameters": {"contactId": "not-a-uuid"}, "ContactData": {}}},
        {"Details": {"Parameters": {}, "ContactData": {"ContactId": 42}}},
        {"Details": {"Parameters": {}, "ContactData": "5d3b9a2a-afe5-485f-a07c-b763c635156b"}},
    ],
)
def test_an_event_without_a_valid_contact_id_is_a_400(sqlite_env: str, event: dict[str, Any]) -> None:
    assert invoke(event) == {"statusCode": 400, "body": '"Invalid contactId"'}


def test_a_storage_failure_raises_so_connect_takes_the_error_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "koreRetrieveSessionMetadata")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SessionStoreError):
        invoke()


def test_metadata_too_large_for_connect_answers_413(sqlite_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    put(json.dumps({"quote": '"' * 20_000}))  # 20 KB stored, 40 KB once escaped in the response
    assert invoke() == {"statusCode": 413, "body": '"Data too large"'}
