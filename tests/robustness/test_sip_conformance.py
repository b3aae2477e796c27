"""PROTOS c07-sip and RFC 4475's own bytes against the local Kore gateway as users run it
(`bench/sip_conformance.py`, on every 30th PROTOS case here; the full run's figures are in
docs/reliability.md). Needs ../shared/corpus: a user's clone skips it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED, needs_shared

pytestmark = pytest.mark.slow

CORPUS = SHARED / "corpus" / "sip" / "protos-c07-sip.tar.xz"


@needs_shared
def test_the_gateway_survives_protos_and_rfc_4475_and_keeps_taking_calls() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the PROTOS suite is not in {CORPUS.parent} (KORE_SHARED_DIR)")
    # WHEN PROTOS's cases (each with its CANCEL) go to the gateway over UDP and TCP, with a valid
    # Connect call every 50 cases, then RFC 4475's messages byte for byte
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "sip_conformance.py"),
            "--every",
            "30",
            "--calls-every",
            "50",
            "--settle",
            "1",
            "--passes",
            "1",
            "--memory-mb",
            "64",  # one pass: its growth from the start, the high-water of the calls it holds at once
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures = json.loads(result.stdout)
    # THEN every valid call went through, and the gateway stayed up, quiet and small
    assert figures["validCallsFailed"] == 0, figures["validCallProblems"]
    assert figures["validCalls"] >= 2 * figures["protosCases"] // 50
    assert figures["gatewayAlive"] and figures["tracebacks"] == 0
    assert figures["logLines"] <= max(200, (4 * figures["protosCases"] + 50) // 10)
    assert figures["memoryGrowthMb"] <= 64
    # and every case had an answer or was dropped without one: over UDP, the malformed ones 400 or 513
    udp = figures["runs"]["udp"]["answers"]
    assert udp.get("SIP/2.0 400", 0) > 0 and udp.get("SIP/2.0 513", 0) > 0
    assert result.returncode == 0, result.stderr[-2000:]


@needs_shared
def test_the_connector_ends_every_transfer_whatever_protos_answers() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the PROTOS suite is not in {CORPUS.parent} (KORE_SHARED_DIR)")
    # WHEN each of PROTOS's INVITEs, made into the gateway's 200, answers one transfer, over UDP and TCP
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sip_connector_conformance.py"), "--every", "30", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures = json.loads(result.stdout)
    # THEN every transfer ended (connected then hung up, failed, or timed out), none stuck, no fault
    for transport in ("udp", "tcp"):
        run = figures["runs"][transport]
        assert run["transfers"] == figures["protosCases"] > 100
        assert sum(run["outcomes"].values()) == run["transfers"]
        assert "stuck" not in run["outcomes"], run["outcomes"]
        # the well-formed answers connected and were hung up; the malformed ones did not connect
        assert run["outcomes"].get("CALLER_HUNG_UP", 0) > 0 and len(run["outcomes"]) >= 2, run["outcomes"]
    assert figures["faults"] == {}
    assert result.returncode == 0, result.stderr[-2000:]
