"""`kore-connect call`: the whole call path on one machine, through real sockets and processes (the
local API and its function workers, the Kore gateway over SIP, Connect's flow and connector)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kore_connect.cli.call import call_problems, load_summary
from kore_connect.twin.local.report import CallReport, Timings
from tests.call_reports import a_report
from tests.conftest import HANDOFF_EXPORT

COMMAND = shutil.which("kore-connect") or str(Path(__file__).resolve().parents[2] / ".venv/bin/kore-connect")


def kore_connect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_one_call_reports_every_part_and_hands_back_exactly_what_the_bot_sent(tmp_path: Path) -> None:
    result = kore_connect("call", "--json", "--caller", "+447700900123", "--home", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    contact = report["contactId"]
    # Connect's side: the default flow ran to the queue, the retrieve function answered
    assert report["customer"] == "+447700900123" and report["did"] == "+12065551118"
    assert report["ended"] == "queued" and report["queue"].endswith(
        "/queue/00000000-0000-4000-8000-00000000b10c"
    )
    types = [a["type"] for a in report["actions"]]
    assert types[:4] == [
        "UpdateFlowLoggingBehavior",
        "MessageParticipant",
        "TransferParticipantToThirdParty",
        "InvokeLambdaFunction",
    ]
    assert types[-1] == "TransferContactToQueue"
    assert all(a["branch"] in ("Success", "Condition: Equals 200") for a in report["actions"])
    # the SIP ladder between the connector and the gateway
    (ladder,) = report["sip"]
    lines = [m["firstLine"].split(" ")[0] if m["direction"] == "sent" else m["firstLine"] for m in ladder]
    assert lines[0] == "INVITE" and "SIP/2.0 200 OK" in lines and "ACK" in lines
    assert lines[-2].startswith("BYE ") and lines[-1] == "SIP/2.0"  # the gateway's BYE, our 200
    # Kore's side: every node ran, the service stored the metadata, the transfer was a BYE
    kore = report["kore"]
    assert [n["status"] for n in kore["nodes"]] == ["ok"] * 5 and kore["serviceStatus"] == 200
    assert kore["ended"] == "agent transfer (SIP BYE, answered 200)"
    # the data: stored and handed back to the agent exactly as this caller's own bot sent it
    sent = {
        "x_metadata": f"Hello from Kore for contact {contact}",
        "kore-instanceSessionId": kore["instanceSessionId"],
    }
    assert report["metadata"] == {"stored": sent, "customData": sent}
    assert report["attributes"]["kore_instanceSessionId"] == kore["instanceSessionId"]
    assert report["timings"]["setupMs"] > 0 and report["timings"]["handoffMs"] > 0
    # the twin's state and its parts' logs are where --home said, out of the command's output
    assert (tmp_path / "sessions.db").exists() and (tmp_path / "interactions.db").exists()
    assert "Metadata stored" in (tmp_path / "api.log").read_text()  # the API's process and its functions
    assert "retriev" in (tmp_path / "functions.log").read_text().lower()  # the flow's retrieve function
    assert "Kore voice gateway: sip:" in (tmp_path / "gateway.log").read_text()


def test_an_exported_flow_runs_unchanged_through_the_twin(tmp_path: Path) -> None:
    reference = HANDOFF_EXPORT
    result = kore_connect("call", "--json", "--flow", str(reference))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ended"] == "queued"
    assert [a["type"] for a in report["actions"]][2:4] == [
        "TransferParticipantToThirdParty",
        "InvokeLambdaFunction",
    ]
    assert report["metadata"]["customData"] == report["metadata"]["stored"] is not None


def test_the_text_report_shows_the_flow_the_ladder_the_bot_and_the_data() -> None:
    result = kore_connect("call")
    assert result.returncode == 0, result.stderr
    for expected in (
        "Connect flow action",
        "Connect  ---->  Kore    INVITE",
        "Kore bot node",
        "customData (agent)",
    ):
        assert expected in result.stdout
    assert "problem:" not in result.stdout


@pytest.mark.slow
def test_a_load_of_1000_calls_at_concurrency_100_loses_and_mixes_up_nothing() -> None:
    result = kore_connect("call", "--count", "1000", "--concurrency", "100", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [CallReport.from_json(json.loads(line)) for line in result.stdout.splitlines()]
    assert len(reports) == 1000
    assert len({r.contact.contact_id for r in reports}) == 1000
    assert [p for r in reports for p in call_problems(r)] == []
    summary = load_summary(reports, seconds=60.0)
    assert summary["failedCalls"] == 0 and summary["handoffMs"]["p50"] > 0


def test_the_load_summary_is_printed_and_the_check_can_fail() -> None:
    result = kore_connect("call", "--count", "20", "--concurrency", "5")
    assert result.returncode == 0, result.stderr
    assert "20 calls in" in result.stdout and "No call lost or mixed up" in result.stdout


def report_for(contact: str, instance: str, custom: Any, timings: Timings | None = None) -> CallReport:
    sent = {"x_metadata": f"Hello from Kore for contact {contact}", "kore-instanceSessionId": instance}
    return a_report(contact, instance, stored=sent, custom=custom, timings=timings)


def test_a_call_that_loses_its_metadata_exits_1() -> None:
    # the reference flow transfers to +12065551118; this twin's Kore gateway answers another DID (404)
    reference = HANDOFF_EXPORT
    result = kore_connect("call", "--flow", str(reference), "--did", "+15550009999")
    assert result.returncode == 1
    assert "Kore call ended: no DID matches '+12065551118'" in result.stdout
    for problem in ("ended disconnected, not queued", "lost: nothing stored", "lost: no customData"):
        assert f"problem: {problem}" in result.stdout


def test_timings_and_the_summary_are_computed_from_the_reports() -> None:
    from kore_connect.twin.connect.contact import Step
    from kore_connect.twin.local.report import _timings
    from kore_connect.twin.sip.trace import TracedMessage

    invite = TracedMessage("sent", "INVITE sip:x SIP/2.0", 0.010)
    ok = TracedMessage("received", "SIP/2.0 200 OK", 0.030)
    trace = [
        Step("a", "UpdateContactAttributes", "Success", "before", at=1.0),  # before the transfer
        Step("t", "TransferParticipantToThirdParty", "Success", "bye", (invite, ok), at=2.0),
        Step("l", "InvokeLambdaFunction", "Success", "ok", at=2.004),
        Step("u", "UpdateContactAttributes", "Success", "set", at=2.005),
    ]
    assert _timings(trace, started=0.5) == Timings(setup_ms=20.0, handoff_ms=5.0, total_ms=1505.0)
    reports = [report_for(str(n), str(n), None, Timings(float(n), None, 0.0)) for n in range(1, 101)]
    summary = load_summary(reports, seconds=4.0)
    assert summary["callsPerSecond"] == 25.0 and summary["failedCalls"] == 100
    assert summary["setupMs"] == {"p50": 50.5, "p95": 95.0, "p99": 99.0}
    assert summary["handoffMs"] is None and summary["problems"] == {"lost: no customData": 100}


def test_a_mix_up_or_a_loss_is_named() -> None:
    mine = {"x_metadata": "Hello from Kore for contact a", "kore-instanceSessionId": "1"}
    theirs = {"x_metadata": "Hello from Kore for contact b", "kore-instanceSessionId": "2"}
    assert call_problems(report_for("a", "1", mine)) == []
    assert call_problems(report_for("a", "1", theirs)) == ["mixed up: customData"]
    assert call_problems(report_for("a", "1", None)) == ["lost: no customData"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--caller", "alice"], "--caller 'alice': expected a phone number"),
        (["--did", "12"], "--did '12': expected a phone number"),
        (["--count", "0"], "--count"),
        (["--concurrency", "-1"], "--concurrency"),
        (["--flow", "/nonexistent/flow.json"], "--flow /nonexistent/flow.json: No such file"),
        (["--flow", str(Path(__file__))], "not JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = kore_connect("call", *args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_report_from_a_running_up_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    from kore_connect.private_files import private_folder
    from tests.servers import serving
    from tests.twin.local.test_local_files import announce

    # GIVEN a running `up` (of another version, say) whose answer to a call is not a call report
    async def up(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = (
            b"<html>dashboard</html>" if scope["method"] == "GET" else json.dumps({"contactId": "x"}).encode()
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    home = tmp_path / ".kore-connect"
    private_folder(home)
    with serving(up) as url:
        announce(home, url)
        (home / "api-token").write_text("a-token-of-the-running-up-0123456789")
        (home / "api-token").chmod(0o600)
        # WHEN a call is placed through it
        result = subprocess.run(
            [COMMAND, "call"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
    # THEN one line says so, and nothing crashed
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"error: the running kore-connect up ({url}) answered a report we cannot read\n"
