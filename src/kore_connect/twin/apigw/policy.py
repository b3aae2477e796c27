"""What API Gateway does with a TOKEN authorizer's answer (pure, no I/O).

The authorizer returns a principal, an IAM policy and a context. API Gateway checks the shape
(anything else is a 500), then evaluates the policy against the request's `methodArn`: an
explicit Deny of a matching resource wins, then an Allow of a matching resource; anything else is
refused with 403. Because the answer is cached per token and reused for other methods, the policy
is evaluated again for every request, never the cached verdict.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INVOKE_ACTIONS = frozenset({"execute-api:Invoke", "execute-api:*", "*"})


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"  # a Deny statement covers the method
    NOT_COVERED = "not covered"  # no Allow statement covers the method

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


class MalformedAuthorizerResponse(ValueError):
    """The authorizer answered something API Gateway cannot use: the caller gets a 500."""


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    resources: tuple[str, ...]

    def covers(self, method_arn: str) -> bool:
        return any(_arn_matches(pattern, method_arn) for pattern in self.resources)


@dataclass(frozen=True, slots=True)
class AuthorizerResult:
    principal_id: str
    statements: tuple[Statement, ...]
    context: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def decide(self, method_arn: str) -> Decision:
        matching = [s for s in self.statements if s.covers(method_arn)]
        if any(s.effect == "Deny" for s in matching):
            return Decision.EXPLICIT_DENY
        if any(s.effect == "Allow" for s in matching):
            return Decision.ALLOW
        return Decision.NOT_COVERED


def method_arn(*, region: str, account: str, api_id: str, stage: str, verb: str, path: str) -> str:
    """arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<VERB>/<resource path without its leading />"""
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{verb.upper()}/{path.lstrip('/')}"


def parse_authorizer_response(response: Any) -> AuthorizerResult:
    """Validate what a TOKEN authorizer returned; raise MalformedAuthorizerResponse if unusable."""
    if not isinstance(response, dict):
        raise MalformedAuthorizerResponse("the authorizer's response is not a JSON object")
    principal = response.get("principalId")
    if not isinstance(principal, str) or not principal:
        raise MalformedAuthorizerResponse("principalId is missing")
    document = response.get("policyDocument")
    if not isinstance(document, dict) or not isinstance(document.get("Statement"), list | dict):
        raise MalformedAuthorizerResponse("policyDocument.Statement is missing")
    raw_statements = document["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    statements = tuple(_statement(raw) for raw in raw_statements)
    context = response.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(v, str | int | float | bool) and not isinstance(v, dict | list) for v in context.values()
    ):
        raise MalformedAuthorizerResponse("context values must be strings, numbers or booleans")
    return AuthorizerResult(principal, tuple(s for s in statements if s is not None), context)


def _statement(raw: Any) -> Statement | None:
    if not isinstance(raw, dict) or raw.get("Effect") not in ("Allow", "Deny"):
        raise MalformedAuthorizerResponse("each statement needs an Effect of Allow or Deny")
    actions = _as_tuple(raw.get("Action"), "Action")
    resources = _as_tuple(raw.get("Resource"), "Resource")
    if not INVOKE_ACTIONS & set(actions):
        return None  # a statement about other actions says nothing about invoking this API
    return Statement(str(raw["Effect"]), resources)


def _as_tuple(value: Any, name: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise MalformedAuthorizerResponse(f"each statement needs an {name}: a string or a list of strings")
    return tuple(values)


def _arn_matches(pattern: str, arn: str) -> bool:
    return _resource_regex(pattern).fullmatch(arn) is not None


@functools.lru_cache(maxsize=1024)
def _resource_regex(pattern: str) -> re.Pattern[str]:
    # IAM resource wildcards: "*" any run of characters (also across "/"), "?" one character;
    # nothing else is special. Compiled once per pattern: cached policies are re-evaluated per request.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, flags=re.DOTALL)
