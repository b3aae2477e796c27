"""HTTP request to Lambda proxy event and proxy response to HTTP, as plain data."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from kore_connect.twin.apigw.proxy import ApiRequest, MalformedProxyResponse, http_response, proxy_event
from tests.conftest import CONTACT_ID, load_event


def request(**changes: Any) -> ApiRequest:
    values: dict[str, Any] = {
        "method": "POST",
        "resource": "/kore-metadata",
        "path": "/kore-metadata",
        "stage": "prod",
        "headers": [("content-type", "application/json"), ("authorizationtoken", "t")],
        "query": [("contactId", CONTACT_ID)],
        "body": b'{"x_metadata":"Hello from Kore"}',
        "source_ip": "203.0.113.58",
        "request_id": "6cbd0315-985f-4c86-8cd7-c6915cc8dbb5",
        "received_at": datetime(2026, 3, 17, 14, 2, 45, tzinfo=UTC),
        "api_id": "q8x3mv2k7p",
        "account_id": "123456789012",
        "domain_name": "q8x3mv2k7p.execute-api.us-west-2.amazonaws.com",
    }
    values.update(changes)
    return ApiRequest(**values)


def test_the_event_has_every_key_of_the_fixture_with_the_same_values_where_they_are_the_same() -> None:
    # GIVEN the proxy event AWS sends (tests/events) and ours for the same request
    fixture = load_event("apigw-store-request.json")
    ours = proxy_event(request(), "kore-bot", {"tokenSlot": "current"}, authorizer_latency_ms=9)
    # THEN the same keys, at the top and in requestContext
    assert set(ours) == set(fixture)
    assert set(fixture["requestContext"]) <= set(ours["requestContext"])
    for key in ("resource", "path", "httpMethod", "queryStringParameters", "multiValueQueryStringParameters"):
        assert ours[key] == fixture[key], key
    context, expected = ours["requestContext"], fixture["requestContext"]
    for key in (
        "resourcePath",
        "httpMethod",
        "requestTime",
        "path",
        "accountId",
        "stage",
        "requestId",
        "apiId",
    ):
        assert context[key] == expected[key], key
    # the fixture's epoch and time are the same instant: 17 Mar 2026 14:02:45 UTC
    assert context["requestTimeEpoch"] == expected["requestTimeEpoch"] == 1773756165000
    assert (
        context["authorizer"]
        == expected["authorizer"]
        == {"tokenSlot": "current", "principalId": "kore-bot", "integrationLatency": 9}
    )


def test_repeated_headers_and_query_parameters_keep_the_last_in_the_single_value_maps() -> None:
    event = proxy_event(
        request(headers=[("x-a", "1"), ("x-a", "2")], query=[("k", "1"), ("k", "2")]), None, {}
    )
    assert event["headers"] == {"x-a": "2"} and event["multiValueHeaders"] == {"x-a": ["1", "2"]}
    assert event["queryStringParameters"] == {"k": "2"}
    assert event["multiValueQueryStringParameters"] == {"k": ["1", "2"]}
    assert event["requestContext"]["authorizer"] is None


def test_no_query_and_no_body_are_null() -> None:
    event = proxy_event(request(query=[], body=b""), "p", {"k": "v", "n": 1, "yes": True, "principalId": "x"})
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    # context values as strings; the context cannot replace the principal
    assert event["requestContext"]["authorizer"] == {
        "principalId": "p",
        "k": "v",
        "n": "1",
        "yes": "true",
        "integrationLatency": 0,
    }


def test_a_body_that_is_not_utf8_is_base64() -> None:
    event = proxy_event(request(body=b"\x80\x81"), None, {})
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x80\x81"


def test_a_proxy_response_maps_to_http() -> None:
    answer = http_response(
        {
            "statusCode": 503,
            "headers": {"Retry-After": 2, "Content-Type": "application/json"},
            "body": '{"a":1}',
        }
    )
    assert answer.status == 503 and answer.body == b'{"a":1}'
    assert ("Retry-After", "2") in answer.headers


def test_multi_value_headers_win_over_single_ones_of_the_same_name() -> None:
    answer = http_response(
        {
            "statusCode": 200,
            "headers": {"Set-Cookie": "x", "A": "1"},
            "multiValueHeaders": {"set-cookie": ["a", "b"]},
        }
    )
    assert answer.headers == [("set-cookie", "a"), ("set-cookie", "b"), ("A", "1")]
    assert answer.body == b""


def test_a_base64_body_is_decoded() -> None:
    answer = http_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert answer.body == b"\x00\x01"


@pytest.mark.parametrize(
    "result",
    [
        None,
        "text",
        {},
        {"statusCode": "200"},
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 101},  # an informational status cannot end a response
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "headers": []},
        {"statusCode": 200, "headers": {"A": ["1"]}},
        {"statusCode": 200, "headers": {"A": "1\r\nInjected: yes"}},
        {"statusCode": 200, "headers": {"Bad Name": "1"}},
        {"statusCode": 200, "headers": {"A": "€"}},
        {"statusCode": 200, "multiValueHeaders": {"A": "1"}},
        {"statusCode": 200, "isBase64Encoded": "yes"},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        {"statusCode": 200, "cookies": ["a=1"]},
    ],
)
def test_anything_else_is_malformed(result: Any) -> None:
    with pytest.raises(MalformedProxyResponse):
        http_response(result)
