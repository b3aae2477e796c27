"""API Gateway's rules as data: the gateway core with plain coroutines for functions and a clock of
our own (no processes, no sockets)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from kore_connect.twin.apigw.gateway import AuthorizerCache, Gateway, GatewaySettings, IncomingRequest
from kore_connect.twin.apigw.policy import AuthorizerResult, Statement
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.template import ApiDescription, Authorizer, Function, Route

ALLOW_ALL = {
    "principalId": "p",
    "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
}
OK = {"statusCode": 200, "body": "ok"}


class Functions:
    """Stands in for the runtime: records events, answers what the test says."""

    def __init__(self, authorizer: Any = ALLOW_ALL, integration: Any = OK) -> None:
        self.answers = {"Auth": authorizer, "Target": integration}
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append((function, event))
        answer = self.answers[function]
        if callable(answer):
            return await answer(event)
        return Invocation(result=answer)

    def count(self, function: str) -> int:
        return sum(1 for name, _ in self.events if name == function)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gateway(functions: Functions, *, ttl: int = 300, clock: Clock | None = None, **settings: Any) -> Gateway:
    authorizer = Authorizer("auth", "Auth", "authorizationToken", ttl, re.compile(r"[a-z0-9-]+"))
    api = ApiDescription(
        stage="prod",
        routes=(
            Route("/things", "POST", "Target", authorizer),
            Route("/things", "GET", "Target", authorizer),
        ),
        functions={name: Function(name, "x.handler", 3, {}) for name in ("Auth", "Target")},
    )
    return Gateway(api, functions, GatewaySettings(**settings), AuthorizerCache(clock or Clock()))


def request(
    path: str = "/prod/things", method: str = "POST", token: str | None = "good-token", body: bytes = b""
) -> IncomingRequest:
    headers = [("authorizationtoken", token)] if token is not None else []
    return IncomingRequest(method, path, [], headers, body, "127.0.0.1", "localhost")


def handle(gw: Gateway, incoming: IncomingRequest) -> tuple[int, Any]:
    outcome = asyncio.run(gw.handle(incoming))
    body = outcome.response.body
    return outcome.response.status, json.loads(body) if body.startswith(b"{") else body


@pytest.mark.parametrize(
    ("path", "method"),
    [("//prod/things", "POST"), ("/prod/things", "post"), ("/prod/things/", "POST"), ("/prod", "POST")],
)
def test_only_the_exact_route_matches(path: str, method: str) -> None:
    functions = Functions()
    assert handle(gateway(functions), request(path, method)) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    assert functions.events == []


def test_a_cached_answer_expires_after_the_ttl() -> None:
    clock, functions = Clock(), Functions()
    gw = gateway(functions, ttl=60, clock=clock)
    handle(gw, request())
    clock.now += 59
    handle(gw, request())
    assert functions.count("Auth") == 1
    clock.now += 2
    handle(gw, request())
    assert functions.count("Auth") == 2


def test_the_cache_keeps_at_most_its_size_dropping_the_oldest() -> None:
    cache = AuthorizerCache(Clock(), max_entries=3)
    result = AuthorizerResult("p", (Statement("Allow", ("*",)),))
    for token in ("t1", "t2", "t3", "t4"):
        cache.put("auth", token, result, 300)
    assert cache.get("auth", "t1") is None
    assert all(cache.get("auth", t) is result for t in ("t2", "t3", "t4"))


def test_the_cache_is_per_authorizer_and_per_token_and_never_keeps_the_token() -> None:
    cache = AuthorizerCache(Clock())
    result = AuthorizerResult("p", ())
    cache.put("auth", "secret-token-value", result, 300)
    assert (
        cache.get("other", "secret-token-value") is None and cache.get("auth", "secret-token-valuE") is None
    )
    assert "secret-token-value" not in repr(cache._entries)


def test_a_runtime_failure_is_a_500_for_the_authorizer_and_a_502_for_the_integration() -> None:
    async def broken(event: dict[str, Any]) -> Invocation:
        raise RuntimeError("the runtime is stopping")

    assert handle(gateway(Functions(authorizer=broken)), request())[0] == 500
    assert handle(gateway(Functions(integration=broken)), request()) == (
        502,
        {"message": "Internal server error"},
    )


def test_after_a_504_the_invocation_still_runs_to_its_end() -> None:
    finished = asyncio.Event()

    async def slow(event: dict[str, Any]) -> Invocation:
        await asyncio.sleep(0.3)
        finished.set()
        return Invocation(result=OK)

    async def scenario() -> tuple[int, bool]:
        gw = gateway(Functions(integration=slow), integration_timeout_seconds=0.05)
        outcome = await gw.handle(request())
        await asyncio.wait_for(finished.wait(), timeout=2)
        return outcome.response.status, finished.is_set()

    assert asyncio.run(scenario()) == (504, True)


def test_the_validation_expression_is_a_full_match() -> None:
    functions = Functions()
    assert handle(gateway(functions), request(token="good-token!"))[0] == 401
    assert functions.count("Auth") == 0


def test_a_body_over_the_limit_is_refused_before_anything_else() -> None:
    functions = Functions()
    assert (
        handle(gateway(functions, payload_limit_bytes=4), request(path="/nowhere", body=b"12345"))[0] == 413
    )
    assert functions.events == []


def test_a_refusal_carries_api_gateways_headers_and_what_the_access_log_names() -> None:
    # Found by ./dev mutate: only the status and body of refusals were asserted.
    async def broken(event: dict[str, Any]) -> Invocation:
        raise RuntimeError("the runtime is stopping")

    gw = gateway(Functions(integration=broken))
    outcome = asyncio.run(gw.handle(request()))
    request_id = outcome.request_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", request_id)
    # header names spelt as API Gateway sends them
    assert list(outcome.response.headers) == [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", "InternalServerErrorException"),
    ]
    assert outcome.route == gw.api.routes[0]  # POST /things
    assert outcome.principal_id == "p"
    assert outcome.error_type == "InternalServerErrorException"
    # before a route or a principal is known, the log has neither
    unknown = asyncio.run(gw.handle(request(path="/prod/nowhere")))
    assert (unknown.route, unknown.principal_id, unknown.error_type) == (
        None,
        None,
        "MissingAuthenticationTokenException",
    )
