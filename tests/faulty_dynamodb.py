"""A fault injector in front of a real DynamoDB-compatible server (dynalite), as toxiproxy is for
TCP: dynalite never throttles and is never slow, so this proxy does that to chosen requests and
passes the rest through unchanged. A throttled request gets exactly what DynamoDB answers (HTTP 400,
`ProvisionedThroughputExceededException`, with its CRC32 header), so that botocore retries it with
backoff and our code sees the real error. Every request is recorded: operation and what was done."""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Fault = Literal["none", "throttle", "slow"]
THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()


@dataclass
class FaultyDynamoDB:
    """`app` forwards to `upstream`; set `fault` (and `slow_seconds`, `only`) to hurt requests."""

    upstream: str
    fault: Fault = "none"
    slow_seconds: float = 1.0
    only: set[str] | None = None  # operations to hurt (e.g. {"PutItem"}); None: every one
    throttle_next: int = 0  # throttle this many more requests, then pass them again
    seen: list[tuple[str, str]] = field(default_factory=list)  # (operation, "passed"/"throttled"/"slowed")

    def __post_init__(self) -> None:
        self._upstream = httpx.AsyncClient(timeout=30)  # one pool: no connection set up per request
        self.app = Starlette(routes=[Route("/", self._handle, methods=["POST"])], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self._upstream:
            yield

    def operations(self, operation: str, what: str) -> int:
        return sum(1 for seen in self.seen if seen == (operation, what))

    async def _handle(self, request: Request) -> Response:
        operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
        hurt = self.only is None or operation in self.only
        if hurt and (self.fault == "throttle" or self.throttle_next > 0):
            self.throttle_next = max(0, self.throttle_next - 1)
            self.seen.append((operation, "throttled"))
            return Response(
                THROTTLED,
                status_code=400,
                media_type="application/x-amz-json-1.0",
                headers={"x-amz-crc32": str(zlib.crc32(THROTTLED)), "x-amzn-RequestId": "fault-injected"},
            )
        body = await request.body()
        if hurt and self.fault == "slow":
            self.seen.append((operation, "slowed"))
            await asyncio.sleep(self.slow_seconds)
        else:
            self.seen.append((operation, "passed"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = await self._upstream.post(self.upstream, content=body, headers=headers)
        kept = {
            k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-encoding")
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)
