"""Shared fixtures: the project's own payloads in tests/events and tests/flows, the shared reference
export from ../shared when it is there, a clean environment per test, the session stores under
test, and a capture of everything the functions log."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import Phase, settings
from moto import mock_aws

from kore_connect import config
from kore_connect.bridge import container
from kore_connect.bridge.observability import logger as function_logger
from kore_connect.sessions.dynamodb import DynamoDBSessionStore, ensure_table
from kore_connect.sessions.sqlite import SQLiteSessionStore
from kore_connect.twin.lambda_runtime.context import LocalLambdaContext
from tests import peers
from tests.peers import Dynalite

# After the whole suite, every file the session wrote is swept for the tokens it used (issue 8).
pytest_plugins = ["tests.secret_sweep"]

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "events"  # ours: the payloads AWS sends, as AWS documents them
HANDOFF_EXPORT = REPO / "tests" / "flows" / "kore-handoff-export.json"  # ours: a console export

# ../shared is next to the repository in CI, not in a user's clone: the tests that need it skip.
SHARED = Path(os.environ.get("KORE_SHARED_DIR", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"
SHARED_REFERENCE_EXPORT = FIXTURES / "flows" / "kore-reference-export.json"  # Kore's, as exported
SHARED_ABSENT_REASON = "needs the shared reference export in {shared} (absent: a user's clone; CI has it)"
SHARED_ABSENT = SHARED_ABSENT_REASON.format(shared=SHARED)

# `./dev mutate` runs the property tests once per mutant, where any failing example kills it: no
# shrinking there. Elsewhere, Hypothesis's defaults.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("KORE_HYPOTHESIS_PROFILE", "default"))

needs_shared = pytest.mark.needs_shared
"""Marks a test (or a parameter) that reads ../shared; it skips, saying why, when that is absent."""

# A flow that must hold of any exported flow runs on ours always and on Kore's when it is there.
EXPORTS = [
    pytest.param(HANDOFF_EXPORT, id="handoff-export"),
    pytest.param(SHARED_REFERENCE_EXPORT, id="shared-reference-export", marks=needs_shared),
]

CONTACT_ID = "5d3b9a2a-afe5-485f-a07c-b763c635156b"  # the contact in tests/events
TOKEN = "handoff-example-token-0f3a9c71e2"  # the token in tests/events
TABLE = "koreCcSessions"

OUR_VARIABLES = [
    config.AUTH_TOKEN,
    config.AUTH_TOKEN_PREVIOUS,
    config.AUTH_TOKEN_ROTATED_AT,
    config.AUTH_TOKEN_SECRET_ARN,
    config.TOKEN_ROTATION_WINDOW_SECONDS,
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_shared: reads ../shared (KORE_SHARED_DIR); skips without it")
    for name, (_, installer) in peers.PEERS.items():
        config.addinivalue_line("markers", f"{name}: runs {installer} (tests/peers.py)")
    config.addinivalue_line("markers", f"{peers.SLOW}: a load, a soak or a corpus run (tens of seconds)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # The dynalite fixture, wherever a test reaches it (directly, through `up`, or as a backend)
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec is not None else []
        if "dynalite" in getattr(item, "fixturenames", ()) or any(p == "dynalite" for p in params):
            item.add_marker(pytest.mark.dynalite)
        if item.get_closest_marker("needs_shared") and not SHARED_REFERENCE_EXPORT.is_file():
            item.add_marker(pytest.mark.skip(reason=SHARED_ABSENT))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """What peers the test may start (tests/peers.py), known before any of its fixtures starts one."""
    peers.running_markers.clear()
    peers.running_markers.update(marker.name for marker in item.iter_markers())


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def load_flow(path: Path) -> dict[str, Any]:
    """An exported flow as a fresh document (tests change their copy)."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.fixture(params=EXPORTS)
def export_path(request: pytest.FixtureRequest) -> Path:
    """Each exported flow in turn: ours, then Kore's reference export when ../shared is there."""
    path: Path = request.param
    return path


@pytest.fixture
def export(export_path: Path) -> dict[str, Any]:
    """The exported flow of `export_path`, a copy of its own for the test."""
    return load_flow(export_path)


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


@pytest.fixture(scope="session", autouse=True)
def function_logger_on_this_sessions_stdout() -> None:
    """The functions' logger writes to the stdout it saw when first imported. In one process that
    runs pytest more than once (`./dev mutate`), that is an earlier run's closed capture: point it
    at this run's stdout."""
    handler = function_logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = sys.stdout  # not setStream: it flushes the closed stream first


@pytest.fixture
def machine_in_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time 5 h 30 min ahead of UTC for the test, so UTC slips show."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


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
