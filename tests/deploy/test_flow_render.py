"""`kore-connect flow`: the rendered flow does what an exported Kore handoff flow does (ours, and Kore's
reference export when ../shared is there), closes its gaps, is valid, and is the same bytes for the
same options."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kore_connect.contactflow.language import ActionType, ErrorType
from kore_connect.contactflow.model import Action, Flow
from kore_connect.contactflow.render import FlowOptionError, FlowOptions, Prompts, flow_json, render_flow
from tests.conftest import HANDOFF_EXPORT, load_flow

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"
HANDOFF = load_flow(HANDOFF_EXPORT)


def _handoff_parameter(action_type: str) -> dict[str, Any]:
    parameters: dict[str, Any] = next(a for a in HANDOFF["Actions"] if a["Type"] == action_type)["Parameters"]
    return parameters


# The exported flow's own values, so our flow is rendered for the same Connect instance.
_CONNECTOR = _handoff_parameter("TransferParticipantToThirdParty")["VoiceConnector"]
OPTIONS = FlowOptions(
    connector_arn=_CONNECTOR["VoiceConnectorArn"],
    to_user=_CONNECTOR["ToUser"],
    retrieve_function_arn=_handoff_parameter("InvokeLambdaFunction")["LambdaFunctionARN"],
    queue_arn=_handoff_parameter("UpdateContactTargetQueue")["QueueId"],
)


def rendered(options: FlowOptions = OPTIONS) -> Flow:
    return Flow.parse(render_flow(options))


def follow(flow: Flow, start: Action) -> list[Action]:
    """The actions run from `start` when every action succeeds (a Compare takes its first condition)."""
    path = [start]
    while True:
        action = path[-1]
        target = action.conditions[0].next_action if action.conditions else action.next_action
        if target is None:
            return path
        path.append(flow.action(target))


def test_the_happy_path_is_the_reference_path_plus_the_session_id() -> None:
    flow = rendered()
    path = follow(flow, flow.action(flow.start_action))
    assert [a.type for a in path] == [
        ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR,
        ActionType.MESSAGE_PARTICIPANT,
        ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY,
        ActionType.INVOKE_LAMBDA_FUNCTION,
        ActionType.UPDATE_CONTACT_ATTRIBUTES,
        ActionType.COMPARE,
        ActionType.UPDATE_CONTACT_ATTRIBUTES,
        ActionType.UPDATE_CONTACT_TARGET_QUEUE,
        ActionType.TRANSFER_CONTACT_TO_QUEUE,
        ActionType.DISCONNECT_PARTICIPANT,
    ]
    _, welcome, transfer, retrieve, custom_data, found, session_id, queue, _, _ = path
    assert welcome.parameters == {"Text": Prompts().welcome}
    assert transfer.parameters == {
        "ThirdPartyConnectionTimeLimitSeconds": "60",
        "ContinueFlowExecution": "True",  # resume the flow after the bot's BYE
        "VoiceConnector": {
            "VoiceConnectorType": "CallTransferConnector",
            "VoiceConnectorArn": OPTIONS.connector_arn,
            "ToUser": OPTIONS.to_user,
            "FromUser": "$.CustomerEndpoint.Address",
        },
    }
    assert retrieve.parameters["LambdaFunctionARN"] == OPTIONS.retrieve_function_arn
    assert retrieve.parameters["LambdaInvocationAttributes"] == {"contactId": "$.ContactId"}
    assert retrieve.parameters["ResponseValidation"] == {"ResponseType": "JSON"}
    assert retrieve.parameters["InvocationTimeLimitSeconds"] == "3"
    assert custom_data.parameters["Attributes"] == {"customData": "$.External.body"}
    assert found.parameters == {"ComparisonValue": "$.External.statusCode"}
    assert found.conditions[0].operator == "Equals" and found.conditions[0].operands == ("200",)
    assert session_id.parameters["Attributes"] == {
        "kore_instanceSessionId": "$.External.kore-instanceSessionId"
    }
    assert queue.parameters == {"QueueId": OPTIONS.queue_arn}


def test_the_flow_uses_only_action_types_an_exported_flow_uses_plus_compare(export: dict[str, Any]) -> None:
    ours = {a.type for a in rendered().actions.values()}
    theirs = {ActionType(a["Type"]) for a in export["Actions"]}
    assert ours - theirs == {ActionType.COMPARE}
    assert theirs <= ours


def test_every_error_branch_plays_an_error_prompt() -> None:
    flow = rendered()
    for action in flow.actions.values():
        for error, target in action.errors.items():
            if error is ErrorType.NO_MATCHING_CONDITION:
                continue  # not an error: metadata not found, straight on to the queue
            prompt = flow.action(target)
            if action.type is ActionType.MESSAGE_PARTICIPANT:
                continue  # a prompt that fails goes on without another prompt
            assert prompt.type is ActionType.MESSAGE_PARTICIPANT, (action.label, error)
            assert prompt.parameters["Text"]


def test_a_caller_whose_bot_or_lookup_failed_still_reaches_the_queue() -> None:
    flow = rendered()
    by_type = {a.type: a for a in flow.actions.values()}
    for failing in (ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY, ActionType.INVOKE_LAMBDA_FUNCTION):
        for error, target in by_type[failing].errors.items():
            path = follow(flow, flow.action(target))
            assert ActionType.TRANSFER_CONTACT_TO_QUEUE in [a.type for a in path], (failing, error)


def test_metadata_not_found_still_reaches_the_queue_without_an_error_prompt() -> None:
    flow = rendered()
    found = next(a for a in flow.actions.values() if a.type is ActionType.COMPARE)
    target = flow.action(found.errors[ErrorType.NO_MATCHING_CONDITION])
    assert target.type is ActionType.UPDATE_CONTACT_TARGET_QUEUE


def test_the_editor_metadata_marks_references_as_dynamic_like_a_console_export() -> None:
    document = render_flow(OPTIONS)
    layout = document["Metadata"]["ActionMetadata"]
    assert set(layout) == {a["Identifier"] for a in document["Actions"]}
    for action in document["Actions"]:
        if action["Type"] == "UpdateContactAttributes":
            assert layout[action["Identifier"]]["dynamicParams"] == list(action["Parameters"]["Attributes"])
        if action["Type"] == "InvokeLambdaFunction":
            assert layout[action["Identifier"]]["dynamicMetadata"] == {"contactId": True}
            assert layout[action["Identifier"]]["parameters"]["LambdaFunctionARN"]["displayName"] == (
                "koreRetrieveSessionMetadata"
            )


def test_same_options_give_the_same_bytes_and_other_options_other_bytes() -> None:
    first = flow_json(render_flow(OPTIONS))
    assert flow_json(render_flow(OPTIONS)) == first
    other = flow_json(render_flow(dataclasses.replace(OPTIONS, to_user="+12065550100")))
    assert other != first and "+12065550100" in other


@settings(max_examples=50, deadline=None)
@given(
    welcome=st.text(min_size=1, max_size=200).filter(str.strip),
    transfer_limit=st.integers(min_value=1, max_value=600),
    lambda_limit=st.integers(min_value=1, max_value=8),
)
def test_any_valid_options_render_a_valid_flow_that_keeps_the_texts(
    welcome: str, transfer_limit: int, lambda_limit: int
) -> None:
    options = dataclasses.replace(
        OPTIONS,
        prompts=dataclasses.replace(Prompts(), welcome=welcome),
        transfer_time_limit_seconds=transfer_limit,
        lambda_time_limit_seconds=lambda_limit,
    )
    text = flow_json(render_flow(options))
    flow = Flow.loads(text)  # valid after a trip through the written text
    assert welcome in [a.parameters.get("Text") for a in flow.actions.values()]
    assert text == flow_json(render_flow(options))


@pytest.mark.parametrize(
    ("change", "option", "message"),
    [
        (
            {"connector_arn": OPTIONS.queue_arn},
            "connector_arn",
            "not an external voice transfer connector ARN",
        ),
        ({"retrieve_function_arn": "koreRetrieveSessionMetadata"}, "retrieve_function_arn", "not a Lambda"),
        (
            {"queue_arn": "arn:aws:connect:us-east-1:123456789012:instance/x/queue/y"},
            "queue_arn",
            "queue ARN",
        ),
        ({"to_user": "+1 206 555"}, "to_user", "not a number or SIP user"),
        ({"from_user": "hello world"}, "from_user", "not a number or SIP user"),
        ({"from_user": ""}, "from_user", "not a number or SIP user"),
        ({"from_user": "$.Customer.Number"}, "from_user", "not a reference Connect resolves"),
        ({"lambda_time_limit_seconds": 9}, "lambda_time_limit_seconds", "1 to 8 seconds"),
        ({"transfer_time_limit_seconds": 0}, "transfer_time_limit_seconds", "1 to 600 seconds"),
        ({"prompts": Prompts(welcome="  ")}, "prompts.welcome", "welcome prompt is empty"),
        ({"queue_name": ""}, "queue_name", "must not be empty"),
    ],
)
def test_options_connect_would_refuse_are_refused_before_anything_is_written(
    change: dict[str, Any], option: str, message: str
) -> None:
    with pytest.raises(FlowOptionError, match=message) as raised:
        render_flow(dataclasses.replace(OPTIONS, **change))
    assert raised.value.option == option


# ---------------------------------------------------------------- the command, as a user runs it


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KORE_CONNECT), *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=60
    )


def cli_options(options: FlowOptions = OPTIONS) -> list[str]:
    return [
        "--connector-arn",
        options.connector_arn,
        "--to-user",
        options.to_user,
        "--retrieve-function-arn",
        options.retrieve_function_arn,
        "--queue-arn",
        options.queue_arn,
    ]


def test_the_command_prints_and_writes_the_same_flow(tmp_path: Path) -> None:
    printed = run("flow", *cli_options(), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == flow_json(render_flow(OPTIONS))
    written = run("flow", *cli_options(), "--output", "flow.json", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "flow.json").read_text(encoding="utf-8") == printed.stdout
    assert "Import it in Amazon Connect" in written.stderr


def test_the_command_passes_time_limits_and_prompts(tmp_path: Path) -> None:
    result = run(
        "flow",
        *cli_options(),
        "--lambda-time-limit",
        "8",
        "--welcome-prompt",
        "Hallo und willkommen",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    expected = dataclasses.replace(
        OPTIONS,
        lambda_time_limit_seconds=8,
        prompts=dataclasses.replace(Prompts(), welcome="Hallo und willkommen"),
    )
    assert result.stdout == flow_json(render_flow(expected))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--connector-arn", "arn:aws:chime:nowhere"], "--connector-arn: 'arn:aws:chime:nowhere' is not an"),
        (
            ["--retrieve-function-arn", "koreRetrieve"],
            "--retrieve-function-arn: 'koreRetrieve' is not a Lambda",
        ),
        (["--queue-arn", "BasicQueue"], "--queue-arn: 'BasicQueue' is not an Amazon Connect queue ARN"),
        (["--to-user", "+1 206"], "--to-user: '+1 206' is not a number or SIP user"),
        (["--from-user", "$.Caller"], "--from-user: '$.Caller' is not a reference Connect resolves"),
        (["--queue-full-prompt", " "], "--queue-full-prompt: the queue full prompt is empty"),
        (["--lambda-time-limit", "12"], "--lambda-time-limit: the Lambda time limit must be 1 to 8 seconds"),
        (["--lambda-time-limit", "soon"], "--lambda-time-limit"),
        (["--colour", "blue"], "No such option: --colour"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run("flow", *cli_options(), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_option_and_an_unwritable_output_are_one_line_each(tmp_path: Path) -> None:
    missing = run("flow", "--to-user", "+12065551118", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--connector-arn" in missing.stderr
    unwritable = run(
        "flow", *cli_options(), "--output", str(tmp_path / "no" / "such" / "dir.json"), cwd=tmp_path
    )
    assert unwritable.returncode == 2 and unwritable.stderr.startswith("error: cannot write")
    assert not (tmp_path / "no").exists()


def elsewhere(arn: str, *, region: str | None = None, account: str | None = None) -> str:
    parts = arn.split(":")
    parts[3], parts[4] = region or parts[3], account or parts[4]
    return ":".join(parts)


@pytest.mark.parametrize(
    ("change", "option", "message"),
    [
        (
            {"connector_arn": elsewhere(OPTIONS.connector_arn, region="us-east-1")},
            "connector_arn",
            "the connector is in us-east-1, account 123456789012 and the queue (the Connect instance) in "
            "us-west-2, account 123456789012",
        ),
        (
            {"connector_arn": elsewhere(OPTIONS.connector_arn, account="111122223333")},
            "connector_arn",
            "the connector is in us-west-2, account 111122223333",
        ),
        (
            {"retrieve_function_arn": elsewhere(OPTIONS.retrieve_function_arn, region="eu-west-2")},
            "retrieve_function_arn",
            "the function is in eu-west-2, account 123456789012 and the queue",
        ),
        (
            {
                "connector_arn": elsewhere(OPTIONS.connector_arn, region="af-south-1"),
                "queue_arn": elsewhere(OPTIONS.queue_arn, region="af-south-1"),
                "retrieve_function_arn": elsewhere(OPTIONS.retrieve_function_arn, region="af-south-1"),
            },
            "connector_arn",
            "af-south-1 has no external voice transfer",
        ),
    ],
)
def test_the_arns_must_share_the_instances_region_and_account(
    change: dict[str, Any], option: str, message: str
) -> None:
    with pytest.raises(FlowOptionError) as raised:
        render_flow(dataclasses.replace(OPTIONS, **change))
    assert raised.value.option == option and message in str(raised.value)


def test_a_function_elsewhere_is_accepted_when_asked_for(tmp_path: Path) -> None:
    function = elsewhere(OPTIONS.retrieve_function_arn, region="eu-west-2", account="111122223333")
    flow = render_flow(dataclasses.replace(OPTIONS, retrieve_function_arn=function, function_elsewhere=True))
    assert function in json.dumps(flow)
    refused = run(
        "flow", *cli_options(dataclasses.replace(OPTIONS, retrieve_function_arn=function)), cwd=tmp_path
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--retrieve-function-arn: the function is in eu-west-2, account 111122223333" in refused.stderr
    accepted = run(
        "flow",
        *cli_options(dataclasses.replace(OPTIONS, retrieve_function_arn=function)),
        "--function-elsewhere",
        cwd=tmp_path,
    )
    assert accepted.returncode == 0 and function in accepted.stdout


def test_as_a_template_the_arns_are_placeholders_that_fill_back_to_the_same_flow(tmp_path: Path) -> None:
    from kore_connect.contactflow.placeholders import fill, placeholders
    from kore_connect.contactflow.render import render_template

    template = render_template(OPTIONS)
    assert placeholders(template) == {"ConnectorArn", "RetrieveFunctionArn", "QueueArn"}
    values = {
        "ConnectorArn": OPTIONS.connector_arn,
        "RetrieveFunctionArn": OPTIONS.retrieve_function_arn,
        "QueueArn": OPTIONS.queue_arn,
    }
    # filled, its actions are the flow rendered with the ARNs themselves
    assert fill(template, values)["Actions"] == render_flow(OPTIONS)["Actions"]
    # and the command: the same template, and no ARN option with it
    written = run("flow", "--did", OPTIONS.to_user, "--as-template", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout) == template
    mixed = run("flow", *cli_options(), "--as-template", cwd=tmp_path)
    assert (
        mixed.returncode == 2 and "--connector-arn: --as-template writes a placeholder for it" in mixed.stderr
    )
    missing = run("flow", "--did", OPTIONS.to_user, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "--connector-arn is needed (or --as-template" in missing.stderr
    # connect run fills it with --set, as a deployment would
    (tmp_path / "template.json").write_text(written.stdout)
    sets = [f"--set={name}={value}" for name, value in values.items()]
    ran = run("connect", "run", "template.json", *sets, "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (
        "unset" not in ran.stderr
        and json.loads(ran.stdout)["actions"][0]["type"] == "UpdateFlowLoggingBehavior"
    )
