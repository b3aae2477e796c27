"""The session store: one small interface in front of DynamoDB (in AWS) and SQLite (locally).

A record is the bot's metadata for one Connect contact, kept as the compact JSON text the bot
sent, so that it comes back exactly: no float or Decimal conversion ever touches it. Every
record carries `expires_at` (epoch seconds, DynamoDB's TTL attribute); `get` never returns an
expired record, even before a TTL sweeper has removed it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from kore_connect.errors import KoreConnectError

Clock = Callable[[], float]


class SessionStoreError(KoreConnectError):
    """Storage failed: the write may not have happened, the read has no answer."""


class SessionStoreUnavailable(SessionStoreError):
    """A failure that should pass: throttling, an unreachable or busy store, a timeout."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    contact_id: str
    metadata: str  # compact JSON text of an object, exactly as accepted
    stored_at: float  # epoch seconds
    expires_at: int  # epoch seconds

    def is_expired(self, now: float) -> bool:
        return self.expires_at <= now


class SessionStore(ABC):
    """Store and fetch a contact's metadata, with expiry. Subclasses do only the I/O."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock if clock is not None else time.time

    def put(self, contact_id: str, metadata: str, *, ttl_seconds: int) -> SessionRecord:
        """Store `metadata` for `contact_id`, replacing any earlier record, to expire after `ttl_seconds`."""
        if not contact_id:
            raise ValueError("contact_id must not be empty")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = self._clock()
        record = SessionRecord(contact_id, metadata, stored_at=now, expires_at=int(now) + ttl_seconds)
        self._write(record)
        return record

    def get(self, contact_id: str) -> SessionRecord | None:
        """The live record for `contact_id`, or None when there is none or it has expired."""
        record = self._read(contact_id)
        if record is None or record.is_expired(self._clock()):
            return None
        return record

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store is not used afterwards."""

    @abstractmethod
    def _write(self, record: SessionRecord) -> None: ...

    @abstractmethod
    def _read(self, contact_id: str) -> SessionRecord | None: ...
