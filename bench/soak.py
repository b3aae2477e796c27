"""A soak: many calls through the whole local twin at a steady rate, with each part's memory measured
after the warm-up and at the end, and every call checked for loss and mix-up.

The twin runs as `kore-connect up` runs it (the metadata API and the Kore gateway in processes of
their own, Connect's side here). Memory is the resident set (VmRSS) of each part with its workers.

    .venv/bin/python bench/soak.py [--calls 10000] [--rate 80] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from kore_connect.cli.call import call_problems, load_summary
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.twin import LocalTwin
from processes import processes

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=80.0, help="calls started per second")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores: {args.calls} calls at {args.rate}/s")
    asyncio.run(soak(args))


async def soak(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kc-soak-") as home:
        async with LocalTwin(Path(home), token=secrets.token_urlsafe(32)) as twin:
            await paced(twin, args.warmup, args.rate, args.concurrency)
            start = memory()
            reports, seconds = await paced(twin, args.calls, args.rate, args.concurrency)
            end = memory()
    summary = load_summary(reports, seconds)
    print(f"{summary['calls']} calls in {seconds:.0f} s: {summary['callsPerSecond']} calls/s")
    print(f"setup ms {summary['setupMs']}; handoff ms {summary['handoffMs']}")
    print(f"failed calls: {summary['failedCalls']} {summary['problems'] or ''}")
    print("resident memory, MB (after the warm-up -> at the end), and processes:")
    for part in ("connect", "api", "gateway", "retrieve"):
        grown = (end[part] - start[part]) / MB
        processes_then, processes_now = start[f"{part} processes"], end[f"{part} processes"]
        print(
            f"  {part:9} {start[part] / MB:7.1f} -> {end[part] / MB:7.1f}  ({grown:+.1f})"
            f"   processes {processes_then} -> {processes_now}"
        )
    lost = sum(1 for r in reports if call_problems(r))
    print(f"loss or mix-up: {lost or 'none'}")


async def paced(twin: LocalTwin, count: int, rate: float, concurrency: int) -> tuple[list[CallReport], float]:
    slots = asyncio.Semaphore(concurrency)
    reports: list[CallReport] = []
    started = time.monotonic()

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        async with slots:
            report = await twin.call()
        # Only what the summary needs: holding 10,000 whole reports would be the bench's memory.
        reports.append(slim(report))

    await asyncio.gather(*(one(i) for i in range(count)))
    return reports, time.monotonic() - started


def slim(report: CallReport) -> CallReport:
    """The report with only what the summary reads (the contact, how it ended, the bot's session,
    the data, the timings): holding 10,000 whole reports would be the bench's own memory."""
    kore = report.kore
    if kore is not None:
        kore = replace(kore, sip=[], nodes=[], rtp=None)
    contact = replace(report.contact, attributes={}, heard=(), actions=(), transfers=())
    return replace(report, contact=contact, kore=kore)


def memory() -> dict[str, int]:
    """Resident bytes of Connect's side (this process), the API and the gateway (with their workers),
    and the retrieve function's workers."""
    me = os.getpid()
    children: dict[int, list[int]] = {}
    for pid, parent in processes():
        children.setdefault(parent, []).append(pid)
    spent = {"connect": _rss(me), "api": 0, "gateway": 0, "retrieve": 0}
    counts = {"connect": 1, "api": 0, "gateway": 0, "retrieve": 0}
    for pid in children.get(me, []):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        part = "api" if " serve api" in command else "gateway" if " serve gateway" in command else "retrieve"
        stack = [pid]
        while stack:
            current = stack.pop()
            spent[part] += _rss(current)
            counts[part] += 1
            stack.extend(children.get(current, []))
    return {**spent, **{f"{part} processes": n for part, n in counts.items()}}


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
