"""The tokens the authorizer accepts, where they come from, and how a presented token is checked.

Two tokens can be valid at once so that a token can be rotated without a failed call:
- from the environment: `AUTH_TOKEN` and, during a rotation, `AUTH_TOKEN_PREVIOUS`, which is
  accepted only with `AUTH_TOKEN_ROTATED_AT` (when the rotation happened);
- from Secrets Manager (`AUTH_TOKEN_SECRET_ARN`, which wins when both are set): the secret's
  `AWSCURRENT` and `AWSPREVIOUS` versions, which is what `put-secret-value` and rotation produce;
  the rotation happened when the AWSCURRENT version was created.
The previous token is valid for `KORE_TOKEN_ROTATION_WINDOW_SECONDS` after the rotation, never
longer: an old token that leaked, or that was revoked, stops working on its own.

The secret is read once per container and kept for at most `TOKEN_MAX_AGE_SECONDS`, matched or
not, so that a revocation (the AWSPREVIOUS label removed) reaches warm containers within minutes.
So that a rotation reaches them sooner, a token that matches nothing makes the verifier read the
secret again, at most once a minute.

A token shorter than `MIN_TOKEN_LENGTH`, or outside `TOKEN_PATTERN`, is ignored. Tokens are
compared as SHA-256 digests with `hmac.compare_digest`, against every valid token, so neither the
content nor the length of a token shows in the time taken. No token, whole or in part, is ever
logged or kept in a readable form beyond the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from kore_connect.config import (
    AUTH_TOKEN,
    AUTH_TOKEN_PREVIOUS,
    AUTH_TOKEN_ROTATED_AT,
    AUTH_TOKEN_SECRET_ARN,
    TOKEN_ROTATION_WINDOW_SECONDS,
    Settings,
)
from kore_connect.errors import KoreConnectError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 4096
# Printable ASCII without spaces. The template gives API Gateway the same expression as the
# authorizer's ValidationExpression, so that a junk token is refused without invoking it.
TOKEN_PATTERN = f"^[!-~]{{{MIN_TOKEN_LENGTH},{MAX_TOKEN_LENGTH}}}$"
_TOKEN = re.compile(TOKEN_PATTERN)
TOKEN_MAX_AGE_SECONDS = 300.0  # the secret is read again after this long, whatever was presented
REFRESH_INTERVAL_SECONDS = 60.0  # at most one extra read a minute for tokens that match nothing


class TokenSourceUnavailable(KoreConnectError):
    """The tokens could not be read (Secrets Manager failed): refuse with a 500, do not cache it."""


@dataclass(frozen=True)
class ExpectedToken:
    slot: str  # "current" or "previous": which token matched, safe to log
    digest: bytes = field(repr=False)
    valid_until: float | None = None  # seconds since the epoch; None: no end


@dataclass(frozen=True)
class Candidate:
    """A configured token before it is checked: which slot, where it comes from, its value."""

    slot: str
    where: str
    value: str | None = field(repr=False)
    valid_until: float | None = None


@dataclass(frozen=True)
class LoadedTokens:
    tokens: tuple[ExpectedToken, ...]
    problems: tuple[str, ...]  # why a configured token was not accepted; never contains the token


class TokenSource(Protocol):
    description: str  # where tokens come from, for log lines
    refreshable: bool

    def load(self) -> LoadedTokens: ...


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _accept(candidates: Sequence[Candidate], problems: Sequence[str] = ()) -> LoadedTokens:
    """Keep the strong tokens among the candidates; explain the rest."""
    tokens: list[ExpectedToken] = []
    found = list(problems)
    for candidate in candidates:
        if candidate.value is None:
            continue
        value = candidate.value.strip()
        if len(value) < MIN_TOKEN_LENGTH:
            found.append(f"{candidate.where} is shorter than {MIN_TOKEN_LENGTH} characters and is ignored")
        elif not _TOKEN.fullmatch(value):
            found.append(
                f"{candidate.where} is ignored: a token is printable ASCII without spaces, "
                f"at most {MAX_TOKEN_LENGTH} characters"
            )
        else:
            tokens.append(ExpectedToken(candidate.slot, digest(value), candidate.valid_until))
    return LoadedTokens(tuple(tokens), tuple(found))


def _window_end(rotated_at: datetime, window_seconds: int) -> float:
    return rotated_at.timestamp() + window_seconds


class EnvironmentTokens:
    refreshable = False

    def __init__(self, settings: Settings) -> None:
        self.description = f"the {AUTH_TOKEN} environment variable"
        self._candidates = [Candidate("current", AUTH_TOKEN, settings.auth_token)]
        self._problems: list[str] = []
        if settings.auth_token_previous is not None:
            if settings.auth_token_rotated_at is None:
                self._problems.append(
                    f"{AUTH_TOKEN_PREVIOUS} is ignored: set {AUTH_TOKEN_ROTATED_AT} to the time of the "
                    f"rotation; the previous token is then valid for {TOKEN_ROTATION_WINDOW_SECONDS} after it"
                )
            else:
                end = _window_end(settings.auth_token_rotated_at, settings.token_rotation_window_seconds)
                self._candidates.append(
                    Candidate("previous", AUTH_TOKEN_PREVIOUS, settings.auth_token_previous, end)
                )

    def load(self) -> LoadedTokens:
        return _accept(self._candidates, self._problems)


class SecretTokens:
    """The AWSCURRENT and AWSPREVIOUS values of a Secrets Manager secret holding the token as plain text."""

    refreshable = True

    def __init__(
        self,
        secret_arn: str,
        *,
        rotation_window_seconds: int,
        client: SecretsManagerClient | None = None,
    ) -> None:
        self.description = f"the secret in {AUTH_TOKEN_SECRET_ARN}"
        self._secret_arn = secret_arn
        self._window = rotation_window_seconds
        self._client = client

    def load(self) -> LoadedTokens:
        current = self._read("AWSCURRENT")
        candidates = [Candidate("current", "the secret's AWSCURRENT value", _secret_string(current))]
        previous = _secret_string(self._read("AWSPREVIOUS"))
        created = current.get("CreatedDate") if current else None
        if previous is not None and isinstance(created, datetime):
            # The rotation made the AWSCURRENT version: the previous one is valid for the window after.
            end = _window_end(created if created.tzinfo else created.replace(tzinfo=UTC), self._window)
            candidates.append(Candidate("previous", "the secret's AWSPREVIOUS value", previous, end))
        elif previous is not None:
            return _accept(
                candidates, ["the secret's AWSPREVIOUS value is ignored: its rotation time is unknown"]
            )
        return _accept(candidates)

    def _read(self, stage: str) -> Mapping[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._secrets_manager().get_secret_value(SecretId=self._secret_arn, VersionStage=stage)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code == "ResourceNotFoundException" and stage == "AWSPREVIOUS":
                return None  # never rotated: there is no previous version
            raise TokenSourceUnavailable(
                f"Secrets Manager refused to read the token secret ({stage}): {code}"
            ) from exc
        except BotoCoreError as exc:
            raise TokenSourceUnavailable(
                f"Secrets Manager unreachable ({stage}): {type(exc).__name__}"
            ) from exc
        return response

    def _secrets_manager(self) -> SecretsManagerClient:
        if self._client is None:
            from botocore.config import Config

            from kore_connect import aws

            # Give up before the function's 5 s timeout, so the log says why: two attempts of at most
            # 0.5 + 1 s with up to 1 s of backoff between them (test_authorizer.py checks the sum).
            config = Config(
                connect_timeout=0.5, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2}
            )
            self._client = aws.client("secretsmanager", config=config)
        return self._client


def _secret_string(response: Mapping[str, Any] | None) -> str | None:
    value = response.get("SecretString") if response else None
    return value if isinstance(value, str) else None


class LogSink(Protocol):
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...


class TokenVerifier:
    """Answers which slot a presented token matches, loading the expected tokens lazily."""

    def __init__(
        self,
        source: TokenSource,
        *,
        log: LogSink,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
    ):
        self._source = source
        self._log = log
        self._clock = clock if clock is not None else time.monotonic  # for intervals
        self._wall_clock = wall_clock if wall_clock is not None else time.time  # for rotation windows
        self._tokens: tuple[ExpectedToken, ...] | None = None
        self._loaded_at = 0.0
        self._reported_unconfigured = False

    def match(self, presented: str | None) -> str | None:
        """The slot of the valid token equal to `presented`, or None. Raises TokenSourceUnavailable."""
        if self._source.refreshable and self._age() >= TOKEN_MAX_AGE_SECONDS:
            self._tokens = None  # perhaps revoked since: read the secret again, matched or not
        slot = self._compare(presented)
        if slot is None and self._source.refreshable and self._age() >= REFRESH_INTERVAL_SECONDS:
            self._tokens = None  # perhaps rotated since: read the secret once more
            slot = self._compare(presented)
        return slot

    def _age(self) -> float:
        return self._clock() - self._loaded_at

    def _compare(self, presented: str | None) -> str | None:
        tokens = self._current_tokens()
        if not presented or not tokens:
            return None
        presented_digest = digest(presented)
        now = self._wall_clock()
        matched: str | None = None
        for token in tokens:  # no early exit: every token is compared
            if hmac.compare_digest(presented_digest, token.digest) and matched is None:
                if token.valid_until is None or now < token.valid_until:
                    matched = token.slot
                else:
                    ended = datetime.fromtimestamp(token.valid_until, UTC).isoformat(timespec="seconds")
                    self._log.warning(
                        f"A {token.slot} token was refused: its rotation window ended at {ended}"
                    )
        return matched

    def _current_tokens(self) -> tuple[ExpectedToken, ...]:
        if self._tokens is None:
            loaded = self._source.load()
            self._tokens, self._loaded_at = loaded.tokens, self._clock()
            for problem in loaded.problems:
                self._log.warning(f"Authorizer token problem: {problem}")
            if not loaded.tokens and not self._reported_unconfigured:
                self._reported_unconfigured = True
                self._log.error(
                    f"The authorizer is not configured: no valid token in {self._source.description}. "
                    f"Every request is refused until {AUTH_TOKEN} or {AUTH_TOKEN_SECRET_ARN} holds a token "
                    f"of at least {MIN_TOKEN_LENGTH} characters."
                )
        return self._tokens


def token_source(settings: Settings) -> TokenSource:
    """The secret when its ARN is configured, otherwise the environment."""
    if settings.auth_token_secret_arn:
        return SecretTokens(
            settings.auth_token_secret_arn, rotation_window_seconds=settings.token_rotation_window_seconds
        )
    return EnvironmentTokens(settings)
