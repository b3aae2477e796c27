"""How other commands find a running `kore-connect up`: what it serves is written to `up.json` in
its home folder (for `kore-connect call`, run from the same folder), and a pointer to that home is
kept in the user's runtime folder under the gateway's SIP port (for `kore-connect connect run
--gateway 127.0.0.1:PORT`, run from anywhere). Neither holds the token."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from kore_connect.twin.local_store import LocalStore

RUNNING_FILE = "up.json"


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
        _write_whole(self.home / RUNNING_FILE, json.dumps(document))
        _write_whole(_pointer(self.sip_port), json.dumps({"home": str(self.home)}))

    def withdraw(self) -> None:
        (self.home / RUNNING_FILE).unlink(missing_ok=True)
        pointer = _pointer(self.sip_port)
        if _home_in(pointer) == self.home:  # another `up` may have taken the port since
            pointer.unlink(missing_ok=True)


def running_in(home: Path) -> RunningUp | None:
    """The `up` serving from `home`, or None (none, or a stale file of one that was killed)."""
    try:
        document = json.loads((home / RUNNING_FILE).read_text(encoding="utf-8"))
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
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _alive(found.pid) else None


def running_at(sip_port: int) -> RunningUp | None:
    """The `up` whose Kore gateway listens on `sip_port` on this machine, or None."""
    home = _home_in(_pointer(sip_port))
    found = running_in(home) if home is not None else None
    return found if found is not None and found.sip_port == sip_port else None


def _runtime_folder() -> Path:
    """The user's own runtime folder (XDG_RUNTIME_DIR), else one of ours in the temp folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(base) / "kore-connect" if base else Path(tempfile.gettempdir()) / f"kore-connect-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _pointer(sip_port: int) -> Path:
    return _runtime_folder() / f"up-sip-{sip_port}.json"


def _home_in(pointer: Path) -> Path | None:
    try:
        return Path(json.loads(pointer.read_text(encoding="utf-8"))["home"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
