"""An HTTP request as API Gateway's Lambda proxy integration hands it to a function, and the
function's answer back as HTTP (pure, no I/O: the ASGI app in `app.py` does the I/O).

https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
Differences from AWS, all harmless to the bridge: header names arrive lower-case (the HTTP server
normalises them; API Gateway keeps the caller's case), and a body that is not UTF-8 text is passed
base64-encoded with `isBase64Encoded` (API Gateway does so for its configured binary media types).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """What the proxy event is made of: one HTTP request and where API Gateway routed it."""

    method: str
    resource: str  # the route's resource path, e.g. /kore-metadata
    path: str  # the request path without the stage
    stage: str
    headers: Sequence[tuple[str, str]]  # in order, repeats kept
    query: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    request_id: str
    received_at: datetime  # UTC
    api_id: str
    account_id: str
    domain_name: str


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field names
_GATEWAY_OWNED = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "keep-alive",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-amzn-requestid",
        "x-amzn-errortype",
    }
)


class MalformedProxyResponse(ValueError):
    """The function's answer is not a Lambda proxy response: API Gateway answers 502."""


def proxy_event(
    request: ApiRequest, principal_id: str | None, context: Mapping[str, Any], authorizer_latency_ms: int = 0
) -> dict[str, Any]:
    """The REST API proxy event for `request`, with the authorizer's principal and context."""
    headers, multi_headers = _single_and_multi(request.headers)
    query, multi_query = _single_and_multi(request.query)
    body, is_base64 = _body(request.body)
    user_agent = headers.get("user-agent")
    authorizer: dict[str, Any] | None = None
    if principal_id is not None:
        # A REST API passes the authorizer's context values on as strings ("true", "1").
        authorizer = {key: _as_text(value) for key, value in context.items()}
        authorizer.update(principalId=principal_id, integrationLatency=authorizer_latency_ms)
    return {
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": request.resource,
            "httpMethod": request.method,
            "extendedRequestId": request.request_id,
            "requestTime": request.received_at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{request.stage}{request.path}",
            "accountId": request.account_id,
            "protocol": "HTTP/1.1",
            "stage": request.stage,
            "domainPrefix": request.domain_name.split(".")[0],
            "requestTimeEpoch": int(request.received_at.timestamp() * 1000),
            "requestId": request.request_id,
            "identity": {"sourceIp": request.source_ip, "userAgent": user_agent},
            "domainName": request.domain_name,
            "apiId": request.api_id,
            "authorizer": authorizer,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def http_response(result: Any) -> ApiResponse:
    """The HTTP answer for a function's proxy response; MalformedProxyResponse when it is not one."""
    if not isinstance(result, dict):
        raise MalformedProxyResponse("the function did not return a JSON object")
    unknown = set(result) - {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
    if unknown:
        raise MalformedProxyResponse(f"unexpected keys {sorted(unknown)}")
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise MalformedProxyResponse("statusCode must be an integer HTTP status from 200 to 599")
    headers: list[tuple[str, str]] = []
    single = {} if result.get("headers") is None else result["headers"]
    multi = {} if result.get("multiValueHeaders") is None else result["multiValueHeaders"]
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be objects")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend(_header(name, v) for v in values)
    seen = {name.lower() for name, _ in headers}
    headers.extend(_header(n, v) for n, v in single.items() if str(n).lower() not in seen)
    headers = [(_remapped(name), value) for name, value in headers]
    body = result.get("body")
    is_base64 = result.get("isBase64Encoded", False)
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse("body must be a string")
    if not isinstance(is_base64, bool):
        raise MalformedProxyResponse("isBase64Encoded must be a boolean")
    try:
        raw = base64.b64decode(body or "", validate=True) if is_base64 else (body or "").encode("utf-8")
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedProxyResponse(f"the body cannot be decoded: {exc}") from None
    return ApiResponse(status, headers, raw)


def _remapped(name: str) -> str:
    # Headers that belong to the connection, or that API Gateway sets itself, are not passed on
    # as the function set them but renamed, as API Gateway does (x-amzn-Remapped-<name>).
    return f"x-amzn-Remapped-{name}" if name.lower() in _GATEWAY_OWNED else name


def _header(name: Any, value: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise MalformedProxyResponse(f"{name!r} is not a header name")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedProxyResponse("header values must be strings or numbers")
    text = str(value)
    if "\r" in text or "\n" in text or "\0" in text:
        raise MalformedProxyResponse("a header value holds a line break")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise MalformedProxyResponse("a header value is not ISO-8859-1 text") from None
    return name, text


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _single_and_multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    # API Gateway: the single-value map keeps the last value of a repeated name.
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _body(raw: bytes) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True
