"""Real peers the tests talk to, started and stopped by the tests themselves.

Each peer has a pytest marker of its name (pyproject.toml), so that `./dev test --fast` can leave
out every test that needs one. `peer(name)` is how a test reaches a peer's program, and it fails
a test that is not marked for it: a mark cannot be forgotten.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from kore_connect.twin.local.parts import free_port

REPO = Path(__file__).resolve().parents[1]
DYNALITE = REPO / "node_modules" / ".bin" / "dynalite"
# The peers: marker -> the program the tests run (first found), and what installs it.
PEERS: dict[str, tuple[tuple[str, ...], str]] = {
    "sipp": (("sipp",), "Debian's sip-tester"),
    "dynalite": ((str(DYNALITE),), "npm's dynalite (./dev setup)"),
    "chromium": (("/usr/bin/chromium",), "Debian's chromium"),
    "kamailio": (("kamailio", "/usr/sbin/kamailio"), "Debian's kamailio"),
    "baresip": (("baresip",), "Debian's baresip-core"),
    "sipvicious": (("svmap",), "Debian's sipvicious"),
}
SLOW = "slow"  # the marker of a load, a soak or a corpus run: tens of seconds or more
running_markers: set[str] = set()  # the markers of the test being set up or run (conftest keeps it)


def peer(name: str, program: str | None = None) -> str:
    """The path of a peer's program (`program`: another of the peer's programs, e.g. svwar), for a
    test marked `name`."""
    if name not in running_markers:
        raise AssertionError(f"this test runs {name}: mark it @pytest.mark.{name} (tests/peers.py)")
    candidates, installer = PEERS[name]
    for candidate in (program,) if program else candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    raise RuntimeError(f"{program or candidates[0]} is missing: ./dev setup installs {installer}")


def descendants(pid: int) -> list[int]:
    """Every live process under `pid`: its children, theirs, and so on (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except OSError:
                continue  # it ended meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Dynalite:
    """dynalite (npm), a DynamoDB-compatible server over HTTP, in memory, on a loopback port."""

    def __init__(self, create_table_ms: int = 0) -> None:
        self.create_table_ms = create_table_ms  # how long a new table stays CREATING
        self.program = peer("dynalite")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dynalite:
        self._process = subprocess.Popen(
            [
                self.program,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--createTableMs",
                str(self.create_table_ms),
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=10)
        self._process = None


class SilentPeer:
    """A TCP listener on loopback that accepts connections and never answers: an AWS endpoint that
    hangs. `accepted` counts the attempts a client made."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self._listener.accept()[0])

    def close(self) -> None:
        self._listener.close()
        for connection in self.accepted:
            connection.close()
