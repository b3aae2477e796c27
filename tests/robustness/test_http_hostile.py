"""Hostile HTTP against the served metadata API (the local API Gateway, the real authorizer and store
functions, SQLite): 10,000 wrong tokens, tokens close to the right one, bodies built to hurt, and a
header that tries to smuggle a second line. Nothing wrong is ever stored, nothing crashes."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kore_connect.sessions.sqlite import SQLiteSessionStore
from tests.servers import serving_metadata_api

TOKEN = "hostile-right-token-0123456789abcdef"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    database = tmp_path_factory.mktemp("hostile-http") / "sessions.db"
    with serving_metadata_api(database, TOKEN) as base:
        yield f"{base}/prod/kore-metadata", database


def store(url: str, token: str | None, body: bytes | str, contact_id: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["authorizationToken"] = token
    return httpx.post(
        url, params={"contactId": contact_id or str(uuid.uuid4())}, content=body, headers=headers
    )


def stored(database: Path, contact_id: str) -> str | None:
    sessions = SQLiteSessionStore(database)
    try:
        record = sessions.get(contact_id)
    finally:
        sessions.close()
    return None if record is None else record.metadata


@pytest.mark.slow
def test_two_thousand_wrong_tokens_are_all_refused_and_the_right_one_still_works(
    api: tuple[str, Path],
) -> None:
    url, database = api
    near_misses = [
        TOKEN.upper(),
        TOKEN[:-1],
        TOKEN + "x",
        TOKEN + "\t" + TOKEN,
        TOKEN.replace("-", "_"),
        f"Bearer {TOKEN}",
        TOKEN * 2,
        TOKEN[:16],
    ]
    # Each one invokes the authorizer in its worker (about 12 ms on 2 cores): 2,000 keep the suite's time.
    wrong = near_misses + [f"wrong-{n:05d}-{uuid.uuid4().hex}" for n in range(2_000 - len(near_misses))]
    contact_ids = [str(uuid.uuid4()) for _ in wrong]

    async def attack() -> Counter[int]:
        slots = asyncio.Semaphore(50)
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=50)) as http:

            async def one(token: str, contact_id: str) -> int:
                async with slots:
                    answer = await http.post(
                        url,
                        params={"contactId": contact_id},
                        json={"x_metadata": "forged"},
                        headers={"authorizationToken": token},
                    )
                    return answer.status_code

            # the right token first, so that its Allow is in the authorizer cache during the attack
            right = await http.post(
                url,
                params={"contactId": str(uuid.uuid4())},
                json={"a": 1},
                headers={"authorizationToken": TOKEN},
            )
            assert right.status_code == 200
            return Counter(
                await asyncio.gather(*(one(t, c) for t, c in zip(wrong, contact_ids, strict=True)))
            )

    statuses = asyncio.run(attack())
    assert set(statuses) <= {401, 403}, statuses  # never accepted, never a 5xx
    assert all(stored(database, contact) is None for contact in contact_ids[:200] + contact_ids[-200:])
    after = store(url, TOKEN, json.dumps({"still": "works"}))
    assert after.status_code == 200


@pytest.mark.parametrize(
    ("what", "body", "status"),
    [
        ("an array nested 15,000 deep", b"[" * 15_000 + b"]" * 15_000, 400),  # 30 KB: under the limit
        ("an object nested 5,000 deep", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400),
        ("invalid UTF-8", b'{"x_metadata": "\xff\xfe"}', 400),
        ("a lone surrogate", b'{"x_metadata": "\\ud800"}', 400),
        ("duplicate keys", b'{"a": 1, "a": 2}', 400),
        ("NaN", b'{"a": NaN}', 400),
        ("not an object", b"[1, 2, 3]", 400),
        ("empty", b"", 400),
        ("just over 32 KB", json.dumps({"x": "y" * 33_000}).encode(), 413),
        ("11 MB", b'{"x": "' + b"y" * 11_000_000 + b'"}', 413),
    ],
)
def test_bodies_built_to_hurt_get_a_clear_refusal_and_store_nothing(
    api: tuple[str, Path], what: str, body: bytes, status: int
) -> None:
    url, database = api
    contact_id = str(uuid.uuid4())
    answer = store(url, TOKEN, body, contact_id)
    assert answer.status_code == status, (what, answer.text[:300])
    assert stored(database, contact_id) is None


def test_a_header_that_smuggles_a_second_line_is_refused(api: tuple[str, Path]) -> None:
    url, database = api
    target = urlsplit(url)
    contact_id = str(uuid.uuid4())
    body = b'{"x_metadata": "smuggled"}'
    for separator in (b"\r\n ", b"\n", b"\r"):  # obsolete line folding, bare LF, bare CR
        request = (
            f"POST {target.path}?contactId={contact_id} HTTP/1.1\r\nHost: {target.netloc}\r\n".encode()
            + b"authorizationToken: wrong"
            + separator
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=10) as raw:
            raw.sendall(request)
            answer = raw.recv(4096)
        assert not answer.startswith(b"HTTP/1.1 200"), (separator, answer[:200])
    assert stored(database, contact_id) is None
