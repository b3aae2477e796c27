"""Claims of the README and the docs that an audit's mutations broke without a test noticing
(issue 20). Each test here names the mutation it catches; each was checked against it."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge import container, retrieve, store
from kore_connect.bridge.attributes import CONNECT_RESPONSE_LIMIT, found_response
from kore_connect.bridge.tokens import EnvironmentTokens, SecretTokens, TokenSourceUnavailable, TokenVerifier
from kore_connect.cli.call import call_problems
from kore_connect.config import Settings
from kore_connect.sessions.dynamodb import DynamoDBSessionStore, ensure_table
from kore_connect.sessions.sqlite import SQLiteSessionStore
from kore_connect.twin.local.report import CallReport
from tests.call_reports import a_report
from tests.conftest import CONTACT_ID, context, load_event
from tests.peers import free_port

# ---------------------------------------------------------------- numbers come back as the bot wrote them

# Numbers a re-serialisation changes: 1.10 -> 1.1, 1E2 -> 100.0, a big float -> 1.2345678901234567e+19.
WRITTEN = (
    '{ "a": 1.10, "b": 12345678901234567890.0, "c": 1E2, "d": -0.0, "e": 1e-7, "f": [0.50, {"g": 2E+3}] }'
)
COMPACT = '{"a":1.10,"b":12345678901234567890.0,"c":1E2,"d":-0.0,"e":1e-7,"f":[0.50,{"g":2E+3}]}'


def test_the_metadata_comes_back_as_the_text_the_bot_wrote(backend_env: str) -> None:
    # mutation: store or retrieve re-serialising the metadata (json.loads then json.dumps)
    event = load_event("apigw-store-request.json")
    event["body"] = WRITTEN
    answer = store.lambda_handler(event, context("koreStoreSessionMetadata"))
    assert answer["statusCode"] == 200
    container.reset()
    found = retrieve.lambda_handler(contact_flow_event(CONTACT_ID), context("koreRetrieveSessionMetadata"))
    assert found["body"] == COMPACT
    assert (found["a"], found["b"], found["c"], found["d"]) == (
        "1.10",
        "12345678901234567890.0",
        "1E2",
        "-0.0",
    )
    assert found["f"] == '[0.50,{"g":2E+3}]'


# ---------------------------------------------------------------- tokens


def _verifier(settings: Settings) -> tuple[TokenVerifier, io.StringIO]:
    buffer = io.StringIO()
    log = logging.getLogger(f"claims-{id(buffer)}")
    log.addHandler(logging.StreamHandler(buffer))
    log.propagate = False
    return TokenVerifier(EnvironmentTokens(settings), log=log), buffer


def test_a_weak_previous_token_from_the_environment_is_refused() -> None:
    # mutation: the length check applied to the current token only
    now = datetime.now(UTC).isoformat()
    env = {
        "AUTH_TOKEN": "a-strong-current-token-01",
        "AUTH_TOKEN_PREVIOUS": "abc123",
        "AUTH_TOKEN_ROTATED_AT": now,
    }
    verifier, log = _verifier(Settings.from_env(env))
    assert verifier.match("abc123") is None
    assert verifier.match("a-strong-current-token-01") == "current"
    assert "AUTH_TOKEN_PREVIOUS is shorter than 16 characters and is ignored" in log.getvalue()


class _TwoVersions:
    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        value = "a-strong-current-token-01" if VersionStage == "AWSCURRENT" else "abc123"
        return {"SecretString": value, "CreatedDate": datetime.now(UTC)}


def test_a_weak_previous_token_from_the_secret_is_refused() -> None:
    source = SecretTokens(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:t", rotation_window_seconds=900
    )
    source._client = _TwoVersions()  # type: ignore[assignment]
    verifier = TokenVerifier(source, log=logging.getLogger("claims-secret"))
    assert verifier.match("abc123") is None
    assert verifier.match("a-strong-current-token-01") == "current"


def test_secrets_manager_unreachable_is_a_500_not_a_401(monkeypatch: pytest.MonkeyPatch) -> None:
    # mutation: an unreachable Secrets Manager answered as a wrong token (Unauthorized, 401)
    from botocore.config import Config

    from kore_connect.bridge import authorizer

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=closed,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1}),
    )
    source = SecretTokens(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:t", rotation_window_seconds=900
    )
    source._client = client  # type: ignore[assignment]
    with pytest.raises(TokenSourceUnavailable, match="unreachable"):
        source.load()
    # through the handler: API Gateway answers 500 for anything but Unauthorized
    monkeypatch.setenv("AUTH_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:t")
    container.reset()
    container.token_verifier()._source._client = client  # type: ignore[attr-defined]
    event = dict(load_event("authorizer-token-event.json"), authorizationToken="a-strong-current-token-01")
    with pytest.raises(authorizer.AuthorizerUnavailable):
        authorizer.lambda_handler(event, context("AuthenticateBeforeStoringInDynamoDB"))


# ---------------------------------------------------------------- the load generator's mix-up check


def _report(contact: str, instance: str, stored: Any, custom: Any) -> CallReport:
    return a_report(contact, instance, stored=stored, custom=custom)


def test_a_consistent_mix_up_is_named_twice() -> None:
    # mutations: the "store holds another bot's metadata" branch deleted; customData compared with the
    # store rather than with what this call's bot sent. Store and customData agree here, on the wrong data.
    theirs = {"x_metadata": "Hello from Kore for contact b", "kore-instanceSessionId": "2"}
    assert call_problems(_report("a", "1", theirs, theirs)) == [
        "mixed up: the store holds another bot's metadata",
        "mixed up: customData",
    ]
    mine = {"x_metadata": "Hello from Kore for contact a", "kore-instanceSessionId": "1"}
    assert call_problems(_report("a", "1", mine, mine)) == []
    assert call_problems(_report("a", "1", mine, theirs)) == ["mixed up: customData"]
    # nothing stored, and the flow's customData is the retrieve function's 404 body: a loss, not a mix-up
    assert call_problems(_report("a", "1", None, "Data not found")) == [
        "lost: nothing stored for the contact",
        "lost: no customData",
    ]


# ---------------------------------------------------------------- settings the docs rely on, read back


def test_sqlite_commits_with_synchronous_full_in_wal_mode(tmp_path: Any) -> None:
    # mutation: synchronous=OFF (docs/decisions.md: each acknowledged store survives a power loss)
    sessions = SQLiteSessionStore(tmp_path / "sessions.db")
    try:
        connection = sessions._connection()
        assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        sessions.close()


def test_ensure_table_turns_on_ttl_on_expires_at() -> None:
    # mutation: TTL enabled on another attribute (dynalite has no TTL; moto keeps the setting)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, "koreCcSessions")
        ttl = client.describe_time_to_live(TableName="koreCcSessions")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}


@pytest.mark.usefixtures("machine_in_kolkata")
def test_the_item_says_when_it_was_stored_in_utc_whatever_the_machines_zone() -> None:
    # README: the item holds `storedAt` (ISO 8601, UTC); found by ./dev mutate (a local time round-trips too)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, "koreCcSessions")
        stored_at = datetime(2026, 12, 3, 9, 30, 15, 250_000, tzinfo=UTC).timestamp()
        sessions = DynamoDBSessionStore("koreCcSessions", client=client, clock=lambda: stored_at)
        sessions.put(CONTACT_ID, "{}", ttl_seconds=60)
        item = client.get_item(TableName="koreCcSessions", Key={"contactId": {"S": CONTACT_ID}})["Item"]
        assert item["storedAt"] == {"S": "2026-12-03T09:30:15.250+00:00"}


# ---------------------------------------------------------------- the 32 KB edge, byte for byte


@pytest.mark.parametrize("key", ["k", "a-longer_key-name", "naïve key"])
def test_flat_attributes_fill_the_response_to_exactly_32_kb_and_not_a_byte_more(key: str) -> None:
    # mutation: each flat attribute undercounted by 2 bytes
    fits_exactly = 0
    for padding in range(16_280, 16_420):
        metadata = json.dumps({"pad": "x" * padding, key: "value"}, separators=(",", ":"))
        response = found_response(metadata)
        size = len(json.dumps(response.payload))
        assert size <= CONNECT_RESPONSE_LIMIT
        names = set(response.payload) - {"statusCode", "body"}
        for name, value in (("pad", "x" * padding), (key.replace(" ", "_").replace("ï", "_"), "value")):
            if name not in names:  # left out: it would not have fitted
                assert len(json.dumps({**response.payload, name: value})) > CONNECT_RESPONSE_LIMIT
        fits_exactly += size == CONNECT_RESPONSE_LIMIT
    assert fits_exactly >= 1  # the sweep crossed the edge itself
