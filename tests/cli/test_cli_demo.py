"""`kore-connect demo`, the README's main job, run as a user runs it: a real process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import Dynalite

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KORE_CONNECT), *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_stores_and_retrieves_through_the_local_store(tmp_path: Path) -> None:
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Round trip OK" in result.stdout
    assert result.stdout.count("✓") == 4
    # the local store is a real SQLite file holding the record
    rows = (
        sqlite3.connect(tmp_path / ".kore-connect" / "sessions.db")
        .execute("SELECT metadata FROM sessions")
        .fetchall()
    )
    assert len(rows) == 1
    assert '"accountNumber":90071992547409931' in rows[0][0]


def test_demo_runs_on_dynamodb_too(tmp_path: Path, dynalite: Dynalite) -> None:
    env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=dynalite.endpoint)
    result = run("demo", "--backend", "dynamodb", "--table", "demo-sessions", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DynamoDB table demo-sessions" in result.stdout


def test_demo_with_the_users_metadata(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"customer": "Ann", "balance": 12.30}')
    result = run("demo", "--metadata", "m.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"balance": 12.3' in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_demo_with_bad_metadata_files_gives_a_clear_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    result = run("demo", "--metadata", "m.json", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_with_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    result = run("demo", "--backend", "redis", cwd=tmp_path)
    assert result.returncode == 2
    assert "redis" in result.stderr and "Traceback" not in result.stderr


def test_demo_against_an_unreachable_dynamodb_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:9")
    result = run("demo", "--backend", "dynamodb", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "error:" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr
