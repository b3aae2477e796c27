"""A Lambda proxy integration whose answer the query string chooses."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    query = event.get("queryStringParameters") or {}
    action = query.get("action", "echo")
    if action == "sleep":
        time.sleep(float(query["seconds"]))
    if action == "raise":
        raise ValueError("the integration broke")
    if action == "malformed":
        return {"statusCode": "200", "body": "{}"}
    if action == "not-a-dict":
        return "hello"
    if action == "multi":
        return {
            "statusCode": 201,
            "headers": {"X-One": "1", "Set-Cookie": "ignored"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": "created",
        }
    if action == "owned-headers":
        return {
            "statusCode": 200,
            "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked", "x-amzn-RequestId": "mine"},
            "body": "ok",
        }
    if action == "informational":
        return {"statusCode": 101, "body": ""}
    if action == "binary":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(b"\x00\xff\x10").decode(),
            "isBase64Encoded": True,
        }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}
