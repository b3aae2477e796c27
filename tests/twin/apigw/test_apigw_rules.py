"""The local API Gateway, over real HTTP on loopback: every rule API Gateway applies, with test
functions (tests/lambdas) behind it so each rule can be made to happen."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kore_connect.twin.apigw.app import LocalApi
from kore_connect.twin.apigw.gateway import GatewaySettings
from kore_connect.twin.template import ApiDescription, Authorizer, Function, Route
from tests.conftest import REPO
from tests.servers import serving

STAGE = "test"
ARN_PREFIX = f"arn:aws:execute-api:us-east-1:000000000000:kclocal/{STAGE}"

Serve = Callable[..., Any]


def description(log: Path, *, cache_ttl: int = 300, validation: str | None = None) -> ApiDescription:
    pattern = re.compile(validation) if validation else None
    authorizer = Authorizer("testAuth", "TestAuthorizer", "authorizationToken", cache_ttl, pattern)
    environment = {"PYTHONPATH": str(REPO), "AUTHORIZER_LOG": str(log)}
    return ApiDescription(
        stage=STAGE,
        routes=(
            Route("/items", "POST", "TestIntegration", authorizer),
            Route("/items", "GET", "TestIntegration", authorizer),
            Route("/open", "POST", "TestIntegration", None),
        ),
        functions={
            "TestAuthorizer": Function("TestAuthorizer", "tests.lambdas.authorizer.handler", 3, environment),
            "TestIntegration": Function(
                "TestIntegration", "tests.lambdas.integration.handler", 5, environment
            ),
        },
    )


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "authorizer.log"
    path.touch()
    return path


@pytest.fixture
def serve(log: Path) -> Serve:
    """serve(cache_ttl=..., validation=..., **settings) -> a context manager giving an httpx client."""

    @contextmanager
    def run(cache_ttl: int = 300, validation: str | None = None, **settings: Any) -> Iterator[httpx.Client]:
        api = LocalApi(
            description(log, cache_ttl=cache_ttl, validation=validation),
            settings=GatewaySettings(**settings),
            containers=1,
        )
        with serving(api.app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client

    return run


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines()


def error_of(response: httpx.Response) -> tuple[int, Any, str | None]:
    return response.status_code, response.json()["message"], response.headers.get("x-amzn-ErrorType")


# ---------------------------------------------------------------- routing


def test_an_unknown_path_method_or_stage_is_missing_authentication_token(serve: Serve, log: Path) -> None:
    with serve() as client:
        for method, path in [
            ("POST", "/test/nothing"),
            ("DELETE", "/test/items"),
            ("POST", "/prod/items"),
            ("POST", "/test/items%0a"),
            ("TRACE", "/test/items"),
        ]:
            response = client.request(method, path, headers={"authorizationToken": "allow-1"})
            assert error_of(response) == (
                403,
                "Missing Authentication Token",
                "MissingAuthenticationTokenException",
            )
            assert response.headers["x-amzn-RequestId"]
    assert calls(log) == []  # never reached the authorizer


# ---------------------------------------------------------------- the authorizer


def test_a_missing_or_empty_token_is_401_without_invoking_the_authorizer(serve: Serve, log: Path) -> None:
    with serve() as client:
        for headers in ({}, {"authorizationToken": ""}):
            response = client.post("/test/items", headers=headers)
            assert error_of(response) == (401, "Unauthorized", "UnauthorizedException")
    assert calls(log) == []


def test_a_token_the_validation_expression_rejects_is_401_without_invoking(serve: Serve, log: Path) -> None:
    with serve(validation="^allow-[0-9]+$") as client:
        assert client.post("/test/items", headers={"authorizationToken": "allow-x"}).status_code == 401
        assert calls(log) == []
        assert client.post("/test/items", headers={"authorizationToken": "allow-7"}).status_code == 200
    assert len(calls(log)) == 1


def test_the_authorizer_gets_a_real_token_event(serve: Serve, log: Path) -> None:
    with serve() as client:
        client.post("/test/items", headers={"authorizationToken": "allow-abc"})
    assert calls(log) == [f"TOKEN allow-abc {ARN_PREFIX}/POST/items"]


def test_unauthorized_raised_is_401_and_other_errors_or_malformed_answers_are_500(serve: Serve) -> None:
    with serve() as client:
        assert error_of(client.post("/test/items", headers={"authorizationToken": "nope"})) == (
            401,
            "Unauthorized",
            "UnauthorizedException",
        )
        for token in ("boom", "malformed"):
            response = client.post("/test/items", headers={"authorizationToken": token})
            assert error_of(response) == (500, None, "AuthorizerConfigurationException")


def test_a_deny_is_403_and_an_allow_that_does_not_cover_the_method_is_403(serve: Serve) -> None:
    with serve() as client:
        denied = client.post("/test/items", headers={"authorizationToken": "deny-1"})
        assert error_of(denied) == (
            403,
            "User is not authorized to access this resource with an explicit deny",
            "AccessDeniedException",
        )
        assert client.post("/test/items", headers={"authorizationToken": "post-only-1"}).status_code == 200
        narrow = client.get("/test/items", headers={"authorizationToken": "post-only-1"})
        assert error_of(narrow) == (
            403,
            "User is not authorized to access this resource",
            "AccessDeniedException",
        )
        other = client.post("/test/items", headers={"authorizationToken": "other-action"})
        assert other.status_code == 403  # an Allow of another action allows nothing here


def test_the_principal_and_context_reach_the_integration(serve: Serve) -> None:
    with serve() as client:
        event = client.post("/test/items?a=1", headers={"authorizationToken": "allow-ctx"}).json()
    authorizer = event["requestContext"]["authorizer"]
    # As a REST API passes them: every context value as a string, and the authorizer's latency.
    latency = authorizer.pop("integrationLatency")
    assert authorizer == {"principalId": "tester", "who": "tester", "level": "3", "vip": "true"}
    assert isinstance(latency, int) and latency >= 0


# ---------------------------------------------------------------- the cache


def test_an_accepted_token_stays_accepted_for_the_ttl_without_invoking_again(serve: Serve, log: Path) -> None:
    with serve(cache_ttl=300) as client:
        for _ in range(5):
            assert (
                client.post("/test/items", headers={"authorizationToken": "allow-cached"}).status_code == 200
            )
    assert len(calls(log)) == 1


def test_a_deny_is_cached_too(serve: Serve, log: Path) -> None:
    with serve(cache_ttl=300) as client:
        for _ in range(3):
            assert (
                client.post("/test/items", headers={"authorizationToken": "deny-cached"}).status_code == 403
            )
    assert len(calls(log)) == 1


def test_a_ttl_of_0_invokes_the_authorizer_every_time(serve: Serve, log: Path) -> None:
    with serve(cache_ttl=0) as client:
        for _ in range(3):
            client.post("/test/items", headers={"authorizationToken": "allow-nocache"})
    assert len(calls(log)) == 3


def test_a_cached_policy_is_evaluated_against_each_new_method(serve: Serve, log: Path) -> None:
    # GIVEN a token whose policy allows POST only, cached after a POST
    with serve(cache_ttl=300) as client:
        assert client.post("/test/items", headers={"authorizationToken": "post-only-2"}).status_code == 200
        # WHEN the same token is used for GET
        response = client.get("/test/items", headers={"authorizationToken": "post-only-2"})
    # THEN the cached policy refuses it, without asking the authorizer again
    assert response.status_code == 403
    assert len(calls(log)) == 1


def test_unauthorized_is_not_cached(serve: Serve, log: Path) -> None:
    with serve(cache_ttl=300) as client:
        for _ in range(2):
            client.post("/test/items", headers={"authorizationToken": "wrong"})
    assert len(calls(log)) == 2


# ---------------------------------------------------------------- the proxy integration


def test_the_proxy_event_is_the_rest_api_shape(serve: Serve) -> None:
    with serve() as client:
        response = client.post(
            "/test/items?contactId=abc&tag=1&tag=2",
            headers=[("authorizationToken", "allow-shape"), ("X-Repeat", "one"), ("X-Repeat", "two")],
            content=b'{"hello": "world"}',
        )
    event = response.json()
    assert event["resource"] == "/items" and event["path"] == "/items" and event["httpMethod"] == "POST"
    assert event["queryStringParameters"] == {"contactId": "abc", "tag": "2"}
    assert event["multiValueQueryStringParameters"] == {"contactId": ["abc"], "tag": ["1", "2"]}
    assert event["headers"]["x-repeat"] == "two" and event["multiValueHeaders"]["x-repeat"] == ["one", "two"]
    assert event["body"] == '{"hello": "world"}' and event["isBase64Encoded"] is False
    assert event["pathParameters"] is None and event["stageVariables"] is None
    context = event["requestContext"]
    assert context["stage"] == STAGE and context["path"] == f"/{STAGE}/items"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert context["apiId"] == "kclocal" and context["accountId"] == "000000000000"
    assert isinstance(context["requestTimeEpoch"], int) and context["requestTime"].endswith("+0000")


def test_no_query_string_is_null_and_a_binary_body_is_base64(serve: Serve) -> None:
    with serve() as client:
        event = client.post("/test/open", content=b"\xff\xfe\x00binary").json()
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00binary"
    assert event["requestContext"]["authorizer"] is None


def test_the_response_is_mapped_back_with_multi_value_headers_and_binary_bodies(serve: Serve) -> None:
    with serve() as client:
        multi = client.post("/test/open?action=multi")
        binary = client.post("/test/open?action=binary")
    assert multi.status_code == 201 and multi.text == "created"
    assert multi.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert multi.headers["x-one"] == "1"
    assert binary.content == b"\x00\xff\x10"


def test_headers_api_gateway_owns_are_renamed_not_passed_on(serve: Serve) -> None:
    with serve() as client:
        response = client.post("/test/open?action=owned-headers")
    assert response.status_code == 200 and response.text == "ok"
    assert response.headers["x-amzn-Remapped-Content-Length"] == "999"
    assert response.headers["x-amzn-Remapped-Transfer-Encoding"] == "chunked"
    assert response.headers["x-amzn-Remapped-x-amzn-RequestId"] == "mine"
    assert response.headers["x-amzn-RequestId"] != "mine"


@pytest.mark.parametrize("action", ["malformed", "not-a-dict", "raise", "informational"])
def test_a_failing_or_malformed_integration_is_502(serve: Serve, action: str) -> None:
    with serve() as client:
        response = client.post(f"/test/open?action={action}")
    assert error_of(response) == (502, "Internal server error", "InternalServerErrorException")


def test_an_integration_slower_than_the_timeout_is_504(serve: Serve) -> None:
    with serve(integration_timeout_seconds=0.5) as client:
        response = client.post("/test/open?action=sleep&seconds=2")
        assert error_of(response) == (504, "Endpoint request timed out", "InternalServerErrorException")
        # the gateway is not blocked meanwhile, and the function still answers afterwards
        assert client.post("/test/open").status_code == 200


def test_a_payload_over_the_limit_is_413(serve: Serve) -> None:
    with serve(payload_limit_bytes=1024) as client:
        response = client.post("/test/open", content=b"x" * 1025)
        assert error_of(response) == (413, "Request Too Long", "RequestTooLargeException")
        assert client.post("/test/open", content=b"x" * 1024).status_code == 200


def test_the_default_payload_limit_is_10_mb(serve: Serve) -> None:
    with serve() as client:
        assert client.post("/test/open", content=b"x" * (10 * 1024 * 1024 + 1)).status_code == 413


def test_every_answer_names_its_request(serve: Serve) -> None:
    with serve() as client:
        ids = {client.post("/test/open").headers["x-amzn-RequestId"] for _ in range(3)}
    assert len(ids) == 3


def test_json_error_bodies(serve: Serve) -> None:
    with serve() as client:
        response = client.post("/test/items")
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content) == {"message": "Unauthorized"}
