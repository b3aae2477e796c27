"""A new user's first hour, through the installed command: a port in use is one line naming the
port, the part and the option; `up` says how to place a call as the user can type it; `connect run`
finds a running `up` from any folder (its store, its dashboard, its gateway over TCP) and keeps the
functions' logs out of the terminal; `up` is warm before it says it is ready; reports fit 80 columns."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kore_connect.cli.call import call_problems
from kore_connect.contactflow.model import Flow
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.interpreter import Interpreter
from kore_connect.twin.connect.lambdas import LocalLambdas
from kore_connect.twin.connect.local import invoked_functions
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.lambda_runtime.runtime import FunctionSpec
from kore_connect.twin.local.parts import Part, PartStartError
from kore_connect.twin.local.report import CallReport
from tests.cli.test_cli_call import COMMAND
from tests.cli.test_cli_up import Up
from tests.peers import Dynalite, descendants, free_port

JSON_LOG_LINE = re.compile(r'^\{.*"level"', re.MULTILINE)  # a function's structured log line


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's whole stderr, which must be exactly one `error:` line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def taken_tcp() -> Iterator[int]:
    """A TCP port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def taken_udp() -> Iterator[int]:
    """A UDP port some other program holds (as another SIP server would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        yield other.getsockname()[1]


# --- a port in use ---------------------------------------------------------------------------------


def test_serve_api_on_a_port_in_use_says_so_in_one_line_and_shows_no_banner(
    tmp_path: Path, taken_tcp: int
) -> None:
    result = run("serve", "api", "--port", str(taken_tcp), cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"127.0.0.1:{taken_tcp}" in line and "metadata API" in line and "--port" in line
    assert "in use" in line
    assert result.stdout == ""  # no "listening" banner, no routes
    # and no token generated that nobody was shown
    assert not (tmp_path / ".kore-connect" / "api-token").exists()


def test_serve_api_says_listening_only_once_it_answers(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "api", "--port", str(port), "--containers", "1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = []
        for line in process.stderr:  # the banner, up to its last line
            banner.append(line)
            if line.startswith("Listening on"):
                break
        # THEN the very moment it says so, it answers (the authorizer refuses a wrong token)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/prod/kore-metadata",
            params={"contactId": str(uuid.uuid4())},
            headers={"authorizationToken": "x" * 32},
            json={},
        )
        assert answer.status_code in (401, 403), answer.text
        assert any("/prod/kore-metadata" in line for line in banner), banner
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def test_serve_gateway_on_a_port_in_use_names_the_option(tmp_path: Path, taken_udp: int) -> None:
    result = run(
        "serve", "gateway", "--port", str(taken_udp), cwd=tmp_path, env={"KORE_CONNECT_API_TOKEN": "t" * 32}
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"127.0.0.1:{taken_udp}" in line and "Kore gateway" in line and "--port" in line


@pytest.mark.parametrize(
    ("option", "part", "kind"),
    [
        ("--dashboard-port", "the dashboard", "tcp"),
        ("--api-port", "the metadata API", "tcp"),
        ("--sip-port", "the Kore gateway", "udp"),
        ("--sip-port", "the Kore gateway", "tcp"),  # the gateway listens on TCP too
    ],
)
def test_up_with_a_port_in_use_names_the_port_the_part_and_the_option(
    tmp_path: Path, option: str, part: str, kind: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(f"taken_{kind}")
    others = [o for o in ("--dashboard-port", "--api-port", "--sip-port") if o != option]
    result = run("up", option, str(port), *(value for o in others for value in (o, "0")), cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert part in line and f"127.0.0.1:{port} ({kind.upper()})" in line
    assert f"choose another port with {option}" in line
    assert not (tmp_path / ".kore-connect" / "api-token").exists()  # nothing started, nothing made


def test_a_part_that_fails_to_start_is_reported_with_what_it_said(tmp_path: Path, taken_tcp: int) -> None:
    # the port was free when `up` checked it, and taken by the time the part bound it
    part = Part(
        "metadata API",
        ["serve", "api", "--port", str(taken_tcp), "--token-file", str(tmp_path / "token")],
        tmp_path / "api.log",
        {},
    )
    with pytest.raises(PartStartError) as failed:
        asyncio.run(part.ready(re.compile("Listening on")))
    assert failed.value.part == "metadata API"
    assert f"127.0.0.1:{taken_tcp} (TCP): the port is in use" in failed.value.reason
    assert failed.value.log == tmp_path / "api.log"


# --- a running up ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("first-hour"))
    try:
        yield running
    finally:
        running.stop()


def sip_port(up: Up) -> int:
    found = re.search(r"Kore gateway: +sip:\+?[0-9]+@127\.0\.0\.1:([0-9]+) \(UDP and TCP\)", up.output())
    assert found is not None, up.output()
    return int(found.group(1))


def test_up_prints_the_call_command_as_the_user_can_type_it(up: Up, tmp_path: Path) -> None:
    found = re.search(r"Place a call: +(\S+) call\n", up.output())
    assert found is not None, up.output()
    typed = found.group(1)
    on_path = shutil.which("kore-connect")
    if on_path is not None and Path(on_path).resolve() == Path(COMMAND).resolve():
        assert typed == "kore-connect"
    else:
        # not on PATH (as after ./dev run): its path, which a shell in up's folder runs
        assert typed != "kore-connect"
    shell = subprocess.run(
        ["bash", "-c", f"{typed} --help"], cwd=up.folder, capture_output=True, text=True, check=False
    )
    assert shell.returncode == 0 and "call" in shell.stdout, shell.stderr


def test_up_says_kore_connect_when_path_finds_it(tmp_path: Path) -> None:
    folder = tmp_path / "on-path"
    folder.mkdir()
    running = Up(folder, env={"PATH": f"{Path(COMMAND).parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        assert re.search(r"Place a call: +kore-connect call\n", running.output()), running.output()
    finally:
        running.stop()


def test_up_warms_every_function_before_it_is_ready(up: Up) -> None:
    from kore_connect.twin.local.twin import WARM_CONTAINERS

    workers = [pid for pid in up.descendants() if b"kore_connect.twin.lambda_runtime.worker" in _cmdline(pid)]
    api = [pid for pid in up.descendants() if b" serve api" in _cmdline(pid).replace(b"\0", b" ")]
    assert len(api) == 1
    api_workers = [
        pid for pid in descendants(api[0]) if b"kore_connect.twin.lambda_runtime.worker" in _cmdline(pid)
    ]
    # the authorizer and the store function behind the API, Connect's retrieve function in up's process
    assert len(api_workers) == 2 * WARM_CONTAINERS
    assert len(workers) - len(api_workers) == WARM_CONTAINERS


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _failed_calls(reports: list[CallReport]) -> str:
    """The first failed calls, with what each action did: what a red run needs to be understood."""
    failed = [(report, call_problems(report)) for report in reports]
    return "".join(
        f"\n{report.contact.contact_id}: {problems}: " + " | ".join(a.reason for a in report.contact.actions)
        for report, problems in [(r, p) for r, p in failed if p][:5]
    )


@pytest.mark.slow
def test_a_burst_at_the_readme_load_right_after_start_fails_no_call(
    tmp_path: Path, dynalite: Dynalite
) -> None:
    # GIVEN an up on DynamoDB (dynalite) that has just said it is ready, no call placed yet. (On
    # SQLite, test_cli_call's 1000 calls at 100 do the same through a twin started for them.)
    running = Up(tmp_path, "--dynamodb-endpoint", dynalite.endpoint, "--table", "burst")
    try:
        # WHEN the README's load arrives at once
        result = running.call("--count", "1000", "--concurrency", "100", "--json")
    finally:
        running.stop()
    # THEN no call failed (none for the twin's own start-up: its functions were still warming)
    reports = [CallReport.from_json(json.loads(line)) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr[-2000:] + _failed_calls(reports)
    assert len(reports) == 1000
    reasons = [action.reason for report in reports for action in report.contact.actions]
    assert not [reason for reason in reasons if "start-up" in reason]
    assert all(report.metadata.handed_back for report in reports)


def test_connect_run_from_another_folder_uses_the_running_up_over_tcp(
    up: Up, tmp_path: Path, reference_flow_for_up: Path
) -> None:
    # GIVEN a running up, and a user in another folder with an exported flow
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # WHEN they run the flow against up's gateway, over TCP
    result = run(
        "connect",
        "run",
        str(reference_flow_for_up),
        "--gateway",
        f"127.0.0.1:{sip_port(up)}",
        "--transport",
        "tcp",
        "--json",
        cwd=elsewhere,
    )
    # THEN the bot's metadata is read back from up's store
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ended"] == "queued"
    custom = json.loads(document["attributes"]["customData"])
    assert custom["x_metadata"] == f"Hello from Kore for contact {document['contactId']}"
    assert (
        "INVITE" in document["sip"][0][0]["firstLine"]
        and "transport=tcp" in document["sip"][0][0]["firstLine"]
    )
    # no store of its own in the user's folder
    assert list(elsewhere.iterdir()) == []
    # the terminal says which store, and holds no function log line
    assert str(up.folder / ".kore-connect" / "sessions.db") in result.stderr
    assert not JSON_LOG_LINE.search(result.stderr)
    # the function's log went to up's log file
    assert "KoreRetrieveSessionMetadata" in (up.folder / ".kore-connect" / "functions.log").read_text()
    # and the contact is on up's dashboard, with what the bot stored
    with httpx.Client() as http:
        listed = http.get(up.url, params={"q": document["contactId"]})
        page = http.get(f"{up.url}/calls/{document['contactId']}")
    assert document["contactId"] in listed.text
    assert f"On the dashboard: {up.url}/calls/{document['contactId']}" in result.stderr
    assert page.status_code == 200 and "Hello from Kore for contact" in page.text


def test_connect_run_with_no_up_says_where_its_store_is_and_logs_to_a_file(tmp_path: Path) -> None:
    from tests.twin.connect.test_connect_interpreter import lambda_flow

    # GIVEN a flow that reads the store (no transfer), and no kore-connect up anywhere
    flow = lambda_flow()
    flow["Actions"][0]["Parameters"]["LambdaFunctionARN"] = (
        "arn:aws:lambda:us-east-1:123456789012:function:koreRetrieveSessionMetadata"
    )
    flow["Actions"][0]["Parameters"]["LambdaInvocationAttributes"] = {"contactId": "$.ContactId"}
    (tmp_path / "flow.json").write_text(json.dumps(flow))
    # WHEN it runs
    result = run("connect", "run", "flow.json", "--gateway", "127.0.0.1:9", cwd=tmp_path)
    # THEN it says which store it read, and why that one; the function's log is in a file
    assert result.returncode == 0, result.stderr
    store = tmp_path / ".kore-connect" / "sessions.db"
    assert f"Session store: SQLite {store} (no kore-connect up serves 127.0.0.1:9)" in result.stderr
    log = tmp_path / ".kore-connect" / "functions.log"
    assert f"Function logs: {log}" in result.stderr
    assert not JSON_LOG_LINE.search(result.stderr + result.stdout)
    assert JSON_LOG_LINE.search(log.read_text())


@pytest.fixture(scope="module")
def reference_flow_for_up(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default flow as `kore-connect flow` renders it for a real account (other ARNs than the
    twin's): the twin maps its functions by name."""
    folder = tmp_path_factory.mktemp("flow")
    rendered = subprocess.run(
        [
            COMMAND,
            "flow",
            "--connector-arn",
            "arn:aws:chime:us-east-1:123456789012:vc/abcdefghijklmnopqrstu",
            "--to-user",
            "+12065551118",
            "--retrieve-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:koreRetrieveSessionMetadata",
            "--queue-arn",
            "arn:aws:connect:us-east-1:123456789012:instance/11111111-2222-4333-8444-555555555555"
            "/queue/66666666-7777-4888-9999-000000000000",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    path = folder / "flow.json"
    path.write_text(rendered.stdout)
    return path


# --- reports fit 80 columns ------------------------------------------------------------------------


def test_the_call_report_fits_80_columns_and_cuts_nothing(up: Up) -> None:
    result = up.call()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert "…" not in result.stdout  # Rich's mark of a cut cell
    # what is long is all there, wrapped: the action names whole, the queue ARN once re-joined
    assert "TransferParticipantToThirdParty" in result.stdout
    queue = re.search(r"Queue: (.*?); contact", "".join(lines[lines.index(_line(lines, "Queue:")) :]))
    assert queue is not None and queue.group(1).endswith("/queue/00000000-0000-4000-8000-00000000b10c")


def _line(lines: list[str], start: str) -> str:
    return next(line for line in lines if line.startswith(start))


# --- the twin's own start-up fails no call -------------------------------------------------------


def slow_starting_lambdas(tmp_path: Path, import_seconds: float, run_seconds: float = 0.0) -> LocalLambdas:
    """The function `probe`, whose container takes `import_seconds` to import its handler (as ours
    do on a busy machine) and which runs `run_seconds`, not yet started."""
    (tmp_path / "slow_probe.py").write_text(
        f"import time\ntime.sleep({import_seconds})\n\n"
        f"def handler(event, context):\n    time.sleep({run_seconds})\n    return {{'a': '1'}}\n"
    )
    spec = FunctionSpec("probe", "slow_probe.handler", 3.0, {"PYTHONPATH": str(tmp_path)})
    return LocalLambdas({"probe": spec})


def run_flow(lambdas: LocalLambdas, flow: Flow, *, warm: bool) -> Contact:
    from tests.twin.connect.test_connect_interpreter import new_contact

    async def scenario() -> Contact:
        try:
            if warm:
                await lambdas.warm(invoked_functions([flow]))  # as `up` does before it says it is ready
            return await Interpreter(flow, invoke_lambda=lambdas).run(new_contact())
        finally:
            await lambdas.close()

    return asyncio.run(scenario())


def test_a_function_still_starting_when_the_limit_would_run_out_fails_no_contact(tmp_path: Path) -> None:
    from tests.twin.connect.test_connect_interpreter import lambda_flow

    # GIVEN a function whose first container takes 2.5 s to start, and a flow that waits 1 s for it
    lambdas = slow_starting_lambdas(tmp_path, import_seconds=2.5)
    # WHEN a contact invokes it before it has started (a Lambda cold start takes a fraction of that)
    contact = run_flow(lambdas, Flow.parse(lambda_flow(limit="1")), warm=False)
    # THEN the flow's limit counted only the function's own run: it answered, as in AWS
    assert contact.trace[0].branch == "Success", contact.trace[0].reason
    assert contact.external == {"a": "1"}


def test_a_function_that_runs_past_the_flows_limit_takes_the_error_branch(tmp_path: Path) -> None:
    from tests.twin.connect.test_connect_interpreter import lambda_flow

    # GIVEN a started function that runs 1.5 s, and a flow that waits 1 s for it
    lambdas = slow_starting_lambdas(tmp_path, import_seconds=0.0, run_seconds=1.5)
    contact = run_flow(lambdas, Flow.parse(lambda_flow(limit="1")), warm=True)
    # THEN the error branch, as in Connect, however long the twin took to start it
    assert contact.trace[0].branch == "NoMatchingError"
    assert "no answer within 1 s" in contact.trace[0].reason


def test_a_warmed_function_answers_the_first_contact_within_the_limit(tmp_path: Path) -> None:
    from tests.twin.connect.test_connect_interpreter import lambda_flow

    lambdas = slow_starting_lambdas(tmp_path, import_seconds=2.5)
    contact = run_flow(lambdas, Flow.parse(lambda_flow(limit="1")), warm=True)
    assert contact.trace[0].branch == "Success"


def test_contacts_arriving_together_start_a_function_once(tmp_path: Path) -> None:
    lambdas = slow_starting_lambdas(tmp_path, import_seconds=0.5)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"

    async def scenario() -> tuple[list[Invocation], int]:
        try:
            answers = await asyncio.gather(*(lambdas(arn, {}) for _ in range(8)))
            return list(answers), len(lambdas._running)
        finally:
            await lambdas.close()

    answers, functions = asyncio.run(scenario())
    assert all(answer.ok for answer in answers)
    assert functions == 1
