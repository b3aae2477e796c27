"""Rotation and revocation of the bot's token over simulated time (issue 19, finding 1).

A fake Secrets Manager keeps versions with staging labels and creation times on one simulated
clock, which the verifier also reads, so hours pass in microseconds. The bot keeps presenting its
current token, as a real bot does: nothing else makes a warm container read the secret.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from kore_connect.bridge.tokens import (
    MIN_TOKEN_LENGTH,
    TOKEN_MAX_AGE_SECONDS,
    EnvironmentTokens,
    SecretTokens,
    TokenSourceUnavailable,
    TokenVerifier,
)
from kore_connect.config import Settings
from kore_connect.errors import ConfigError

OLD = "the-old-token-revoked-0000000001"
NEW = "the-new-token-current-000000002"
WINDOW = 15 * 60
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kore-token-AbCdEf"


class SimulatedClock:
    """Seconds since the epoch, moved by the test; both the verifier's clocks read it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


class FakeSecretsManager:
    """GetSecretValue by staging label, as Secrets Manager answers it, and the two operations
    an operator uses: put-secret-value (a rotation) and removing the AWSPREVIOUS label."""

    def __init__(self, clock: SimulatedClock, first: str) -> None:
        self._clock = clock
        self._versions: list[tuple[str, datetime]] = []
        self._stages: dict[str, int] = {}
        self.reads = 0
        self.put_secret_value(first)

    def put_secret_value(self, value: str) -> None:
        if "AWSCURRENT" in self._stages:
            self._stages["AWSPREVIOUS"] = self._stages["AWSCURRENT"]
        self._versions.append((value, datetime.fromtimestamp(self._clock.now, UTC)))
        self._stages["AWSCURRENT"] = len(self._versions) - 1

    def remove_previous_label(self) -> None:
        del self._stages["AWSPREVIOUS"]

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        assert SecretId == ARN
        self.reads += 1
        if VersionStage not in self._stages:
            error = {"Error": {"Code": "ResourceNotFoundException", "Message": "no such version"}}
            raise ClientError(error, "GetSecretValue")  # type: ignore[arg-type]
        value, created = self._versions[self._stages[VersionStage]]
        return {"ARN": ARN, "SecretString": value, "CreatedDate": created, "VersionStages": [VersionStage]}


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def log() -> Any:
    buffer = io.StringIO()
    logger = logging.getLogger(f"test-token-rotation-{id(buffer)}")
    logger.addHandler(logging.StreamHandler(buffer))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.buffer = buffer  # type: ignore[attr-defined]
    return logger


def secret_verifier(secrets: FakeSecretsManager, clock: SimulatedClock, log: Any) -> TokenVerifier:
    source = SecretTokens(ARN, rotation_window_seconds=WINDOW, client=secrets)  # type: ignore[arg-type]
    return TokenVerifier(source, log=log, clock=clock, wall_clock=clock)


def rotated(clock: SimulatedClock) -> FakeSecretsManager:
    """A secret rotated once, just now: {current NEW, previous OLD}."""
    secrets = FakeSecretsManager(clock, OLD)
    clock.now += 30 * 24 * 3600
    secrets.put_secret_value(NEW)
    return secrets


def bot_calls(verifier: TokenVerifier, clock: SimulatedClock, seconds: float, every: float = 60.0) -> None:
    """The bot sends the current token every `every` seconds for `seconds`: each is accepted."""
    end = clock.now + seconds
    while clock.now < end:
        assert verifier.match(NEW) == "current"
        clock.now += every


@pytest.mark.parametrize("hours", [1, 6, 24])
def test_a_revoked_previous_token_is_refused_although_the_bot_keeps_the_container_warm(
    clock: SimulatedClock, log: Any, hours: int
) -> None:
    # GIVEN a warm authorizer that accepts both tokens during the rotation
    secrets = rotated(clock)
    verifier = secret_verifier(secrets, clock, log)
    assert verifier.match(NEW) == "current"
    assert verifier.match(OLD) == "previous"
    # WHEN the old token is revoked (its AWSPREVIOUS label removed) and the bot keeps calling
    secrets.remove_previous_label()
    bot_calls(verifier, clock, hours * 3600)
    # THEN the old token is refused, and the secret was read a bounded number of times
    assert verifier.match(OLD) is None
    assert secrets.reads <= 2 * (1 + hours * 3600 / TOKEN_MAX_AGE_SECONDS) + 2


