"""How much the retrieve function costs on top of its storage round trip, warm and cold, against dynalite.

Measures, in one run and interleaved so that drift hits all alike:
- warm: per invocation of our `retrieve.lambda_handler`, of the bare `GetItem` it makes (the
  storage round trip), and of a baseline handler written as the reference does
  (`baseline_retrieve.py`); our overhead is ours minus the bare round trip;
- cold: a fresh Python process importing the handler module and serving its first invocation,
  ours against the baseline's.
Goals (issue 2): warm overhead under 0.5 ms; cold start no slower than the baseline.

    .venv/bin/python bench/retrieve_latency.py [--invocations 3000] [--cold-runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import peers  # noqa: E402
from tests.conftest import CONTACT_ID, load_event  # noqa: E402
from tests.peers import Dynalite  # noqa: E402

TABLE = "koreCcSessions"
# All strings: the only metadata the baseline can return.
METADATA = json.dumps({"x_metadata": "Hello from Kore", "kore-instanceSessionId": "6744a1f2c0ffee0011223344"})
EVENT = load_event("connect-retrieve-event.json")  # the project's own, as Connect sends it

# Run in a fresh interpreter: the handler module's import, then its first invocation.
COLD_START = """
import json, sys, time
from kore_connect.twin.lambda_runtime.context import LocalLambdaContext
event = json.loads(sys.argv[1])
context = LocalLambdaContext(function_name="koreRetrieveSessionMetadata")
started = time.perf_counter()
import {module} as handler_module
imported = time.perf_counter()
handler_module.lambda_handler(event, context)
done = time.perf_counter()
sys.stderr.write(f"{{imported - started}} {{done - imported}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=3000)
    parser.add_argument("--cold-runs", type=int, default=15)
    args = parser.parse_args()

    peers.running_markers.add("dynalite")  # the peer guard is for tests; a bench may start it
    server = Dynalite().start()
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "koreRetrieveSessionMetadata",
        "TABLE_NAME": TABLE,
        "PYTHONPATH": f"{REPO / 'bench'}:{REPO / 'src'}",
    }
    os.environ.update(env)
    try:
        seed()
        warm = measure_warm(args.invocations)
        cold = measure_cold(args.cold_runs, env)
    finally:
        server.stop()
    report(warm, cold, args)


def seed() -> None:
    from kore_connect.sessions.dynamodb import DynamoDBSessionStore, dynamodb_client, ensure_table

    client = dynamodb_client()
    ensure_table(client, TABLE)
    DynamoDBSessionStore(TABLE, client=client).put(CONTACT_ID, METADATA, ttl_seconds=3600)


def measure_warm(invocations: int) -> dict[str, list[float]]:
    # The functions print their logs and metrics to stdout, as in Lambda; send them nowhere.
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        import baseline_retrieve
        from kore_connect.bridge import container, retrieve
        from kore_connect.twin.lambda_runtime.context import LocalLambdaContext

        context = LocalLambdaContext(function_name="koreRetrieveSessionMetadata")
        store = container.session_store()
        client = store._client  # type: ignore[attr-defined]  # the very client our handler uses

        def ours() -> None:
            assert retrieve.lambda_handler(EVENT, context)["statusCode"] == 200

        def bare_round_trip() -> None:
            client.get_item(
                TableName=TABLE,
                Key={"contactId": {"S": CONTACT_ID}},
                ConsistentRead=True,
                ProjectionExpression="contactId, metadata, storedAt, expiresAt",
            )

        def baseline() -> None:
            assert baseline_retrieve.lambda_handler(EVENT, context)["statusCode"] == 200

        samples: dict[str, list[float]] = {"ours": [], "bare GetItem": [], "baseline": []}
        runs = {"ours": ours, "bare GetItem": bare_round_trip, "baseline": baseline}
        for run in runs.values():  # warm up connections and caches
            for _ in range(50):
                run()
        block = 50
        for _ in range(max(1, invocations // block)):
            for name, run in runs.items():
                for _ in range(block):
                    started = time.perf_counter()
                    run()
                    samples[name].append(time.perf_counter() - started)
        return samples
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout


def measure_cold(runs: int, env: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """(import seconds, first invocation seconds) per run, ours and the baseline's in turn."""
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
    modules = {"ours": "kore_connect.bridge.retrieve", "baseline": "baseline_retrieve"}
    for _ in range(runs):
        for name, module in modules.items():
            done = subprocess.run(
                [sys.executable, "-c", COLD_START.format(module=module), json.dumps(EVENT)],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            )
            imported, invoked = done.stderr.strip().splitlines()[-1].split()
            samples[name].append((float(imported), float(invoked)))
    return samples


def report(
    warm: dict[str, list[float]], cold: dict[str, list[tuple[float, float]]], args: argparse.Namespace
) -> None:
    def ms(values: list[float], q: float) -> float:
        return (
            statistics.quantiles(values, n=100)[int(q) - 1] * 1000
            if q != 50
            else statistics.median(values) * 1000
        )

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; dynalite on loopback")
    print(f"\nWarm, per invocation ({len(warm['ours'])} each, interleaved):")
    print(f"  {'':<14}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, values in warm.items():
        print(f"  {name:<14}{ms(values, 50):>9.3f}{ms(values, 95):>9.3f}{ms(values, 99):>9.3f}")
    overhead = ms(warm["ours"], 50) - ms(warm["bare GetItem"], 50)
    print(f"  our overhead on top of the storage round trip (p50): {overhead:.3f} ms (goal < 0.5 ms)")
    print(f"  ours / baseline (p50): {ms(warm['ours'], 50) / ms(warm['baseline'], 50):.2f}")

    print(f"\nCold start in a fresh process ({args.cold_runs} runs each, interleaved), medians in ms:")
    print(f"  {'':<14}{'import':>9}{'1st call':>9}{'total':>9}{'min':>9}{'max':>9}")
    totals = {}
    for name, runs in cold.items():
        imports, calls = [r[0] * 1000 for r in runs], [r[1] * 1000 for r in runs]
        totals[name] = [a + b for a, b in zip(imports, calls, strict=True)]
        row = [statistics.median(imports), statistics.median(calls), statistics.median(totals[name])]
        row += [min(totals[name]), max(totals[name])]
        print(f"  {name:<14}" + "".join(f"{value:>9.1f}" for value in row))
    ratio = statistics.median(totals["ours"]) / statistics.median(totals["baseline"])
    print(f"  ours / baseline (median total): {ratio:.2f} (goal <= 1.00)")


if __name__ == "__main__":
    main()
