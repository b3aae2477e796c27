"""The soak, shortened for CI (bench/soak.py runs the 10,000 calls): 1,500 calls at a steady rate
through the whole twin, no loss and no mix-up, and no part's memory growing past a stated bound."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from kore_connect.cli.call import call_problems
from kore_connect.twin.local.twin import LocalTwin
from tests.peers import descendants

pytestmark = pytest.mark.slow

TOKEN = "soak-token-0123456789-abcdefgh"  # known to the secret sweep (tests/secret_sweep.py)

MB = 1024 * 1024
# Bounds for 1,500 calls after a warm-up (bench/soak.py measured +2 MB for the API and +10 MB for
# the gateway over 10,000 calls; Connect's side keeps a little of every call's report here).
GROWTH_BOUND_MB = {"connect": 40, "api": 25, "gateway": 25}


def resident(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    total = 0
    for current in (pid, *descendants(pid)):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue  # it ended meanwhile
        total += next(
            (int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total


def memory(twin: LocalTwin) -> dict[str, int]:
    parts = {part.name: part.process.pid for part in twin._parts}
    own = int(Path(f"/proc/{os.getpid()}/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
    return {
        "connect": own,
        "api": resident(parts["metadata API"]),
        "gateway": resident(parts["Kore gateway"]),
    }


def test_a_short_soak_loses_nothing_and_memory_stays_bounded(tmp_path: Path) -> None:
    async def soak() -> tuple[list[list[str]], dict[str, int], dict[str, int]]:
        async with LocalTwin(tmp_path, token=TOKEN) as twin:

            async def paced(count: int, rate: float) -> list[list[str]]:
                slots, started, found = asyncio.Semaphore(50), time.monotonic(), []

                async def one(index: int) -> None:
                    await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
                    async with slots:
                        report = await twin.call()
                    found.append(call_problems(report))

                await asyncio.gather(*(one(i) for i in range(count)))
                return found

            await paced(200, 100)
            before = memory(twin)
            problems = await paced(1500, 80)
            return problems, before, memory(twin)

    problems, before, after = asyncio.run(soak())
    assert len(problems) == 1500 and [p for p in problems if p] == []
    growth = {part: (after[part] - before[part]) / MB for part in before}
    assert all(growth[part] <= bound for part, bound in GROWTH_BOUND_MB.items()), growth
