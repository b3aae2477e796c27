"""After calls through the whole twin, every log line and every stored record is scanned: the token
is nowhere (logs, stores, interactions, the calls, the command's output), and no metadata value the
bot sent appears in any log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli_up import Up

TOKEN = "scan-me-if-you-can-0123456789-abcdefgh"


def test_no_token_anywhere_and_no_metadata_in_logs_after_calls(tmp_path: Path) -> None:
    running = Up(tmp_path, env={"KORE_CONNECT_API_TOKEN": TOKEN})
    try:
        results = [running.call("--json"), running.call("--count", "20", "--concurrency", "5", "--json")]
    finally:
        running.stop()
    reports = [json.loads(line) for result in results for line in result.stdout.splitlines()]
    assert len(reports) == 21 and all(r["ended"] == "queued" for r in reports)
    metadata = {r["metadata"]["stored"]["x_metadata"] for r in reports}
    home = tmp_path / ".kore-connect"
    files = [path for path in home.rglob("*") if path.is_file()] + [tmp_path / "up.out"]
    logs = [path for path in files if path.suffix in (".log", ".out")]
    assert {p.name for p in logs} >= {"api.log", "gateway.log", "functions.log", "up.out"}
    assert {p.name for p in files} >= {"sessions.db", "interactions.db", "calls.db"}
    for path in files:  # every byte of every file: logs, SQLite databases and their WAL files
        assert TOKEN.encode() not in path.read_bytes(), path
    for result in results:
        assert TOKEN not in result.stdout + result.stderr
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [value for value in metadata if value in text]
        assert leaked == [], (path.name, leaked[:2])
        assert "Hello from Kore" not in text, path.name
