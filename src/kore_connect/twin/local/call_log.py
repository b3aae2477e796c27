"""Every call the local twin placed (its `CallReport`), in SQLite: what the dashboard lists and
searches (by contact ID or number, as Connect's Contact Search does)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from kore_connect.twin.local.report import CallReport
from kore_connect.twin.record_database import open_record_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    contact_id TEXT PRIMARY KEY,
    placed_at  REAL NOT NULL,
    caller     TEXT NOT NULL,
    did        TEXT NOT NULL,
    ended      TEXT NOT NULL,
    report     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_placed_at ON calls (placed_at);
"""


class CallLog:
    def __init__(self, path: Path) -> None:
        self._connection = open_record_database(path, _SCHEMA)
        self._lock = threading.Lock()

    def add(self, report: CallReport) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report.contact.contact_id,
                    time.time(),
                    report.contact.customer,
                    report.did,
                    str(report.contact.ended),
                    json.dumps(report.to_json()),
                ),
            )

    def get(self, contact_id: str) -> CallReport | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT report FROM calls WHERE contact_id = ?", (contact_id.strip().lower(),)
            ).fetchone()
        return None if row is None else CallReport.from_json(json.loads(row[0]))

    def search(self, query: str = "", limit: int = 200) -> list[CallReport]:
        """The latest calls first; `query` matches a contact ID (or its start) or a number (a part of it)."""
        query = query.strip()
        with self._lock:
            if not query:
                rows = self._connection.execute(
                    "SELECT report FROM calls ORDER BY placed_at DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                like = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                rows = self._connection.execute(
                    "SELECT report FROM calls WHERE contact_id LIKE ? ESCAPE '\\'"
                    " OR caller LIKE ? ESCAPE '\\' OR did LIKE ? ESCAPE '\\'"
                    " ORDER BY placed_at DESC LIMIT ?",
                    (f"{like.lower()}%", f"%{like}%", f"%{like}%", limit),
                ).fetchall()
        return [CallReport.from_json(json.loads(row[0])) for row in rows]

    def count(self) -> int:
        with self._lock:
            (n,) = self._connection.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(n)

    def close(self) -> None:
        self._connection.close()