def test_a_revocation_reaches_a_warm_container_within_the_tokens_maximum_age(
    clock: SimulatedClock, log: Any
) -> None:
    secrets = rotated(clock)
    verifier = secret_verifier(secrets, clock, log)
    assert verifier.match(OLD) == "previous"
    secrets.remove_previous_label()
    bot_calls(verifier, clock, TOKEN_MAX_AGE_SECONDS, every=10)
    assert verifier.match(OLD) is None


def test_the_previous_token_is_valid_only_during_the_rotation_window(clock: SimulatedClock, log: Any) -> None:
    # GIVEN a rotation nobody revokes
    secrets = rotated(clock)
    verifier = secret_verifier(secrets, clock, log)
    # THEN the old token works until the window ends, and not a second after
    bot_calls(verifier, clock, WINDOW - 1, every=1)
    clock.now = secrets.get_secret_value(SecretId=ARN, VersionStage="AWSCURRENT")["CreatedDate"].timestamp()
    clock.now += WINDOW - 1
    assert verifier.match(OLD) == "previous"
    clock.now += 1
    assert verifier.match(OLD) is None
    assert verifier.match(NEW) == "current"
    # AND the log says why, without the token
    logged = log.buffer.getvalue()
    assert "previous token was refused: its rotation window ended at 2027-01-01T09:15:00+00:00" in logged
    assert OLD not in logged


def test_the_window_counts_from_the_rotation_not_from_the_containers_start(
    clock: SimulatedClock, log: Any
) -> None:
    # GIVEN a rotation an hour ago, and a container that starts now
    secrets = rotated(clock)
    clock.now += 3600
    verifier = secret_verifier(secrets, clock, log)
    # THEN the old token is already refused
    assert verifier.match(NEW) == "current"
    assert verifier.match(OLD) is None


def test_a_window_of_zero_never_accepts_the_previous_token(clock: SimulatedClock, log: Any) -> None:
    secrets = rotated(clock)
    source = SecretTokens(ARN, rotation_window_seconds=0, client=secrets)  # type: ignore[arg-type]
    verifier = TokenVerifier(source, log=log, clock=clock, wall_clock=clock)
    assert verifier.match(OLD) is None
    assert verifier.match(NEW) == "current"


def environment_verifier(env: dict[str, str], clock: SimulatedClock, log: Any) -> TokenVerifier:
    return TokenVerifier(EnvironmentTokens(Settings.from_env(env)), log=log, clock=clock, wall_clock=clock)


def test_an_environment_previous_token_needs_the_rotation_time(clock: SimulatedClock, log: Any) -> None:
    verifier = environment_verifier({"AUTH_TOKEN": NEW, "AUTH_TOKEN_PREVIOUS": OLD}, clock, log)
    assert verifier.match(NEW) == "current"
    assert verifier.match(OLD) is None
    assert "AUTH_TOKEN_PREVIOUS is ignored: set AUTH_TOKEN_ROTATED_AT" in log.buffer.getvalue()


