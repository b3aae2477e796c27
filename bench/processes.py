"""The benchmarks' server processes: started on a loopback port with their output in a log file,
watched for readiness, measured for CPU time (with their children), stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from kore_connect.twin.local.parts import free_port  # noqa: F401 (re-exported for the benches)


class Server:
    """A server process on a loopback port, its output in a log file; `stop` sends Ctrl-C, then kills."""

    def __init__(self, name: str, command: list[str], port: int, workdir: Path, env: dict[str, str]) -> None:
        self.name, self.port = name, port
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(
            f"{self.name} does not listen on {self.port} after {timeout:.0f} s:\n{self.tail()}"
        )

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the server process and of its live children (the function containers)."""
        children = [pid for pid, parent in processes() if parent == self.process.pid]
        return {"server": cpu_seconds(self.process.pid), "functions": sum(map(cpu_seconds, children))}

    def children(self) -> int:
        return sum(1 for _, parent in processes() if parent == self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process we can see."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # it ended meanwhile
            found.append((int(entry.name), int(fields[1])))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a live process (0 when it has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of_tree(pid: int) -> float:
    """CPU seconds of a live process and of all its live descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in processes():
        children.setdefault(parent, []).append(child)
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu_seconds(current)
        stack.extend(children.get(current, []))
    return total
