"""The local twin's servers, each in its own process as the real systems are (and so that they share
the machine's cores): `python -m kore_connect serve ...`, its output in a log file, stopped by Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from kore_connect.errors import KoreConnectError
from kore_connect.private_files import open_private

_PR_SET_PDEATHSIG = 1
LISTENING = "Listening on"  # what `serve api` says once it serves (its banner's last line)
START_SECONDS = 90.0  # a cold start imports boto3, Powertools and V8 in several processes at once


class PartStartError(KoreConnectError):
    """A part of the twin did not start; `reason` is what it said, its log has the rest."""

    def __init__(self, part: Part, reason: str) -> None:
        self.part = part.name
        self.reason = reason
        self.log = part.log
        super().__init__(f"the {part.name} did not start: {reason} (see {part.log})")


class Part:
    def __init__(self, name: str, arguments: list[str], log: Path, environment: Mapping[str, str]) -> None:
        self.name = name
        self.log = log
        self._environment = dict(environment)
        self.process = self._spawn(arguments)

    def restart(self, arguments: list[str]) -> None:
        """Start it again (after it died), with `arguments`; wait for `ready` as after the first start."""
        self.process = self._spawn(arguments)

    def _spawn(self, arguments: list[str]) -> subprocess.Popen[bytes]:
        with open_private(self.log, "a") as output:  # 0600, never through a link
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and package)
                [sys.executable, "-m", "kore_connect", *arguments],
                env={**os.environ, **self._environment},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us; we stop it in order
                preexec_fn=_end_with_parent,  # Popen runs in the event loop's thread: the one that must live
            )
        self._read_from = self.log.stat().st_size
        return process

    async def ready(self, line: re.Pattern[str]) -> re.Match[str]:
        """Wait until the part logs a line matching `line` (it is then ready); the match."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        while loop.time() < deadline:
            with self.log.open("rb") as output:
                output.seek(self._read_from)
                found = line.search(output.read().decode("utf-8", "replace"))
            if found is not None:
                return found
            if self.process.poll() is not None:
                raise PartStartError(self, self._said_error() or "it stopped while starting")
            await asyncio.sleep(0.05)
        raise PartStartError(self, f"it did not start within {START_SECONDS:.0f} s")

    def _said_error(self) -> str | None:
        """The last `error: ...` line the part wrote since it was started (our commands' one-line
        errors), without the prefix."""
        with self.log.open("rb") as output:
            output.seek(self._read_from)
            lines = output.read().decode("utf-8", "replace").splitlines()
        said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        return said[-1] if said else None

    async def stop(self) -> None:
        """Ctrl-C, as a user would; killed if it has not ended 15 s later."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.process.wait), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait)


def _end_with_parent() -> None:
    """In the child, before it runs: a SIGTERM when the process that started it dies, however it
    dies (a closed terminal, kill -9), so that no part outlives the twin (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1 (for a part that must be told its port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
