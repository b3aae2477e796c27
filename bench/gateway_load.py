"""Calls per second the local Kore voice gateway holds with zero failed calls, against SIPp answering itself.

- ours: `kore-connect serve api` and `kore-connect serve gateway` as a user runs them (the API's
  functions in their worker processes, the SQLite store). SIPp plays Connect's connector
  (tests/sipp/connect_to_kore.xml) over UDP, each call with its own contact ID (a fresh UUID from an
  injection file); every call goes INVITE -> 100/180/200 -> ACK -> the bot (Start Flow script,
  Script node, Service node POST through the API) -> the gateway's BYE -> 200.
- baseline: the same SIPp caller against SIPp answering and hanging up at once
  (tests/sipp/answer_then_bye.xml without its pause): the bare SIP path, no bot, V8 or HTTP.

For each rate in --rates, --calls calls at that rate against each, interleaved. A step of ours
passes only when SIPp counts no failed call AND every contact's metadata is in the store exactly
as the Service node sends it AND every interaction ended in the agent transfer. Then the load run:
--load-calls calls at the highest rate that passed, stepping down by a fifth until a load run holds
with zero failures. SIPp, both servers and their workers share the machine's cores.

    .venv/bin/python bench/gateway_load.py [--rates 50,75,100,125] [--calls 500] [--load-calls 3000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from processes import Server, cpu_seconds, free_port

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "tests" / "sipp"
DID = "+12065551118"
SIPP_BUFFER_BYTES = 4 * 1024 * 1024  # as the gateway's: no side drops datagrams for a small buffer


@dataclass
class RateStep:
    """One batch of calls at one rate against one side."""

    rate: int
    calls: int
    seconds: float
    succeeded: int
    failed: int
    answer_ms: float  # SIPp's mean INVITE -> 200 time
    call_ms: float  # SIPp's mean call length: INVITE -> the BYE answered (ours: the whole bot)
    problems: list[str]  # what the store and the interactions say went wrong (ours only)
    cpu: float  # CPU seconds of the servers and their workers during the batch

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.succeeded == self.calls and not self.problems

    @property
    def achieved(self) -> float:
        return self.calls / self.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,75,100,125", help="calls per second to try, in order")
    parser.add_argument("--calls", type=int, default=500, help="calls per step")
    parser.add_argument("--load-calls", type=int, default=3000, help="calls in the final load run")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        sys.exit("SIPp is missing: ./dev setup installs Debian's sip-tester")
    rates = [int(r) for r in args.rates.split(",")]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores shared by SIPp, the servers and workers")

    with tempfile.TemporaryDirectory(prefix="kc-gateway-load-") as tmp:
        workdir = Path(tmp)
        token = secrets.token_urlsafe(32)
        env = {**os.environ, "KORE_CONNECT_API_TOKEN": token}
        api_port, sip_port = free_port(), free_port()
        kore_connect = str(Path(sys.executable).with_name("kore-connect"))
        database, interactions = workdir / "sessions.db", workdir / "interactions.db"
        (workdir / "gateway.yaml").write_text(
            json.dumps(
                {
                    "listen": {"host": "127.0.0.1", "port": sip_port, "transports": ["udp", "tcp"]},
                    "dids": [{"number": DID}],
                    "metadata": {"url": f"http://127.0.0.1:{api_port}/prod/kore-metadata"},
                    "interactions": str(interactions),
                }
            )
        )
        api = Server(
            "api",
            [kore_connect, "serve", "api", "--port", str(api_port), "--db", str(database)],
            api_port,
            workdir,
            env,
        )
        gateway = Server(
            "gateway", [kore_connect, "serve", "gateway", "--config", "gateway.yaml"], sip_port, workdir, env
        )
        baseline_port = free_port()
        baseline = _sipp_answering(sipp, baseline_port, workdir)
        try:
            api.wait_ready()
            gateway.wait_ready()
            caller = _caller_scenario(workdir)
            ours_steps: list[RateStep] = []
            base_steps: list[RateStep] = []
            for rate in rates:
                ours = _step(sipp, caller, sip_port, rate, args.calls, workdir, [api, gateway])
                ours.problems = _verify(database, interactions, workdir / "contacts.csv")
                base = _step(sipp, caller, baseline_port, rate, args.calls, workdir, [])
                ours_steps.append(ours)
                base_steps.append(base)
                _print_step(ours, base)
            held = [s.rate for s in ours_steps if s.passed]
            rate = max(held, default=rates[0])
            while True:  # the load run, stepping down by a fifth until it holds with zero failures
                print(f"\nload run: {args.load_calls} calls at {rate}/s")
                run = _step(sipp, caller, sip_port, rate, args.load_calls, workdir, [api, gateway])
                run.problems = _verify(database, interactions, workdir / "contacts.csv")
                base = _step(sipp, caller, baseline_port, rate, args.load_calls, workdir, [])
                _print_step(run, base)
                if run.passed or rate <= 5:
                    break
                rate = max(5, rate * 4 // 5)
            print(
                f"\nload run: {run.succeeded}/{run.calls} calls completed at {rate}/s, {run.failed} failed, "
                f"data problems: {_kinds(run.problems) or 'none'}"
            )
        finally:
            for server in (gateway, api):
                server.stop()
            baseline.terminate()
            baseline.wait(timeout=10)


def _caller_scenario(workdir: Path) -> Path:
    """Connect's call with the contact ID from the injection file's first field instead of -key."""
    path = workdir / "connect_to_kore_load.xml"
    path.write_text((SCENARIOS / "connect_to_kore.xml").read_text().replace("[contact]", "[field0]"))
    return path


def _sipp_answering(sipp: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    scenario = workdir / "answer_at_once.xml"
    text = (SCENARIOS / "answer_then_bye.xml").read_text()
    scenario.write_text(text.replace('<pause milliseconds="300" />', ""))
    command = [sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-nostdin"]
    command += ["-buff_size", str(SIPP_BUFFER_BYTES)]
    return subprocess.Popen(
        command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _step(
    sipp: str, caller: Path, port: int, rate: int, calls: int, workdir: Path, servers: list[Server]
) -> RateStep:
    contacts = workdir / "contacts.csv"
    contacts.write_text("SEQUENTIAL\n" + "".join(f"{uuid.uuid4()};\n" for _ in range(calls)))
    stats = workdir / "stats.csv"
    stats.unlink(missing_ok=True)
    command = [sipp, f"127.0.0.1:{port}", "-sf", str(caller), "-s", DID, "-inf", str(contacts)]
    command += ["-r", str(rate), "-m", str(calls), "-i", "127.0.0.1", "-t", "u1", "-nostdin"]
    command += ["-buff_size", str(SIPP_BUFFER_BYTES)]
    command += ["-timeout", f"{calls // rate + 60}s", "-trace_stat", "-stf", str(stats), "-fd", "1"]
    before = _cpu(servers)
    started = time.monotonic()
    subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    seconds = time.monotonic() - started
    last = _last_stats(stats)
    return RateStep(
        rate=rate,
        calls=calls,
        seconds=seconds,
        succeeded=int(last.get("SuccessfulCall(C)", 0)),
        failed=int(last.get("FailedCall(C)", 0)),
        answer_ms=_duration_ms(last.get("ResponseTime1(C)", "")),
        call_ms=_duration_ms(last.get("CallLength(C)", "")),
        problems=[],
        cpu=_cpu(servers) - before,
    )


def _last_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.read_text().splitlines(), delimiter=";"))
    return rows[-1] if rows else {}


def _duration_ms(text: str) -> float:
    """SIPp's `HH:MM:SS:mmmmmm` as milliseconds."""
    parts = text.split(":")
    if len(parts) != 4:
        return float("nan")
    hours, minutes, seconds, micros = map(int, parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + micros / 1000


def _cpu(servers: list[Server]) -> float:
    return sum(cpu_seconds(s.process.pid) + s.cpu()["functions"] for s in servers)


def _verify(database: Path, interactions: Path, contacts: Path) -> list[str]:
    """Every contact of the step has the metadata the Service node sent; its call ended in the transfer."""
    expected = [line.rstrip(";") for line in contacts.read_text().splitlines()[1:]]
    problems: list[str] = []
    time.sleep(0.5)  # the last calls' interactions are saved as their BYE is answered
    with sqlite3.connect(database) as store:
        stored = dict(store.execute("SELECT contact_id, metadata FROM sessions").fetchall())
    with sqlite3.connect(interactions) as log:
        ended = dict(log.execute("SELECT contact_id, ended FROM interactions").fetchall())
    for contact_id in expected:
        metadata = stored.get(contact_id)
        if metadata is None:
            problems.append(f"{contact_id}: nothing stored")
        elif json.loads(metadata).get("x_metadata") != f"Hello from Kore for contact {contact_id}":
            problems.append(f"{contact_id}: another contact's metadata")
        if ended.get(contact_id) != "agent transfer (SIP BYE, answered 200)":
            problems.append(f"{contact_id}: call ended {ended.get(contact_id)!r}")
    return problems


def _kinds(problems: list[str]) -> str:
    """How many problems of each kind: "3 x nothing stored, 1 x call ended 'the caller hung up'"."""
    counts: dict[str, int] = {}
    for problem in problems:
        kind = problem.split(": ", 1)[1]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} x {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _print_step(ours: RateStep, base: RateStep) -> None:
    verdict = "held" if ours.passed else "FAILED"
    print(
        f"{ours.rate:>4}/s x {ours.calls}: ours {ours.succeeded} ok, {ours.failed} failed, "
        f"data problems: {_kinds(ours.problems) or 'none'}, {ours.achieved:.1f} calls/s, "
        f"answer {ours.answer_ms:.0f} ms, "
        f"call {ours.call_ms:.0f} ms, {ours.cpu / ours.calls * 1000:.1f} ms CPU/call [{verdict}] | "
        f"baseline {base.succeeded} ok, {base.failed} failed, {base.achieved:.1f} calls/s, "
        f"answer {base.answer_ms:.0f} ms, call {base.call_ms:.0f} ms | "
        f"ours/baseline throughput {ours.achieved / base.achieved:.2f}"
    )


if __name__ == "__main__":
    main()
