"""Each function's deployment package, built by the same `make` targets `sam build` runs, holds
only what that function needs: its handler and the modules it imports, not the local twin or the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from kore_connect import stack
from kore_connect.lambda_package import modules_needed
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SOURCES = REPO / "src"
FUNCTIONS = {
    stack.AUTHORIZER_FUNCTION: "kore_connect.bridge.authorizer",
    stack.STORE_FUNCTION: "kore_connect.bridge.store",
    stack.RETRIEVE_FUNCTION: "kore_connect.bridge.retrieve",
}
# What must never be in a function's package: the local twin, the CLI and what only they use.
NOT_FOR_LAMBDA = ("kore_connect.twin", "kore_connect.cli", "kore_connect.doctor", "kore_connect.korebot")
CLI_ONLY_LIBRARIES = ("typer", "rich", "httpx", "py_mini_racer", "click", "boto3")


def build_with_make(function: str, artifacts: Path) -> None:
    """`make build-<function>` as sam build runs it: in a copy of src/, with ARTIFACTS_DIR set.
    The dependency install is replaced by a no-op, since tests reach no package index."""
    scratch = artifacts.parent / f"scratch-{function}"
    shutil.copytree(SOURCES, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    artifacts.mkdir()
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"build-{function}",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
            "PIP_INSTALL=true",
        ],
        cwd=scratch,
        check=True,
        capture_output=True,
    )


def test_every_function_in_the_template_has_a_make_target_for_its_handler() -> None:
    template, _ = decode(str(REPO / "template.yaml"))
    assert template is not None
    makefile = (SOURCES / "Makefile").read_text()
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        assert resource["Metadata"]["BuildMethod"] == "makefile"
        handler_module = resource["Properties"]["Handler"].rpartition(".")[0]
        assert FUNCTIONS[name] == handler_module
        target = makefile.split(f"build-{name}:", 1)[1].split("\n\n", 1)[0]
        assert f"kore_connect.lambda_package {handler_module} " in target


# What each function needs, written out: a change that drags another handler's code into a package,
# or leaves out what a handler needs, shows here (beside the closure check below).
SHARED = {
    "kore_connect/__init__.py",
    "kore_connect/aws.py",
    "kore_connect/config.py",
    "kore_connect/errors.py",
    "kore_connect/private_files.py",  # the SQLite store creates its database 0600
    "kore_connect/bridge/__init__.py",
    "kore_connect/bridge/container.py",
    "kore_connect/bridge/observability.py",
    "kore_connect/bridge/tokens.py",
    "kore_connect/sessions/__init__.py",
    "kore_connect/sessions/base.py",
    "kore_connect/sessions/dynamodb.py",
    "kore_connect/sessions/reference.py",  # the container builds it (read only during a switch)
    "kore_connect/sessions/sqlite.py",
}
OWN = {
    stack.AUTHORIZER_FUNCTION: {"kore_connect/bridge/authorizer.py"},
    stack.STORE_FUNCTION: {
        "kore_connect/bridge/store.py",
        "kore_connect/bridge/payload.py",
        "kore_connect/bridge/contact_id.py",
    },
    stack.RETRIEVE_FUNCTION: {
        "kore_connect/bridge/retrieve.py",
        "kore_connect/bridge/attributes.py",
        "kore_connect/bridge/contact_id.py",
    },
}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_package_is_its_handler_its_helpers_and_the_shared_core(function: str, tmp_path: Path) -> None:
    artifacts = tmp_path / function
    build_with_make(function, artifacts)
    packaged = {str(p.relative_to(artifacts)) for p in artifacts.rglob("*.py")}
    assert packaged == SHARED | OWN[function]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_package_holds_the_handler_and_only_the_modules_it_imports(function: str, tmp_path: Path) -> None:
    # GIVEN the package make builds for the function
    artifacts = tmp_path / function
    build_with_make(function, artifacts)
    packaged = sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*.py"))
    # THEN it is exactly the handler's import closure within kore_connect
    needed = modules_needed(FUNCTIONS[function], SOURCES)
    expected = sorted(str(p.relative_to(SOURCES)) for p in needed.values())
    assert packaged == expected
    assert not any(p.startswith(tuple(m.replace(".", "/") for m in NOT_FOR_LAMBDA)) for p in packaged)
    assert "kore_connect/lambda_package.py" not in packaged


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_package_imports_and_answers_without_the_cli_libraries(function: str, tmp_path: Path) -> None:
    # GIVEN the built package first on the path (dependencies from the test environment, as the layer of
    # the runtime would provide them)
    artifacts = tmp_path / function
    build_with_make(function, artifacts)
    probe = f"""
import sys
sys.path.insert(0, {str(artifacts)!r})
import {FUNCTIONS[function]} as handler
assert handler.__file__.startswith({str(artifacts)!r}), handler.__file__
assert callable(handler.lambda_handler)
top = {CLI_ONLY_LIBRARIES!r}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in top or m.startswith({NOT_FOR_LAMBDA!r}))
print(loaded)
"""
    # WHEN the handler module is imported in a fresh interpreter
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    # THEN it loads from the package and pulls in nothing the CLI or the twin uses
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
