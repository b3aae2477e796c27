"""Usage mistakes on every command, as a user makes them with the installed `kore-connect`: one line
on stderr naming the problem and where help is, exit code 2, never a traceback or a panel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"
API_URL = "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/kore-metadata"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [str(KORE_CONNECT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["kore-config", "--api-url", API_URL, "--colour"],
            "No such option: --colour (see 'kore-connect kore-config --help')",
        ),
        (["kore-config"], "Missing option '--api-url'."),
        (["kore-config", "--api-url"], "Option '--api-url' requires an argument."),
        (["doctor", "--stack"], "No such option: --stack"),
        (["doctor", "--stack-name"], "Option '--stack-name' requires an argument."),
        (["doctor", "--stack-name", "bad name!"], "bad name!"),
        (["doctor", "--region", "mars-1"], "mars-1"),
        (["flow", "--to-user"], "Option '--to-user' requires an argument."),
        (["demo", "--backend", "redis"], "Invalid value for '--backend'"),
        (["launch"], "No such command 'launch'. (see 'kore-connect --help')"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_code_2(args: list[str], expected: str, tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr and "╭" not in result.stderr


def test_no_command_shows_the_help_and_exit_code_2(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    for command in ("demo", "flow", "kore-config", "doctor"):
        assert command in result.stdout


def test_help_exits_0(tmp_path: Path) -> None:
    result = run("flow", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--connector-arn" in result.stdout
