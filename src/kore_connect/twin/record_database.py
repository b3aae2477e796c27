"""The twin's own small SQLite databases (calls, Kore interactions): one connection shared by
threads behind a lock, autocommit, WAL so that another process may read while one writes. They hold
callers' numbers: created 0600 (SQLite gives the -wal and -shm files the same mode), no link followed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kore_connect.private_files import private_database


def open_record_database(path: Path, schema: str) -> sqlite3.Connection:
    private_database(path)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(schema)
    return connection
