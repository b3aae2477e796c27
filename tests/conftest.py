"""Shared fixtures: the real payloads from ../shared/fixtures, a clean environment per test,
the session stores under test, and a capture of everything the functions log."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kore_connect import config
from kore_connect.bridge import container
from kore_connect.bridge.observability import logger as function_logger
from kore_connect.sessions.dynamodb import DynamoDBSessionStore, ensure_table
from kore_connect.sessions.sqlite import SQLiteSessionStore
from kore_connect.twin.lambda_context import LocalLambdaContext
from tests.peers import Dynalite

# After the whole suite, every file the session wrote is swept for the tokens it used (issue 8).
pytest_plugins = ["tests.secret_sweep"]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KORE_SHARED_DIR", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"
if not (FIXTURES / "events").is_dir():
    raise RuntimeError(f"the shared fixtures are missing: expected {FIXTURES} (set KORE_SHARED_DIR)")

CONTACT_ID = "5f0c6a53-2f3e-4e8b-9a43-6d2b1c7e9f10"  # the contact in the shared fixtures
TOKEN = "example-token-not-a-secret"  # the token in the shared fixtures
TABLE = "koreCcSessions"

OUR_VARIABLES = [
    config.AUTH_TOKEN,
    config.AUTH_TOKEN_PREVIOUS,
    config.AUTH_TOKEN_SECRET_ARN,
    config.TABLE_NAME,
    config.SESSION_BACKEND,
    config.SQLITE_PATH,
    config.SESSION_TTL_SECONDS,
    config.MAX_METADATA_BYTES,
    config.LAMBDA_FUNCTION_NAME,
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
]


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / "events" / name).read_text())
    return event


def context(function_name: str = "test-function") -> LocalLambdaContext:
    return LocalLambdaContext(function_name=function_name)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts as a fresh Lambda container with only what it sets itself."""
    for name in OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv(config.SQLITE_PATH, str(tmp_path / "sessions.db"))
    container.reset()
    yield
    container.reset()


@pytest.fixture
def function_logs() -> Iterator[io.StringIO]:
    """Every line the functions log during the test, formatted exactly as in CloudWatch."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(function_logger.registered_formatter)
    function_logger.addHandler(handler)
    previous_level = function_logger.log_level
    function_logger.setLevel(logging.DEBUG)
    yield buffer
    function_logger.setLevel(previous_level)
    function_logger.removeHandler(handler)


@pytest.fixture(scope="session")
def dynalite() -> Iterator[Dynalite]:
    server = Dynalite().start()
    yield server
    server.stop()


@pytest.fixture
def dynalite_env(dynalite: Dynalite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The functions' environment in Lambda, with the table on dynalite; yields the table name."""
    table = f"sessions-{os.urandom(4).hex()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite.endpoint)
    monkeypatch.setenv(config.LAMBDA_FUNCTION_NAME, "under-test")
    monkeypatch.setenv(config.TABLE_NAME, table)
    ensure_table(boto3.client("dynamodb"), table)
    yield table


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The functions' environment in Lambda, with the table in moto; yields the table name."""
    with mock_aws():
        monkeypatch.setenv(config.LAMBDA_FUNCTION_NAME, "under-test")
        monkeypatch.setenv(config.TABLE_NAME, TABLE)
        ensure_table(boto3.client("dynamodb"), TABLE)
        yield TABLE


@pytest.fixture
def sqlite_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    yield os.environ[config.SQLITE_PATH]


BACKENDS = ["sqlite", "moto", "dynalite"]


@pytest.fixture(params=BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> str:
    """The functions' environment on each backend in turn."""
    return str(request.getfixturevalue(f"{request.param}_env"))


class FakeClock:
    def __init__(self, now: float = 1_795_516_530.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A factory for a store of each backend, sharing one clock the test controls."""
    kind = request.param
    if kind == "dynalite":
        endpoint = request.getfixturevalue("dynalite").endpoint
    if kind == "moto":
        request.getfixturevalue("moto_env")

    def make(clock: FakeClock) -> Any:
        if kind == "sqlite":
            return SQLiteSessionStore(tmp_path / "contract.db", clock=clock)
        if kind == "moto":
            return DynamoDBSessionStore(TABLE, client=boto3.client("dynamodb"), clock=clock)
        table = f"contract-{os.urandom(4).hex()}"
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        ensure_table(client, table)
        return DynamoDBSessionStore(table, client=client, clock=clock)

    make.kind = kind  # type: ignore[attr-defined]
    return make
