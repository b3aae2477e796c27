"""`kore-connect up` in its own process, `kore-connect call` against it, and the dashboard: over HTTP,
and in headless Chromium (Debian's, driven by Playwright) for what a person sees."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.cli.test_cli_call import COMMAND
from tests.peers import Dynalite, descendants, peer

SCREENSHOTS = os.environ.get("KORE_CONNECT_SCREENSHOTS")  # e.g. docs/images: the README's pictures


class Up:
    """`kore-connect up` on free ports in its own folder."""

    def __init__(self, folder: Path, *options: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.log = (folder / "up.out").open("w")
        self.process = subprocess.Popen(
            [COMMAND, "up", "--api-port", "0", "--sip-port", "0", "--dashboard-port", "0", *options],
            cwd=folder,
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = folder / ".kore-connect" / "up.json"
        deadline = time.monotonic() + 120  # a part may take up to 90 s to start on a busy machine
        while not running.exists():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)
        self.url = json.loads(running.read_text())["dashboard"]
        token_file = folder / ".kore-connect" / "api-token"
        self.token = (
            token_file.read_text().strip() if token_file.exists() else (env or {})["KORE_CONNECT_API_TOKEN"]
        )

    def output(self) -> str:
        return (self.folder / "up.out").read_text()

    def call(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COMMAND, "call", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "KORE_CONNECT_API_TOKEN": self.token},
        )

    def descendants(self) -> list[int]:
        """Every process `up` started, and theirs (the API's and the gateway's, the function workers)."""
        return descendants(self.process.pid)

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    folder = tmp_path_factory.mktemp("up")
    (folder / ".kore-connect").mkdir()
    (folder / ".kore-connect").chmod(0o755)  # as earlier versions made it, under umask 022
    running = Up(folder)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def placed(up: Up) -> list[dict[str, Any]]:
    """Three calls placed through the running twin by `kore-connect call`, from two callers."""
    reports = []
    for caller in ("+14155550123", "+14155550123", "+447700900123"):
        result = up.call("--json", "--caller", caller)
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    return reports


def test_up_prints_its_addresses_and_the_generated_token_once(up: Up) -> None:
    output = up.output()
    for part in ("Dashboard:", "Metadata API:", "Kore gateway:", "Amazon Connect:", "Ctrl-C stops"):
        assert part in output
    assert f"shown this once): {up.token}" in output
    assert oct((up.folder / ".kore-connect" / "api-token").stat().st_mode & 0o777) == "0o600"


def test_the_home_and_every_file_the_twin_writes_in_it_are_the_users_alone(
    up: Up, placed: list[dict[str, Any]]
) -> None:
    # GIVEN a running up whose home an earlier version made 0755, and calls placed through it
    home = up.folder / ".kore-connect"
    # THEN the home was made 0700, saying so in one line
    assert (
        "warning: .kore-connect was open to other users (mode 0755); made 0700: it holds the twin's "
        "token and callers' numbers\n"
    ) in up.output()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # AND each file in it is 0600: logs, configuration, databases with their SQLite -wal and -shm
    modes = {path.name: stat.S_IMODE(path.lstat().st_mode) for path in home.iterdir()}
    for database in ("sessions.db", "interactions.db", "calls.db"):
        assert {database, f"{database}-wal", f"{database}-shm"} <= set(modes)  # open while up runs
    assert {"api-token", "api.log", "gateway.log", "functions.log", "gateway.yaml", "up.json"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)


@pytest.mark.parametrize("name", ["gateway.yaml", "api.log"])
def test_up_refuses_a_link_in_its_home_and_leaves_the_file_it_names_untouched(
    tmp_path: Path, name: str
) -> None:
    # GIVEN a home holding a link where up writes (a cloned repository may ship one)
    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    home = tmp_path / ".kore-connect"
    home.mkdir(mode=0o700)
    (home / name).symlink_to(victim)
    # WHEN up starts there
    started = subprocess.Popen(
        [COMMAND, "up", "--api-port", "0", "--sip-port", "0", "--dashboard-port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = started.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        started.send_signal(signal.SIGINT)  # it started, through the link: stop it
        started.communicate(timeout=60)
        pytest.fail(f"up started with a link at .kore-connect/{name}")
    # THEN it refuses in one line naming the link, and the file the link names is as it was
    assert started.returncode == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: the local twin could not start: .kore-connect/{name}: a symbolic link"), (
        err
    )
    assert victim.read_text() == "someone else's file\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False).stdout == b""


def test_call_goes_through_the_running_twin(up: Up, placed: list[dict[str, Any]]) -> None:
    for report in placed:
        assert report["ended"] == "queued"
        assert report["metadata"]["customData"] == report["metadata"]["stored"] is not None
    # the calls are the running twin's: its store holds them (the command started no twin of its own)
    assert (up.folder / ".kore-connect" / "calls.db").stat().st_size > 0
    with httpx.Client() as http:
        page = http.get(f"{up.url}/calls/{placed[0]['contactId']}")
    assert page.status_code == 200


def test_call_sends_an_exported_flow_to_the_running_twin(up: Up) -> None:
    from tests.conftest import HANDOFF_EXPORT

    result = up.call("--json", "--flow", str(HANDOFF_EXPORT))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ended"] == "queued" and report["metadata"]["customData"] == report["metadata"]["stored"]
    with httpx.Client() as http:
        bad = http.post(
            f"{up.url}/api/calls",
            json={"flow": {"Version": "2019-10-30"}},
            headers={"x-kore-connect-token": up.token},
        )
    assert bad.status_code == 400 and bad.json()["error"].startswith("flow:")


def test_a_dtmf_menu_before_the_transfer_reaches_the_bot_on_its_key_and_the_queue_with_its_data(
    up: Up,
) -> None:
    """Issue 17: a real flow puts a menu before the transfer to the Kore DID; on key 1 the caller
    reaches the running twin's bot, whose metadata the flow reads back after the BYE."""
    from tests.conftest import HANDOFF_EXPORT

    running = json.loads((up.folder / ".kore-connect" / "up.json").read_text())
    menu = HANDOFF_EXPORT.parent / "dtmf-menu-to-kore-export.json"
    gateway = f"127.0.0.1:{running['sip_port']}"
    result = subprocess.run(
        [COMMAND, "connect", "run", str(menu), "--gateway", gateway, "--input", "1", "--json"],
        cwd=up.folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    steps = [(a["type"], a["branch"]) for a in document["actions"]]
    assert ("GetParticipantInput", "Condition: Equals 1") in steps
    assert ("TransferParticipantToThirdParty", "Success") in steps and document["ended"] == "queued"
    assert document["inputs"][0]["value"] == "1"
    # the running twin's record of the call: the bot had it, and the agent gets what the bot stored
    from kore_connect.twin.local.call_log import CallLog

    calls = CallLog(up.folder / ".kore-connect" / "calls.db")
    try:
        report = calls.get(document["contactId"])
    finally:
        calls.close()
    assert report is not None and report.kore is not None and report.kore.contact_id == document["contactId"]
    assert report.kore.nodes and report.metadata.handed_back
    assert json.loads(document["attributes"]["customData"]) == report.metadata.stored
    # and its page on the dashboard says what the caller heard and pressed, and why the contact ended
    with httpx.Client() as http:
        page = http.get(f"{up.url}/calls/{document['contactId']}").text
    assert "Pressed at " in page and ": 1</li>" in page and "Heard: Thank you for calling." in page
    assert "queued: in queue" in page


def test_the_place_call_endpoint_needs_the_token_and_a_sound_body(up: Up) -> None:
    with httpx.Client() as http:
        assert http.post(f"{up.url}/api/calls", json={}).status_code == 401
        wrong = http.post(f"{up.url}/api/calls", json={}, headers={"x-kore-connect-token": "x" * 48})
        assert wrong.status_code == 401
        headers = {"x-kore-connect-token": up.token}
        assert http.post(f"{up.url}/api/calls", content=b"{", headers=headers).status_code == 400
        bad = http.post(f"{up.url}/api/calls", json={"caller": "alice"}, headers=headers)
        assert bad.status_code == 400 and "caller must be a phone number" in bad.text


def test_the_dashboard_lists_searches_and_shows_a_call_over_http(
    up: Up, placed: list[dict[str, Any]]
) -> None:
    with httpx.Client() as http:
        listing = http.get(up.url).text
        assert all(r["contactId"] in listing for r in placed)
        by_number = http.get(up.url, params={"q": "+4477"}).text
        assert placed[2]["contactId"] in by_number and placed[0]["contactId"] not in by_number
        by_id = http.get(up.url, params={"q": placed[1]["contactId"][:13]}).text
        assert placed[1]["contactId"] in by_id and placed[0]["contactId"] not in by_id
        page = http.get(f"{up.url}/calls/{placed[0]['contactId']}").text
        assert "kore_instanceSessionId" in page and "<svg" in page and "INVITE" in page
        assert up.token not in listing + page  # the dashboard never shows the token
        assert http.get(f"{up.url}/calls/not-a-call").status_code == 404
        hostile = http.get(up.url, params={"q": "<script>alert(1)</script>"}).text
        assert "<script>alert(1)" not in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
        assert "No call matches" in hostile


def test_the_dashboard_refuses_a_page_from_elsewhere_posing_as_it(up: Up) -> None:
    # A DNS-rebinding page: its own name points at 127.0.0.1, so the browser sends that name as Host.
    port = up.url.rsplit(":", 1)[1]
    with httpx.Client() as http:
        for path in ("/", "/fragments/calls", "/calls/x"):
            answer = http.get(f"{up.url}{path}", headers={"Host": f"attacker.example:{port}"})
            assert answer.status_code == 400 and "Invalid host header" in answer.text
        assert http.get(f"http://localhost:{port}/").status_code == 200  # this machine's names work


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=peer("chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield launched
        launched.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.chromium
def test_in_chromium_the_list_shows_the_calls_and_search_finds_a_contact(
    up: Up, placed: list[dict[str, Any]], browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(up.url)
    rows = page.locator("tbody#rows tr")
    assert rows.count() >= len(placed)
    assert screenshot(page, tmp_path, "dashboard-calls").stat().st_size > 10_000
    page.get_by_label("Search by contact ID or phone number").fill(placed[2]["contactId"])
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/?q={placed[2]['contactId']}")
    assert page.locator("tbody#rows tr").count() == 1
    page.get_by_role("link", name=placed[2]["contactId"]).click()
    page.wait_for_url(f"**/calls/{placed[2]['contactId']}")
    assert page.get_by_role("heading", name=f"Call {placed[2]['contactId']}").is_visible()


@pytest.mark.chromium
def test_in_chromium_a_call_page_shows_the_attributes_and_the_ladder(
    up: Up, placed: list[dict[str, Any]], browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{up.url}/calls/{placed[0]['contactId']}")
    attributes = page.get_by_role("table", name="Contact attributes (what the agent sees)")
    shown = attributes.inner_text()
    custom = placed[0]["metadata"]["customData"]
    assert (
        "customData" in shown and custom["x_metadata"] in shown and custom["kore-instanceSessionId"] in shown
    )
    assert custom["x_metadata"] == f"Hello from Kore for contact {placed[0]['contactId']}"
    ladder = page.get_by_role(
        "img", name="SIP messages between Amazon Connect's connector and the Kore voice gateway"
    )
    assert ladder.is_visible() and ladder.locator("g.arrow").count() >= 6
    assert screenshot(page, tmp_path, "dashboard-call").stat().st_size > 10_000


@pytest.mark.chromium
def test_the_list_updates_live_while_calls_come_in(
    up: Up, placed: list[dict[str, Any]], browser: Any
) -> None:
    page = browser.new_page()
    page.goto(up.url)
    before = page.locator("tbody#rows tr").count()
    result = up.call("--json")
    assert result.returncode == 0, result.stderr
    new = json.loads(result.stdout)["contactId"]
    page.get_by_role("link", name=new).wait_for(timeout=5000)  # no reload: the page fetched it
    assert page.locator("tbody#rows tr").count() == before + 1


def test_ctrl_c_stops_everything_and_leaves_nothing_running(tmp_path: Path) -> None:
    running = Up(tmp_path)
    children = running.descendants()
    assert len(children) >= 4  # the API and the gateway, their function workers, the retrieve worker
    assert running.stop() == 0
    assert "Stopped." in running.output()
    assert not (tmp_path / ".kore-connect" / "up.json").exists()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    result = subprocess.run(
        [COMMAND, "call", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr  # with no up running, call starts its own twin


def gone(pids: list[int], seconds: float = 20.0) -> list[int]:
    """Those of `pids` still alive after waiting up to `seconds` for them to end."""
    deadline = time.monotonic() + seconds
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie has ended; its parent (gone) just never reaped it
            alive.append(pid)
    return alive


@pytest.mark.parametrize("how", [signal.SIGHUP, signal.SIGTERM])
def test_a_closed_terminal_or_a_kill_stops_everything_too(tmp_path: Path, how: signal.Signals) -> None:
    running = Up(tmp_path)
    children = running.descendants()
    assert running.stop(how) == 0 and "Stopped." in running.output()
    assert gone(children) == []


def test_when_up_itself_is_killed_its_parts_end_with_it(tmp_path: Path) -> None:
    running = Up(tmp_path)
    children = running.descendants()
    assert running.stop(signal.SIGKILL) == -signal.SIGKILL
    assert gone(children) == []  # each part is told when its parent dies (PR_SET_PDEATHSIG)


def test_a_dashboard_port_in_use_is_one_line_and_nothing_is_left_running(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [COMMAND, "up", "--api-port", "0", "--sip-port", "0", "--dashboard-port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False).stdout == b""


def test_up_with_its_own_did_takes_calls_to_it_and_refuses_others(tmp_path: Path) -> None:
    running = Up(tmp_path, "--did", "+15550001111")
    try:
        result = running.call("--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["did"] == "+15550001111"
        other = running.call("--did", "+15550002222")
        assert other.returncode == 1 and "answers DID +15550001111 only" in other.stderr
    finally:
        running.stop()


def test_up_on_dynamodb_keeps_the_calls_metadata_in_that_table(tmp_path: Path, dynalite: Dynalite) -> None:
    table = f"up-{uuid.uuid4().hex[:8]}"
    running = Up(tmp_path, "--dynamodb-endpoint", dynalite.endpoint, "--table", table)
    try:
        result = running.call("--json")
    finally:
        running.stop()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert f"DynamoDB table {table} at {dynalite.endpoint}" in running.output()
    assert not (tmp_path / ".kore-connect" / "sessions.db").exists()  # not SQLite
    item = boto3.client("dynamodb", endpoint_url=dynalite.endpoint).get_item(
        TableName=table, Key={"contactId": {"S": report["contactId"]}}
    )["Item"]
    assert (
        json.loads(item["metadata"]["S"]) == report["metadata"]["stored"] == report["metadata"]["customData"]
    )


def test_call_without_the_running_twins_token_says_so(tmp_path: Path) -> None:
    running = Up(tmp_path, env={"KORE_CONNECT_API_TOKEN": "a-token-only-up-knows-0123456789"})
    try:
        environment = {k: v for k, v in os.environ.items() if k != "KORE_CONNECT_API_TOKEN"}
        result = subprocess.run(
            [COMMAND, "call"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=environment,
        )
    finally:
        running.stop()
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "a kore-connect up runs at" in result.stderr and "KORE_CONNECT_API_TOKEN" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--did", "alice"], "--did 'alice': expected a phone number"),
        (["--api-port", "70000"], "--api-port"),
        (["--home", "/proc/version"], "--home /proc/version: not a folder"),
        (["--dynamodb-endpoint", "http://10.1.2.3:8000"], "a server on this machine (127.0.0.1"),
        (["--dynamodb-endpoint", "localhost:8000"], "expected a URL such as http://127.0.0.1:8000"),
        (
            ["--dynamodb-endpoint", "http://127.0.0.1:9"],
            "the local twin could not start: DynamoDB unreachable",
        ),
    ],
)
def test_bad_up_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [COMMAND, "up", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, (
        result.stderr
    )
