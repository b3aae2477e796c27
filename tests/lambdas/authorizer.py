"""A TOKEN authorizer whose answer the token chooses; each invocation is written to a log file."""

from __future__ import annotations

import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token, arn = event["authorizationToken"], event["methodArn"]
    with open(os.environ["AUTHORIZER_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{event['type']} {token} {arn}\n")
    stage_prefix = arn.split("/")[0] + "/" + arn.split("/")[1]  # arn:...:<api>/<stage>
    if token.startswith("allow"):
        return _policy("Allow", f"{stage_prefix}/*/*", context={"who": "tester", "level": 3, "vip": True})
    if token.startswith("post-only"):
        return _policy("Allow", f"{stage_prefix}/POST/*")
    if token.startswith("deny"):
        return _policy("Deny", f"{stage_prefix}/*")
    if token.startswith("other-action"):
        document = _policy("Allow", "*")
        document["policyDocument"]["Statement"][0]["Action"] = "s3:GetObject"
        return document
    if token == "malformed":
        return {"hello": "world"}
    if token == "boom":
        raise RuntimeError("the authorizer broke")
    raise Exception("Unauthorized")


def _policy(effect: str, resource: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "principalId": "tester",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": [resource]}],
        },
        "context": context or {},
    }
