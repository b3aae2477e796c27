"""Assemble one Lambda function's deployment package: its handler module and exactly the
kore_connect modules that module can import, nothing else (no local twin, no CLI).

Run by `sam build` through `src/Makefile`, from a copy of `src/`, with whatever `python3` the
user has: so this module uses the standard library only, and finds imports by reading bytecode
(`modulefinder`) instead of importing anything. Imports inside functions count too, so a lazily
imported module is packaged as well.

    python3 -m kore_connect.lambda_package kore_connect.bridge.store <artifacts dir>
"""

from __future__ import annotations

import argparse
import modulefinder
import shutil
import sys
from pathlib import Path

PACKAGE = "kore_connect"


def modules_needed(handler_module: str, source_root: Path) -> dict[str, Path]:
    """The kore_connect modules `handler_module` imports, directly or not, with their source files."""
    finder = modulefinder.ModuleFinder(path=[str(source_root)])
    finder.import_hook(handler_module)
    needed: dict[str, Path] = {}
    for name, module in finder.modules.items():
        source = getattr(module, "__file__", None)  # typeshed's Module omits it; modulefinder sets it
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and source:
            needed[name] = Path(source)
    if handler_module not in needed:
        raise SystemExit(f"{handler_module} was not found under {source_root}")
    return needed


def assemble(handler_module: str, source_root: Path, destination: Path) -> list[Path]:
    """Copy the modules `handler_module` needs into `destination`; returns the files written."""
    written = []
    for source in sorted(modules_needed(handler_module, source_root).values()):
        target = destination / source.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("handler_module", help="e.g. kore_connect.bridge.store")
    parser.add_argument("destination", type=Path, help="the function's artifacts directory")
    parser.add_argument("--source-root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    written = assemble(args.handler_module, args.source_root.resolve(), args.destination)
    print(f"{args.handler_module}: {len(written)} modules into {args.destination}", file=sys.stderr)


if __name__ == "__main__":
    main()
