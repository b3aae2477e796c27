"""AuthenticateBeforeStoringInDynamoDB, the TOKEN authorizer, with the event of tests/events."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kore_connect.bridge import authorizer, container
from kore_connect.bridge.authorizer import AuthorizerUnavailable, Unauthorized
from kore_connect.bridge.tokens import REFRESH_INTERVAL_SECONDS
from kore_connect.twin.template import describe_api, load_template
from tests.conftest import TOKEN, context, load_event
from tests.peers import SilentPeer

NEXT_TOKEN = "next-token-after-rotation-0001"


def authorize(token: str | None = TOKEN, **overrides: Any) -> dict[str, Any]:
    event = load_event("authorizer-token-event.json")
    if token is None:
        del event["authorizationToken"]
    else:
        event["authorizationToken"] = token
    event.update(overrides)
    return authorizer.lambda_handler(event, context("AuthenticateBeforeStoringInDynamoDB"))


def test_the_right_token_gets_an_allow_policy_for_this_apis_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the token configured as the reference does
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    # WHEN API Gateway asks with the fixture event
    response = authorize()
    # THEN: an Allow with a principal, covering every method of this API's stage, never "*"
    assert response == {
        "principalId": "kore-bot",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": ["arn:aws:execute-api:us-west-2:123456789012:q8x3mv2k7p/prod/*/*"],
                }
            ],
        },
        "context": {"tokenSlot": "current"},
    }


def test_the_policy_keeps_the_partition_of_the_method_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    arn = "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:a1b2c3d4e5/prod/POST/kore-metadata"
    response = authorize(methodArn=arn)
    assert response["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:a1b2c3d4e5/prod/*/*"
    ]


@pytest.mark.parametrize(
    "presented", [None, "", "wrong-token-of-some-length", TOKEN + " ", TOKEN[:-1], TOKEN.upper()]
)
def test_a_wrong_empty_or_missing_token_is_unauthorized(
    monkeypatch: pytest.MonkeyPatch, presented: str | None
) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    with pytest.raises(Unauthorized) as raised:
        authorize(presented)
    # API Gateway answers 401 only for exactly this message
    assert str(raised.value) == "Unauthorized"


@pytest.mark.parametrize("arn", ["", "*", "arn:aws:execute-api:us-east-1:123:api", "not-an-arn"])
def test_a_malformed_method_arn_is_unauthorized(monkeypatch: pytest.MonkeyPatch, arn: str) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    with pytest.raises(Unauthorized):
        authorize(methodArn=arn)


def test_with_nothing_configured_everything_is_refused_and_logged_once(function_logs: io.StringIO) -> None:
    # GIVEN no AUTH_TOKEN and no secret (the reference fell back to "abc123")
    for token in (TOKEN, "abc123", "", None):
        with pytest.raises(Unauthorized):
            authorize(token)
    # THEN one clear error line says so
    errors = [json.loads(line) for line in function_logs.getvalue().splitlines() if '"ERROR"' in line]
    assert len(errors) == 1
    assert "not configured" in errors[0]["message"]
    assert "AUTH_TOKEN" in errors[0]["message"]


def test_a_weak_token_is_not_accepted(monkeypatch: pytest.MonkeyPatch, function_logs: io.StringIO) -> None:
    monkeypatch.setenv("AUTH_TOKEN", "abc123")
    with pytest.raises(Unauthorized):
        authorize("abc123")
    assert "shorter than 16 characters" in function_logs.getvalue()


def test_two_tokens_are_valid_during_a_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_TOKEN", NEXT_TOKEN)
    monkeypatch.setenv("AUTH_TOKEN_PREVIOUS", TOKEN)
    monkeypatch.setenv("AUTH_TOKEN_ROTATED_AT", datetime.now(UTC).isoformat())
    assert authorize(NEXT_TOKEN)["context"] == {"tokenSlot": "current"}
    assert authorize(TOKEN)["context"] == {"tokenSlot": "previous"}
    with pytest.raises(Unauthorized):
        authorize("some-third-token-nobody-has")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Any:
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="kore-connect/token", SecretString=TOKEN)["ARN"]
        monkeypatch.setenv("AUTH_TOKEN_SECRET_ARN", arn)
        yield client, arn


def test_the_token_can_come_from_secrets_manager(secret: Any) -> None:
    assert authorize(TOKEN)["principalId"] == "kore-bot"
    with pytest.raises(Unauthorized):
        authorize("wrong-token-of-some-length")


def test_the_secret_wins_over_the_environment(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_TOKEN", "an-old-environment-token")
    assert authorize(TOKEN)
    with pytest.raises(Unauthorized):
        authorize("an-old-environment-token")


def test_the_secret_is_read_once_per_container(secret: Any) -> None:
    calls = _count_secret_reads()
    for _ in range(5):
        authorize(TOKEN)
    assert calls() == 2  # AWSCURRENT and AWSPREVIOUS, once


def test_a_rotated_secret_accepts_old_and_new_tokens(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a warm container that has read the secret
    client, arn = secret
    clock = _frozen_monotonic(monkeypatch)
    assert authorize(TOKEN)
    # WHEN the secret is rotated (AWSCURRENT moves to the new value, the old one becomes AWSPREVIOUS)
    client.put_secret_value(SecretId=arn, SecretString=NEXT_TOKEN)
    # THEN the new token is refused until the refresh interval has passed (no hammering of Secrets Manager)...
    with pytest.raises(Unauthorized):
        authorize(NEXT_TOKEN)
    # ...and accepted after it, while the bot's old token still works
    clock.now += REFRESH_INTERVAL_SECONDS
    assert authorize(NEXT_TOKEN)["context"] == {"tokenSlot": "current"}
    assert authorize(TOKEN)["context"] == {"tokenSlot": "previous"}


def test_many_wrong_tokens_read_the_secret_at_most_once_a_minute(
    secret: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _frozen_monotonic(monkeypatch)
    calls = _count_secret_reads()
    for n in range(200):
        with pytest.raises(Unauthorized):
            authorize(f"wrong-token-number-{n:05d}")
        clock.now += 0.1
    assert calls() == 2 * (1 + int(200 * 0.1 // REFRESH_INTERVAL_SECONDS))


def test_an_unreadable_secret_fails_with_a_500_not_a_401(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        monkeypatch.setenv(
            "AUTH_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
        )
        with pytest.raises(AuthorizerUnavailable):
            authorize(TOKEN)


def test_a_misconfigured_setting_fails_with_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("AUTH_TOKEN_SECRET_ARN", "not-an-arn")
    with pytest.raises(AuthorizerUnavailable, match="misconfigured"):
        authorize(TOKEN)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _frozen_monotonic(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr("kore_connect.bridge.tokens.time.monotonic", clock)
    container.reset()
    return clock


def _count_secret_reads() -> Any:
    """Counts GetSecretValue calls made by the authorizer's client."""
    calls = {"n": 0}
    verifier = container.token_verifier()
    client = verifier._source._secrets_manager()  # type: ignore[attr-defined]

    def count(**_: Any) -> None:
        calls["n"] += 1

    client.meta.events.register("before-call.secrets-manager.GetSecretValue", count)
    return lambda: calls["n"]


