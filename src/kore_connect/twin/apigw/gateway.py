"""One request through API Gateway: route it, authorize it, hand it to the integration, answer.

No sockets here: the functions are reached through an `Invoker` (the local Lambda runtime in
`app.py`; plain coroutines in unit tests), so every rule of API Gateway is testable as data.

The rules, in the order API Gateway applies them:
1. a body over the payload limit (10 MB): 413;
2. a path or method the API does not have: 403 "Missing Authentication Token";
3. the API's resource policy: an explicit Deny on the caller's address is 403, before the
   authorizer is invoked;
4. the route's TOKEN authorizer: a missing or empty identity header, or one the validation
   expression rejects, is 401 without invoking the authorizer; otherwise the authorizer runs (or
   its cached answer for this token is reused for up to the cache TTL) and its policy is evaluated
   against this request's `methodArn`: `Unauthorized` raised is 401, a Deny (or an Allow that does
   not cover the method) is 403, anything else (another error, a malformed answer) is 500;
5. the Lambda proxy integration: a handler error or a response that is not a proxy response is
   502, a handler slower than the integration timeout (29 s) is 504.
Every answer carries `x-amzn-RequestId`; API Gateway's own answers also carry `x-amzn-ErrorType`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kore_connect.aws_events import LOCAL_ACCOUNT, LOCAL_API_ID, LOCAL_REGION
from kore_connect.twin.apigw import responses
from kore_connect.twin.apigw.policy import (
    AuthorizerResult,
    Decision,
    MalformedAuthorizerResponse,
    method_arn,
    parse_authorizer_response,
)
from kore_connect.twin.apigw.proxy import (
    ApiRequest,
    ApiResponse,
    MalformedProxyResponse,
    http_response,
    proxy_event,
)
from kore_connect.twin.apigw.responses import GatewayResponse
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.template import ApiDescription, Authorizer, Route

PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
CACHE_ENTRIES = 10_000  # answers kept at most, so that a flood of tokens cannot grow it without end


class Invoker(Protocol):
    async def __call__(self, function: str, event: dict[str, Any]) -> Invocation: ...


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT
    api_id: str = LOCAL_API_ID
    integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS
    payload_limit_bytes: int = PAYLOAD_LIMIT_BYTES
    authorizer_cache_ttl_seconds: int | None = None  # None: each authorizer's TTL from the template


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    method: str
    path: str  # as requested: /<stage>/<resource path>
    query: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    host: str
    body_too_large: bool = False  # the server stopped reading past the payload limit


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer, and what an access log may say about it (never a header or a body)."""

    response: ApiResponse
    request_id: str
    route: Route | None = None
    principal_id: str | None = None
    error_type: str | None = None


