"""The 131 real Connect flows of ../shared/corpus (issue 17's measure): the bench that counts what
loads and what the rest need, run as docs/reliability.md records it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, SHARED, needs_shared


@needs_shared
def test_the_corpus_bench_accounts_for_every_flow_and_names_what_is_missing() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "connect_flow_corpus.py"), "--json", "--no-run"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    flows = len(list((SHARED / "corpus" / "connect-flows").glob("*.json")))
    # every flow is counted once: loaded, or refused for its first problem
    assert figures["flows"] == flows and figures["loaded"] + sum(figures["refusedBy"].values()) == flows
    # the model's own action types are known; a type the corpus uses and the model lacks is named
    assert "TransferParticipantToThirdParty" in figures["actionTypesKnown"]
    assert set(figures["actionTypesUnknown"]).isdisjoint(figures["actionTypesKnown"])
    assert all(count > 0 for count in figures["actionTypesUnknown"].values())
