"""The local API Gateway as an ASGI application (Starlette), with the functions' worker processes
started and stopped with it.

`LocalApi` reads the routes, authorizers and functions from `template.yaml` (or takes an
`ApiDescription`), gives each function its template environment plus local overrides (the SQLite
store, the local token), and serves `/<stage>/<resource path>` exactly as `gateway.Gateway` rules.
It also serves its OpenAPI description at `/openapi.json` (API Gateway itself would not).
Access log lines name the method, the path, the status and the request ID: never a header (the
token) or a body (the caller's data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from kore_connect import config
from kore_connect.log_text import printable
from kore_connect.stack import AUTHORIZER_FUNCTION
from kore_connect.twin.apigw.gateway import Gateway, GatewaySettings, IncomingRequest
from kore_connect.twin.apigw.openapi import openapi_document
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.lambda_runtime.runtime import FunctionSpec, LocalFunction, StoreChoice
from kore_connect.twin.template import ApiDescription, describe_api, load_template

access_log = logging.getLogger("kore_connect.apigw.access")


@dataclass(frozen=True)
class FunctionOverrides:
    """Local settings for the functions: variables for all of them, and for one by name."""

    all_functions: Mapping[str, str] = field(default_factory=dict)
    by_function: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def environment(self, name: str, template: Mapping[str, str]) -> dict[str, str]:
        return {**template, **self.all_functions, **self.by_function.get(name, {})}


class LocalApi:
    """The served API: `app` is the ASGI application; its lifespan runs the functions."""

    def __init__(
        self,
        api: ApiDescription | None = None,
        *,
        overrides: FunctionOverrides | None = None,
        settings: GatewaySettings | None = None,
        containers: int = 2,
        max_containers: int = 4,
    ) -> None:
        self.api = api or describe_api(load_template())
        self.settings = settings or GatewaySettings()
        overrides = overrides or FunctionOverrides()
        needed = {r.function for r in self.api.routes} | {
            r.authorizer.function for r in self.api.routes if r.authorizer is not None
        }
        self.functions = {
            name: LocalFunction(
                FunctionSpec(
                    name=name,
                    handler=spec.handler,
                    timeout_seconds=spec.timeout_seconds,
                    environment=overrides.environment(name, spec.environment),
                    memory_mb=spec.memory_mb,
                    region=self.settings.region,
                    account_id=self.settings.account_id,
                ),
                containers=containers,
                max_containers=max_containers,
            )
            for name, spec in self.api.functions.items()
            if name in needed
        }
        self.gateway = Gateway(self.api, self._invoke, self.settings)
        self.app = Starlette(
            routes=[StarletteRoute("/openapi.json", self._openapi, methods=["GET"])],
            lifespan=self._lifespan,
        )
        # Every other request, whatever its method or path, is API Gateway's to answer (an unknown
        # route is its 403), never Starlette's own 404 or 405.
        self.app.router.default = _AnyMethod(self._serve)

    async def _invoke(self, function: str, event: dict[str, Any]) -> Invocation:
        return await self.functions[function].invoke(event)

    @classmethod
    def on_store(cls, store: StoreChoice, token: str, **options: Any) -> LocalApi:
        """The API as the local twin serves it: every function on `store`, the authorizer accepting
        `token`; `options` as for the constructor."""
        overrides = FunctionOverrides(
            all_functions=store.environment(), by_function={AUTHORIZER_FUNCTION: {config.AUTH_TOKEN: token}}
        )
        return cls(overrides=overrides, **options)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            for function in self.functions.values():
                await function.start()
            yield
        finally:
            for function in self.functions.values():
                await function.close()

    async def _openapi(self, request: Request) -> Response:
        server = f"{request.url.scheme}://{request.url.netloc}/{self.api.stage}"
        return Response(json.dumps(openapi_document(self.api, server)), media_type="application/json")

    async def _serve(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            body, too_large = await _read_body(request, self.settings.payload_limit_bytes)
        except ClientDisconnect:
            access_log.info('%s "%s %s" client went away before its body was read', *_who(request))
            return Response(status_code=400)  # nobody is there to read it
        incoming = IncomingRequest(
            method=request.method,
            path=request.scope["path"],
            query=request.query_params.multi_items(),
            headers=request.headers.items(),
            body=body,
            source_ip=_who(request)[0],
            host=request.headers.get("host", "localhost"),
            body_too_large=too_large,
        )
        outcome = await self.gateway.handle(incoming)
        answer = outcome.response
        response = Response(content=answer.body, status_code=answer.status)
        response.raw_headers = [(b"content-length", str(len(answer.body)).encode())] + [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers
        ]
        client, method, path = _who(request)
        access_log.info(
            '%s "%s %s" %d %d %.1fms %s',
            client,
            method,
            path,
            answer.status,
            len(answer.body),
            (time.perf_counter() - started) * 1000,
            outcome.request_id,
        )
        return response


def _who(request: Request) -> tuple[str, str, str]:
    """Client, method and path for a log line, with control characters escaped (no forged lines)."""
    host = request.client.host if request.client else "127.0.0.1"
    return host, printable(request.method), printable(request.scope["path"], limit=None)


class _AnyMethod:
    """An ASGI endpoint, which Starlette routes for every method (a function endpoint gets GET only)."""

    def __init__(self, serve: Callable[[Request], Awaitable[Response]]) -> None:
        self._serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._serve(Request(scope, receive))
        await response(scope, receive, send)


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or as much as the limit allows and True when it is larger (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False
