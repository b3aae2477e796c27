"""Storage failures surface as SessionStoreError / SessionStoreUnavailable, never as a silent success."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from kore_connect.config import Backend, Settings
from kore_connect.sessions import SessionStoreError, SessionStoreUnavailable, open_session_store
from kore_connect.sessions.dynamodb import CLIENT_CONFIG, DynamoDBSessionStore, dynamodb_client, ensure_table
from kore_connect.sessions.sqlite import SQLiteSessionStore
from tests.conftest import CONTACT_ID
from tests.peers import Dynalite, SilentPeer, free_port


def test_an_unreachable_dynamodb_is_unavailable() -> None:
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{free_port()}")
    store = DynamoDBSessionStore("koreCcSessions", client=client)
    with pytest.raises(SessionStoreUnavailable, match="unreachable"):
        store.put(CONTACT_ID, "{}", ttl_seconds=60)
    with pytest.raises(SessionStoreUnavailable):
        store.get(CONTACT_ID)


def test_a_missing_table_is_unavailable(dynalite: Dynalite) -> None:
    client = boto3.client("dynamodb", endpoint_url=dynalite.endpoint)
    store = DynamoDBSessionStore("no-such-table", client=client)
    with pytest.raises(SessionStoreUnavailable) as raised:
        store.put(CONTACT_ID, "{}", ttl_seconds=60)
    assert str(raised.value) == "DynamoDB refused storing the session: ResourceNotFoundException"
    with pytest.raises(SessionStoreUnavailable) as raised:
        store.get(CONTACT_ID)
    assert str(raised.value) == "DynamoDB refused reading the session: ResourceNotFoundException"


@pytest.mark.dynalite
def test_a_stopped_dynalite_makes_the_store_unavailable_until_it_returns() -> None:
    # GIVEN a store working against a real server
    server = Dynalite().start()
    client = boto3.client("dynamodb", endpoint_url=server.endpoint)
    ensure_table(client, "sessions")
    store = DynamoDBSessionStore("sessions", client=client)
    store.put(CONTACT_ID, '{"a":1}', ttl_seconds=60)
    # WHEN the server goes away
    server.stop()
    # THEN reads and writes fail loudly
    with pytest.raises(SessionStoreUnavailable):
        store.get(CONTACT_ID)
    with pytest.raises(SessionStoreUnavailable):
        store.put(CONTACT_ID, '{"a":2}', ttl_seconds=60)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ProvisionedThroughputExceededException", SessionStoreUnavailable),
        ("ThrottlingException", SessionStoreUnavailable),
        ("RequestLimitExceeded", SessionStoreUnavailable),
        ("InternalServerError", SessionStoreUnavailable),
        ("ValidationException", SessionStoreError),
        ("AccessDeniedException", SessionStoreError),
    ],
)
def test_dynamodb_error_codes_are_classified(code: str, expected: type[Exception]) -> None:
    client = boto3.client("dynamodb")
    store = DynamoDBSessionStore("koreCcSessions", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("put_item", service_error_code=code, http_status_code=400)
        with pytest.raises(expected) as raised:
            store.put(CONTACT_ID, "{}", ttl_seconds=60)
    assert type(raised.value) is expected
    assert code in str(raised.value)


def test_an_item_not_written_by_us_is_refused_not_guessed(dynalite: Dynalite) -> None:
    # GIVEN an item in the reference layout (attributes spread over the item, no metadata text)
    client = boto3.client("dynamodb", endpoint_url=dynalite.endpoint)
    ensure_table(client, "legacy")
    client.put_item(TableName="legacy", Item={"contactId": {"S": CONTACT_ID}, "x_metadata": {"S": "hi"}})
    # THEN reading it is an error, not an empty or partial answer, naming what is missing
    with pytest.raises(SessionStoreError) as raised:
        DynamoDBSessionStore("legacy", client=client).get(CONTACT_ID)
    assert str(raised.value) == "the session item is malformed (KeyError: 'metadata')"


def test_a_table_that_cannot_be_created_says_so() -> None:
    # GIVEN credentials that may not describe or create tables
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_table", service_error_code="AccessDeniedException", http_status_code=400
    )
    with stubber, pytest.raises(SessionStoreError) as raised:
        ensure_table(client, "koreCcSessions")
    assert str(raised.value) == "DynamoDB refused creating the table for the session: AccessDeniedException"


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    # GIVEN another writer holding the database's write lock
    store = SQLiteSessionStore(tmp_path / "s.db", busy_timeout=0.1)
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # THEN a write gives up after the busy timeout, as unavailable
        with pytest.raises(
            SessionStoreUnavailable, match=r"^SQLite failed while storing the session: database is locked$"
        ):
            store.put(CONTACT_ID, "{}", ttl_seconds=60)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # AND works again once the lock is gone
    store.put(CONTACT_ID, "{}", ttl_seconds=60)
    assert store.get(CONTACT_ID) is not None


def test_a_sqlite_path_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SessionStoreError, match="cannot create the folder"):
        SQLiteSessionStore(tmp_path / "file" / "s.db")


def test_the_factory_opens_the_backend_settings_name(tmp_path: Path) -> None:
    sqlite_store = open_session_store(Settings(backend=Backend.SQLITE, sqlite_path=tmp_path / "x.db"))
    assert isinstance(sqlite_store, SQLiteSessionStore)
    dynamo_store = open_session_store(Settings(backend=Backend.DYNAMODB, table_name="t"))
    assert isinstance(dynamo_store, DynamoDBSessionStore)
    assert dynamo_store.table_name == "t"


@pytest.mark.dynalite
def test_ensure_table_waits_for_a_table_another_process_is_still_creating() -> None:
    # GIVEN a server where a new table stays CREATING for a while, and one just created by another
    server = Dynalite(create_table_ms=1500).start()
    try:
        client = boto3.client("dynamodb", endpoint_url=server.endpoint)
        client.create_table(
            TableName="racing",
            AttributeDefinitions=[{"AttributeName": "contactId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "contactId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        assert client.describe_table(TableName="racing")["Table"]["TableStatus"] == "CREATING"
        # WHEN we ensure it (and, racing, try to create it too)
        ensure_table(client, "racing")
        ensure_table(client, "racing")  # and again: a no-op once it is there
        # THEN it is ready for items as soon as ensure_table returns
        assert client.describe_table(TableName="racing")["Table"]["TableStatus"] == "ACTIVE"
        store = DynamoDBSessionStore("racing", client=client)
        store.put(CONTACT_ID, '{"x_metadata": "after the race"}', ttl_seconds=60)
        record = store.get(CONTACT_ID)
        assert record is not None and record.metadata == '{"x_metadata": "after the race"}'
    finally:
        server.stop()


# What the mutation run (./dev mutate, docs/testing.md) found untested in the stores.


def test_expired_rows_leave_the_sqlite_file_on_the_first_write_of_each_minute(tmp_path: Path) -> None:
    # GIVEN a store on a clock the test moves, holding one session that expires after a second
    now = [1000.0]
    store = SQLiteSessionStore(tmp_path / "s.db", clock=lambda: now[0])
    store.put("0b6a7c1e-9d2f-4a38-8e51-3f2c4d5e6a7b", "{}", ttl_seconds=1)

    def rows() -> int:
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as reader:
            return int(reader.execute("SELECT count(*) FROM sessions").fetchone()[0])

    # WHEN other calls are stored within the minute, it stays in the file (not read: it expired)
    now[0] += 59
    store.put(CONTACT_ID, "{}", ttl_seconds=60)
    assert rows() == 2
    # THEN the first write a minute after the last sweep removes it
    now[0] += 1
    store.put(CONTACT_ID, "{}", ttl_seconds=60)
    assert rows() == 1


def test_a_closed_sqlite_store_opens_again_when_used(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    store.put(CONTACT_ID, '{"a":1}', ttl_seconds=60)
    store.close()
    record = store.get(CONTACT_ID)
    assert record is not None and record.metadata == '{"a":1}'


def test_our_dynamodb_client_tries_a_hanging_endpoint_twice_then_says_unavailable() -> None:
    # docs/reliability.md: "each read tried twice"
    peer = SilentPeer()
    try:
        store = DynamoDBSessionStore("koreCcSessions", client=dynamodb_client(peer.endpoint))
        with pytest.raises(SessionStoreUnavailable):
            store.get(CONTACT_ID)
        assert len(peer.accepted) == CLIENT_CONFIG.retries["total_max_attempts"] == 2
    finally:
        peer.close()


# ---------------------------------------------------------------- ensure_table, call by call


def stubbed_client() -> tuple[Any, Stubber]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def ensure_stubbed(client: Any, stubber: Stubber, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """ensure_table against exactly the calls stubbed; the waiter's pauses, recorded, not slept."""
    pauses: list[float] = []
    monkeypatch.setattr("botocore.waiter.time.sleep", pauses.append)
    with stubber:
        ensure_table(client, "koreCcSessions")
        stubber.assert_no_pending_responses()
    return pauses


