"""`kore-connect doctor` as an operator runs it: the checklist, exit codes, one-line errors, no token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import typer
from botocore.config import Config
from moto import mock_aws
from typer.testing import CliRunner

from kore_connect.cli import doctor
from kore_connect.doctor.checks import Check, DoctorClients, DoctorError
from kore_connect.doctor.clients import build_clients
from tests.doctor_lab import BOT_TOKEN, RETRIEVE_ARN, STACK, Lab, lab_fixture

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from lab_fixture(monkeypatch, request)


def cli(command: typer.models.CommandFunctionType | None = None) -> typer.Typer:
    """A local app with `doctor` registered as `kore-connect` registers it."""
    app = typer.Typer()
    app.command(name="doctor")(command or doctor.doctor)

    @app.callback()
    def _root() -> None:
        """A group, so that `doctor` is a subcommand as in the real app."""

    return app


def using(clients: DoctorClients) -> typer.models.CommandFunctionType:
    def make_clients(*, profile: str | None, region: str | None) -> DoctorClients:
        return clients

    return doctor.doctor_command(make_clients)


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["doctor", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_healthy_stack_prints_a_green_checklist_and_exits_0(lab: Lab) -> None:
    # GIVEN a healthy deployment
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the operator runs the doctor
    code, out, err = run(cli(using(lab.clients)), "--stack-name", STACK)
    # THEN a ticked line per check and a summary, exit code 0
    assert code == 0, out + err
    assert out.count("✓") == len(Check) - 1  # the reference table's line is skipped: no switch
    assert "Checking stack kore-connect in us-east-1" in out
    assert "All checks passed." in out
    assert err == ""


def test_a_failed_check_prints_its_cause_and_fix_and_exits_1(lab: Lab) -> None:
    # GIVEN a table without TTL and no Connect instance
    lab.deploy(ttl=False, connect_instance=False)
    lab.retrieve.runs_the_handler()
    # WHEN the operator runs the doctor
    code, out, _ = run(cli(using(lab.clients)), "--stack-name", STACK)
    # THEN the failed line is followed by its cause and its fix; the skipped line says why
    assert code == 1
    lines = out.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("✗"))
    assert lines[failed].startswith("✗ Sessions table: TTL is DISABLED")
    assert lines[failed + 1].startswith("    cause: ") and "expiresAt" in lines[failed + 1]
    assert lines[failed + 2].startswith("    fix:   ") and "update-time-to-live" in lines[failed + 2]
    skipped = "\N{EN DASH} Connect may invoke the retrieve function: no Connect instance given to the stack"
    assert skipped in lines
    assert "1 check failed." in out


def test_the_token_is_never_printed(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a deployment failing everywhere a token could leak: no authorizer, a body echoing it
    lab.deploy(authorizer=False)
    lab.retrieve.answers({"statusCode": 200, "body": f'{{"token": "{BOT_TOKEN}"}}'})
    lab.connect_lists([])
    # WHEN the operator runs the doctor
    code, out, err = run(cli(using(lab.clients)), "--stack-name", STACK)
    # THEN nothing printed holds the token: not the checklist, not the functions' logs
    assert code == 1
    captured = capsys.readouterr()
    function_logs = lab.function_logs()
    for text in (out, err, captured.out, captured.err, function_logs):
        assert BOT_TOKEN not in text
    assert "Metadata stored" in function_logs  # the logs were captured indeed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--stack-name", "bad name!"], "is not a CloudFormation stack name"),
        (["--stack-name", "1-starts-with-a-digit"], "starting with a letter"),
        (["--stack-name", "a" * 129], "at most 128 characters"),
        (["--region", "useast1"], "is not an AWS region"),
        (["--stack-name", "not-deployed", "--region", "us-east-1"], "no stack 'not-deployed' in us-east-1"),
        (["--profile", "nobody"], "no AWS profile 'nobody'"),
        (["--flow", ""], "is not a contact flow name"),
        (["--flow", "x" * 128], "1 to 127 characters"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str], expected: str) -> None:
    # GIVEN an account without the stack (moto)
    with mock_aws():
        # WHEN the operator gives bad input
        code, out, err = run(cli(), *args)
    # THEN one line names the problem and what to do, exit code 2, no traceback
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err + out


def test_an_unknown_option_is_refused_by_typer_with_exit_2() -> None:
    code, _, err = run(cli(), "--stack", "kore-connect")
    assert code == 2
    assert "No such option" in err


def test_missing_credentials_are_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN no credentials anywhere: no variables, no files, no instance metadata
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN the doctor runs
    code, _, err = run(cli(), "--region", "eu-west-1")
    # THEN it says so in one line
    assert code == 2
    assert (
        err.strip()
        == "error: no AWS credentials found: run `aws configure` (or `aws sso login`), or pass --profile"
    )


def test_no_region_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    code, _, err = run(cli())
    assert code == 2
    assert "no AWS region: pass --region" in err and len(err.strip().splitlines()) == 1


def test_an_unreachable_aws_endpoint_is_one_clear_line() -> None:
    # GIVEN CloudFormation answers nowhere (a closed local port), without retries to keep the test fast
    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}),
    )
    clients = DoctorClients(
        cloudformation=cloudformation,
        dynamodb=boto3.client("dynamodb"),
        secretsmanager=boto3.client("secretsmanager"),
        lambda_=boto3.client("lambda"),
        connect=boto3.client("connect"),
        voice=boto3.client("chime-sdk-voice"),
        http=httpx.Client(),
    )
    # WHEN the doctor runs
    code, _, err = run(cli(using(clients)))
    # THEN one line says where it could not connect
    assert code == 2
    assert err.startswith("error: cannot reach CloudFormation in us-east-1 (http://127.0.0.1:9/)")
    assert len(err.strip().splitlines()) == 1


def test_the_real_clients_use_the_region_asked_for() -> None:
    clients = build_clients(profile=None, region="eu-central-1")
    try:
        assert clients.region == "eu-central-1"
        assert clients.connect.meta.region_name == "eu-central-1"
        assert clients.voice.meta.region_name == "eu-central-1"
    finally:
        clients.close()


def test_an_unknown_profile_raises_a_doctor_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(DoctorError, match="no AWS profile 'ghost'"):
        build_clients(profile="ghost", region="us-east-1")


def test_the_installed_command_refuses_a_bad_stack_name() -> None:
    # GIVEN the installed `kore-connect` script (the doctor registered in kore_connect.cli)
    result = subprocess.run(
        [str(KORE_CONNECT), "doctor", "--stack-name", "bad name!"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    # THEN exit code 2 and one line, no traceback
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a CloudFormation stack name" in result.stderr
    assert "Traceback" not in result.stderr
