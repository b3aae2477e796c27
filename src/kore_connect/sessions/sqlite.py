"""The SQLite session store: the embedded default for local runs.

Safe with concurrent writers, threads and processes alike: each thread has its own connection,
the database runs in WAL mode (readers never block the writer), and a writer waits up to
`busy_timeout` for the lock before the call counts as unavailable. `synchronous=FULL` makes a
commit durable before `put` returns, so a record the bot was told is stored survives a crash.
Expired rows are swept now and then, as DynamoDB's TTL does; `get` never returns one either way.
The database holds callers' metadata: it is created 0600 (and so are its -wal and -shm files), and
a link in its place is refused.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kore_connect.private_files import FOLDER_MODE, UnsafePathError, private_database
from kore_connect.sessions.base import (
    Clock,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SessionStoreUnavailable,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    contact_id TEXT PRIMARY KEY,
    metadata   TEXT NOT NULL,
    stored_at  REAL NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
"""
_UPSERT = """
INSERT INTO sessions (contact_id, metadata, stored_at, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (contact_id) DO UPDATE SET
    metadata = excluded.metadata, stored_at = excluded.stored_at, expires_at = excluded.expires_at
"""
_SELECT = "SELECT contact_id, metadata, stored_at, expires_at FROM sessions WHERE contact_id = ?"
_SWEEP = "DELETE FROM sessions WHERE expires_at <= ?"

SWEEP_INTERVAL_SECONDS = 60.0


class SQLiteSessionStore(SessionStore):
    def __init__(self, path: str | Path, *, clock: Clock | None = None, busy_timeout: float = 5.0) -> None:
        super().__init__(clock=clock)
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        try:
            self.path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionStoreError(f"cannot create the folder for {self.path}: {exc.strerror}") from exc
        try:
            private_database(self.path)
        except UnsafePathError as exc:
            raise SessionStoreError(f"the session store {exc}") from exc
        except OSError as exc:
            raise SessionStoreError(f"cannot create {self.path}: {exc.strerror}") from exc
        with _translated_errors("opening"):
            self._connection().executescript(_SCHEMA)

    def _write(self, record: SessionRecord) -> None:
        with _translated_errors("storing"):
            connection = self._connection()
            connection.execute(
                _UPSERT, (record.contact_id, record.metadata, record.stored_at, record.expires_at)
            )
            if record.stored_at >= self._next_sweep:
                self._next_sweep = record.stored_at + SWEEP_INTERVAL_SECONDS
                connection.execute(_SWEEP, (int(record.stored_at),))

    def _read(self, contact_id: str) -> SessionRecord | None:
        with _translated_errors("reading"):
            row = self._connection().execute(_SELECT, (contact_id,)).fetchone()
        if row is None:
            return None
        return SessionRecord(contact_id=row[0], metadata=row[1], stored_at=row[2], expires_at=row[3])

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: each statement is its own transaction, committed before execute returns.
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection


@contextmanager
def _translated_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        # "database is locked" past the busy timeout, a full disk, an unreadable file.
        raise SessionStoreUnavailable(f"SQLite failed while {doing} the session: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise SessionStoreError(f"SQLite failed while {doing} the session: {exc}") from exc