class AuthorizerCache:
    """Authorizer answers per (authorizer, token), for the TTL; keyed by the token's digest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = CACHE_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, AuthorizerResult]] = OrderedDict()

    def get(self, authorizer: str, token: str) -> AuthorizerResult | None:
        key = (authorizer, _digest(token))
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, result = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return result

    def put(self, authorizer: str, token: str, result: AuthorizerResult, ttl_seconds: int) -> None:
        key = (authorizer, _digest(token))
        self._entries[key] = (self._clock() + ttl_seconds, result)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


@dataclass
class Gateway:
    api: ApiDescription
    invoke: Invoker
    settings: GatewaySettings = field(default_factory=GatewaySettings)
    cache: AuthorizerCache = field(default_factory=AuthorizerCache)
    _running: set[asyncio.Future[Invocation]] = field(default_factory=set)  # invocations API GW gave up on

    async def handle(self, request: IncomingRequest) -> Outcome:
        request_id = str(uuid.uuid4())
        if request.body_too_large or len(request.body) > self.settings.payload_limit_bytes:
            return _refused(responses.REQUEST_TOO_LARGE, request_id)
        stage, _, rest = request.path.removeprefix("/").partition("/")
        resource_path = "/" + rest
        route = self.api.route(resource_path, request.method) if stage == self.api.stage else None
        if route is None:
            return _refused(responses.MISSING_AUTHENTICATION_TOKEN, request_id)

        arn = method_arn(
            region=self.settings.region,
            account=self.settings.account_id,
            api_id=self.settings.api_id,
            stage=self.api.stage,
            verb=request.method,
            path=resource_path,
        )
        if self.api.denies_source(request.source_ip):
            return _refused(responses.denied_by_resource_policy(arn), request_id, route)

        principal_id, context, authorizer_latency_ms = None, {}, 0
        if route.authorizer is not None:
            asked = time.perf_counter()
            verdict = await self._authorize(route.authorizer, request, arn)
            if isinstance(verdict, GatewayResponse):
                return _refused(verdict, request_id, route)
            principal_id, context = verdict.principal_id, dict(verdict.context)
            authorizer_latency_ms = round((time.perf_counter() - asked) * 1000)

        event = proxy_event(
            ApiRequest(
                method=request.method,
                resource=route.path,
                path=resource_path,
                stage=self.api.stage,
                headers=request.headers,
                query=request.query,
                body=request.body,
                source_ip=request.source_ip,
                request_id=request_id,
                received_at=datetime.now(UTC),
                api_id=self.settings.api_id,
                account_id=self.settings.account_id,
                domain_name=request.host,
            ),
            principal_id,
            context,
            authorizer_latency_ms,
        )
        # The invocation runs to its end even when API Gateway has stopped waiting, as in AWS.
        invocation = asyncio.ensure_future(self.invoke(route.function, event))
        self._running.add(invocation)
        invocation.add_done_callback(self._running.discard)
        try:
            result = await asyncio.wait_for(
                asyncio.shield(invocation), self.settings.integration_timeout_seconds
            )
        except TimeoutError:
            return _refused(responses.INTEGRATION_TIMEOUT, request_id, route, principal_id)
        except Exception:  # the runtime itself failed (not the handler): the integration failed
            return _refused(responses.INTEGRATION_FAILURE, request_id, route, principal_id)
        if not result.ok:
            return _refused(responses.INTEGRATION_FAILURE, request_id, route, principal_id)
        try:
            answer = http_response(result.result)
        except MalformedProxyResponse:
            return _refused(responses.INTEGRATION_FAILURE, request_id, route, principal_id)
        headers = list(answer.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-RequestId", request_id))
        return Outcome(ApiResponse(answer.status, headers, answer.body), request_id, route, principal_id)

    async def _authorize(
        self, authorizer: Authorizer, request: IncomingRequest, arn: str
    ) -> AuthorizerResult | GatewayResponse:
        wanted = authorizer.header.lower()
        token = next((value for name, value in request.headers if name.lower() == wanted), "")
        if not token:
            return responses.UNAUTHORIZED
        if authorizer.validation_expression and not authorizer.validation_expression.fullmatch(token):
            return responses.UNAUTHORIZED
        result = self.cache.get(authorizer.name, token)
        if result is None:
            try:
                invocation = await self.invoke(
                    authorizer.function, {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
                )
            except Exception:  # the runtime itself failed: the authorizer could not answer
                return responses.AUTHORIZER_FAILURE
            if not invocation.ok:
                # Only an error whose message is exactly "Unauthorized" means 401.
                unauthorized = invocation.error_message == "Unauthorized"
                return responses.UNAUTHORIZED if unauthorized else responses.AUTHORIZER_FAILURE
            try:
                result = parse_authorizer_response(invocation.result)
            except MalformedAuthorizerResponse:
                return responses.AUTHORIZER_FAILURE
            ttl = self.settings.authorizer_cache_ttl_seconds
            ttl = authorizer.cache_ttl_seconds if ttl is None else ttl
            if ttl > 0:
                self.cache.put(authorizer.name, token, result, ttl)
        decision = result.decide(arn)
        if decision is Decision.EXPLICIT_DENY:
            return responses.EXPLICIT_DENY
        if decision is Decision.NOT_COVERED:
            return responses.NOT_AUTHORIZED
        return result


def _refused(
    answer: GatewayResponse, request_id: str, route: Route | None = None, principal_id: str | None = None
) -> Outcome:
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", answer.error_type),
    ]
    return Outcome(
        ApiResponse(answer.status, headers, answer.body()), request_id, route, principal_id, answer.error_type
    )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
