"""Each known defect of the reference Lambdas (REFERENCE.md §1), proven fixed, through the real handlers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kore_connect.bridge import authorizer, container, retrieve, store
from tests.conftest import CONTACT_ID, TOKEN, context, load_event


def store_body(body: str) -> dict[str, Any]:
    event = load_event("apigw-store-request.json")
    event["body"] = body
    return store.lambda_handler(event, context("koreStoreSessionMetadata"))


def retrieve_contact() -> dict[str, Any]:
    return retrieve.lambda_handler(
        load_event("connect-retrieve-event.json"), context("koreRetrieveSessionMetadata")
    )


def test_a_float_in_the_body_is_stored(backend_env: str) -> None:
    # reference: boto3 refuses floats, the store fails
    assert store_body('{"confidence": 0.93, "nested": {"amount": 12.5}}')["statusCode"] == 200


def test_any_number_survives_the_retrieve(backend_env: str) -> None:
    # reference: json.dumps cannot serialise the Decimal boto3 returns, the flow takes its error branch
    sent = {"int": 7, "float": 0.1, "big": 2**70, "list": [1, 2.5], "flag": True, "none": None}
    store_body(json.dumps(sent))
    answer = retrieve_contact()
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == sent


def test_no_default_token(function_logs: io.StringIO) -> None:
    # reference: AUTH_TOKEN unset falls back to "abc123"
    with pytest.raises(authorizer.Unauthorized):
        authorizer.lambda_handler(
            dict(load_event("authorizer-token-event.json"), authorizationToken="abc123"), context()
        )


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # reference: `==`. Timing cannot be asserted reliably in a test; that every comparison goes
    # through hmac.compare_digest, against every valid token even after a match, can.
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("AUTH_TOKEN_PREVIOUS", "the-previous-token-still-valid")
    monkeypatch.setenv("AUTH_TOKEN_ROTATED_AT", datetime.now(UTC).isoformat())
    authorizer.lambda_handler(load_event("authorizer-token-event.json"), context())
    assert len(calls) == 2  # the current token matched first; the previous one was still compared
    assert all(len(a) == len(b) == 32 for a, b in calls)  # digests: the length of a token does not show


def test_no_token_and_no_event_in_the_logs(
    monkeypatch: pytest.MonkeyPatch, function_logs: io.StringIO, capfd: Any
) -> None:
    # reference: prints the expected token and the whole event
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    event = load_event("authorizer-token-event.json")
    authorizer.lambda_handler(event, context())
    with pytest.raises(authorizer.Unauthorized):
        authorizer.lambda_handler(dict(event, authorizationToken="a-wrong-token-value-xyz"), context())
    output = function_logs.getvalue() + "".join(capfd.readouterr())
    assert TOKEN not in output
    assert "a-wrong-token-value-xyz" not in output
    assert "methodArn" not in output


def test_the_allow_has_a_principal_and_no_star_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    # reference: no principalId, Resource "*"
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    policy = authorizer.lambda_handler(load_event("authorizer-token-event.json"), context())
    assert policy["principalId"]
    for statement in policy["policyDocument"]["Statement"]:
        assert statement["Resource"] != "*"
        assert all(
            resource.startswith("arn:aws:execute-api:us-west-2:123456789012:q8x3mv2k7p/prod/")
            for resource in statement["Resource"]
        )


def test_the_store_does_not_log_the_request(sqlite_env: str, function_logs: io.StringIO, capfd: Any) -> None:
    # reference: prints the whole request, body included
    event = load_event("apigw-store-request.json")
    store.lambda_handler(event, context())
    output = function_logs.getvalue() + "".join(capfd.readouterr())
    assert "Hello from Kore" not in output
    assert "33372d510ea365548d26fa92" not in output
    assert TOKEN not in output
    assert CONTACT_ID in output  # what is logged is the correlation


def test_an_absent_contact_id_is_a_clear_400_not_a_500(sqlite_env: str) -> None:
    # reference: becomes an empty-string key, which DynamoDB rejects with a 500
    event = load_event("apigw-store-request.json")
    event["queryStringParameters"] = None
    event["multiValueQueryStringParameters"] = None
    response = store.lambda_handler(event, context())
    assert response["statusCode"] == 400
    assert "contactId is required" in json.loads(response["body"])["message"]


def test_a_body_that_is_not_json_is_refused_not_stored(sqlite_env: str) -> None:
    # reference: stored as a raw string
    response = store_body("x_metadata=Hello from Kore")
    assert response["statusCode"] == 400
    assert container.session_store().get(CONTACT_ID) is None


def test_every_item_expires(backend_env: str) -> None:
    # reference: nothing ever expires, no TTL
    answer = json.loads(store_body('{"a": "b"}')["body"])
    record = container.session_store().get(CONTACT_ID)
    assert record.expires_at == answer["expiresAt"] == int(record.stored_at) + 86_400
