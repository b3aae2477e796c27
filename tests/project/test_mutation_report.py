"""`./dev mutate`'s verdict (tests/mutation_report.py) on mutmut's own output format."""

from __future__ import annotations

from tests.mutation_report import explained, judge, statuses

RESULTS = """\
    kore_connect.bridge.store.x__contact_id__mutmut_1: killed
    kore_connect.bridge.store.x__contact_id__mutmut_37: survived
    kore_connect.bridge.tokens.xǁTokenVerifierǁmatch__mutmut_3: survived
    kore_connect.sessions.sqlite.x_connect__mutmut_9: no tests
    kore_connect.sessions.sqlite.x_connect__mutmut_10: timeout
"""

DOC = """\
# Testing

| mutant | why |
|---|---|
| `kore_connect.bridge.store.x__contact_id__mutmut_99` | elsewhere: not this section |

## Survivors explained

| mutant | why it survives |
|---|---|
| `kore_connect.bridge.tokens.xǁTokenVerifierǁmatch__mutmut_3` | equivalent |
| `kore_connect.sessions.sqlite.x_connect__mutmut_9` | run only in worker processes |
| `kore_connect.bridge.payload.x_gone__mutmut_1` | killed since |

## Next section

| `kore_connect.bridge.store.x__contact_id__mutmut_37` | not in the section |
"""


def test_results_are_read_with_their_status() -> None:
    found = statuses(RESULTS + "⠋ Listing all tests\n")
    assert found["kore_connect.bridge.store.x__contact_id__mutmut_1"] == "killed"
    assert found["kore_connect.sessions.sqlite.x_connect__mutmut_9"] == "no tests"
    assert len(found) == 5


def test_only_the_survivors_section_explains() -> None:
    assert explained(DOC) == {
        "kore_connect.bridge.tokens.xǁTokenVerifierǁmatch__mutmut_3",
        "kore_connect.sessions.sqlite.x_connect__mutmut_9",
        "kore_connect.bridge.payload.x_gone__mutmut_1",
    }


def test_every_mutant_not_killed_needs_an_explanation_and_stale_ones_are_named() -> None:
    verdict = judge(statuses(RESULTS), explained(DOC))
    # a timeout is caught: its tests hung
    assert verdict.unexplained == {"kore_connect.bridge.store.x__contact_id__mutmut_37": "survived"}
    assert verdict.stale == ["kore_connect.bridge.payload.x_gone__mutmut_1"]
    assert not verdict.clean


def test_a_run_that_did_not_finish_is_not_clean() -> None:
    verdict = judge({"m.x_f__mutmut_1": "not checked"}, set())
    assert verdict.unchecked == ["m.x_f__mutmut_1"]
    assert not verdict.clean
    assert judge({"m.x_f__mutmut_1": "killed"}, set()).clean
