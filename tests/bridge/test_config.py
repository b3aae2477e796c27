"""Settings: resolved once from the environment, validated with messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kore_connect.config import Backend, Settings
from kore_connect.errors import ConfigError


def test_defaults_locally() -> None:
    settings = Settings.from_env({})
    assert settings.backend is Backend.SQLITE
    assert settings.table_name == "koreCcSessions"
    assert settings.sqlite_path == Path(".kore-connect/sessions.db")
    assert settings.session_ttl_seconds == 86_400
    assert settings.max_metadata_bytes == 32_768
    assert settings.auth_token is None and settings.auth_token_secret_arn is None


def test_in_lambda_the_backend_is_dynamodb_unless_told_otherwise() -> None:
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}).backend is Backend.DYNAMODB
    assert (
        Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "KORE_SESSION_BACKEND": "sqlite"}).backend
        is Backend.SQLITE
    )
    assert Settings.from_env({"KORE_SESSION_BACKEND": "DynamoDB"}).backend is Backend.DYNAMODB


def test_values_are_read_and_trimmed() -> None:
    settings = Settings.from_env(
        {
            "TABLE_NAME": " sessions ",
            "KORE_SQLITE_PATH": "/tmp/x.db",
            "KORE_SESSION_TTL_SECONDS": "3600",
            "KORE_MAX_METADATA_BYTES": "65536",
            "AUTH_TOKEN": " token-with-spaces-around \n",
            "AUTH_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf",
        }
    )
    assert (settings.table_name, settings.sqlite_path) == ("sessions", Path("/tmp/x.db"))
    assert (settings.session_ttl_seconds, settings.max_metadata_bytes) == (3600, 65536)
    assert settings.auth_token == "token-with-spaces-around"


def test_tokens_never_appear_in_repr() -> None:
    settings = Settings.from_env(
        {"AUTH_TOKEN": "super-secret-token-1", "AUTH_TOKEN_PREVIOUS": "super-secret-token-0"}
    )
    assert "super-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KORE_SESSION_BACKEND": "redis"},
            "KORE_SESSION_BACKEND must be one of: dynamodb, sqlite (got 'redis')",
        ),
        ({"KORE_SESSION_TTL_SECONDS": "1d"}, "KORE_SESSION_TTL_SECONDS must be a whole number (got '1d')"),
        (
            {"KORE_SESSION_TTL_SECONDS": "0"},
            "KORE_SESSION_TTL_SECONDS must be between 60 and 31622400 (got 0)",
        ),
        ({"KORE_MAX_METADATA_BYTES": "999999999"}, "KORE_MAX_METADATA_BYTES must be between 2 and 358400"),
        (
            {"AUTH_TOKEN_SECRET_ARN": "my-secret"},
            "AUTH_TOKEN_SECRET_ARN must be a Secrets Manager secret ARN",
        ),
    ],
)
def test_bad_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)