def test_an_environment_previous_token_is_valid_for_the_window_after_the_rotation_time(
    clock: SimulatedClock, log: Any
) -> None:
    rotated_at = datetime.fromtimestamp(clock.now, UTC).isoformat()
    env = {"AUTH_TOKEN": NEW, "AUTH_TOKEN_PREVIOUS": OLD, "AUTH_TOKEN_ROTATED_AT": rotated_at}
    verifier = environment_verifier(env | {"KORE_TOKEN_ROTATION_WINDOW_SECONDS": "600"}, clock, log)
    clock.now += 599
    assert verifier.match(OLD) == "previous"
    clock.now += 1
    assert verifier.match(OLD) is None
    assert verifier.match(NEW) == "current"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_TOKEN_ROTATED_AT": "yesterday"}, "AUTH_TOKEN_ROTATED_AT must be an ISO 8601 date and time"),
        ({"AUTH_TOKEN_ROTATED_AT": "2026-12-02T10:00:00"}, "AUTH_TOKEN_ROTATED_AT must say its time zone"),
        ({"KORE_TOKEN_ROTATION_WINDOW_SECONDS": "86401"}, "must be between 0 and 86400 (got 86401)"),
        ({"KORE_TOKEN_ROTATION_WINDOW_SECONDS": "-1"}, "must be between 0 and 86400 (got -1)"),
    ],
)
def test_rotation_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "token",
    ["a token with spaces inside it", "a-token-with-a-newline\nin-it", "a-token-with-é-accents-00"],
)
def test_a_configured_token_api_gateway_would_refuse_is_ignored_and_said(
    clock: SimulatedClock, log: Any, token: str
) -> None:
    verifier = environment_verifier({"AUTH_TOKEN": token}, clock, log)
    assert verifier.match(token) is None
    assert "AUTH_TOKEN is ignored: a token is printable ASCII without spaces" in log.buffer.getvalue()


# What the mutation run (./dev mutate, docs/testing.md) found untested in the token sources.


class ScriptedSecrets:
    """GetSecretValue answering each staging label as scripted: a response, or an error to raise."""

    def __init__(self, **answers: dict[str, Any] | Exception) -> None:
        self._answers = answers

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        answer = self._answers.get(VersionStage)
        if answer is None:
            error = {"Error": {"Code": "ResourceNotFoundException", "Message": "no such version"}}
            raise ClientError(error, "GetSecretValue")  # type: ignore[arg-type]
        if isinstance(answer, Exception):
            raise answer
        return answer


def scripted_verifier(secrets: ScriptedSecrets, clock: SimulatedClock, log: Any) -> TokenVerifier:
    source = SecretTokens(ARN, rotation_window_seconds=WINDOW, client=secrets)  # type: ignore[arg-type]
    return TokenVerifier(source, log=log, clock=clock, wall_clock=clock)


def logged_lines(log: Any) -> list[str]:
    return list(log.buffer.getvalue().splitlines())


def test_a_token_of_exactly_the_minimum_length_is_accepted(clock: SimulatedClock, log: Any) -> None:
    token = "x" * MIN_TOKEN_LENGTH
    assert environment_verifier({"AUTH_TOKEN": token}, clock, log).match(token) == "current"
    assert environment_verifier({"AUTH_TOKEN": token[:-1]}, clock, log).match(token[:-1]) is None


def test_a_binary_current_secret_is_no_token_and_does_not_hide_the_previous_one(
    clock: SimulatedClock, log: Any
) -> None:
    # GIVEN a secret whose AWSCURRENT version holds SecretBinary (no SecretString), rotated just now
    created = datetime.fromtimestamp(clock.now, UTC)
    secrets = ScriptedSecrets(
        AWSCURRENT={"SecretBinary": NEW.encode(), "CreatedDate": created},
        AWSPREVIOUS={"SecretString": OLD, "CreatedDate": created},
    )
    verifier = scripted_verifier(secrets, clock, log)
    # THEN the binary value matches nothing (no crash), and the previous token still counts
    assert verifier.match(NEW) is None
    assert verifier.match(OLD) == "previous"


@pytest.mark.parametrize("zoned", [False, True], ids=["naive-utc", "aware-local"])
def test_a_creation_time_is_read_in_its_own_zone_whatever_the_machines(
    clock: SimulatedClock, log: Any, machine_in_kolkata: None, zoned: bool
) -> None:
    # GIVEN a machine whose local time is 5 h 30 min ahead of UTC (the fixture)
    # AND a creation time without a zone (read as UTC) or in the machine's zone (botocore's tzlocal)
    created = datetime.fromtimestamp(clock.now, UTC)
    created = created.astimezone() if zoned else created.replace(tzinfo=None)
    secrets = ScriptedSecrets(
        AWSCURRENT={"SecretString": NEW, "CreatedDate": created},
        AWSPREVIOUS={"SecretString": OLD, "CreatedDate": created},
    )
    verifier = scripted_verifier(secrets, clock, log)
    # THEN the window ends WINDOW seconds after that moment, not 5 h 30 min off
    clock.now += WINDOW - 1
    assert verifier.match(OLD) == "previous"
    clock.now += 1
    assert verifier.match(OLD) is None


