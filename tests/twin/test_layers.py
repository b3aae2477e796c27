"""The twin's layers, as the tree shows them (docs/architecture.md), and a check that no import
breaks them: read from the source with `ast`, every import (at the top or inside a function).

- foundations import no other part of the twin: `sip/`, `lambda_runtime/`, `template.py`,
  `record_database.py`;
- the emulators import only foundations (and themselves): `apigw/`, `connect/`, `kore/`;
- the wiring on top imports anything: `local/`, `dashboard/`.
Outside the twin, the bridge (what runs in Lambda) imports nothing of it; what the twin and `doctor`
share (the AWS events, `kore_connect/aws_events.py`) is outside it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "src" / "kore_connect"
TWIN = "kore_connect.twin"
FOUNDATIONS = {"sip", "lambda_runtime", "template", "record_database"}
EMULATORS = {"apigw", "connect", "kore"}
WIRING = {"local", "dashboard"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports by its absolute name (relative imports are not used here)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def part_of_twin(module: str) -> str | None:
    """kore_connect.twin.kore.gateway -> "kore"; None outside the twin or for the twin itself."""
    if not module.startswith(TWIN + "."):
        return None
    return module.removeprefix(TWIN + ".").split(".", 1)[0]


def test_every_part_of_the_twin_is_in_one_layer() -> None:
    parts = {path.stem if path.is_file() else path.name for path in (PACKAGE / "twin").iterdir()}
    parts -= {"__init__", "__pycache__"}
    assert parts == FOUNDATIONS | EMULATORS | WIRING


def broken_rules(package: Path = PACKAGE) -> list[str]:
    broken = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        own = part_of_twin(module)
        for imported in sorted(imports(path)):
            other = part_of_twin(imported)
            if other is None or other == own:
                continue
            if module.startswith("kore_connect.bridge"):
                broken.append(f"{module} (the bridge) imports {imported}")
            elif own in FOUNDATIONS:
                broken.append(f"{module} (a foundation) imports {imported}")
            elif own in EMULATORS and other not in FOUNDATIONS:
                broken.append(f"{module} (an emulator) imports {imported}")
    return broken


def test_no_import_breaks_the_layers() -> None:
    assert broken_rules() == []


@pytest.mark.parametrize(
    ("part", "source", "breaker"),
    [
        ("kore", "from kore_connect.twin.local.store import LocalStore\n", "(an emulator)"),
        ("kore", "from kore_connect.twin.connect import connector\n", "(an emulator)"),
        ("sip", "def late():\n    import kore_connect.twin.kore.gateway\n", "(a foundation)"),
        ("lambda_runtime", "from kore_connect.twin import template\n", "(a foundation)"),
    ],
)
def test_the_check_catches_an_import_that_breaks_them(
    tmp_path: Path, part: str, source: str, breaker: str
) -> None:
    # a copy of the tree with one module that breaks the rule
    copy = tmp_path / "kore_connect"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "twin" / part / "intruder.py").write_text(source)
    assert [line for line in broken_rules(copy) if "intruder" in line and breaker in line]


@pytest.mark.parametrize(
    "package", sorted(p.name for p in (PACKAGE / "twin").iterdir() if (p / "__init__.py").is_file())
)
def test_each_package_of_the_twin_names_its_modules_in_its_docstring(package: str) -> None:
    folder = PACKAGE / "twin" / package
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    modules = sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")
    assert [m for m in modules if f"`{m}`" not in docstring] == []
