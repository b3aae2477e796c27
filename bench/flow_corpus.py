"""The 131 real Connect flows of ../shared/corpus/connect-flows against our local Amazon Connect:
how many load, how many run, and what the refused ones need. Figures for docs/reliability.md, and
the measure of issue 17 ("Local Amazon Connect runs real flows").

How it works. Each flow is loaded with `Flow.parse`, as `kore-connect connect run` loads it; a
refused flow is counted by its first problem. Across the corpus it counts every action type and
every `$.` namespace the flows use, and says which our model knows. Each flow that loads is then
run as a user would, `kore-connect connect run FLOW --gateway 127.0.0.1:9 --json` (nothing listens
on port 9: a transfer fails), and counted by how its contact ended.

    .venv/bin/python bench/connect_flow_corpus.py [--json] [--no-run]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kore_connect.contactflow.language import SYSTEM_REFERENCES, ActionType
from kore_connect.contactflow.model import Flow, FlowError
from sip_corpus import SHARED

FLOWS = SHARED / "corpus" / "connect-flows"
COMMAND = shutil.which("kore-connect") or str(Path(sys.executable).parent / "kore-connect")
_REFERENCE = re.compile(r"\$\.([A-Za-z]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--no-run", action="store_true", help="only load the flows")
    args = parser.parse_args()
    if not FLOWS.is_dir():
        sys.exit(f"{FLOWS} is missing: the corpus is in ../shared (KORE_SHARED_DIR), which CI has")
    figures = measure(sorted(FLOWS.glob("*.json")), run=not args.no_run)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        show(figures)


def measure(paths: list[Path], *, run: bool) -> dict[str, Any]:
    loaded, refused = [], Counter[str]()
    types, namespaces = Counter[str](), Counter[str]()
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        types.update({action.get("Type", "?") for action in _actions(document)})
        namespaces.update(set(_REFERENCE.findall(json.dumps(document.get("Actions", [])))))
        try:
            Flow.parse(document)
        except FlowError as error:
            refused[_kind(error.problems[0])] += 1
            continue
        loaded.append(path)
    known_types = {str(t) for t in ActionType}
    known_namespaces = {reference.split(".", 1)[0] for reference in SYSTEM_REFERENCES} | {
        "Attributes",
        "External",
    }
    ended = Counter(_ended(path) for path in loaded) if run else Counter[str]()
    return {
        "flows": len(paths),
        "loaded": len(loaded),
        "ran": sum(ended.values()),
        "ended": dict(ended.most_common()),
        "refusedBy": dict(refused.most_common()),
        "actionTypes": len(types),
        "actionTypesKnown": sorted(t for t in types if t in known_types),
        "actionTypesUnknown": {t: n for t, n in types.most_common() if t not in known_types},
        "namespacesUnknown": {n: c for n, c in namespaces.most_common() if n not in known_namespaces},
    }


def _actions(document: Any) -> Iterator[dict[str, Any]]:
    actions = document.get("Actions", []) if isinstance(document, dict) else []
    yield from (action for action in actions if isinstance(action, dict))


def _kind(problem: str) -> str:
    """A refusal's kind: what is wrong, without the action it names ("action <name> (<type>): ...")."""
    what = re.sub(r"^action .*?(?: \([A-Za-z]+\))?: ", "", problem)
    return re.sub(r"'[^']*'|\"[^\"]*\"", "…", what)[:120]


def _ended(path: Path) -> str:
    try:
        done = subprocess.run(
            [COMMAND, "connect", "run", str(path), "--gateway", "127.0.0.1:9", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "did not end within 120 s"
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        return f"exit {done.returncode}: {said[-1][:100] if said else ''}"
    return str(json.loads(done.stdout)["ended"])


def show(figures: dict[str, Any]) -> None:
    print(f"{figures['flows']} flows: {figures['loaded']} load, {figures['ran']} ran")
    for ended, count in figures["ended"].items():
        print(f"  {count:4} ended {ended}")
    print("refused, by first problem:")
    for kind, count in figures["refusedBy"].items():
        print(f"  {count:4} {kind}")
    unknown = figures["actionTypesUnknown"]
    print(
        f"{figures['actionTypes']} action types used, {len(unknown)} unknown to the model (flows using each):"
    )
    for name, count in unknown.items():
        print(f"  {count:4} {name}")
    print("reference namespaces unknown to the model (flows using each):")
    for name, count in figures["namespacesUnknown"].items():
        print(f"  {count:4} $.{name}")


if __name__ == "__main__":
    main()
