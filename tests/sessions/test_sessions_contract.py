"""One contract, every backend: SQLite, moto, and dynalite over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kore_connect.sessions import SessionRecord
from tests.conftest import CONTACT_ID, FakeClock

METADATA = json.dumps({"x_metadata": "Hello from Kore", "n": 1.5, "big": 2**64 + 1}, separators=(",", ":"))
OTHER_CONTACT = "0b6a7c1e-9d2f-4a38-8e51-3f2c4d5e6a7b"


def test_a_stored_record_comes_back_exactly(make_store: Any, clock: FakeClock) -> None:
    # GIVEN a store
    store = make_store(clock)
    # WHEN metadata is stored
    written = store.put(CONTACT_ID, METADATA, ttl_seconds=3600)
    # THEN the same record comes back, text for text
    assert store.get(CONTACT_ID) == written
    assert written == SessionRecord(
        CONTACT_ID, METADATA, stored_at=clock.now, expires_at=int(clock.now) + 3600
    )


def test_an_unknown_contact_has_no_record(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock)
    store.put(CONTACT_ID, METADATA, ttl_seconds=3600)
    assert store.get(OTHER_CONTACT) is None


def test_records_of_different_contacts_do_not_mix(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock)
    store.put(CONTACT_ID, '{"who":"first"}', ttl_seconds=3600)
    store.put(OTHER_CONTACT, '{"who":"second"}', ttl_seconds=3600)
    assert store.get(CONTACT_ID).metadata == '{"who":"first"}'
    assert store.get(OTHER_CONTACT).metadata == '{"who":"second"}'


def test_a_second_put_replaces_the_first(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock)
    store.put(CONTACT_ID, '{"attempt":1}', ttl_seconds=3600)
    clock.now += 5
    store.put(CONTACT_ID, '{"attempt":2}', ttl_seconds=3600)
    record = store.get(CONTACT_ID)
    assert record.metadata == '{"attempt":2}'
    assert record.expires_at == int(clock.now) + 3600


def test_an_expired_record_is_never_returned(make_store: Any, clock: FakeClock) -> None:
    # GIVEN a record with a one-minute expiry, still physically in the store (no sweeper has run)
    store = make_store(clock)
    store.put(CONTACT_ID, METADATA, ttl_seconds=60)
    clock.now += 59
    assert store.get(CONTACT_ID) is not None
    # WHEN its expiry time is reached
    clock.now += 1
    # THEN it is gone for readers
    assert store.get(CONTACT_ID) is None


def test_unicode_and_large_text_survive(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock)
    text = json.dumps({"名前": "Zoë 👋", "pad": "x" * 30_000}, ensure_ascii=False, separators=(",", ":"))
    store.put(CONTACT_ID, text, ttl_seconds=3600)
    assert store.get(CONTACT_ID).metadata == text


def test_an_empty_contact_id_is_refused_before_any_io(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock)
    with pytest.raises(ValueError) as raised:
        store.put("", METADATA, ttl_seconds=60)
    assert str(raised.value) == "contact_id must not be empty"


@pytest.mark.parametrize("ttl_seconds", [0, -1])
def test_a_record_that_would_never_live_is_refused(
    make_store: Any, clock: FakeClock, ttl_seconds: int
) -> None:
    store = make_store(clock)
    with pytest.raises(ValueError) as raised:
        store.put(CONTACT_ID, METADATA, ttl_seconds=ttl_seconds)
    assert str(raised.value) == "ttl_seconds must be positive"
    assert store.get(CONTACT_ID) is None
    assert (
        store.put(CONTACT_ID, METADATA, ttl_seconds=1).expires_at == int(clock.now) + 1
    )  # one second is enough
