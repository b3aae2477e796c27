"""The twin's local files: its home is 0700 and what it writes there 0600 (SQLite's -wal and -shm
too), no link in it is followed, and what it trusts (a running up's address, a token file) must be
a regular 0600 file of the user's. `call` never sends the token where a file it did not write says."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kore_connect.errors import ConfigError
from kore_connect.private_files import (
    UnsafePathError,
    open_private,
    private_database,
    private_folder,
    read_private,
    write_private,
)
from kore_connect.twin.local.api_token import resolve_token
from kore_connect.twin.local.running import (
    IgnoredRunningUp,
    RunningUp,
    on_this_machine,
    running_at,
    running_in,
)
from tests.cli.test_cli_call import COMMAND
from tests.servers import serving

SECRET = b"someone else's file\n"
TOKEN = "a-token-only-this-user-has-0123456789"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the home that a link in the home names: it must stay as it is."""
    path = tmp_path / "victim"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    private_folder(path)
    return path


@pytest.fixture
def others_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on the files the test made belong to another user (as seen by the checks)."""
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)


# --- the home folder -------------------------------------------------------------------------------


def test_a_new_home_is_made_0700_whatever_the_umask(tmp_path: Path) -> None:
    assert private_folder(tmp_path / "a" / "home") is None
    assert mode(tmp_path / "a" / "home") == 0o700


def test_a_home_open_to_others_is_tightened_and_its_former_mode_returned(tmp_path: Path) -> None:
    # GIVEN a home as earlier versions made it under umask 022
    (tmp_path / "home").mkdir()
    (tmp_path / "home").chmod(0o755)
    # THEN it is made 0700, and the caller learns what it was (to say so)
    assert private_folder(tmp_path / "home") == 0o755
    assert mode(tmp_path / "home") == 0o700
    assert private_folder(tmp_path / "home") is None


def test_a_home_that_is_a_link_a_file_or_someone_elses_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o755)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "file").write_text("")
    for path, reason in [(tmp_path / "link", "a symbolic link"), (tmp_path / "file", "not a folder")]:
        with pytest.raises(UnsafePathError, match=reason) as refused:
            private_folder(path)
        assert refused.value.path == path
    assert mode(tmp_path / "elsewhere") == 0o755  # the folder the link named is left alone
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(UnsafePathError, match="owned by another user"):
        private_folder(tmp_path / "elsewhere")


# --- writing in the home ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda path: open_private(path, "w").write(b"x"),
        lambda path: open_private(path, "a").write(b"x"),
        lambda path: write_private(path, b"x"),
        lambda path: private_database(path),
    ],
    ids=["truncate", "append", "replace", "database"],
)
def test_a_link_in_the_home_is_refused_and_the_file_it_names_left_untouched(
    home: Path, victim: Path, write: Callable[[Path], Any]
) -> None:
    (home / "api.log").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="a symbolic link") as refused:
        write(home / "api.log")
    assert refused.value.path == home / "api.log"
    assert victim.read_bytes() == SECRET and mode(victim) == 0o644
    assert (home / "api.log").is_symlink()


def test_files_are_created_0600_and_an_earlier_0644_one_is_tightened(home: Path) -> None:
    with open_private(home / "new.log", "a") as file:
        file.write(b"line\n")
    write_private(home / "up.json", b"{}")
    (home / "old.log").write_text("from an earlier version\n")
    assert mode(home / "old.log") == 0o644
    with open_private(home / "old.log", "a") as file:
        file.write(b"more\n")
    assert {name: mode(home / name) for name in ("new.log", "up.json", "old.log")} == dict.fromkeys(
        ("new.log", "up.json", "old.log"), 0o600
    )
    assert (home / "old.log").read_text() == "from an earlier version\nmore\n"
    assert [p.name for p in home.iterdir() if p.name.endswith(".tmp")] == []  # no partial file left


def test_a_database_and_its_wal_and_shm_files_are_0600(home: Path) -> None:
    # GIVEN the usual umask (022): SQLite alone would make all three 0644
    database = home / "calls.db"
    private_database(database)
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        # THEN while it is open, each of its files is the user's alone
        files = sorted(p.name for p in home.iterdir())
        assert files == ["calls.db", "calls.db-shm", "calls.db-wal"]
        assert {name: mode(home / name) for name in files} == dict.fromkeys(files, 0o600)
        # AND preparing it again while it is open (another store in this process) leaves it working
        private_database(database)
        assert connection.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        connection.close()


def test_a_link_beside_a_database_is_refused(home: Path, victim: Path) -> None:
    (home / "sessions.db-wal").symlink_to(victim)  # SQLite would write its log through it
    with pytest.raises(UnsafePathError, match=r"sessions\.db-wal: a symbolic link"):
        private_database(home / "sessions.db")
    assert victim.read_bytes() == SECRET


# --- files the twin trusts -------------------------------------------------------------------------


def test_a_trusted_file_is_a_regular_0600_file_of_the_users(tmp_path: Path, victim: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"yes")
    good.chmod(0o600)
    assert read_private(good) == b"yes"
    (tmp_path / "link").symlink_to(good)
    os.mkfifo(tmp_path / "fifo", 0o600)
    for path, reason in [
        (victim, r"others may read or write it \(mode 0644\)"),
        (tmp_path / "link", "a symbolic link"),
        (tmp_path / "fifo", "not a regular file"),  # refused at once, not waited on
    ]:
        with pytest.raises(UnsafePathError, match=reason):
            read_private(path)
    with pytest.raises(FileNotFoundError):
        read_private(tmp_path / "missing")


def test_a_trusted_file_of_another_user_is_refused(tmp_path: Path, others_uid: None) -> None:
    path = tmp_path / "token"
    path.write_text("not a token")
    path.chmod(0o600)
    with pytest.raises(UnsafePathError, match="owned by another user"):
        read_private(path)


def linked(path: Path) -> None:
    """`path` made a link to a token file elsewhere (which is sound)."""
    target = path.parent.parent / "elsewhere" / ".kore-connect" / "api-token"
    target.parent.mkdir(parents=True)
    path.rename(target)
    path.symlink_to(target)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda path: path.chmod(0o644), "others may read or write it (mode 0644)"),
        (lambda path: path.chmod(0o640), "others may read or write it (mode 0640)"),
        (linked, "a symbolic link"),
    ],
    ids=["0644", "group", "link"],
)
def test_a_token_file_others_could_read_or_write_is_refused(
    tmp_path: Path, setup: Callable[[Path], None], reason: str
) -> None:
    # GIVEN the token file `serve api --token-file` and `up` read (a checkout makes files 0644)
    path = tmp_path / ".kore-connect" / "api-token"
    path.parent.mkdir()
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    assert resolve_token(path, env={}).value == TOKEN
    setup(path)
    with pytest.raises(ConfigError) as refused:
        resolve_token(path, env={})
    assert f"the token file {path}: {reason}" in str(refused.value)
    assert "a regular file of yours with mode 0600" in str(refused.value)


def test_a_generated_token_file_is_0600(tmp_path: Path) -> None:
    token = resolve_token(tmp_path / "new" / "api-token", env={})
    assert token.generated and mode(tmp_path / "new" / "api-token") == 0o600
    assert mode(tmp_path / "new") == 0o700


# --- a running up's address ------------------------------------------------------------------------


def announce(home: Path, dashboard: str, *, file_mode: int = 0o600, sip_port: int = 5999) -> Path:
    """An up.json as `up` writes it (or as a cloned repository could ship it), naming `dashboard`."""
    home.mkdir(parents=True, exist_ok=True)
    document = {
        "home": str(home),
        "pid": os.getpid(),  # alive; a shipped file would name pid 1, alive too
        "dashboard": dashboard,
        "sip_host": "127.0.0.1",
        "sip_port": sip_port,
        "transports": ["udp", "tcp"],
        "sqlite_path": str(home / "sessions.db"),
        "dynamodb_endpoint": None,
        "table": "koreCcSessions",
    }
    path = home / "up.json"
    path.write_text(json.dumps(document))
    path.chmod(file_mode)
    return path


def test_an_up_json_up_wrote_is_found(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    running = RunningUp(
        home=home,
        pid=os.getpid(),
        dashboard="http://127.0.0.1:8080",
        sip_host="127.0.0.1",
        sip_port=5999,
        transports=("udp",),
        sqlite_path=home / "sessions.db",
        dynamodb_endpoint=None,
        table="t",
    )
    running.announce()
    try:
        assert mode(home / "up.json") == 0o600
        assert running_in(home) == running
        assert running_at(5999) == running
    finally:
        running.withdraw()
    assert running_in(home) is None


@pytest.mark.parametrize(
    ("dashboard", "file_mode", "reason"),
    [
        ("http://127.0.0.1:8080", 0o644, "others may read or write it (mode 0644)"),
        ("http://10.0.0.1:8080", 0o600, "its dashboard 'http://10.0.0.1:8080' is not on this machine"),
        ("http://example.com", 0o600, "its dashboard 'http://example.com' is not on this machine"),
    ],
)
def test_an_up_json_up_cannot_have_written_is_ignored_saying_why(
    home: Path, dashboard: str, file_mode: int, reason: str
) -> None:
    path = announce(home, dashboard, file_mode=file_mode)
    with pytest.raises(IgnoredRunningUp) as ignored:
        running_in(home)
    assert str(ignored.value) == f"ignoring {path} (where a running kore-connect up would be): {reason}"


def test_an_up_json_that_is_a_link_or_another_users_is_ignored(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = announce(tmp_path / "other", "http://127.0.0.1:8080")
    (home / "up.json").symlink_to(real)
    with pytest.raises(IgnoredRunningUp, match="a symbolic link"):
        running_in(home)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(IgnoredRunningUp, match="owned by another user"):
        running_in(tmp_path / "other")


def test_a_pointer_up_cannot_have_written_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    announce(tmp_path / "home", "http://127.0.0.1:8080")
    (tmp_path / "run" / "kore-connect").mkdir(parents=True, mode=0o700)
    pointer = tmp_path / "run" / "kore-connect" / "up-sip-5999.json"
    pointer.write_text(json.dumps({"home": str(tmp_path / "home")}))  # 0644
    with pytest.raises(IgnoredRunningUp, match="others may read or write it"):
        running_at(5999)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)  # the runtime folder: another's
    with pytest.raises(IgnoredRunningUp, match=r"/run/kore-connect \(.*\): owned by another user"):
        running_at(5999)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.1.2.3:8080", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080", True),
        ("http://10.0.0.1:8080", False),
        ("http://example.com:8080", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1@example.com", False),
        ("http://127.0.0.1:8080@example.com", False),
        ("https://example.com", False),
        ("ftp://127.0.0.1", False),
        ("http://127.0.0.1:99999", False),
        ("http://127.0.0.1\t.example.com", False),
        ("127.0.0.1:8080", False),
    ],
)
def test_a_dashboard_on_this_machine_is_on_loopback_only(url: str, local: bool) -> None:
    assert on_this_machine(url) is local


@contextmanager
def capturing() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server on loopback that records every request's headers, answers GET with 200 (as a
    dashboard would) and refuses the rest."""
    received: list[dict[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received.append({k.decode(): v.decode() for k, v in scope["headers"]})
        status = 200 if scope["method"] == "GET" else 503
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"captured"})

    with serving(app) as url:
        yield url, received


