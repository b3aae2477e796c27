"""`kore-connect connect run` as a user runs it: an exported flow (ours, and Kore's reference export
when ../shared is there), SIPp as the voice gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kore_connect.sessions.sqlite import SQLiteSessionStore
from tests.conftest import HANDOFF_EXPORT, load_flow
from tests.twin.connect.test_connect_sip import sipp

KORE_CONNECT = Path(sys.executable).parent / "kore-connect"


def connect_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KORE_CONNECT), "connect", "run", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_exported_flow_hands_the_bots_metadata_to_the_queue(
    tmp_path: Path, transport: str, export_path: Path
) -> None:
    # GIVEN the bot's metadata stored for the contact the call will have
    contact_id = str(uuid.uuid4())
    metadata = {
        "x_metadata": "Hello from Kore",
        "kore-instanceSessionId": "6744a1f2c0ffee0011223344",
        "n": 1.5,
    }
    database = tmp_path / "sessions.db"
    SQLiteSessionStore(database).put(contact_id, json.dumps(metadata), ttl_seconds=3600)
    # WHEN the exported flow runs with SIPp as the voice gateway
    with sipp("answer_then_bye", tmp_path, transport) as peer:
        result = connect_run(
            str(export_path),
            "--gateway",
            f"127.0.0.1:{peer.port}",
            "--transport",
            transport,
            "--db",
            str(database),
            "--contact-id",
            contact_id,
            "--json",
            cwd=tmp_path,
        )
        status, err = peer.finish()
    # THEN one JSON document: the path, the SIP ladder, the attributes and the queue
    assert result.returncode == 0, result.stderr
    assert status == 0, err
    document = json.loads(result.stdout)
    assert document["contactId"] == contact_id and document["ended"] == "queued"
    assert json.loads(document["attributes"]["customData"]) == metadata
    assert [a["type"] for a in document["actions"]][2:4] == [
        "TransferParticipantToThirdParty",
        "InvokeLambdaFunction",
    ]
    (call,) = document["sip"]
    assert [m["direction"] for m in call][:2] == ["sent", "received"]
    assert call[0]["firstLine"].startswith("INVITE sip:+12065551118@")
    assert f"X-Amzn-ConnectContactId: {contact_id}" in call[0]["message"]
    assert any(m["firstLine"].startswith("BYE") and m["direction"] == "received" for m in call)
    (queue,) = (a for a in load_flow(export_path)["Actions"] if a["Type"] == "UpdateContactTargetQueue")
    assert document["queue"] == queue["Parameters"]["QueueId"]


@pytest.mark.sipp
def test_the_readable_output_shows_the_path_the_ladder_and_the_outcome(tmp_path: Path) -> None:
    with sipp("reject", tmp_path, answer="486 Busy Here") as peer:
        result = connect_run(str(HANDOFF_EXPORT), "--gateway", f"127.0.0.1:{peer.port}", cwd=tmp_path)
        peer.finish()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CallFailed" in out and "486 Busy Here" in out and "Ended: disconnected" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gateway", "nowhere"], "--gateway 'nowhere': expected HOST:PORT"),
        (["--gateway", "127.0.0.1:5060", "--transport", "tls"], "--transport 'tls': use udp or tcp"),
        (["--gateway", "127.0.0.1:5060", "--contact-id", "abc"], "--contact-id 'abc'"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    result = connect_run(str(HANDOFF_EXPORT), *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and expected in result.stderr


def test_a_broken_flow_is_named_in_one_line(tmp_path: Path) -> None:
    flow = load_flow(HANDOFF_EXPORT)
    flow["Actions"][0]["Type"] = "InvokeFlowModul"  # not in the flow language
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(flow))
    result = connect_run(str(path), "--gateway", "127.0.0.1:5060", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown action type 'InvokeFlowModul'" in result.stderr and "Traceback" not in result.stderr
    missing = connect_run(str(tmp_path / "nope.json"), "--gateway", "127.0.0.1:5060", cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.sipp
def test_a_flows_function_can_be_mapped_to_a_template_function(tmp_path: Path) -> None:
    flow = load_flow(HANDOFF_EXPORT)
    invoke = next(a for a in flow["Actions"] if a["Type"] == "InvokeLambdaFunction")
    invoke["Parameters"]["LambdaFunctionARN"] = (
        "arn:aws:lambda:eu-west-2:111122223333:function:customRetrieve"
    )
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(flow))
    outcomes = {}
    for mapping in ([], ["--function", "customRetrieve=KoreRetrieveSessionMetadata"]):
        with sipp("answer_then_bye", tmp_path) as peer:
            result = connect_run(
                str(path), "--gateway", f"127.0.0.1:{peer.port}", *mapping, "--json", cwd=tmp_path
            )
            peer.finish()
        assert result.returncode == 0, result.stderr
        step = next(a for a in json.loads(result.stdout)["actions"] if a["type"] == "InvokeLambdaFunction")
        outcomes[bool(mapping)] = step["branch"]
    assert outcomes == {False: "NoMatchingError", True: "Success"}
    bad = connect_run(str(path), "--gateway", "127.0.0.1:5060", "--function", "x=Nope", cwd=tmp_path)
    assert bad.returncode == 2 and "expected NAME=FUNCTION" in bad.stderr


QUEUE = "arn:aws:connect:eu-west-2:111122223333:instance/11111111-2222-4333-8444-555555555555/queue/q1"
TEMPLATED_FLOW = {  # as a CloudFormation template keeps it, before Fn::Sub fills ${QueueArn}
    "Version": "2019-10-30",
    "StartAction": "queue",
    "Metadata": {"note": "${LayoutOnly} is the editor's, never a placeholder to fill"},
    "Actions": [
        {
            "Identifier": "queue",
            "Type": "UpdateContactTargetQueue",
            "Parameters": {"QueueId": "${QueueArn}"},
            "Transitions": {
                "NextAction": "transfer",
                "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "end"}],
            },
        },
        {
            "Identifier": "transfer",
            "Type": "TransferContactToQueue",
            "Parameters": {},
            "Transitions": {
                "NextAction": "end",
                "Errors": [
                    {"ErrorType": "QueueAtCapacity", "NextAction": "end"},
                    {"ErrorType": "NoMatchingError", "NextAction": "end"},
                ],
            },
        },
        {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
    ],
}


def test_a_templates_placeholder_is_filled_by_set_and_named_when_it_is_not(tmp_path: Path) -> None:
    path = tmp_path / "templated.json"
    path.write_text(json.dumps(TEMPLATED_FLOW))
    # WHEN it runs with --set; THEN the queue is the value given, and nothing is said
    filled = connect_run(
        str(path), "--gateway", "127.0.0.1:9", "--set", f"QueueArn={QUEUE}", "--json", cwd=tmp_path
    )
    assert filled.returncode == 0, filled.stderr
    assert json.loads(filled.stdout)["queue"] == QUEUE and "warning" not in filled.stderr
    # WHEN it runs without; THEN it still loads and runs, and one warning names the placeholder
    unset = connect_run(str(path), "--gateway", "127.0.0.1:9", "--json", cwd=tmp_path)
    assert unset.returncode == 0, unset.stderr
    warnings = [line for line in unset.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: the flow leaves ${QueueArn} unset (a deployment template's placeholder): "
        "--set QueueArn=VALUE fills it"
    ]
    # WHEN --set names what the flow does not hold; THEN a warning says so
    stray = connect_run(
        str(path), "--gateway", "127.0.0.1:9", "--set", f"QueueArn={QUEUE}", "--set", "Queue=x", cwd=tmp_path
    )
    assert "warning: --set Queue: the flow has no ${Queue}" in stray.stderr


@pytest.mark.parametrize("pair", ["QueueArn", "=value", "Queue Arn=x", "QueueArn=${Other}"])
def test_a_bad_set_is_one_line_and_exit_2(tmp_path: Path, pair: str) -> None:
    path = tmp_path / "templated.json"
    path.write_text(json.dumps(TEMPLATED_FLOW))
    result = connect_run(str(path), "--gateway", "127.0.0.1:9", "--set", pair, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: --set {pair!r}: ")


@pytest.mark.parametrize("text", ["{not json", "\xff\xfe", ""])
def test_a_flow_file_that_is_not_json_is_one_line_and_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "flow.json"
    path.write_bytes(text.encode("latin-1"))
    result = connect_run(str(path), "--gateway", "127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: the flow is not valid JSON: ")


MENU_EXPORT = HANDOFF_EXPORT.parent / "dtmf-menu-to-kore-export.json"


@pytest.mark.parametrize(
    ("keys", "branch", "ended"),
    [(["--input", "2"], "Condition: Equals 2", "queued"), ([], "InputTimeLimitExceeded", "disconnected")],
)
def test_the_scripted_caller_presses_keys_and_the_trace_shows_every_input(
    tmp_path: Path, keys: list[str], branch: str, ended: str
) -> None:
    # no gateway is needed when the caller's choice does not reach the voice connector
    result = connect_run(str(MENU_EXPORT), *keys, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    menu = next(a for a in document["actions"] if a["type"] == "GetParticipantInput")
    assert menu["branch"] == branch and document["ended"] == ended and document["endedBecause"]
    assert document["inputs"][0]["kind"] == "dtmf" and document["inputs"][0]["value"] == (
        keys[1] if keys else None
    )
    assert "To talk to our virtual assistant, press 1." in " ".join(document["heard"])
    assert document["seconds"] > 5  # the prompt and, for silence, the input's time limit, not slept


def test_a_world_file_gives_the_flow_its_resources_and_names_what_it_lacks(tmp_path: Path) -> None:
    flow = {
        "Version": "2019-10-30",
        "StartAction": "hours",
        "Metadata": {},
        "Actions": [
            {
                "Identifier": "hours",
                "Type": "CheckHoursOfOperation",
                "Parameters": {"HoursOfOperationId": "Office"},
                "Transitions": {
                    "NextAction": "end",
                    "Conditions": [
                        {"NextAction": "open", "Condition": {"Operator": "Equals", "Operands": ["True"]}},
                        {"NextAction": "end", "Condition": {"Operator": "Equals", "Operands": ["False"]}},
                    ],
                    "Errors": [{"NextAction": "end", "ErrorType": "NoMatchingError"}],
                },
            },
            {
                "Identifier": "open",
                "Type": "InvokeLambdaFunction",
                "Parameters": {
                    "LambdaFunctionARN": "arn:aws:lambda:us-east-1:111122223333:function:missing",
                    "InvocationTimeLimitSeconds": "3",
                },
                "Transitions": {
                    "NextAction": "end",
                    "Errors": [{"NextAction": "end", "ErrorType": "NoMatchingError"}],
                },
            },
            {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
        ],
    }
    (tmp_path / "flow.json").write_text(json.dumps(flow))
    (tmp_path / "world.yaml").write_text(
        "clock: 2026-11-30T10:30:00-05:00\n"
        "hours: {Office: {timezone: America/New_York, open: {Monday: ['09:00-17:00']}}}\n"
    )
    result = connect_run("flow.json", "--world", "world.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    branches = [a["branch"] for a in json.loads(result.stdout)["actions"]]
    assert branches[:2] == ["Condition: Equals True", "NoMatchingError"]
    assert "warning: the Lambda function missing is not in the local world" in result.stderr
    (tmp_path / "bad.yaml").write_text("hours: {Office: {timezone: Nowhere/Land}}\n")
    bad = connect_run("flow.json", "--world", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "hours.Office.timezone" in bad.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input", "1a"], "--input/--say '1a': a DTMF entry holds only 0-9, * and #"),
        (["--say", " "], "an utterance cannot be empty"),
        (["--hang-up-at", "nowhere"], "--hang-up-at 'nowhere': neither seconds nor an action identifier"),
        (["--hang-up-at", "-3"], "--hang-up-at '-3': seconds must be 0 or more"),
        (["--world", "missing.yaml"], "cannot read missing.yaml"),
    ],
)
def test_a_bad_caller_or_world_option_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = connect_run(str(MENU_EXPORT), *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and expected in result.stderr, (
        result.stderr
    )


def test_the_caller_hangs_up_at_the_action_named(tmp_path: Path) -> None:
    menu = next(
        a["Identifier"] for a in load_flow(MENU_EXPORT)["Actions"] if a["Type"] == "GetParticipantInput"
    )
    result = connect_run(str(MENU_EXPORT), "--hang-up-at", menu, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Ended: caller hung up (the caller hung up on reaching action {menu})" in result.stdout


def test_a_flow_whose_transitions_are_not_objects_is_one_line_and_exit_2(tmp_path: Path) -> None:
    flow = {
        "Version": "2019-10-30",
        "StartAction": "a",
        "Actions": [
            {
                "Identifier": "a",
                "Type": "DisconnectParticipant",
                "Parameters": {},
                "Transitions": {"Conditions": [5]},
            }
        ],
    }
    (tmp_path / "flow.json").write_text(json.dumps(flow))
    result = connect_run("flow.json", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "each of Transitions.Conditions must be an object" in result.stderr


def test_a_set_that_only_the_worlds_flows_use_is_not_called_unused(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    module = {
        "Version": "2019-10-30",
        "StartAction": "q",
        "Actions": [
            {
                "Identifier": "q",
                "Type": "UpdateContactTargetQueue",
                "Parameters": {"QueueId": "${QueueArn}"},
                "Transitions": {},
            }
        ],
    }
    (tmp_path / "flows" / "module.json").write_text(json.dumps(module))
    (tmp_path / "world.yaml").write_text("flows: flows\n")
    (tmp_path / "flow.json").write_text(json.dumps(TEMPLATED_FLOW))
    result = connect_run(
        "flow.json", "--world", "world.yaml", "--set", "QueueArn=" + QUEUE, "--set", "Nowhere=x", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "--set QueueArn" not in result.stderr
    assert "--set Nowhere: neither the flow nor the world's flows have ${Nowhere}" in result.stderr
