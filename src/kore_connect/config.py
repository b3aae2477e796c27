"""Settings, resolved once from the environment.

Every environment variable kore-connect reads is named here. The reference setup's names
(`AUTH_TOKEN`, `TABLE_NAME`) are kept so an existing deployment works unchanged; our own
settings share the `KORE_` prefix. Tests and the CLI pass a mapping instead of patching
`os.environ`.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kore_connect.errors import ConfigError

# The reference names, kept for drop-in compatibility.
AUTH_TOKEN = "AUTH_TOKEN"  # noqa: S105 (the name of a variable, not a token)
TABLE_NAME = "TABLE_NAME"
# Ours.
AUTH_TOKEN_PREVIOUS = "AUTH_TOKEN_PREVIOUS"  # noqa: S105 (a name)
AUTH_TOKEN_ROTATED_AT = "AUTH_TOKEN_ROTATED_AT"  # noqa: S105 (a name)
AUTH_TOKEN_SECRET_ARN = "AUTH_TOKEN_SECRET_ARN"  # noqa: S105 (a name)
TOKEN_ROTATION_WINDOW_SECONDS = "KORE_TOKEN_ROTATION_WINDOW_SECONDS"  # noqa: S105 (a name)
SESSION_BACKEND = "KORE_SESSION_BACKEND"
SQLITE_PATH = "KORE_SQLITE_PATH"
SESSION_TTL_SECONDS = "KORE_SESSION_TTL_SECONDS"
MAX_METADATA_BYTES = "KORE_MAX_METADATA_BYTES"
# The reference setup's table, read by the retrieve function during a switch (docs/migration.md).
REFERENCE_TABLE_NAME = "KORE_REFERENCE_TABLE_NAME"
# The local twin's token for the bot (`kore-connect up`, `serve api`, `serve gateway`): this variable,
# else this file (twin/local/api_token.py says which wins and when the file is trusted).
LOCAL_API_TOKEN = "KORE_CONNECT_API_TOKEN"  # noqa: S105 (the name of a variable, not a token)
DEFAULT_LOCAL_TOKEN_FILE = Path(".kore-connect") / "api-token"
# Set by the Lambda runtime; its presence tells us we run in AWS.
LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"

DEFAULT_TABLE_NAME = "koreCcSessions"
TABLE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,255}")  # DynamoDB CreateTable's TableName
DEFAULT_SQLITE_PATH = Path(".kore-connect") / "sessions.db"
DEFAULT_SESSION_TTL_SECONDS = 24 * 60 * 60
# Amazon Connect's limit for all of a contact's attributes together.
DEFAULT_MAX_METADATA_BYTES = 32 * 1024
# A DynamoDB item holds at most 400 KB; keep room for the key and the other attributes.
MAX_MAX_METADATA_BYTES = 350 * 1024
MIN_SESSION_TTL_SECONDS = 60
# How long the previous token stays valid after a rotation: long enough to update the bot, short
# enough that a leaked old token dies soon (a day at most).
DEFAULT_TOKEN_ROTATION_WINDOW_SECONDS = 15 * 60
MAX_TOKEN_ROTATION_WINDOW_SECONDS = 24 * 60 * 60
MAX_SESSION_TTL_SECONDS = 366 * 24 * 60 * 60


class Backend(enum.Enum):
    DYNAMODB = "dynamodb"
    SQLITE = "sqlite"


@dataclass(frozen=True)
class Settings:
    """Everything the bridge needs to know, validated. Token values never appear in `repr`."""

    backend: Backend
    table_name: str = DEFAULT_TABLE_NAME
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    session_ttl_seconds: int = DEFAULT_SESSION_TTL_SECONDS
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    auth_token: str | None = field(default=None, repr=False)
    auth_token_previous: str | None = field(default=None, repr=False)
    auth_token_rotated_at: datetime | None = None  # when AUTH_TOKEN replaced AUTH_TOKEN_PREVIOUS
    auth_token_secret_arn: str | None = None
    token_rotation_window_seconds: int = DEFAULT_TOKEN_ROTATION_WINDOW_SECONDS
    reference_table_name: str | None = None  # read when a contact has no item of ours

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: `os.environ`). Raises ConfigError naming the bad variable."""
        env = os.environ if env is None else env
        return cls(
            backend=_backend(env),
            table_name=_text(env, TABLE_NAME) or DEFAULT_TABLE_NAME,
            sqlite_path=Path(_text(env, SQLITE_PATH) or DEFAULT_SQLITE_PATH),
            session_ttl_seconds=_integer(
                env,
                SESSION_TTL_SECONDS,
                DEFAULT_SESSION_TTL_SECONDS,
                MIN_SESSION_TTL_SECONDS,
                MAX_SESSION_TTL_SECONDS,
            ),
            max_metadata_bytes=_integer(
                env, MAX_METADATA_BYTES, DEFAULT_MAX_METADATA_BYTES, 2, MAX_MAX_METADATA_BYTES
            ),
            auth_token=_text(env, AUTH_TOKEN),
            auth_token_previous=_text(env, AUTH_TOKEN_PREVIOUS),
            auth_token_rotated_at=_moment(env, AUTH_TOKEN_ROTATED_AT),
            auth_token_secret_arn=_secret_arn(env),
            token_rotation_window_seconds=_integer(
                env,
                TOKEN_ROTATION_WINDOW_SECONDS,
                DEFAULT_TOKEN_ROTATION_WINDOW_SECONDS,
                0,
                MAX_TOKEN_ROTATION_WINDOW_SECONDS,
            ),
            reference_table_name=_table_name(env, REFERENCE_TABLE_NAME),
        )


def _text(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value with surrounding whitespace removed; unset or blank is None."""
    value = env.get(name, "").strip()
    return value or None


def _table_name(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is not None and not TABLE_NAME_PATTERN.fullmatch(value):
        raise ConfigError(f"{name} must be a DynamoDB table name (3 to 255 letters, digits, '_', '-', '.')")
    return value


def _backend(env: Mapping[str, str]) -> Backend:
    chosen = _text(env, SESSION_BACKEND)
    if chosen is None:
        # In Lambda the table is the store; anywhere else the embedded file is.
        return Backend.DYNAMODB if _text(env, LAMBDA_FUNCTION_NAME) else Backend.SQLITE
    try:
        return Backend(chosen.lower())
    except ValueError:
        allowed = ", ".join(b.value for b in Backend)
        raise ConfigError(f"{SESSION_BACKEND} must be one of: {allowed} (got {chosen!r})") from None


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high} (got {value})")
    return value


def _moment(env: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date and time with its offset (`2026-12-02T10:00:00Z`); a local time is ambiguous."""
    raw = _text(env, name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be an ISO 8601 date and time, e.g. 2026-12-02T10:00:00Z (got {raw!r})"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(f"{name} must say its time zone, e.g. 2026-12-02T10:00:00Z (got {raw!r})")
    return moment


def _secret_arn(env: Mapping[str, str]) -> str | None:
    arn = _text(env, AUTH_TOKEN_SECRET_ARN)
    if arn is not None and not (arn.startswith("arn:") and ":secretsmanager:" in arn):
        raise ConfigError(f"{AUTH_TOKEN_SECRET_ARN} must be a Secrets Manager secret ARN (got {arn!r})")
    return arn
