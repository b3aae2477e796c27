"""What the authorizer costs warm, per invocation, against a handler written as the reference does.

Measured in one run and interleaved, so that drift hits all alike:
- ours: `authorizer.lambda_handler` as deployed (tokens from Secrets Manager: AWSCURRENT and
  AWSPREVIOUS, here an in-process fake that answers at once, so only our code is timed; the secret
  is read again every 5 minutes, which a warm run of seconds never reaches), Powertools' context
  injection, a JSON log line and the EMF metrics flush;
- the token check alone (`TokenVerifier.match`): digests, the rotation window, the cache age;
- baseline: the reference's authorizer (`==` against an environment variable, a policy dict).
Goal (issue 19): our overhead over the baseline stays under 0.3 ms (p50).

    .venv/bin/python bench/authorizer_latency.py [--invocations 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import TOKEN, load_event  # noqa: E402

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kore-token-AbCdEf"  # noqa: S105 (an ARN)
PREVIOUS = "the-previous-token-of-the-bench-01"


class InstantSecretsManager:
    """GetSecretValue answered from memory: a rotation ten minutes ago, inside the window."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        value = TOKEN if VersionStage == "AWSCURRENT" else PREVIOUS
        created = datetime.fromtimestamp(time.time() - 600, UTC)
        return {"SecretString": value, "CreatedDate": created}


def reference_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The reference's logic: compare with ==, allow everything (its print of the event left out)."""
    if event["authorizationToken"] != os.environ["AUTH_TOKEN"]:
        raise Exception("Unauthorized")
    return {
        "principalId": "user",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=5000)
    args = parser.parse_args()
    os.environ.update(
        AWS_LAMBDA_FUNCTION_NAME="AuthenticateBeforeStoringInDynamoDB",
        AWS_REGION="us-east-1",
        AUTH_TOKEN_SECRET_ARN=SECRET_ARN,
        AUTH_TOKEN=TOKEN,
        POWERTOOLS_SERVICE_NAME="kore-connect-authorizer",
    )
    from kore_connect.bridge import authorizer, container
    from kore_connect.bridge.observability import logger
    from kore_connect.twin.lambda_runtime.context import LocalLambdaContext

    verifier = container.token_verifier()
    verifier._source._client = InstantSecretsManager()  # type: ignore[attr-defined]
    for handler in logger.handlers:  # the log lines are produced, then dropped
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (for the whole run)
    event = load_event("authorizer-token-event.json")
    event["authorizationToken"] = TOKEN
    context = LocalLambdaContext(function_name="AuthenticateBeforeStoringInDynamoDB")

    cases: dict[str, Callable[[], Any]] = {
        "ours": lambda: authorizer.lambda_handler(event, context),
        "token check": lambda: verifier.match(TOKEN),
        "baseline": lambda: reference_authorizer(event, context),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    with contextlib.redirect_stdout(io.StringIO()) as sink:  # the EMF metrics lines
        for _ in range(200):  # warm-up: caches, the first secret read
            for call in cases.values():
                call()
        for n in range(args.invocations):
            for name, call in cases.items():
                started = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - started) * 1000)
            if n % 500 == 0:
                sink.seek(0)
                sink.truncate()
    report(times, args.invocations)


def report(times: dict[str, list[float]], invocations: int) -> None:
    def quantile(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    print(f"Warm, per invocation ({invocations} each, interleaved):")
    print("                   p50 ms   p95 ms   p99 ms")
    for name, values in times.items():
        p50, p95, p99 = statistics.median(values), quantile(values, 95), quantile(values, 99)
        print(f"  {name:<14} {p50:8.3f} {p95:8.3f} {p99:8.3f}")
    overhead = statistics.median(times["ours"]) - statistics.median(times["baseline"])
    print(f"  our overhead over the baseline (p50): {overhead:.3f} ms (goal < 0.3 ms)")
    print(f"  the token check alone (p50): {statistics.median(times['token check']):.4f} ms")


if __name__ == "__main__":
    main()
