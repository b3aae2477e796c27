"""PROTOS c07-sip and RFC 4475 against the local Kore gateway as users run it, with real calls
between: robustness figures for docs/reliability.md.

What it does, in one local twin (`kore-connect serve gateway` and `serve api` in their own
processes, Connect's side here):
- every PROTOS c07-sip case (or every Nth, `--every N`) to the twin's DID, followed by its CANCEL as
  PROTOS does: over UDP from one socket, then over TCP with a connection per case;
- a valid Connect call through the whole path (INVITE with X-Amzn-ConnectContactId, 200, ACK, the
  bot's POST of the metadata, its BYE, the metadata read back) every `--calls-every` cases;
- then every RFC 4475 torture message, byte for byte, over UDP; then one more valid call.
It passes when every valid call works, the gateway's log holds no traceback and stays small (its
lines are rate-limited), and the gateway's memory, once the calls PROTOS left have ended
(`--settle`), is within `--memory-mb` of its start.
Exit code 0 when it passes, 1 when not; `--json` prints the figures as one document.

    .venv/bin/python bench/sip_conformance.py [--every 1] [--transports udp,tcp] [--calls-every 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kore_connect.cli.call import call_problems as problems_of
from kore_connect.twin.kore.interactions import InteractionStore
from kore_connect.twin.local.twin import LocalTwin
from sip_corpus import PROTOS, RFC4475, ProtosCase, protos_cases, rfc4475_messages

GATEWAY = "Kore gateway"


def call_problems(report: dict[str, Any]) -> list[str]:
    """What went wrong with a valid call, each with where the call ended."""
    return [f"{problem} (ended {report.get('ended')!r})" for problem in problems_of(report)]


TCP_CONCURRENCY = 16
MAX_DATAGRAM = 65_507  # the largest UDP payload over IPv4
ANSWER_WAIT_SECONDS = 0.2  # over TCP, how long a case waits for a first answer before it closes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="run every Nth PROTOS case (1: all)")
    parser.add_argument("--transports", default="udp,tcp")
    parser.add_argument("--calls-every", type=int, default=100)
    parser.add_argument(
        "--passes", type=int, default=2, help="run everything this often (memory: the last pass's growth)"
    )
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=16.0,
        help="the growth allowed in the gateway's RSS over the last pass (from the start with --passes 1)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=70.0,
        help="seconds to wait before the memory is read at the end "
        "(PROTOS's calls never ACK nor answer the BYE: they end 64*T1 later)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="run the twin in this folder and keep it (its logs)")
    args = parser.parse_args()
    if not PROTOS.is_file() or not RFC4475.is_dir():
        sys.exit(f"the SIP corpora are not in {PROTOS.parent} (KORE_SHARED_DIR): nothing to run")
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    sys.exit(0 if figures["passed"] else 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = protos_cases()[:: args.every]
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="kc-sip-conformance-") as folder:
        home = args.keep or Path(folder)
        async with LocalTwin(home, token=secrets.token_urlsafe(32)) as twin:
            calls: list[list[str]] = [call_problems(await twin.call())]  # warm, and the first valid call
            pid = twin.pid(GATEWAY)
            memory = [rss_kb(pid)]  # at the start, then after each pass once its calls have ended
            started = time.monotonic()
            runs: dict[str, Any] = {}
            for n in range(args.passes):
                for transport in transports:
                    runs[transport] = await protos_run(
                        twin, cases, transport, args.calls_every, calls, f"{n}"
                    )
                torture = await rfc4475_run(twin)
                calls.append(call_problems(await twin.call()))
                await asyncio.sleep(max(args.settle, 1.0))  # the calls PROTOS left have ended
                memory.append(rss_kb(pid))
            seconds = time.monotonic() - started
            alive = os.path.exists(f"/proc/{pid}")
        log = (home / "gateway.log").read_text(errors="replace")
        interactions = InteractionStore(home / "interactions.db")
        try:
            set_up = [i for i in interactions.all() if i.call_id.startswith("protos-")]
            ended = Counter(i.ended for i in set_up)
        finally:
            interactions.close()
    lines = log.splitlines()
    failed_calls = [problems for problems in calls if problems]
    tracebacks = log.count("Traceback (most recent call last)")
    sent = sum(r["messages"] for r in runs.values()) + torture["messages"]
    figures: dict[str, Any] = {
        "protosCases": len(cases),
        "seconds": round(seconds, 1),
        "runs": runs,
        "rfc4475": torture,
        "validCalls": len(calls),
        "validCallsFailed": len(failed_calls),
        "validCallProblems": sorted({p for problems in failed_calls for p in problems}),
        "protosCallsSetUp": sum(ended.values()),
        "protosCallsEnded": dict(ended.most_common()),
        "protosCasesSetUp": sorted({_case_number(i.call_id) for i in set_up} - {None}),
        "gatewayAlive": alive,
        "logLines": len(lines),
        "logLinesPerMessage": round(len(lines) / max(sent, 1), 4),
        "tracebacks": tracebacks,
        "passes": args.passes,
        "memoryStartMb": round(memory[0] / 1024, 1),
        "memoryAfterEachPassMb": [round(kb / 1024, 1) for kb in memory[1:]],
        "memoryEndMb": round(memory[-1] / 1024, 1),
        # the last pass's growth: after a first pass, the gateway holds the high-water of the calls
        # PROTOS kept up at once (each a V8 isolate); what a further pass adds is what would grow
        "memoryGrowthMb": round((memory[-1] - memory[-2]) / 1024, 1),
    }
    figures["passed"] = (
        alive
        and not failed_calls
        and tracebacks == 0
        and figures["memoryGrowthMb"] <= args.memory_mb
        and len(lines) <= max(200, sent // 10)  # one line per refusal, a few a second: far fewer than sent
    )
    return figures


async def protos_run(
    twin: LocalTwin,
    cases: list[ProtosCase],
    transport: str,
    calls_every: int,
    calls: list[list[str]],
    run: str = "",
) -> dict[str, Any]:
    """Every case, then its CANCEL; a valid call every `calls_every` cases. What came back, counted."""
    gateway = twin.sip_address
    to = f"{twin.did}@{gateway[0]}:{gateway[1]}"
    answers: Counter[str] = Counter()
    started = time.monotonic()
    if transport == "udp":
        await _protos_udp(twin, cases, to, answers, calls_every, calls, f"udp{run}p")
    else:
        await _protos_tcp(twin, cases, to, answers, calls_every, calls, f"tcp{run}p")
    return {
        "messages": 2 * len(cases),
        "seconds": round(time.monotonic() - started, 1),
        "answers": dict(sorted(answers.items())),
    }


async def _protos_udp(
    twin: LocalTwin,
    cases: list[ProtosCase],
    to: str,
    answers: Counter[str],
    calls_every: int,
    calls: list[list[str]],
    tag: str,
) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        local = peer.getsockname()
        reading = asyncio.ensure_future(_drain_udp(peer, answers))
        try:
            for n, case in enumerate(cases, start=1):
                invite, cancel = case.filled(to=to, local=local, tag=tag)
                if len(invite) > MAX_DATAGRAM:  # no UDP peer can send it; TCP carries it
                    answers["not sent: larger than a datagram"] += 1
                    continue
                await loop.sock_sendto(peer, invite, twin.sip_address)
                await loop.sock_sendto(peer, cancel, twin.sip_address)
                await asyncio.sleep(0.001)  # a caller's pace, not a flood: the log is what we watch
                if n % calls_every == 0:
                    calls.append(call_problems(await twin.call()))
            await asyncio.sleep(0.5)
        finally:
            await _stop(reading)


async def _drain_udp(peer: socket.socket, answers: Counter[str]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(peer, 65_535)
        answers[_first_word(data)] += 1


async def _protos_tcp(
    twin: LocalTwin,
    cases: list[ProtosCase],
    to: str,
    answers: Counter[str],
    calls_every: int,
    calls: list[list[str]],
    tag: str,
) -> None:
    limit = asyncio.Semaphore(TCP_CONCURRENCY)

    async def one(case: ProtosCase) -> None:
        async with limit:
            try:
                reader, writer = await asyncio.open_connection(*twin.sip_address)
            except OSError:
                answers["connection refused"] += 1
                return
            try:
                local = writer.get_extra_info("sockname")[:2]
                invite, cancel = case.filled(to=to, local=local, transport="TCP", tag=tag)
                writer.write(invite + cancel)
                try:
                    data = await asyncio.wait_for(reader.read(65_535), ANSWER_WAIT_SECONDS)
                    answers[_first_word(data) if data else "closed"] += 1
                except TimeoutError:
                    answers["nothing"] += 1
            except OSError:
                answers["connection reset"] += 1
            finally:
                writer.close()

    for start in range(0, len(cases), calls_every):
        await asyncio.gather(*(one(case) for case in cases[start : start + calls_every]))
        if start + calls_every <= len(cases):
            calls.append(call_problems(await twin.call()))


async def rfc4475_run(twin: LocalTwin) -> dict[str, Any]:
    """Each torture message as the RFC prints it; its Vias point at example hosts, so most answers
    have nowhere to go: what matters is that the gateway goes on."""
    loop = asyncio.get_running_loop()
    answers: Counter[str] = Counter()
    messages = list(rfc4475_messages())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        reading = asyncio.ensure_future(_drain_udp(peer, answers))
        try:
            for _, data in messages:
                await loop.sock_sendto(peer, data, twin.sip_address)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.3)
        finally:
            await _stop(reading)
    return {"messages": len(messages), "answers": dict(sorted(answers.items()))}


def _case_number(call_id: str) -> int | None:
    """protos-udp0p42@127.0.0.1 -> 42 (None for a Call-ID the case itself wrote)."""
    found = re.fullmatch(r"protos-(?:udp|tcp)[0-9]+p([0-9]+)", call_id.split("@", 1)[0])
    return int(found.group(1)) if found else None


async def _stop(task: asyncio.Future[None]) -> None:
    """Cancel a reader and wait for it, before its socket closes (its fd may be reused at once)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _first_word(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    return line[:11] if line.startswith("SIP/2.0 ") else line.split(" ", 1)[0][:16]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def report(figures: dict[str, Any]) -> None:
    print(f"PROTOS c07-sip: {figures['protosCases']} cases per transport; {figures['seconds']} s in all")
    for transport, run in figures["runs"].items():
        print(f"  {transport}: {run['messages']} messages in {run['seconds']} s; answers {run['answers']}")
    print(f"RFC 4475: {figures['rfc4475']['messages']} messages; answers {figures['rfc4475']['answers']}")
    failed = f"{figures['validCallsFailed']} {figures['validCallProblems']}"
    print(f"valid calls: {figures['validCalls']}, failed {failed}")
    print(f"calls set up from PROTOS cases: {figures['protosCallsSetUp']} {figures['protosCallsEnded']}")
    print(
        f"gateway: alive {figures['gatewayAlive']}; log {figures['logLines']} lines "
        f"({figures['logLinesPerMessage']} a message), {figures['tracebacks']} tracebacks; "
        f"memory {figures['memoryStartMb']} MB at the start, "
        f"after each pass {figures['memoryAfterEachPassMb']} MB"
    )
    print("PASSED" if figures["passed"] else "FAILED")


if __name__ == "__main__":
    main()
