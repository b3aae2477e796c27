"""baresip (Debian's `baresip`), a real softphone, driven headless: its `aufile` module sends a
WAV file as RTP, `aubridge` plays what comes back into nothing, and its `ctrl_tcp` module takes our
commands (`dial`, `hangup`) and reports the call's events, as JSON netstrings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kore_connect.twin.local.parts import free_port
from tests.peers import peer

MODULES = Path("/usr/lib/baresip/modules")


def tone(path: Path, seconds: float = 10.0) -> Path:
    """A 440 Hz tone, 8 kHz mono 16 bit: what the caller 'says'."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@dataclass
class Softphone:
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    log: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    def command(self, name: str, params: str = "") -> None:
        data = json.dumps({"command": name, "params": params, "token": name}).encode()
        self.writer.write(str(len(data)).encode() + b":" + data + b",")

    async def event(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next event of `kind` (CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED...)."""
        async with asyncio.timeout(timeout):
            while True:
                length = await self.reader.readuntil(b":")
                data = await self.reader.readexactly(int(length[:-1]) + 1)
                message: dict[str, Any] = json.loads(data[:-1])
                if message.get("event"):
                    self.events.append(message)
                    if message.get("type") == kind:
                        return message


START_ATTEMPTS = 5  # a free port picked here may be taken before baresip binds it (another test)


@contextlib.asynccontextmanager
async def softphone(folder: Path) -> AsyncIterator[Softphone]:
    """baresip on loopback, with a config of its own in `folder`; stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "baresip.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        process, control = await _start(folder, log)
        try:
            reader, writer = await _controlled(process, control, log)
            break
        except BaseException as failure:
            await _stop(process)
            if not isinstance(failure, _PortTaken) or attempt == START_ATTEMPTS:
                raise
    try:
        phone = Softphone(process, reader, writer, log)
        try:
            yield phone
        finally:
            writer.close()
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


class _PortTaken(RuntimeError):
    """baresip could not bind a port picked for it: another program took it meanwhile."""


async def _start(folder: Path, log: Path) -> tuple[asyncio.subprocess.Process, int]:
    control = free_port()
    (folder / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{free_port()}",
                f"audio_source aufile,{tone(folder / 'caller.wav')}",
                "audio_player aubridge,nowhere",
                "audio_alert aubridge,nowhere",
                f"module_path {MODULES}",
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{control}",
                "",
            ]
        )
    )
    (folder / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0\n")
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            peer("baresip"), "-f", str(folder), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    return process, control


async def _controlled(
    process: asyncio.subprocess.Process, control: int, log: Path
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The connection to baresip's ctrl_tcp, once it listens; _PortTaken if it could not bind."""
    async with asyncio.timeout(15):
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", control)
            except OSError:
                if process.returncode is not None:
                    said = log.read_text(errors="replace")
                    if "Address already in use" in said:
                        raise _PortTaken(said) from None
                    raise RuntimeError(f"baresip ended at start: {said}") from None
                await asyncio.sleep(0.05)