TTL_ON = {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expiresAt"}}


def test_an_active_table_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stubber = stubbed_client()
    stubber.add_response(
        "describe_table", {"Table": {"TableStatus": "ACTIVE"}}, {"TableName": "koreCcSessions"}
    )
    assert ensure_stubbed(client, stubber, monkeypatch) == []  # no create, no wait, no TTL call


def test_a_table_another_process_is_creating_is_waited_for_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no table when we look, and another process creating it when we try
    client, stubber = stubbed_client()
    stubber.add_client_error(
        "describe_table", service_error_code="ResourceNotFoundException", http_status_code=400
    )
    stubber.add_client_error(
        "create_table", service_error_code="ResourceInUseException", http_status_code=400
    )
    stubber.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
    stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
    stubber.add_response(
        "update_time_to_live", TTL_ON, {"TableName": "koreCcSessions", **TTL_ON}
    )  # THEN TTL is turned on for expiresAt, after one pause of 1 s (not boto3's 20 s)
    assert ensure_stubbed(client, stubber, monkeypatch) == [1]


def test_a_missing_table_is_created_as_the_template_does(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stubber = stubbed_client()
    stubber.add_client_error(
        "describe_table", service_error_code="ResourceNotFoundException", http_status_code=400
    )
    stubber.add_response(
        "create_table",
        {},
        {
            "TableName": "koreCcSessions",
            "AttributeDefinitions": [{"AttributeName": "contactId", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "contactId", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
    stubber.add_response("update_time_to_live", TTL_ON)
    assert ensure_stubbed(client, stubber, monkeypatch) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", "TimeToLive is already enabled"),  # another process got there first
        ("UnknownOperationException", "dynalite has no TTL"),  # expiry is enforced on read anyway
    ],
)
def test_a_ttl_already_on_or_not_offered_is_fine(
    code: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = stubbed_client()
    stubber.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
    stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
    stubber.add_client_error("update_time_to_live", service_error_code=code, service_message=message)
    assert ensure_stubbed(client, stubber, monkeypatch) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", "TimeToLive is disabled for this table"),  # not "already enabled"
        ("AccessDeniedException", "TimeToLive is already enabled"),  # the words, from another error
    ],
)
def test_a_ttl_that_cannot_be_turned_on_is_an_error(
    code: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = stubbed_client()
    stubber.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
    stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})
    stubber.add_client_error("update_time_to_live", service_error_code=code, service_message=message)
    with pytest.raises(SessionStoreError) as raised:
        ensure_stubbed(client, stubber, monkeypatch)
    assert str(raised.value) == f"DynamoDB refused creating the table for the session: {code}"


def test_a_table_that_never_becomes_active_is_given_up_after_30_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, stubber = stubbed_client()
    for _ in range(31):  # one to find it CREATING, then the waiter's 30
        stubber.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
    with pytest.raises(SessionStoreUnavailable) as raised:
        ensure_stubbed(client, stubber, monkeypatch)
    assert str(raised.value).startswith(
        "DynamoDB unreachable while creating the table for the session: Waiter"
    )
    assert "Max attempts exceeded" in str(raised.value)
    stubber.assert_no_pending_responses()  # it looked 30 times: not boto3's 25


def test_a_read_is_strongly_consistent_and_asks_for_our_attributes_only() -> None:
    # docs/decisions.md: the flow reads a few seconds after the bot wrote; an eventually consistent
    # read may miss it
    client, stubber = stubbed_client()
    stubber.add_response(
        "get_item",
        {},
        {
            "TableName": "koreCcSessions",
            "Key": {"contactId": {"S": CONTACT_ID}},
            "ConsistentRead": True,
            "ProjectionExpression": "contactId, metadata, storedAt, expiresAt",
        },
    )
    with stubber:
        assert DynamoDBSessionStore("koreCcSessions", client=client).get(CONTACT_ID) is None
        stubber.assert_no_pending_responses()


def test_a_ttl_refusal_without_a_message_is_an_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    client, stubber = stubbed_client()
    stubber.add_response("describe_table", {"Table": {"TableStatus": "CREATING"}})
    stubber.add_response("describe_table", {"Table": {"TableStatus": "ACTIVE"}})

    def refuse_without_a_message(**_: Any) -> None:  # a DynamoDB-compatible server may leave it out
        raise ClientError({"Error": {"Code": "ValidationException"}}, "UpdateTimeToLive")

    monkeypatch.setattr(client, "update_time_to_live", refuse_without_a_message)
    with pytest.raises(SessionStoreError) as raised:
        ensure_stubbed(client, stubber, monkeypatch)
    assert str(raised.value) == "DynamoDB refused creating the table for the session: ValidationException"
