"""The SQLite store is safe with concurrent writers: threads and separate processes, no write lost."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kore_connect.sessions.sqlite import SQLiteSessionStore

WRITERS = 4
WRITES_EACH = 150


def _write_many(path: str, writer: int) -> list[str]:
    store = SQLiteSessionStore(path)
    ids = []
    for n in range(WRITES_EACH):
        contact_id = str(uuid.uuid4())
        store.put(contact_id, json.dumps({"writer": writer, "n": n}), ttl_seconds=3600)
        ids.append(contact_id)
    store.close()
    return ids


def test_concurrent_processes_lose_no_write(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SQLiteSessionStore(path).close()  # create the schema once, as `up` does
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        written = pool.starmap(_write_many, [(path, w) for w in range(WRITERS)])
    store = SQLiteSessionStore(path)
    for writer, ids in enumerate(written):
        for n, contact_id in enumerate(ids):
            assert json.loads(store.get(contact_id).metadata) == {"writer": writer, "n": n}


def test_concurrent_threads_on_one_store_lose_no_write(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "threads.db")

    def write(n: int) -> str:
        contact_id = str(uuid.uuid4())
        store.put(contact_id, json.dumps({"n": n}), ttl_seconds=3600)
        return contact_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(write, range(400)))
    assert [json.loads(store.get(c).metadata)["n"] for c in ids] == list(range(400))
