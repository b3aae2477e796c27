"""The tokens the authorizer accepts, where they come from, and how a presented token is checked.

Two tokens can be valid at once so that a token can be rotated without a failed call:
- from the environment: `AUTH_TOKEN` and, during a rotation, `AUTH_TOKEN_PREVIOUS`;
- from Secrets Manager (`AUTH_TOKEN_SECRET_ARN`, which wins when both are set): the secret's
  `AWSCURRENT` and `AWSPREVIOUS` versions, which is what `put-secret-value` and rotation produce.
The secret is read once per container and kept. So that a rotation reaches warm containers, a
token that matches nothing makes the verifier read the secret again, at most once a minute.

A token shorter than `MIN_TOKEN_LENGTH` is ignored as too weak to guard personal data. Tokens are
compared as SHA-256 digests with `hmac.compare_digest`, against every valid token, so neither the
content nor the length of a token shows in the time taken. No token, whole or in part, is ever
logged or kept in a readable form beyond the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kore_connect.config import AUTH_TOKEN, AUTH_TOKEN_PREVIOUS, AUTH_TOKEN_SECRET_ARN, Settings
from kore_connect.errors import KoreConnectError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

MIN_TOKEN_LENGTH = 16
REFRESH_INTERVAL_SECONDS = 60.0


class TokenSourceUnavailable(KoreConnectError):
    """The tokens could not be read (Secrets Manager failed): refuse with a 500, do not cache it."""


@dataclass(frozen=True)
class ExpectedToken:
    slot: str  # "current" or "previous": which token matched, safe to log
    digest: bytes = field(repr=False)


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


def _accept(candidates: Sequence[tuple[str, str, str | None]]) -> LoadedTokens:
    """Keep the strong tokens among (slot, where, value); explain the rest."""
    tokens: list[ExpectedToken] = []
    problems: list[str] = []
    for slot, where, value in candidates:
        if value is None:
            continue
        value = value.strip()
        if len(value) < MIN_TOKEN_LENGTH:
            problems.append(f"{where} is shorter than {MIN_TOKEN_LENGTH} characters and is ignored")
            continue
        tokens.append(ExpectedToken(slot, digest(value)))
    return LoadedTokens(tuple(tokens), tuple(problems))


class EnvironmentTokens:
    refreshable = False

    def __init__(self, settings: Settings) -> None:
        self.description = f"the {AUTH_TOKEN} environment variable"
        self._candidates = (
            ("current", AUTH_TOKEN, settings.auth_token),
            ("previous", AUTH_TOKEN_PREVIOUS, settings.auth_token_previous),
        )

    def load(self) -> LoadedTokens:
        return _accept(self._candidates)


class SecretTokens:
    """The AWSCURRENT and AWSPREVIOUS values of a Secrets Manager secret holding the token as plain text."""

    refreshable = True

    def __init__(self, secret_arn: str, *, client: SecretsManagerClient | None = None) -> None:
        self.description = f"the secret in {AUTH_TOKEN_SECRET_ARN}"
        self._secret_arn = secret_arn
        self._client = client

    def load(self) -> LoadedTokens:
        return _accept(
            [
                ("current", "the secret's AWSCURRENT value", self._read("AWSCURRENT")),
                ("previous", "the secret's AWSPREVIOUS value", self._read("AWSPREVIOUS")),
            ]
        )

    def _read(self, stage: str) -> str | None:
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
        return response.get("SecretString")

    def _secrets_manager(self) -> SecretsManagerClient:
        if self._client is None:
            from botocore.config import Config

            from kore_connect import aws

            config = Config(
                connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3}
            )
            self._client = aws.client("secretsmanager", config=config)
        return self._client


class LogSink(Protocol):
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...


class TokenVerifier:
    """Answers which slot a presented token matches, loading the expected tokens lazily."""

    def __init__(self, source: TokenSource, *, log: LogSink, clock: Callable[[], float] | None = None):
        self._source = source
        self._log = log
        self._clock = clock if clock is not None else time.monotonic
        self._tokens: tuple[ExpectedToken, ...] | None = None
        self._loaded_at = 0.0
        self._reported_unconfigured = False

    def match(self, presented: str | None) -> str | None:
        """The slot of the valid token equal to `presented`, or None. Raises TokenSourceUnavailable."""
        tokens = self._current_tokens()
        slot = _compare(presented, tokens)
        if (
            slot is None
            and self._source.refreshable
            and self._clock() - self._loaded_at >= REFRESH_INTERVAL_SECONDS
        ):
            self._tokens = None  # perhaps rotated since: read the secret once more
            slot = _compare(presented, self._current_tokens())
        return slot

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


def _compare(presented: str | None, tokens: tuple[ExpectedToken, ...]) -> str | None:
    if not presented or not tokens:
        return None
    presented_digest = digest(presented)
    matched: str | None = None
    for token in tokens:  # no early exit: every token is compared
        if hmac.compare_digest(presented_digest, token.digest) and matched is None:
            matched = token.slot
    return matched


def token_source(settings: Settings) -> TokenSource:
    """The secret when its ARN is configured, otherwise the environment."""
    if settings.auth_token_secret_arn:
        return SecretTokens(settings.auth_token_secret_arn)
    return EnvironmentTokens(settings)
