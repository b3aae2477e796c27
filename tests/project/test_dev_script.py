"""`./dev`, the one entry point on a fresh machine: what it says before and after each step, and how
it fails where it cannot install. Run on a copy of the script with a PATH of our own, so nothing is
ever installed and the checkout's .venv is never touched: `apt-get` is either absent or a stub that
only writes down how it was called."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
# What the script runs besides bash's builtins; everything else (apt-get, sudo, the peers) is absent.
TOOLS = ["dirname", "cat", "cut", "grep", "sed", "sha256sum", "env"]
PEERS = ["make", "sipp", "svmap", "npm", "chromium", "kamailio", "baresip"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def checkout(tmp_path: Path) -> Path:
    """A copy of the files `./dev setup` reads, in a folder of its own."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ["dev", "requirements.lock", "pyproject.toml", "package-lock.json"]:
        shutil.copy2(REPO / name, repo / name)
    return repo


def fake_bin(tmp_path: Path, stubs: dict[str, str]) -> Path:
    """A PATH folder: the real TOOLS, plus stubs (name -> sh script body), and nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run ./dev"
        (bin_dir / tool).symlink_to(real)
    for name, body in stubs.items():
        stub(bin_dir / name, body)
    return bin_dir


def installed_already(repo: Path) -> Path:
    """Stamps as `./dev setup` leaves them, so its Python and npm steps have nothing to do."""
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(os.path.realpath(sys.executable))
    listing = "".join(
        f"{hashlib.sha256((repo / name).read_bytes()).hexdigest()}  {name}\n"
        for name in ["requirements.lock", "pyproject.toml"]
    )
    (repo / ".venv" / ".installed-lock").write_text(hashlib.sha256(listing.encode()).hexdigest() + "\n")
    (repo / "node_modules").mkdir()
    npm_stamp = hashlib.sha256((repo / "package-lock.json").read_bytes()).hexdigest()
    (repo / "node_modules" / ".installed-lock").write_text(npm_stamp + "\n")
    return venv_bin


def stub(path: Path, body: str) -> None:
    path.unlink(missing_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run_dev(repo: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(repo), "PYTHON": os.path.realpath(sys.executable)}
    result = subprocess.run(
        [BASH, str(repo / "dev"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    result.stderr = ANSI.sub("", result.stderr)
    return result


def test_the_script_parses() -> None:
    result = subprocess.run([BASH, "-n", str(REPO / "dev")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_command_prints_the_usage_and_exits_2(tmp_path: Path) -> None:
    result = run_dev(checkout(tmp_path), fake_bin(tmp_path, {}))
    assert result.returncode == 2
    for command in ["./dev run", "./dev test", "./dev setup", "./dev mutate"]:
        assert command in result.stdout


def test_without_apt_get_one_line_names_what_to_install_by_hand(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    result = run_dev(repo, fake_bin(tmp_path, {}), "setup")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "apt-get" in lines[0]
    for missing in ["sipp", "sip-tester", "chromium", "sipvicious", "nodejs", "npm", "make", "baresip-core"]:
        assert missing in lines[0]
    # It stops before installing anything else.
    assert not (repo / ".venv").exists()
    assert not (repo / "node_modules").exists()


def test_not_root_and_no_sudo_fails_in_one_line_before_apt_get(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    called = tmp_path / "apt-get-was-called"
    stubs = {"id": "echo 1000", "apt-get": f'echo "$@" >> {called}; exit 1'}
    stubs |= {peer: "exit 0" for peer in PEERS if peer != "sipp"}
    result = run_dev(repo, fake_bin(tmp_path, stubs), "setup")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "root or sudo" in lines[0]
    assert "sip-tester" in lines[0]
    assert not called.exists()
    assert not (repo / ".venv").exists()


def test_each_install_says_what_and_how_long(tmp_path: Path) -> None:
    """As root, with make and Chromium missing: apt-get (a stub) is asked for exactly those, each
    step is named before it runs and timed after, and the steps with nothing to do say so."""
    repo = checkout(tmp_path)
    installed_already(repo)
    calls = tmp_path / "apt-get-calls"
    stubs = {"id": "echo 0", "apt-get": f'echo "$@" >> {calls}'}
    stubs |= {peer: "exit 0" for peer in PEERS if peer not in ("make", "chromium")}
    result = run_dev(repo, fake_bin(tmp_path, stubs), "setup")
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq make", "install -y -qq chromium"]
    out = result.stderr
    assert re.search(r"==> Installing make .*system-wide.*\n    done in \d+ s\n", out), out
    assert re.search(r"==> Installing Chromium \(\d+ MB.*\) system-wide.*\n    done in \d+ s\n", out), out
    assert "==> Python packages: up to date" in out
    assert "==> npm test peers: up to date" in out


def test_a_second_run_says_each_step_is_done_already(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    installed_already(repo)
    stubs = {peer: "exit 0" for peer in PEERS}
    result = run_dev(repo, fake_bin(tmp_path, stubs), "setup")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "==> Debian packages",
        "==> Python packages",
        "==> npm test peers",
    ]


def test_dev_test_times_each_step_and_keeps_pytest_s_exit_code(tmp_path: Path) -> None:
    """ruff, mypy and pytest are stubs here; pytest's failure (3) is ./dev test's, after the total."""
    repo = checkout(tmp_path)
    venv_bin = installed_already(repo)
    for tool in ["ruff", "mypy"]:
        stub(venv_bin / tool, "exit 0")
    pytest_args = tmp_path / "pytest-args"
    stub(venv_bin / "python", f'echo "$@" > {pytest_args}; exit 3')
    result = run_dev(repo, fake_bin(tmp_path, {peer: "exit 0" for peer in PEERS}), "test", "-k", "dev")
    assert result.returncode == 3, result.stderr
    assert pytest_args.read_text().split() == ["-m", "pytest", "-n", "auto", "-k", "dev"]
    for name in ["ruff check", "ruff format --check", "mypy --strict"]:
        assert re.search(rf"==> {name}\n    done in \d+ s\n", result.stderr), result.stderr
    assert re.fullmatch(r"\./dev test: \d+ s in all .*exit code 3", result.stderr.splitlines()[-1])


def test_dev_test_fast_installs_no_peer_and_leaves_out_the_marked_tests(tmp_path: Path) -> None:
    """With no peer on the machine and apt-get failing, --fast still runs: only the Python step."""
    repo = checkout(tmp_path)
    venv_bin = installed_already(repo)
    for tool in ["ruff", "mypy"]:
        stub(venv_bin / tool, "exit 0")
    pytest_args = tmp_path / "pytest-args"
    stub(venv_bin / "python", f'printf "%s\\n" "$@" > {pytest_args}; exit 0')
    result = run_dev(repo, fake_bin(tmp_path, {"apt-get": "exit 100"}), "test", "--fast", "-x")
    assert result.returncode == 0, result.stderr
    assert pytest_args.read_text().splitlines() == [
        "-m",
        "pytest",
        "-n",
        "auto",
        "-m",
        "not (sipp or dynalite or chromium or kamailio or baresip or sipvicious or slow)",
        "-x",
    ]
    assert "Debian packages" not in result.stderr and "npm" not in result.stderr


@pytest.mark.parametrize(("results", "rc"), [("killed", 0), ("survived", 1)])
def test_dev_mutate_runs_mutmut_then_judges_its_survivors(tmp_path: Path, results: str, rc: int) -> None:
    """mutmut is a stub; the verdict is the real tests/mutation_report.py, on a page with no survivor."""
    repo = checkout(tmp_path)
    venv_bin = installed_already(repo)
    for folder, name in [("tests", "mutation_report.py"), ("tests", "__init__.py")]:
        (repo / folder).mkdir(exist_ok=True)
        shutil.copy2(REPO / folder / name, repo / folder / name)
    (repo / "docs").mkdir()
    (repo / "docs" / "testing.md").write_text("## Survivors explained\n\n| mutant | why |\n|---|---|\n")
    calls = tmp_path / "mutmut-calls"
    stub(
        venv_bin / "mutmut",
        f'echo "$KORE_HYPOTHESIS_PROFILE $*" >> {calls}\n'
        f'[ "$1" = results ] && echo "    kore_connect.bridge.store.x_f__mutmut_1: {results}"\n'
        "exit 0",
    )
    bin_dir = fake_bin(tmp_path, {peer: "exit 0" for peer in PEERS} | {"nproc": "echo 2"})
    for tool in ["mkdir", "ln"]:
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    result = run_dev(repo, bin_dir, "mutate", "kore_connect.bridge.*")
    assert result.returncode == rc, result.stderr
    run, report = calls.read_text().splitlines()[:2]
    assert run == "mutation run --max-children 2 kore_connect.bridge.*"  # the profile, then the arguments
    assert report == " results --all true"  # the verdict's own call, without the profile
    assert (repo / "mutants" / "node_modules").resolve() == (repo / "node_modules").resolve()
    assert re.fullmatch(rf"\./dev mutate: \d+ s in all; exit code {rc}", result.stderr.splitlines()[-1])


def first_section(readme: str) -> str:
    start = readme.index("## Two commands")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


@pytest.mark.parametrize(
    "fact",
    [
        r"apt-get",
        r"Debian 12",
        r"Ubuntu",
        r"\broot\b",
        r"\bsudo\b",
        r"Python 3\.11",
        r"\d+(\.\d+)? ?GB",  # the Debian packages' disk
        r"\d+ ?MB",  # .venv, node_modules
        r"\.venv",
        r"node_modules",
        r"Chromium",
        r"Kamailio",
        r"baresip",
        r"\d+ min",  # how long the installs and the suite take
    ],
)
def test_the_readme_says_what_the_two_commands_need_before_them(fact: str) -> None:
    section = first_section((REPO / "README.md").read_text())
    before_commands = section[: section.index("```sh")]
    assert re.search(fact, before_commands), f"README's first section no longer states {fact!r}"
