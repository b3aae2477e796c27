"""Authenticated stores per second through the served API, against a bare route on the same server stack.

Measures, in one run and interleaved per concurrency level (ours, baseline, ours, baseline...):
- ours: `kore-connect serve api` as a user runs it (uvicorn, the local API Gateway, the TOKEN
  authorizer and the store function in their worker processes, the SQLite store), every request a
  `POST /prod/kore-metadata?contactId=<fresh UUID>` with the token, as the Kore Service node sends;
- baseline: the same requests to a bare Starlette route that reads the body and answers 200, served
  by uvicorn in its own process with the same settings (one worker, access log off, loopback).
Throughput, p50/p99 latency and CPU time per request are medians over the rounds. The load
generator (httpx) runs on the same machine, so it takes CPU from the servers.
Goals (issue 4): at 50 concurrent clients, at least half the baseline's throughput, p99 under 20 ms.

    .venv/bin/python bench/api_throughput.py [--requests 2000] [--rounds 2] [--containers 2]
        [--max-containers 4]
        [--concurrency 1,10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from processes import Server, free_port

STAGE_PATH = "/prod/kore-metadata"
GOAL_RATIO, GOAL_P99_MS, GOAL_CONCURRENCY = 0.5, 20.0, 50


@dataclass
class Run:
    """One measured batch of requests against one server at one concurrency."""

    seconds: float
    latencies: list[float]  # seconds, of the requests that succeeded
    failures: list[str]
    cpu: dict[str, float]  # CPU seconds spent during the batch: "client", "server", "functions"

    @property
    def per_second(self) -> float:
        return (len(self.latencies) + len(self.failures)) / self.seconds

    def ms(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")  # (nearly) all failed: the failures say why
        return statistics.quantiles(self.latencies, n=100)[percent - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per batch")
    parser.add_argument("--rounds", type=int, default=2, help="batches per server and concurrency")
    parser.add_argument("--containers", type=int, default=2, help="warm containers per function at start")
    parser.add_argument("--max-containers", type=int, default=4, help="containers per function when busy")
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated client counts")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    levels = [int(level) for level in args.concurrency.split(",")]

    token = secrets.token_urlsafe(32)
    workdir = Path(tempfile.mkdtemp(prefix="kore-bench-"))
    env = {**os.environ, "KORE_CONNECT_API_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    results: dict[int, dict[str, list[Run]]] = {}
    containers: dict[int, int] = {}
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, shared by the servers and the load "
        f"generator (httpx, one connection per client); {args.requests} requests per batch after "
        f"a warm-up, {args.rounds} rounds interleaved; {args.containers} warm containers per function "
        f"at start\n\nBatches, as they ran:",
        flush=True,
    )
    servers: dict[str, Server] = {}
    try:
        port = free_port()
        command = [str(Path(sys.executable).with_name("kore-connect")), "serve", "api", "--port", str(port)]
        command += ["--db", str(workdir / "sessions.db"), "--token-file", str(workdir / "token")]
        servers["ours"] = Server(
            "ours",
            [*command, "--containers", str(args.containers), "--max-containers", str(args.max_containers)],
            port,
            workdir,
            env,
        )
        port = free_port()
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port)]
        servers["baseline"] = Server("baseline", command, port, workdir, env)
        for server in servers.values():
            server.wait_ready()
        for level in levels:
            results[level] = {name: [] for name in servers}
            warmup = max(args.requests // 10, 5 * level)
            for round_number in range(1, args.rounds + 1):
                for name, server in servers.items():
                    url = f"http://127.0.0.1:{server.port}{STAGE_PATH}"
                    run = asyncio.run(load(url, token, level, args.requests, warmup, server))
                    results[level][name].append(run)
                    print(
                        f"  {level:>3} clients, {name:<8} round {round_number}: {run.per_second:7.0f} req/s"
                        f"  p50 {run.ms(50):6.2f} ms  p99 {run.ms(99):6.2f} ms  failures {len(run.failures)}",
                        flush=True,
                    )
            containers[level] = servers["ours"].children()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    failures = report(results, containers, args)
    if failures:
        sys.exit(1)


async def load(url: str, token: str, clients: int, requests: int, warmup: int, server: Server) -> Run:
    """A warm-up, then `requests` measured ones, from `clients` concurrent clients.

    The warm-up is batches of `warmup` requests for at least a second, until one starts no new
    process: the served API starts function containers as concurrency grows (cold starts), and
    their imports must not land in the measured batch.

    Each client has its own connection: one httpx pool shared by 50 tasks costs the load generator
    three times the CPU per request (measured), which would make it the bottleneck."""
    import httpx

    async def one(client: httpx.AsyncClient, latencies: list[float], failures: list[str]) -> None:
        # What the Kore bot's Service node sends: its metadata, and the bot's session ID.
        body = json.dumps({"x_metadata": "Hello from Kore", "kore-instanceSessionId": secrets.token_hex(12)})
        started = time.perf_counter()
        try:
            response = await client.post(
                url,
                params={"contactId": str(uuid.uuid4())},
                headers={"authorizationToken": token, "Content-Type": "application/json"},
                content=body,
            )
        except httpx.HTTPError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        if 200 <= response.status_code < 300:
            latencies.append(time.perf_counter() - started)
        else:
            failures.append(f"{response.status_code} {response.text[:200]}")

    async def batch(pool: list[httpx.AsyncClient], count: int) -> tuple[list[float], list[str]]:
        latencies: list[float] = []
        failures: list[str] = []
        remaining = iter(range(count))

        async def worker(client: httpx.AsyncClient) -> None:
            for _ in remaining:  # shared: each request is taken by exactly one worker
                await one(client, latencies, failures)

        await asyncio.gather(*(worker(client) for client in pool))
        return latencies, failures

    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=30.0)
            )
            for _ in range(clients)
        ]
        warm_failures: list[str] = []
        warm_until = time.monotonic() + 1.0
        for _ in range(30):
            processes = server.children()
            warm_failures += (await batch(pool, warmup))[1]
            if server.children() == processes and time.monotonic() >= warm_until:
                break
        before, client_before = server.cpu(), time.process_time()
        started = time.perf_counter()
        latencies, failures = await batch(pool, requests)
        seconds = time.perf_counter() - started
        after = server.cpu()
    cpu = {name: after[name] - before[name] for name in after}
    cpu["client"] = time.process_time() - client_before
    return Run(seconds, latencies, warm_failures + failures, cpu)


def report(
    results: dict[int, dict[str, list[Run]]], containers: dict[int, int], args: argparse.Namespace
) -> int:
    def median(runs: list[Run], figure: str) -> float:
        values = {
            "rps": [r.per_second for r in runs],
            "p50": [r.ms(50) for r in runs],
            "p99": [r.ms(99) for r in runs],
        }
        return statistics.median(values[figure])

    def cpu_ms(runs: list[Run], part: str) -> float:
        return statistics.median(r.cpu[part] / (len(r.latencies) + len(r.failures)) * 1000 for r in runs)

    print("\nAuthenticated stores (POST /prod/kore-metadata) against a bare Starlette route:")
    print(
        f"  {'clients':>7}{'ours/s':>9}{'base/s':>9}{'ratio':>7}"
        f"{'ours p50':>10}{'ours p99':>10}{'base p50':>10}{'base p99':>10}{'containers':>12}"
    )
    for level, runs in results.items():
        ours, base = runs["ours"], runs["baseline"]
        ratio = median(ours, "rps") / median(base, "rps")
        print(
            f"  {level:>7}{median(ours, 'rps'):>9.0f}{median(base, 'rps'):>9.0f}{ratio:>7.2f}"
            f"{median(ours, 'p50'):>10.2f}{median(ours, 'p99'):>10.2f}"
            f"{median(base, 'p50'):>10.2f}{median(base, 'p99'):>10.2f}{containers[level]:>12}"
        )
    print("  (latencies in ms; containers: the served API's function worker processes after the level)")

    print("\nCPU time per request, ms (median over rounds):")
    print(f"  {'clients':>7}{'':>3}{'load gen':>10}{'server':>10}{'functions':>11}{'total':>9}")
    for level, runs in results.items():
        for name, label in (("ours", "ours"), ("baseline", "base")):
            parts = [cpu_ms(runs[name], part) for part in ("client", "server", "functions")]
            print(f"  {level:>7} {label:<5}" + "".join(f"{v:>10.2f}" for v in parts) + f"{sum(parts):>9.2f}")

    if GOAL_CONCURRENCY in results:
        ours, base = results[GOAL_CONCURRENCY]["ours"], results[GOAL_CONCURRENCY]["baseline"]
        ratio = median(ours, "rps") / median(base, "rps")
        p99 = median(ours, "p99")
        print(f"\nGoals at {GOAL_CONCURRENCY} concurrent clients:")
        verdict = "PASS" if ratio >= GOAL_RATIO else "MISS"
        print(f"  ours / baseline throughput: {ratio:.2f} (goal >= {GOAL_RATIO}): {verdict}")
        verdict = "PASS" if p99 < GOAL_P99_MS else "MISS"
        print(f"  our p99: {p99:.1f} ms (goal < {GOAL_P99_MS:.0f} ms): {verdict}")

    failed = [
        (level, name, f)
        for level, runs in results.items()
        for name in runs
        for r in runs[name]
        for f in r.failures
    ]
    if failed:
        print(f"\n{len(failed)} requests failed (warm-ups included), for example:")
        for level, name, failure in failed[:5]:
            print(f"  {level} clients, {name}: {failure}")
    return len(failed)


def serve_baseline(port: int) -> None:
    """The baseline: a bare Starlette route that reads the body and answers 200, served as ours is."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"message": "ok"})

    app = Starlette(routes=[Route(STAGE_PATH, ok, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_config=None, lifespan="on")
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has stopped
        server.run()


if __name__ == "__main__":
    main()
