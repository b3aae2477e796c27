"""How other commands find a running `kore-connect up`: what it serves is written to `up.json` in
its home folder (for `kore-connect call`, run from the same folder), and a pointer to that home is
kept in the user's runtime folder under the gateway's SIP port (for `kore-connect connect run
--gateway 127.0.0.1:PORT`, run from anywhere). Neither holds the token.

`call` sends the token to the dashboard an up.json names, so these files are believed only when
`up` could have written them: regular files of the user's with mode 0600 (a cloned repository's
up.json is 0644, another user's is not the user's), naming a dashboard on this machine (127.0.0.0/8,
::1 or localhost). Any other is ignored, and the command says why (IgnoredRunningUp)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kore_connect.errors import KoreConnectError
from kore_connect.private_files import UnsafePathError, private_folder, read_private, write_private
from kore_connect.twin.local.store import LocalStore

RUNNING_FILE = "up.json"


class IgnoredRunningUp(KoreConnectError):
    """A file saying where a running `up` is, not to be believed: it is not used at all."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"ignoring {path} (where a running kore-connect up would be): {reason}")


@dataclass(frozen=True)
class RunningUp:
    """A `kore-connect up` that is serving: its home, its processes' addresses, its session store."""

    home: Path
    pid: int
    dashboard: str
    sip_host: str
    sip_port: int
    transports: tuple[str, ...]
    sqlite_path: Path
    dynamodb_endpoint: str | None
    table: str

    @property
    def store(self) -> LocalStore:
        return LocalStore(self.sqlite_path, self.dynamodb_endpoint, self.table)

    def announce(self) -> None:
        """Written last, each file whole at once: once they are there, other commands may use it."""
        document = asdict(self) | {
            "home": str(self.home),
            "sqlite_path": str(self.sqlite_path),
            "transports": list(self.transports),
        }
        write_private(self.home / RUNNING_FILE, json.dumps(document).encode())
        write_private(_pointer(self.sip_port), json.dumps({"home": str(self.home)}).encode())

    def withdraw(self) -> None:
        (self.home / RUNNING_FILE).unlink(missing_ok=True)
        with contextlib.suppress(KoreConnectError):  # a pointer folder or file that is not ours
            pointer = _pointer(self.sip_port)
            if _home_in(pointer) == self.home:  # another `up` may have taken the port since
                pointer.unlink(missing_ok=True)


def running_in(home: Path) -> RunningUp | None:
    """The `up` serving from `home`, or None (none, or a stale file of one that was killed).
    Raises IgnoredRunningUp for an up.json `up` cannot have written (see the module's docstring)."""
    path = home / RUNNING_FILE
    document = _trusted(path)
    if document is None:
        return None
    try:
        found = RunningUp(
            home=Path(document["home"]),
            pid=int(document["pid"]),
            dashboard=str(document["dashboard"]),
            sip_host=str(document["sip_host"]),
            sip_port=int(document["sip_port"]),
            transports=tuple(document["transports"]),
            sqlite_path=Path(document["sqlite_path"]),
            dynamodb_endpoint=document["dynamodb_endpoint"],
            table=str(document["table"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not on_this_machine(found.dashboard):
        raise IgnoredRunningUp(path, f"its dashboard {found.dashboard!r} is not on this machine")
    return found if _alive(found.pid) else None


def running_at(sip_port: int) -> RunningUp | None:
    """The `up` whose Kore gateway listens on `sip_port` on this machine, or None. Raises
    IgnoredRunningUp for a pointer or an up.json `up` cannot have written."""
    try:
        pointer = _pointer(sip_port)
    except UnsafePathError as exc:
        raise IgnoredRunningUp(exc.path, exc.reason) from None
    home = _home_in(pointer)
    found = running_in(home) if home is not None else None
    return found if found is not None and found.sip_port == sip_port else None


def on_this_machine(url: str) -> bool:
    """Is `url` an http URL of a loopback address (127.0.0.0/8, ::1) or of localhost, and only that?"""
    if any(character.isspace() or not character.isprintable() for character in url):
        return False  # urlsplit drops tabs and newlines: what it checked would not be what is used
    parts = urlsplit(url)
    try:
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not a number in range
    except ValueError:
        return False
    if parts.scheme != "http" or not host or "@" in parts.netloc:
        return False
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _trusted(path: Path) -> Any:
    """The JSON document in `path`; None when there is none (or only half of one)."""
    try:
        return json.loads(read_private(path))
    except FileNotFoundError:
        return None
    except UnsafePathError as exc:
        raise IgnoredRunningUp(path, exc.reason) from None
    except (OSError, ValueError):
        return None


def _runtime_folder() -> Path:
    """The user's own runtime folder (XDG_RUNTIME_DIR), else one of ours in the temp folder: a
    folder of the user's with mode 0700 (in /tmp, another user may have made it first)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(base) / "kore-connect" if base else Path(tempfile.gettempdir()) / f"kore-connect-{os.getuid()}"
    )
    private_folder(folder)
    return folder


def _pointer(sip_port: int) -> Path:
    return _runtime_folder() / f"up-sip-{sip_port}.json"


def _home_in(pointer: Path) -> Path | None:
    document = _trusted(pointer)
    try:
        return Path(document["home"]) if document is not None else None
    except (KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
