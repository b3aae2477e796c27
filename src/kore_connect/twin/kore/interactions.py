"""Every call the local gateway handled, as Kore's Dashboard > Interactions lists them, in SQLite."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from kore_connect.twin.local_db import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    call_id TEXT PRIMARY KEY,
    contact_id TEXT,
    did TEXT,
    source TEXT,
    started_at REAL,
    ended TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS interactions_contact ON interactions (contact_id);
"""


class InteractionStore:
    def __init__(self, path: Path) -> None:
        self._connection = open_database(path, _SCHEMA)
        self._lock = threading.Lock()

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace the record of a call (keyed by its Call-ID)."""
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record["callId"],
                    record.get("contactId"),
                    record.get("did"),
                    record.get("source"),
                    record.get("startedAt"),
                    record.get("ended"),
                    json.dumps(record),
                ),
            )

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT record FROM interactions WHERE call_id = ?", (call_id,)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def for_contact(self, contact_id: str) -> dict[str, Any] | None:
        """The latest interaction of the Connect contact `contact_id`, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT record FROM interactions WHERE contact_id = ? ORDER BY started_at DESC LIMIT 1",
                (contact_id,),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._connection.execute("SELECT record FROM interactions ORDER BY started_at").fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def close(self) -> None:
        self._connection.close()
