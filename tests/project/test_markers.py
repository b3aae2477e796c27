"""The markers that let `./dev test --fast` leave out the tests that need a peer or take long."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.peers import PEERS, SLOW, peer


def test_fast_leaves_out_every_peer_and_the_slow_tests() -> None:
    found = re.search(r'^FAST="(.*)"$', (REPO / "dev").read_text(), re.MULTILINE)
    assert found is not None, "./dev names no FAST expression"
    assert found.group(1) == "not (" + " or ".join([*PEERS, SLOW]) + ")"


def test_a_test_that_reaches_a_peer_without_its_marker_fails() -> None:
    # GIVEN this test, marked for no peer; WHEN it asks for each; THEN it is told which mark it lacks
    for name in PEERS:
        with pytest.raises(AssertionError, match=rf"mark it @pytest\.mark\.{name}"):
            peer(name)


@pytest.mark.sipp
def test_a_marked_test_reaches_its_peer() -> None:
    assert peer("sipp").endswith("sipp")


@pytest.mark.parametrize("backend", ["sqlite", "dynalite"])
def test_a_test_given_dynalite_as_a_parameter_is_marked_for_it(
    backend: str, request: pytest.FixtureRequest
) -> None:
    marked = request.node.get_closest_marker("dynalite") is not None
    assert marked == (backend == "dynalite")
