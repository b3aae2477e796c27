"""A walk through docs/setup.md and docs/migration.md: every command in their `sh` blocks runs as
written, in order, in one folder.

- `kore-connect up` starts the local twin (its own ports; `call` finds it through the folder);
- `kore-connect doctor` runs against a stack deployed into moto, with Connect's and the Chime SDK
  Voice API's answers from Stubbers (tests/doctor_lab.py): the doctor lab stands in for AWS. A
  doctor line whose comment says lines fail runs against the instance as the guide has it at that
  step (`INSTANCE_BEFORE`), and exactly those lines must fail; any other must pass every check;
- every other `kore-connect` command runs in bash against the twin and must exit 0;
- `aws` commands must name an operation, parameters and (for enumerations) values the AWS CLI has
  (botocore's models);
- `sam` commands may use only the options listed here (`SAM_OPTIONS`, from SAM's reference), and
  their parameter overrides must be as SAM's parser reads them (`NAME=VALUE`, an empty value
  written `'""'`) and values template.yaml accepts.
A command of any other kind fails the walk: the guide would name something nobody checks.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore import xform_name
from typer.testing import CliRunner

from kore_connect import arns
from kore_connect.doctor.report import Check
from kore_connect.twin.template import describe_api, load_template
from tests.cli.test_cli_call import COMMAND
from tests.cli.test_cli_up import Up
from tests.conftest import REPO
from tests.deploy.test_doctor_cli import cli, using
from tests.doctor_lab import ACCOUNT, RETRIEVE_ARN, STACK, ContactFlow, Lab, flow_content, lab_fixture

GUIDES = ["docs/setup.md", "docs/migration.md"]
REFERENCE_FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:koreRetrieveSessionMetadata"
# The instance as each guide has it when it runs the doctor before the flow is in place, and the
# lines that then fail: before setup's steps 8 and 9, no flow and no flow logs; before the
# migration's step 2, the reference setup's flow.
INSTANCE_BEFORE = {
    "docs/setup.md": ({"flow_logs": "false", "flows": []}, {Check.FLOW_LOGS, Check.FLOW}),
    "docs/migration.md": (
        {"flows": [ContactFlow(content=flow_content(function_arn=REFERENCE_FUNCTION))]},
        {Check.FLOW},
    ),
}
# SAM's reading of one --parameter-overrides item: KEY=VALUE, the value quoted or without spaces.
SAM_OVERRIDE = re.compile(r'(?P<key>[A-Za-z0-9]+)=(?P<value>"(?:\\.|[^"\\]+)*"|(?:\\.|[^ "\\]+)+)')
AWS_GLOBAL_OPTIONS = {"--region", "--profile", "--output", "--query", "--no-cli-pager"}
SAM_OPTIONS = {
    "build": {"--use-container", "--cached"},
    "deploy": {"--guided", "--stack-name", "--region", "--profile", "--parameter-overrides"},
    "delete": {"--stack-name", "--region", "--profile"},
}


def shell_commands(guide: str) -> list[str]:
    """The commands of the guide's ```sh blocks, in order, continuation lines joined."""
    text = (REPO / guide).read_text()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from lab_fixture(monkeypatch, request)