# What the mutation run (./dev mutate, docs/testing.md) found untested in the authorizer.


@pytest.mark.parametrize("presented", [12345, ["a-list-of-one-token-00000"], {"token": TOKEN}, "\ud800" * 20])
def test_a_token_that_is_not_a_string_of_characters_is_unauthorized(
    monkeypatch: pytest.MonkeyPatch, presented: Any
) -> None:
    # A test event (or a future API Gateway) may carry anything JSON holds, a lone surrogate included.
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    with pytest.raises(Unauthorized):
        authorize(presented)


@pytest.mark.parametrize(
    ("presented", "reason"), [(None, "no token"), ("", "no token"), ("x" * 20, "token does not match")]
)
def test_a_denial_is_logged_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, function_logs: io.StringIO, presented: str | None, reason: str
) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    with pytest.raises(Unauthorized):
        authorize(presented)
    denials = [json.loads(line) for line in function_logs.getvalue().splitlines() if "Request denied" in line]
    assert [denial["reason"] for denial in denials] == [reason]


def test_a_hanging_secrets_manager_fails_the_authorizer_within_its_lambda_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the authorizer's secret behind an endpoint that accepts and never answers
    peer = SilentPeer()
    try:
        monkeypatch.setenv(
            "AUTH_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf"
        )
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{peer.port}")
        container.reset()
        client_config = container.token_verifier()._source._secrets_manager().meta.config  # type: ignore[attr-defined]
        attempts = client_config.retries["total_max_attempts"]
        # WHEN a request comes: THEN the authorizer gives up with its own error (API Gateway's 500)
        with pytest.raises(AuthorizerUnavailable) as raised:
            authorize(TOKEN)
        assert str(raised.value) == "the authorizer cannot read its token; see its logs"
        # AND it tried exactly as often as configured, at the real peer
        assert len(peer.accepted) == attempts
    finally:
        peer.close()
    # AND the worst case (every attempt waiting out both timeouts, plus standard mode's backoff of at
    # most 2^(n-1) s before attempt n+1) ends before the function's timeout, so the log says why it
    # failed rather than Lambda's "Task timed out"
    backoff = sum(2 ** (n - 1) for n in range(1, attempts))
    worst = attempts * (client_config.connect_timeout + client_config.read_timeout) + backoff
    timeout = describe_api(load_template()).functions["AuthenticateBeforeStoringInDynamoDB"].timeout_seconds
    assert worst < timeout