def test_a_previous_version_without_a_creation_time_is_ignored_and_said(
    clock: SimulatedClock, log: Any
) -> None:
    secrets = ScriptedSecrets(AWSCURRENT={"SecretString": NEW}, AWSPREVIOUS={"SecretString": OLD})
    verifier = scripted_verifier(secrets, clock, log)
    assert verifier.match(OLD) is None
    assert verifier.match(NEW) == "current"
    assert logged_lines(log) == [
        "Authorizer token problem: the secret's AWSPREVIOUS value is ignored: its rotation time is unknown"
    ]


def test_a_secret_never_rotated_reports_no_problem(clock: SimulatedClock, log: Any) -> None:
    verifier = secret_verifier(FakeSecretsManager(clock, NEW), clock, log)
    assert verifier.match(NEW) == "current"
    assert logged_lines(log) == []


TOO_SHORT = "is shorter than 16 characters and is ignored"
REFUSED_UNTIL = (
    "Every request is refused until AUTH_TOKEN or AUTH_TOKEN_SECRET_ARN holds a token "
    "of at least 16 characters."
)


def test_weak_secret_values_are_named_by_their_stage(clock: SimulatedClock, log: Any) -> None:
    created = datetime.fromtimestamp(clock.now, UTC)
    secrets = ScriptedSecrets(
        AWSCURRENT={"SecretString": "short", "CreatedDate": created},
        AWSPREVIOUS={"SecretString": "also short", "CreatedDate": created},
    )
    assert scripted_verifier(secrets, clock, log).match("short") is None
    assert logged_lines(log) == [
        "Authorizer token problem: the secret's AWSCURRENT value " + TOO_SHORT,
        "Authorizer token problem: the secret's AWSPREVIOUS value " + TOO_SHORT,
        "The authorizer is not configured: no valid token in the secret in AUTH_TOKEN_SECRET_ARN. "
        + REFUSED_UNTIL,
    ]


def test_an_unconfigured_environment_says_where_it_looked(clock: SimulatedClock, log: Any) -> None:
    assert environment_verifier({}, clock, log).match(NEW) is None
    assert logged_lines(log) == [
        "The authorizer is not configured: no valid token in the AUTH_TOKEN environment variable. "
        + REFUSED_UNTIL
    ]


def test_an_unconfigured_secret_is_reported_once_however_often_it_is_read_again(
    clock: SimulatedClock, log: Any
) -> None:
    secrets = FakeSecretsManager(clock, "short")
    verifier = secret_verifier(secrets, clock, log)
    for _ in range(10):
        assert verifier.match(NEW) is None
        clock.now += TOKEN_MAX_AGE_SECONDS
    assert secrets.reads > 10  # read again and again, as a revocation needs
    assert sum("is not configured" in line for line in logged_lines(log)) == 1


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetSecretValue"),  # type: ignore[arg-type]
            "Secrets Manager refused to read the token secret (AWSCURRENT): AccessDeniedException",
        ),
        (
            ClientError({}, "GetSecretValue"),  # type: ignore[typeddict-item]
            "Secrets Manager refused to read the token secret (AWSCURRENT): Unknown",
        ),
        (
            EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"),
            "Secrets Manager unreachable (AWSCURRENT): EndpointConnectionError",
        ),
    ],
)
def test_an_unreadable_secret_says_which_stage_and_why(
    clock: SimulatedClock, log: Any, error: Exception, message: str
) -> None:
    verifier = scripted_verifier(ScriptedSecrets(AWSCURRENT=error), clock, log)
    with pytest.raises(TokenSourceUnavailable) as raised:
        verifier.match(NEW)
    assert str(raised.value) == message