@pytest.mark.parametrize("guide", GUIDES)
def test_every_command_of_the_guide_runs_as_written(
    guide: str, tmp_path: Path, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = shell_commands(guide)
    assert commands, f"{guide} has no commands"
    twin: Up | None = None
    deployed = False
    bin_dir = str(Path(COMMAND).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    try:
        for command in commands:
            words = shlex.split(command, comments=True)
            if words[:2] == ["kore-connect", "up"]:
                twin = Up(tmp_path, *words[2:])
                env["KORE_CONNECT_API_TOKEN"] = twin.token
            elif words[:2] == ["kore-connect", "doctor"]:
                if not deployed:
                    lab.deploy()
                    deployed = True
                before = "fail" in command.partition(" #")[2]
                run_doctor_against_the_lab(
                    lab, words[2:], command, INSTANCE_BEFORE[guide] if before else None
                )
            elif words[0] == "kore-connect":
                script = ["bash", "-c", command]
                result = subprocess.run(
                    script, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
                )
                assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
                assert "Traceback" not in result.stdout + result.stderr, command
            elif words[0] == "aws":
                check_aws_command(words, command)
            elif words[0] == "sam":
                check_sam_command(words, command)
            else:
                pytest.fail(f"{guide}: the walk-through cannot check {command!r}")
    finally:
        if twin is not None:
            assert twin.stop() == 0, twin.output()
            assert "Traceback" not in twin.output()


def run_doctor_against_the_lab(
    lab: Lab, args: list[str], command: str, before: tuple[dict[str, Any], set[Check]] | None
) -> None:
    """The doctor as written, against the lab's stack, and its instance healthy or as `before` says."""
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN], healthy_instance=before is None)
    if before is not None:
        lab.instance_has(**before[0])
    assert "--stack-name" not in args or args[args.index("--stack-name") + 1] == STACK, command
    # the doctor closes its clients when it ends: each run gets its own HTTP client, as a new process would
    clients = dataclasses.replace(lab.clients, http=httpx.Client())
    result = CliRunner().invoke(cli(using(clients)), ["doctor", *args])
    if before is None:
        assert result.exit_code == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "All checks passed." in result.stdout
        return
    assert result.exit_code == 1, f"{command}\n{result.stdout}\n{result.stderr}"
    failed = {line[2:].partition(":")[0] for line in result.stdout.splitlines() if line.startswith("✗ ")}
    assert failed == {str(check) for check in before[1]}, result.stdout


def check_aws_command(words: list[str], command: str) -> None:
    service, operation, *rest = words[1:]
    session = botocore.session.get_session()
    assert service in session.get_available_services(), f"no AWS service {service!r}: {command}"
    model = session.get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"aws {service} has no {operation}: {command}"
    shape = model.operation_model(operations[operation]).input_shape
    members = {
        f"--{xform_name(name, '-')}": member for name, member in (shape.members if shape else {}).items()
    }
    option = None
    for word in rest:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            known = set(members) | AWS_GLOBAL_OPTIONS
            assert option in known, f"aws {service} {operation} has no {option}: {command}"
        elif option in members:
            member = members[option]
            values = getattr(member, "enum", None) or getattr(getattr(member, "member", None), "enum", None)
            assert not values or word in values, f"{option} {word!r} is not one of {values}: {command}"
    required = {f"--{xform_name(name, '-')}" for name in (shape.required_members if shape else [])}
    missing = required - {word.split("=", 1)[0] for word in rest}
    assert not missing, f"{command} lacks {', '.join(sorted(missing))}"


def check_sam_command(words: list[str], command: str) -> None:
    subcommand, *rest = words[1:]
    assert subcommand in SAM_OPTIONS, f"the walk-through knows no `sam {subcommand}`: {command}"
    overrides: dict[str, str] = {}
    option = None
    for word in rest:
        if word.startswith("--"):
            option = word
            assert option in SAM_OPTIONS[subcommand], f"sam {subcommand} has no {option}: {command}"
        elif option == "--parameter-overrides":
            found = SAM_OVERRIDE.fullmatch(word)
            assert found, f"SAM would refuse {word!r} (NAME=VALUE; an empty value is '\"\"'): {command}"
            value = found["value"]
            overrides[found["key"]] = value[1:-1] if value.startswith('"') else value
    describe_api(load_template(), overrides)  # a parameter CloudFormation would refuse raises


def test_the_regions_the_guide_names_are_the_ones_flow_accepts() -> None:
    text = (REPO / "docs/setup.md").read_text()
    listed = re.search(r"`arns\.EXTERNAL_VOICE_TRANSFER_REGIONS`: ([a-z0-9,\s-]+)\)", text)
    assert listed is not None
    named = [region.strip() for region in listed.group(1).split(",")]
    assert tuple(named) == arns.EXTERNAL_VOICE_TRANSFER_REGIONS
