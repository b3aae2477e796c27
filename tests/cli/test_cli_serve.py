"""`kore-connect serve api` as a user runs it: a real process, on loopback, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest

from tests.peers import Dynalite, free_port, wait_for_port

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"


def start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [str(KORE_CONNECT), "serve", "api", "--port", str(port), "--containers", "1", *args],
        cwd=cwd,
        env=env or dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, timeout=60)
    return process, port


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C; the exit code and everything the server and its functions wrote (stderr, then stdout)."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, err + out


def containers_of(pid: int) -> list[int]:
    """The PIDs of the function containers the server `pid` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if b"kore_connect.twin.lambda_runtime.worker" in command and parent == str(pid):
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_first_run_generates_the_token_shows_it_once_and_serves_with_it(tmp_path: Path) -> None:
    # GIVEN a fresh directory: no token anywhere
    process, port = start(tmp_path)
    token_file = tmp_path / ".kore-connect" / "api-token"
    token = token_file.read_text().strip()
    # WHEN the bot stores metadata with that token
    contact_id = str(uuid.uuid4())
    url = f"http://127.0.0.1:{port}/prod/kore-metadata"
    stored = httpx.post(
        url, params={"contactId": contact_id}, headers={"authorizationToken": token}, json={"a": 1}
    )
    refused = httpx.post(
        url, params={"contactId": contact_id}, headers={"authorizationToken": "x" * 20}, json={}
    )
    code, err = stop(process)
    # THEN it was stored, a wrong token was refused, and the token was shown exactly once
    assert stored.status_code == 200, stored.text
    assert refused.status_code == 401
    assert code == 0, err
    assert err.count(token) == 1 and "shown this once" in err
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert (tmp_path / ".kore-connect" / "sessions.db").is_file()
    # the access log names the request, never the token
    assert '"POST /prod/kore-metadata" 200' in err


def test_on_dynamodb_the_api_creates_the_table_and_stores_there(tmp_path: Path, dynalite: Dynalite) -> None:
    # GIVEN a DynamoDB-compatible server with no table yet
    table = f"serve-{uuid.uuid4().hex[:8]}"
    process, port = start(tmp_path, "--dynamodb-endpoint", dynalite.endpoint, "--table", table)
    token = (tmp_path / ".kore-connect" / "api-token").read_text().strip()
    # WHEN the bot stores metadata
    contact_id = str(uuid.uuid4())
    stored = httpx.post(
        f"http://127.0.0.1:{port}/prod/kore-metadata",
        params={"contactId": contact_id},
        headers={"authorizationToken": token},
        json={"x_metadata": "on dynamodb"},
    )
    code, err = stop(process)
    # THEN it is in that table, and nothing went to SQLite
    assert stored.status_code == 200 and code == 0, err
    assert f"Session store: DynamoDB table {table} at {dynalite.endpoint}" in err
    item = boto3.client("dynamodb", endpoint_url=dynalite.endpoint).get_item(
        TableName=table, Key={"contactId": {"S": contact_id}}
    )["Item"]
    assert json.loads(item["metadata"]["S"]) == {"x_metadata": "on dynamodb"}
    assert not (tmp_path / ".kore-connect" / "sessions.db").exists()


def test_the_resource_policy_parameter_refuses_addresses_outside_the_list(tmp_path: Path) -> None:
    # GIVEN the API served as deployed with AllowedSourceAddresses (the twin reads the same template)
    outside, outside_port = start(tmp_path, "--parameter", "AllowedSourceAddresses=192.0.2.0/24")
    inside, inside_port = start(tmp_path, "--parameter", "AllowedSourceAddresses=192.0.2.0/24,127.0.0.1")
    token = (tmp_path / ".kore-connect" / "api-token").read_text().strip()
    # WHEN the bot (on 127.0.0.1) stores metadata through each
    answers = [
        httpx.post(
            f"http://127.0.0.1:{port}/prod/kore-metadata",
            params={"contactId": str(uuid.uuid4())},
            headers={"authorizationToken": token},
            json={"a": 1},
        )
        for port in (outside_port, inside_port)
    ]
    _, outside_output = stop(outside)
    _, inside_output = stop(inside)
    # THEN only the one that lists 127.0.0.1 admits it; the other answers API Gateway's explicit deny
    assert answers[0].status_code == 403 and answers[0].headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert answers[0].json()["message"].endswith("with an explicit deny")
    assert answers[1].status_code == 200
    assert "Resource policy: only 192.0.2.0/24 may call" in outside_output
    assert "Resource policy: only 192.0.2.0/24, 127.0.0.1/32 may call" in inside_output


