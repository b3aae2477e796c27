"""What an installed kore-connect carries besides Python modules: the Kore snippets and the template
the local twin serves."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_the_wheel_carries_the_snippets_and_the_template(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("kore_connect-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("kore_connect/template.yaml") == (REPO / "template.yaml").read_bytes()
    assert {
        "kore_connect/korebot/snippets/start_flow.js",
        "kore_connect/korebot/snippets/agent_transfer_script.js",
        *(f"kore_connect/twin/dashboard/templates/{page}.html" for page in ("base", "calls", "rows", "call")),
    } <= names
    assert not any(name.startswith("tests/") for name in names)
