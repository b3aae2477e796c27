"""The 131 real Connect flows of ../shared/corpus (issue 17's measure): each loads and runs with the
default caller to an end that is said, as docs/benchmarks.md records it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED, needs_shared


@pytest.mark.slow
@needs_shared
def test_at_least_95_percent_of_the_corpus_runs_to_an_end_and_the_rest_are_named() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "flow_corpus.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    flows = len(list((SHARED / "corpus" / "connect-flows").glob("*.json")))
    assert figures["flows"] == flows == len(figures["perFlow"])
    assert figures["ranToAnEnd"] >= 0.95 * flows, figures["notRun"]
    # a flow that did not run to an end is named with the reason
    assert all(row["because"] for row in figures["notRun"])
    for row in figures["perFlow"]:
        if row["ended"] is not None:  # an end is one of the contact's states, and why is said
            assert row["ended"] in {"queued", "transferred", "disconnected", "caller hung up", "flow error"}
            assert row["because"], row
    # every action type the corpus uses is known to the model
    assert figures["actionTypesUnknown"] == {}