def test_call_sends_no_token_to_an_up_json_it_did_not_write(tmp_path: Path) -> None:
    # GIVEN a folder as a cloned repository could ship it: .kore-connect/up.json (0644) naming a
    # server on this machine that records what it receives
    with capturing() as (url, received):
        announce(tmp_path / ".kore-connect", url, file_mode=0o644)
        # WHEN the user places a call there, the token in their environment
        call = subprocess.Popen(
            [COMMAND, "call"],
            cwd=tmp_path,
            env={**os.environ, "KORE_CONNECT_API_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert call.stderr is not None
        said = call.stderr.readline()
        # (it then starts a twin of its own: not needed here)
        call.send_signal(signal.SIGINT)
        call.communicate(timeout=60)
    # THEN the server received nothing, and the command said in one line why it ignored the file
    assert received == []
    assert said == (
        "warning: ignoring .kore-connect/up.json (where a running kore-connect up would be): others "
        "may read or write it (mode 0644); the calls go through a twin of this command's own\n"
    )


def test_connect_run_ignores_a_pointer_it_did_not_write_saying_why(tmp_path: Path) -> None:
    # GIVEN a pointer for the gateway's port that `up` cannot have written (0644)
    run = tmp_path / "run"
    (run / "kore-connect").mkdir(parents=True, mode=0o700)
    announce(tmp_path / "elsewhere", "http://127.0.0.1:9")
    (run / "kore-connect" / "up-sip-9.json").write_text(json.dumps({"home": str(tmp_path / "elsewhere")}))
    flow = {
        "Version": "2019-10-30",
        "StartAction": "end",
        "Actions": [
            {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
        ],
    }
    (tmp_path / "flow.json").write_text(json.dumps(flow))
    # WHEN a flow runs against that port
    result = subprocess.run(
        [COMMAND, "connect", "run", "flow.json", "--gateway", "127.0.0.1:9"],
        cwd=tmp_path,
        env={**os.environ, "XDG_RUNTIME_DIR": str(run)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN it runs on a store of its own, and says why in one line
    assert result.returncode == 0, result.stderr
    pointer = run / "kore-connect" / "up-sip-9.json"
    assert (
        f"warning: ignoring {pointer} (where a running kore-connect up would be): others may read or "
        "write it (mode 0644); the flow runs on a store of its own\n"
    ) in result.stderr
    assert f"Session store: SQLite {tmp_path / '.kore-connect' / 'sessions.db'}" in result.stderr
    assert not (tmp_path / "elsewhere" / "calls.db").exists()  # nothing written in that home
