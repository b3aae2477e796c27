"""Where the local twin keeps sessions: the functions' environment for each store, and endpoints that
are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kore_connect import config
from kore_connect.errors import ConfigError
from kore_connect.twin.local.store import LocalStore


def test_by_default_the_functions_get_the_sqlite_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "sessions.db")
    assert store.environment() == {
        config.SESSION_BACKEND: "sqlite",
        config.SQLITE_PATH: str(tmp_path / "sessions.db"),
    }
    assert store.command_line() == ["--db", str(tmp_path / "sessions.db")]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_on_dynamodb_the_functions_get_the_table_the_endpoint_and_local_keys(
    tmp_path: Path, endpoint: str
) -> None:
    store = LocalStore(tmp_path / "unused.db", dynamodb_endpoint=endpoint, table="calls")
    environment = store.environment()
    assert environment[config.SESSION_BACKEND] == "dynamodb" and environment[config.TABLE_NAME] == "calls"
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"] == endpoint
    assert environment["AWS_ACCESS_KEY_ID"] == "local"  # never the user's own keys
    assert store.command_line() == ["--dynamodb-endpoint", endpoint, "--table", "calls"]


@pytest.mark.parametrize(
    ("endpoint", "table", "message"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com", "t12", "a server on this machine"),
        ("http://192.0.2.10:8000", "t12", "a server on this machine"),
        ("127.0.0.1:8000", "t12", "expected a URL"),
        ("http://127.0.0.1:80000", "t12", "expected a URL"),
        ("file:///tmp/x", "t12", "expected a URL"),
        ("http://127.0.0.1:8000", "", "3 to 255 letters"),
        ("http://127.0.0.1:8000", "t", "3 to 255 letters"),
        ("http://127.0.0.1:8000", "calls/2026", "3 to 255 letters"),
        ("http://evil.example\t@127.0.0.1:1", "t12", "no spaces or control characters"),
        ("http://127.0.0.1:8000\n", "t12", "no spaces or control characters"),
    ],
)
def test_an_endpoint_off_this_machine_or_a_bad_one_is_refused(
    tmp_path: Path, endpoint: str, table: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalStore(tmp_path / "x.db", dynamodb_endpoint=endpoint, table=table)
