"""The 131 real Connect flows of ../shared/corpus/connect-flows through our local Amazon Connect:
per flow, whether it loads, whether it runs to an end, and how it ended. Figures for
docs/benchmarks.md and docs/reliability.md, and the measure of issue 17 ("Local Amazon Connect runs
real flows"): at least 95% must run to an end, and each that does not is named with the reason.

How it works. Each flow is loaded as `kore-connect connect run` loads it (`Flow.parse`; the
deployment-template placeholders some hold stay as written), then run as `connect run FLOW` runs it
with no options: the default caller (presses nothing, says nothing, hangs up after 600 s on the
contact's clock), the default world (any queue exists; no hours, bots, flows or functions of
theirs), no voice gateway. A flow "runs to an end" when its contact ends by the flow, by the caller,
or at the action limit, with the reason said; "did not end" is a run that raised or took over
`--timeout` seconds of real time. Across the corpus it also counts the action types and `$.`
namespaces the flows use and which the model knows, and the warnings loading gave.

    .venv/bin/python bench/flow_corpus.py [--json] [--no-run] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kore_connect.contactflow.language import ACTIONS, KEYED_NAMESPACES, SYSTEM_REFERENCES
from kore_connect.contactflow.model import Flow, FlowError
from kore_connect.twin.connect.local import LocalContactSettings, run_contact
from kore_connect.twin.local.store import LocalStore
from sip_corpus import SHARED

FLOWS = SHARED / "corpus" / "connect-flows"
_REFERENCE = re.compile(r"\$\.([A-Za-z]+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--no-run", action="store_true", help="only load the flows")
    parser.add_argument("--timeout", type=float, default=60.0, help="real seconds a run may take")
    args = parser.parse_args()
    if not FLOWS.is_dir():
        sys.exit(f"{FLOWS} is missing: the corpus is in ../shared (KORE_SHARED_DIR), which CI has")
    figures = asyncio.run(measure(sorted(FLOWS.glob("*.json")), run=not args.no_run, timeout=args.timeout))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        show(figures)


async def measure(paths: list[Path], *, run: bool, timeout: float) -> dict[str, Any]:
    types, namespaces, warnings = Counter[str](), Counter[str](), Counter[str]()
    flows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        store = LocalStore(Path(home) / "sessions.db")
        for path in paths:
            document = json.loads(path.read_text(encoding="utf-8"))
            types.update({action.get("Type", "?") for action in _actions(document)})
            namespaces.update(set(_REFERENCE.findall(json.dumps(document.get("Actions", [])))))
            row: dict[str, Any] = {"flow": path.name, "loaded": False, "ended": None, "because": None}
            flows.append(row)
            try:
                flow = Flow.parse(document)
            except FlowError as error:
                row["because"] = error.problems[0]
                continue
            row["loaded"] = True
            warnings.update(_kind(warning) for warning in flow.warnings)
            if run:
                row.update(await _run(flow, store, timeout))
    known_types = {str(t) for t in ACTIONS}
    known_namespaces = {name.split(".", 1)[0] for name in (*SYSTEM_REFERENCES, *KEYED_NAMESPACES)}
    loaded = [row for row in flows if row["loaded"]]
    ended = [row for row in loaded if row["ended"] is not None]
    return {
        "flows": len(paths),
        "loaded": len(loaded),
        "ranToAnEnd": len(ended),
        "endedAs": dict(Counter(row["ended"] for row in ended).most_common()),
        "notRun": [row for row in flows if row["ended"] is None] if run else [],
        "loadWarnings": dict(warnings.most_common()),
        "actionTypes": len(types),
        "actionTypesUnknown": {t: n for t, n in types.most_common() if t not in known_types},
        "namespacesUnknown": {n: c for n, c in namespaces.most_common() if n not in known_namespaces},
        "perFlow": flows,
    }


async def _run(flow: Flow, store: LocalStore, timeout: float) -> dict[str, Any]:
    settings = LocalContactSettings(gateway=None, store=store)
    try:
        contact = await asyncio.wait_for(run_contact(flow, settings), timeout)
    except TimeoutError:
        return {"because": f"did not end within {timeout:g} s of real time"}
    except Exception as exc:  # a crash is the finding this bench exists for
        return {"because": f"raised {type(exc).__name__}: {exc}"}
    return {
        "ended": str(contact.state),
        "because": contact.ended_because,
        "actions": len(contact.trace),
        "seconds": round(contact.clock, 1),
        "warnings": len(contact.warnings),
    }


def _actions(document: Any) -> Iterator[dict[str, Any]]:
    actions = document.get("Actions", []) if isinstance(document, dict) else []
    yield from (action for action in actions if isinstance(action, dict))


def _kind(message: str) -> str:
    """A message's kind: what it says, without the action and the values it names."""
    what = re.sub(r"^action .*?(?: \([A-Za-z]+\))?: ", "", message)
    return re.sub(r"'[^']*'|\"[^\"]*\"|\([^)]*\)", "…", what)[:100]


def show(figures: dict[str, Any]) -> None:
    flows = figures["flows"]
    share = 100 * figures["ranToAnEnd"] / flows if flows else 0.0
    print(f"{flows} flows: {figures['loaded']} load, {figures['ranToAnEnd']} ran to an end ({share:.1f}%)")
    for ended, count in figures["endedAs"].items():
        print(f"  {count:4} ended {ended}")
    for row in figures["notRun"]:
        print(f"  not run to an end: {row['flow']}: {row['because']}")
    print("warnings on loading (flows' actions, by kind):")
    for kind, count in figures["loadWarnings"].items():
        print(f"  {count:4} {kind}")
    unknown = figures["actionTypesUnknown"]
    print(f"{figures['actionTypes']} action types used; unknown to the model: {unknown or 'none'}")
    print(f"reference namespaces unknown to the model: {figures['namespacesUnknown'] or 'none'}")


if __name__ == "__main__":
    main()
