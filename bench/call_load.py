"""End-to-end calls per second through the whole local twin, and the handoff latency, against the
data path alone in the same process.

- ours: `kore-connect call --count N --concurrency C` as a user runs it, in-process here: each call
  goes through Connect's default flow, the SIP transfer to the Kore gateway, the bot (V8 scripts,
  the Service node's POST through the local API Gateway, authorizer and store functions), the BYE,
  the retrieve function, the contact attributes; every call checked for loss and mix-up.
- baseline: the data path alone, at the same concurrency on the same twin: the Service node's POST
  (the API, its authorizer and store function) then the retrieve function, with no flow, SIP or bot.
Goals (issue 7): at least 100 calls/s end to end with no loss; p99 handoff (gateway BYE -> contact
attributes set) under 50 ms. `--profile` prints where the main process spends its time.

    .venv/bin/python bench/call_load.py [--calls 1000] [--concurrency 100] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from kore_connect.aws_events import contact_flow_event
from kore_connect.cli.call import load_summary
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.twin import RETRIEVE_ARN, LocalTwin
from processes import cpu_of_tree, cpu_seconds, processes

GOAL_CALLS_PER_SECOND, GOAL_P99_HANDOFF_MS = 100.0, 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="profile the main process during our run")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; ", end="")
    print(f"{args.calls} calls at concurrency {args.concurrency}")
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="kc-call-load-") as home:
        async with LocalTwin(Path(home), token=token) as twin:
            await batch(lambda: twin.call(), args.warmup, args.concurrency)  # containers started, caches warm
            profiler = cProfile.Profile() if args.profile else None
            cpu_before = _cpu()
            if profiler is not None:
                profiler.enable()
            reports, seconds = await batch(lambda: twin.call(), args.calls, args.concurrency)
            if profiler is not None:
                profiler.disable()
            cpu_ours = _cpu_since(cpu_before)
            async with httpx.AsyncClient() as http:
                cpu_before = _cpu()
                _, base_seconds = await batch(
                    lambda: data_path(twin, http, token), args.calls, args.concurrency
                )
                cpu_base = _cpu_since(cpu_before)
    summary = load_summary(reports, seconds)
    base_rate = args.calls / base_seconds
    print(f"ours:     {summary['callsPerSecond']:7.1f} calls/s", end="")
    print(f"  setup {summary['setupMs']}  handoff {summary['handoffMs']} (ms)")
    print(f"baseline: {base_rate:7.1f} data round trips/s (POST through the API, then the retrieve function)")
    print(f"ratio ours/baseline: {summary['callsPerSecond'] / base_rate:.2f}")
    for name, cpu in (("ours", cpu_ours), ("baseline", cpu_base)):
        per_call = {kind: round(value / args.calls * 1000, 2) for kind, value in cpu.items()}
        print(f"CPU ms per call, {name}: {per_call}")
    print(f"failed calls: {summary['failedCalls']} {summary['problems'] or ''}")
    p99 = (summary["handoffMs"] or {}).get("p99", float("nan"))
    print(
        f"goals: {summary['callsPerSecond']} calls/s (goal >= {GOAL_CALLS_PER_SECOND}): "
        f"{'PASS' if summary['callsPerSecond'] >= GOAL_CALLS_PER_SECOND else 'MISS'}; "
        f"p99 handoff {p99} ms (goal < {GOAL_P99_HANDOFF_MS}): "
        f"{'PASS' if p99 < GOAL_P99_HANDOFF_MS else 'MISS'}; "
        f"loss or mix-up: {'none' if not summary['failedCalls'] else 'YES'}"
    )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


async def batch(place: Any, count: int, concurrency: int) -> tuple[list[CallReport], float]:
    slots = asyncio.Semaphore(concurrency)
    results: list[CallReport] = []

    async def one() -> None:
        async with slots:
            results.append(await place())

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return results, time.monotonic() - started


async def data_path(twin: LocalTwin, http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    contact_id = str(uuid.uuid4())
    body = {"x_metadata": f"Hello from Kore for contact {contact_id}", "kore-instanceSessionId": "0" * 24}
    answer = await http.post(
        twin.api_url, params={"contactId": contact_id}, json=body, headers={"authorizationToken": token}
    )
    answer.raise_for_status()
    assert twin._lambdas is not None
    event = contact_flow_event(contact_id)
    invocation = await twin._lambdas(RETRIEVE_ARN, event)
    assert invocation.result["statusCode"] == 200, invocation
    return {}


def _cpu() -> dict[str, float]:
    """CPU seconds so far: our process (Connect's side), the API and the gateway processes (with
    their workers), and the retrieve function's workers."""
    me = os.getpid()
    spent = {"connect": cpu_seconds(me), "api": 0.0, "gateway": 0.0, "retrieve": 0.0}
    for pid, parent in processes():
        if parent != me:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        part = "api" if " serve api" in command else "gateway" if " serve gateway" in command else "retrieve"
        spent[part] += cpu_of_tree(pid)
    return spent


def _cpu_since(before: dict[str, float]) -> dict[str, float]:
    now = _cpu()
    return {kind: now[kind] - before[kind] for kind in now}


if __name__ == "__main__":
    main()
