"""A user's clone has no ../shared (only CI has it): the committed repository, cloned where no `shared`
folder is its sibling, collects without errors; the tests that need the shared reference export skip,
saying which folder is missing; nothing else skips for that reason, and the rest of their files pass.

The clone is of HEAD, which is what a user gets: work not yet committed is not in it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_ABSENT_REASON

GIT = shutil.which("git")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(GIT is None, reason="git is not installed: the repository cannot be cloned"),
]

# Files with tests that need ../shared and run in seconds: enough to see those skip and the rest pass.
QUICK_FILES = ("tests/deploy/test_contactflow_model.py", "tests/twin/connect/test_connect_interpreter.py")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HEAD cloned into a folder of its own: `../shared` does not exist next to it."""
    assert GIT is not None
    head = subprocess.run([GIT, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: {head.stderr.strip()}")
    target = tmp_path_factory.mktemp("user") / "kore-connect"
    subprocess.run(
        [GIT, "clone", "--quiet", str(REPO), str(target)], check=True, capture_output=True, timeout=60
    )
    assert not (target.parent / "shared").exists()
    yield target
    # The clone holds the example tokens of tests/events by design: not output for the secret sweep.
    shutil.rmtree(target)


def run_in(
    clone: Path, *args: str, shared: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """This interpreter, running the clone's own code (its src and tests, not this checkout's)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KORE_SHARED_DIR", "PYTEST_ADDOPTS", "PYTHONPATH")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(clone / "src"), str(clone)])
    if shared is not None:
        env["KORE_SHARED_DIR"] = str(shared)
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
    )


def pytest_in(
    clone: Path, tmp_path: Path, *args: str, shared: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_in(
        clone,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'run'}",
        *args,
        shared=shared,
    )


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Each test of a JUnit report: its id (`tests/test_x.py::test_y[param]`), outcome and skip reason."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 (our own run's report)
        test_id = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        skipped = case.find("skipped")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        if failed is not None:
            found[test_id] = ("failed", failed.get("message", ""))
        elif skipped is not None:
            found[test_id] = ("skipped", skipped.get("message", ""))
        else:
            found[test_id] = ("passed", "")
    return found


def test_the_clone_runs_its_own_code(clone: Path) -> None:
    result = run_in(
        clone, "-c", "import kore_connect, tests.conftest as c; print(kore_connect.__file__, c.__file__)"
    )
    assert result.returncode == 0, result.stderr
    package, conftest = (Path(p) for p in result.stdout.split())
    assert package.is_relative_to(clone / "src") and conftest.is_relative_to(clone / "tests")


@pytest.fixture(scope="module")
def shared_tests(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The ids of the tests that need ../shared, from a collection of the whole suite of the clone."""
    # WHEN pytest collects every test of the clone, ../shared missing as in a user's clone
    result = pytest_in(
        clone, tmp_path_factory.mktemp("collect"), "--collect-only", "-q", "-rs", "-m", "needs_shared"
    )
    # THEN every module imports: no collection error, and some tests need ../shared
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    *ids, summary = [line for line in result.stdout.splitlines() if line.strip()]
    assert re.fullmatch(r"\d+/\d+ tests collected \(\d+ deselected\) in [\d.]+s", summary), summary
    assert ids and all("::" in test_id for test_id in ids), ids
    return ids


def test_the_whole_suite_collects_and_the_quick_files_hold_tests_that_need_shared(
    shared_tests: list[str],
) -> None:
    assert {test_id.split("::")[0] for test_id in shared_tests} >= set(QUICK_FILES)


def test_the_tests_that_need_shared_skip_naming_the_missing_folder(
    clone: Path, tmp_path: Path, shared_tests: list[str]
) -> None:
    # GIVEN KORE_SHARED_DIR naming a folder that does not exist
    absent = tmp_path / "nowhere" / "shared"
    junit = tmp_path / "junit.xml"
    files = sorted({test_id.split("::")[0] for test_id in shared_tests})
    # WHEN the tests that need ../shared run
    result = pytest_in(
        clone, tmp_path, "-q", "-rs", "-m", "needs_shared", f"--junitxml={junit}", *files, shared=absent
    )
    # THEN each one is skipped, and the reason, in the -rs report too, names the missing folder
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reason = SHARED_ABSENT_REASON.format(shared=absent)
    assert reason in result.stdout
    assert outcomes(junit) == {test_id: ("skipped", reason) for test_id in shared_tests}


def test_in_their_files_nothing_else_skips_for_that_reason_and_the_rest_pass(
    clone: Path, tmp_path: Path, shared_tests: list[str]
) -> None:
    # GIVEN files holding tests that need ../shared, and KORE_SHARED_DIR naming a folder that does not exist
    absent = tmp_path / "nowhere" / "shared"
    expected_skips = {test_id for test_id in shared_tests if test_id.startswith(QUICK_FILES)}
    # WHEN those files run whole
    junit = tmp_path / "junit.xml"
    result = pytest_in(clone, tmp_path, "-q", "-rs", f"--junitxml={junit}", *QUICK_FILES, shared=absent)
    # THEN exactly the tests that need it skip, for that reason, and every other test passes
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = outcomes(junit)
    skipped_for_shared = {t for t, (o, why) in ran.items() if o == "skipped" and str(absent) in why}
    assert skipped_for_shared == expected_skips
    assert {o for t, (o, _) in ran.items() if t not in expected_skips} == {"passed"}
