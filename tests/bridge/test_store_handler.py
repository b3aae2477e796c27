"""koreStoreSessionMetadata behind API Gateway's proxy integration, on every backend."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEvent
from botocore.stub import Stubber

from kore_connect.bridge import container, store
from kore_connect.config import Settings
from kore_connect.sessions.dynamodb import DynamoDBSessionStore
from tests.conftest import CONTACT_ID, context, load_event
from tests.peers import free_port


def post(event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = store.lambda_handler(event, context("koreStoreSessionMetadata"))
    # a valid proxy response, or API Gateway answers 502
    assert set(response) == {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
    assert isinstance(response["body"], str)
    assert response["isBase64Encoded"] is False  # else API Gateway would decode our JSON as base64
    return response["statusCode"], response["headers"], json.loads(response["body"])


def request(body: str | None = None, **overrides: Any) -> dict[str, Any]:
    event = load_event("apigw-store-request.json")
    if body is not None:
        event["body"] = body
    event.update(overrides)
    return event


def stored_metadata(contact_id: str = CONTACT_ID) -> str | None:
    record = container.session_store().get(contact_id)
    return None if record is None else record.metadata


def test_the_kore_service_node_request_is_stored(backend_env: str) -> None:
    # GIVEN the proxy event for the Kore Service node's POST
    event = request()
    # WHEN the store function handles it
    status, headers, body = post(event)
    # THEN it answers 200 naming the contact and the expiry, and the metadata is in the store
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["contactId"] == CONTACT_ID
    assert body["message"] == "Metadata stored"
    record = container.session_store().get(CONTACT_ID)
    assert body["expiresAt"] == record.expires_at
    assert body["storedAt"] == datetime.fromtimestamp(record.stored_at, UTC).isoformat(
        timespec="milliseconds"
    )
    assert body["storedAt"].endswith("+00:00")
    assert json.loads(stored_metadata()) == json.loads(event["body"])


def test_the_expiry_defaults_to_24_hours_and_is_configurable(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, body = post(request())
    record = container.session_store().get(CONTACT_ID)
    assert body["expiresAt"] == int(record.stored_at) + 86_400
    monkeypatch.setenv("KORE_SESSION_TTL_SECONDS", "600")
    container.reset()
    _, _, body = post(request())
    assert body["expiresAt"] == int(container.session_store().get(CONTACT_ID).stored_at) + 600


def test_a_contact_id_in_upper_case_is_stored_under_connects_lower_case(sqlite_env: str) -> None:
    event = request(
        queryStringParameters={"contactId": CONTACT_ID.upper()}, multiValueQueryStringParameters=None
    )
    assert post(event)[0] == 200
    assert stored_metadata(CONTACT_ID) is not None


REQUIRED = "the query parameter contactId is required (the Amazon Connect contact ID)"
NOT_A_UUID = "the query parameter contactId must be a UUID such as 5f0c6a53-2f3e-4e8b-9a43-6d2b1c7e9f10"
TWICE = "the query parameter contactId is given more than once with different values"


@pytest.mark.parametrize(
    ("query", "multi", "message"),
    [
        (None, None, REQUIRED),
        ({"contactId": ""}, {"contactId": [""]}, REQUIRED),
        ({"other": "x"}, {"other": ["x"]}, REQUIRED),
        ({"contactId": "12345"}, {"contactId": ["12345"]}, NOT_A_UUID),
        ({"contactId": "' OR 1=1 --"}, {"contactId": ["' OR 1=1 --"]}, NOT_A_UUID),
        (
            {"contactId": CONTACT_ID},
            {"contactId": [CONTACT_ID, "0b6a7c1e-9d2f-4a38-8e51-3f2c4d5e6a7b"]},
            TWICE,
        ),
    ],
)
def test_a_missing_or_invalid_contact_id_is_a_400(
    sqlite_env: str, query: dict[str, str] | None, multi: dict[str, list[str]] | None, message: str
) -> None:
    status, _, body = post(request(queryStringParameters=query, multiValueQueryStringParameters=multi))
    assert status == 400
    assert body["error"] == "InvalidContactId"
    assert body["message"] == message  # the whole sentence the bot's developer reads
    assert stored_metadata() is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x_metadata=Hello", "not valid JSON"),
        ('["a"]', "must be a JSON object"),
        ('{"a": 1, "a": 2}', "more than once"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(sqlite_env: str, body: str, message: str) -> None:
    status, _, answer = post(request(body))
    assert (status, answer["error"]) == (400, "InvalidBody")
    assert message in answer["message"]
    assert stored_metadata() is None


def test_a_missing_body_is_a_400(sqlite_env: str) -> None:
    event = request()
    event["body"] = None
    status, _, answer = post(event)
    assert status == 400
    assert "empty" in answer["message"]


def test_a_base64_encoded_body_is_decoded(sqlite_env: str) -> None:
    raw = json.dumps({"name": "Zoë", "n": 2.5})
    status, _, _ = post(request(base64.b64encode(raw.encode()).decode(), isBase64Encoded=True))
    assert status == 200
    assert json.loads(stored_metadata()) == {"name": "Zoë", "n": 2.5}


def test_a_base64_body_that_is_not_json_is_a_400(sqlite_env: str) -> None:
    status, _, answer = post(request(base64.b64encode(b"\x00\x01binary").decode(), isBase64Encoded=True))
    assert status == 400
    assert answer["error"] == "InvalidBody"


def test_a_body_over_the_limit_is_a_413(sqlite_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    big = json.dumps({"pad": "x" * 32_768})
    status, _, answer = post(request(big))
    assert (status, answer["error"]) == (413, "PayloadTooLarge")
    assert answer["message"] == "the body is larger than 32768 bytes"
    # the limit is configurable
    monkeypatch.setenv("KORE_MAX_METADATA_BYTES", str(64 * 1024))
    container.reset()
    assert post(request(big))[0] == 200


def test_a_method_other_than_post_is_a_405(sqlite_env: str) -> None:
    status, headers, answer = post(request(httpMethod="GET"))
    assert (status, headers["Allow"], answer["error"]) == (405, "POST", "MethodNotAllowed")
    assert answer["message"] == "use POST to store metadata"


def test_an_unreachable_table_answers_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a Lambda environment whose DynamoDB endpoint does not answer
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "koreStoreSessionMetadata")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    # WHEN the bot posts
    status, headers, answer = post(request())
    # THEN it is told to retry, never that the data was stored
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert answer["error"] == "StoreUnavailable"
    assert answer["message"] == "the metadata could not be stored; nothing was saved, try again"


def test_a_missing_table_answers_503(dynalite_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    container.reset()
    assert post(request())[0] == 503


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_answers_503(code: str) -> None:
    client = boto3.client("dynamodb")
    with Stubber(client) as stub:
        stub.add_client_error("put_item", service_error_code=code, http_status_code=400)
        response = store.store_metadata(
            APIGatewayProxyEvent(request()),
            store=DynamoDBSessionStore("t", client=client),
            settings=Settings.from_env({}),
        )
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "2"


def test_a_misconfigured_function_answers_500_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KORE_SESSION_TTL_SECONDS", "a day")
    status, _, answer = post(request())
    assert (status, answer["error"]) == (500, "Misconfigured")
