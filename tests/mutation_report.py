"""`./dev mutate`'s verdict: the mutants that survived `mutmut run`, against docs/testing.md.

Every mutant the tests did not catch (it survived, or no test ran it) must be explained
in the table under "## Survivors explained" in docs/testing.md, by its mutmut name. This prints each
one nobody explained (with `mutmut show`'s diff) and each explanation whose mutant no longer
survives, and exits 1 when either exists: the list stays exactly what the run finds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
SECTION = "## Survivors explained"
# A mutant is caught when a test fails, or when its tests hang (a call waiting out a timer).
CAUGHT = ("killed", "timeout")
UNCHECKED = "not checked"

_RESULT = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")
_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+__mutmut_\d+)`\s*\|")


@dataclass(frozen=True)
class Verdict:
    unexplained: dict[str, str]  # mutant -> status
    stale: list[str]  # explained, but no longer surviving
    unchecked: list[str]  # the run did not finish

    @property
    def clean(self) -> bool:
        return not (self.unexplained or self.stale or self.unchecked)


def statuses(results: str) -> dict[str, str]:
    """`mutmut results --all true` output as {mutant: status}."""
    found = {}
    for line in results.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match["name"]] = match["status"]
    return found


def explained(doc: str) -> set[str]:
    """The mutants named in the first column of the table under SECTION."""
    _, found, rest = doc.partition(SECTION)
    if not found:
        return set()
    section = rest.split("\n## ", 1)[0]
    return {match["name"] for line in section.splitlines() if (match := _ROW.match(line))}


def judge(results: dict[str, str], explanations: set[str]) -> Verdict:
    surviving = {name: status for name, status in results.items() if status not in (*CAUGHT, UNCHECKED)}
    return Verdict(
        unexplained={name: status for name, status in surviving.items() if name not in explanations},
        stale=sorted(explanations - surviving.keys()),
        unchecked=sorted(name for name, status in results.items() if status == UNCHECKED),
    )


def _mutmut(*args: str) -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(mutmut), *args], check=True, capture_output=True, text=True).stdout


def main() -> int:
    results = statuses(_mutmut("results", "--all", "true"))
    verdict = judge(results, explained(DOC.read_text("utf-8")))
    caught = sum(status in CAUGHT for status in results.values())
    print(f"{len(results)} mutants: {caught} caught, {len(results) - caught} not", file=sys.stderr)
    for name, status in sorted(verdict.unexplained.items()):
        print(f"\n{status}, not explained in {DOC.name}: {name}\n{_mutmut('show', name)}", file=sys.stderr)
    for name in verdict.stale:
        print(f"explained in {DOC.name} but no longer surviving: {name}", file=sys.stderr)
    if verdict.unchecked:
        print(f"{len(verdict.unchecked)} mutants not checked: the run did not finish", file=sys.stderr)
    if verdict.clean:
        print(f"every surviving mutant is explained in docs/{DOC.name}", file=sys.stderr)
    return 0 if verdict.clean else 1


if __name__ == "__main__":
    sys.exit(main())
