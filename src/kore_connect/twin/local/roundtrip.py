"""One metadata round trip through the real handlers, in-process: deny, allow, store, retrieve.

This is what `kore-connect demo` runs; the same handlers run unchanged in AWS Lambda.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kore_connect.aws_events import contact_flow_event, store_request_event, token_event
from kore_connect.bridge import authorizer, container, retrieve, store
from kore_connect.twin.lambda_runtime.context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# What the reference Kore Service node sends (REFERENCE.md §1), with a few non-string values
# that the reference Lambdas could not carry.
SAMPLE_METADATA: dict[str, Any] = {
    "x_metadata": "Hello from Kore",
    "kore-instanceSessionId": "6744a1f2c0ffee0011223344",
    "intent": "billing_dispute",
    "confidence": 0.93,
    "accountNumber": 90071992547409931,
    "verified": True,
    "slots": {"amount": 42.5, "currency": "EUR"},
}


@dataclass
class RoundTripStep:
    name: str
    ok: bool
    detail: str


@dataclass
class RoundTrip:
    contact_id: str
    sent: dict[str, Any]
    steps: list[RoundTripStep] = field(default_factory=list)
    retrieved: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


def run_round_trip(
    token: str, *, metadata: dict[str, Any] | None = None, contact_id: str | None = None
) -> RoundTrip:
    """Run the four steps against the stores and tokens the environment configures."""
    trip = RoundTrip(contact_id or str(uuid.uuid4()), metadata if metadata is not None else SAMPLE_METADATA)
    container.reset()

    denied = _invoke_authorizer(token_event("not-the-token-" + uuid.uuid4().hex))
    trip.steps.append(
        RoundTripStep("A wrong token is refused", denied == "Unauthorized", f"authorizer: {denied}")
    )
    allowed = _invoke_authorizer(token_event(token))
    trip.steps.append(
        RoundTripStep("The right token is allowed", isinstance(allowed, dict), _policy_summary(allowed))
    )

    stored = _invoke(
        store.lambda_handler,
        "koreStoreSessionMetadata",
        store_request_event(trip.contact_id, json.dumps(trip.sent), token=token),
    )
    trip.steps.append(
        RoundTripStep(
            "The bot's metadata is stored",
            stored["statusCode"] == 200,
            f"HTTP {stored['statusCode']}: {stored['body']}",
        )
    )

    answer = _invoke(
        retrieve.lambda_handler, "koreRetrieveSessionMetadata", contact_flow_event(trip.contact_id)
    )
    if answer.get("statusCode") == 200:
        trip.retrieved = json.loads(answer["body"])
    same = trip.retrieved == trip.sent and _same_numbers(trip.retrieved, trip.sent)
    flat = {k: v for k, v in answer.items() if k not in ("statusCode", "body")}
    trip.steps.append(
        RoundTripStep(
            "The flow gets it back exactly",
            same,
            f"statusCode {answer.get('statusCode')}, flat attributes: {sorted(flat)}",
        )
    )
    return trip


def _invoke(handler: Handler, name: str, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, LocalLambdaContext(function_name=name))


def _invoke_authorizer(event: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return _invoke(authorizer.lambda_handler, "AuthenticateBeforeStoringInDynamoDB", event)
    except authorizer.Unauthorized as exc:
        return str(exc)


def _policy_summary(result: dict[str, Any] | str) -> str:
    if not isinstance(result, dict):
        return f"authorizer: {result}"
    statement = result["policyDocument"]["Statement"][0]
    return f"{statement['Effect']} {', '.join(statement['Resource'])} for {result['principalId']}"


def _same_numbers(a: Any, b: Any) -> bool:
    """Equal, and numbers of the same type too (1 and 1.0 compare equal in Python, not in JSON)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_numbers(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