def test_later_runs_use_the_saved_token_without_showing_it(tmp_path: Path) -> None:
    first, _ = start(tmp_path)
    stop(first)
    token = (tmp_path / ".kore-connect" / "api-token").read_text().strip()
    second, _ = start(tmp_path)
    code, err = stop(second)
    assert code == 0
    assert token not in err and "Token: from .kore-connect/api-token" in err


def test_the_environment_token_wins_and_is_never_shown(tmp_path: Path) -> None:
    token = "env-token-" + uuid.uuid4().hex
    process, port = start(tmp_path, env={**os.environ, "KORE_CONNECT_API_TOKEN": token})
    response = httpx.post(
        f"http://127.0.0.1:{port}/prod/kore-metadata",
        params={"contactId": str(uuid.uuid4())},
        headers={"authorizationToken": token},
        json={},
    )
    code, err = stop(process)
    assert response.status_code == 200 and code == 0
    assert token not in err and "KORE_CONNECT_API_TOKEN" in err
    assert not (tmp_path / ".kore-connect" / "api-token").exists()


def test_ctrl_c_stops_the_server_and_its_function_containers(tmp_path: Path) -> None:
    process, _ = start(tmp_path)
    containers = containers_of(process.pid)
    assert len(containers) == 2, "one container each for the authorizer and the store"
    code, _ = stop(process)
    assert code == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in containers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in containers if alive(pid)] == []


@pytest.mark.parametrize(
    ("args", "setup", "expected"),
    [
        (["--host", "0.0.0.0"], None, "not a loopback address"),  # noqa: S104 (refusing it is the test)
        ([], "short", "must be at least 16 printable characters"),
        (["--port", "0"], None, "Invalid value for '--port'"),
        (
            ["--dynamodb-endpoint", "https://dynamodb.us-east-1.amazonaws.com"],
            None,
            "a server on this machine",
        ),
        (["--dynamodb-endpoint", "http://127.0.0.1:99999"], None, "expected a URL such as"),
        (
            ["--dynamodb-endpoint", "http://127.0.0.1:9", "--table", ""],
            None,
            "table name '': 3 to 255 letters",
        ),
        (["--dynamodb-endpoint", "http://127.0.0.1:9"], None, "DynamoDB unreachable"),
        (["--parameter", "AllowedSourceAddresses=10.0.0.1, 10.0.0.2"], None, "without spaces"),
        (["--parameter", "AllowedSourceAddresses"], None, "write NAME=VALUE"),
        (["--parameter", "NoSuchThing=1"], None, "the template has no parameter 'NoSuchThing'"),
        (["--dynamodb-endpoint", "http://127.0.0.1:9", "--db", "x.db"], None, "choose one"),
    ],
)
def test_bad_settings_are_one_line_and_exit_code_2(
    tmp_path: Path, args: list[str], setup: str | None, expected: str
) -> None:
    if setup:
        (tmp_path / ".kore-connect").mkdir()
        (tmp_path / ".kore-connect" / "api-token").write_text(setup)
        (tmp_path / ".kore-connect" / "api-token").chmod(0o600)
    result = subprocess.run(
        [str(KORE_CONNECT), "serve", "api", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr


def test_a_token_file_others_could_read_is_refused_in_one_line(tmp_path: Path) -> None:
    # GIVEN a token file as a checkout or a copy makes it: 0644
    (tmp_path / "shared-token").write_text("a-token-that-others-could-read-0123\n")
    # WHEN serve api is told to use it
    result = subprocess.run(
        [str(KORE_CONNECT), "serve", "api", "--port", str(free_port()), "--token-file", "shared-token"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN it refuses, naming the file and the rule
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (
        "error: the token file shared-token: others may read or write it (mode 0644): it must be a "
        "regular file of yours with mode 0600, not a link\n"
    )
