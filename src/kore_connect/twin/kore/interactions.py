"""Every call the local gateway handled, as Kore's Dashboard > Interactions lists them: the record
of one call (`Interaction`, with what each node did and how much media came), its JSON form, and
the SQLite store that keeps them."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kore_connect.twin.record_database import open_record_database
from kore_connect.twin.sip.trace import TracedMessage

NodeKind = Literal["script", "message", "service", "transfer"]
NodeStatus = Literal["ok", "error", "skipped", "stopped"]


@dataclass(frozen=True, slots=True)
class NodeResult:
    """What one node of the bot did."""

    node: str
    kind: NodeKind
    status: NodeStatus
    detail: str
    http_status: int | None = None  # the service node's answer (the last attempt's)
    attempts: int = 0
    request: str | None = None  # the service node's request line, "POST <url>" (headers never: the token)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "status": self.status,
            "detail": self.detail,
            "httpStatus": self.http_status,
            "attempts": self.attempts,
            "request": self.request,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> NodeResult:
        return cls(
            document["node"],
            document["kind"],
            document["status"],
            document["detail"],
            document.get("httpStatus"),
            document.get("attempts", 0),
            document.get("request"),
        )


@dataclass(frozen=True, slots=True)
class MediaCount:
    """The caller's media at the call's own port (media.RtpSink)."""

    port: int
    packets: int = 0  # RTP version 2 packets
    octets: int = 0  # their payload's bytes
    other: int = 0  # datagrams that are not RTP
    source: str | None = None  # where the first RTP packet came from

    def to_json(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "packets": self.packets,
            "octets": self.octets,
            "other": self.other,
            "from": self.source,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> MediaCount:
        return cls(
            document["port"], document["packets"], document["octets"], document["other"], document.get("from")
        )


@dataclass(slots=True)
class Interaction:
    """One call at the gateway, filled in while the call goes on and saved when it has ended."""

    call_id: str
    contact_id: str | None  # the INVITE's X-Amzn-ConnectContactId
    did: str
    source: str  # host:port the INVITE came from
    started_at: float | None  # wall clock (None in reports written before it was kept)
    sip: list[TracedMessage] = field(default_factory=list)  # first lines only
    nodes: list[NodeResult] = field(default_factory=list)
    service_status: int | None = None  # the last service node's HTTP status
    instance_session_id: str | None = None  # what the Agent AI widget fetches the bot's history by
    rtp: MediaCount | None = None
    ended: str | None = None  # how the call ended; None while it goes on
    ended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "contactId": self.contact_id,
            "did": self.did,
            "source": self.source,
            "startedAt": self.started_at,
            "sip": [message.to_json() for message in self.sip],
            "nodes": [node.to_json() for node in self.nodes],
            "serviceStatus": self.service_status,
            "instanceSessionId": self.instance_session_id,
            "rtp": self.rtp.to_json() if self.rtp is not None else None,
            "ended": self.ended,
            "endedAt": self.ended_at,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Interaction:
        rtp = document.get("rtp")
        return cls(
            call_id=document["callId"],
            contact_id=document.get("contactId"),
            did=document["did"],
            source=document["source"],
            started_at=document.get("startedAt"),
            sip=[TracedMessage.from_json(message) for message in document["sip"]],
            nodes=[NodeResult.from_json(node) for node in document["nodes"]],
            service_status=document.get("serviceStatus"),
            instance_session_id=document.get("instanceSessionId"),
            rtp=MediaCount.from_json(rtp) if rtp is not None else None,
            ended=document.get("ended"),
            ended_at=document.get("endedAt"),
        )


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
        self._connection = open_record_database(path, _SCHEMA)
        self._lock = threading.Lock()

    def save(self, record: Interaction) -> None:
        """Insert or replace the record of a call (keyed by its Call-ID)."""
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.call_id,
                    record.contact_id,
                    record.did,
                    record.source,
                    record.started_at,
                    record.ended,
                    json.dumps(record.to_json()),
                ),
            )

    def get(self, call_id: str) -> Interaction | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT record FROM interactions WHERE call_id = ?", (call_id,)
            ).fetchone()
        return None if row is None else Interaction.from_json(json.loads(row[0]))

    def for_contact(self, contact_id: str) -> Interaction | None:
        """The latest interaction of the Connect contact `contact_id`, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT record FROM interactions WHERE contact_id = ? ORDER BY started_at DESC LIMIT 1",
                (contact_id,),
            ).fetchone()
        return None if row is None else Interaction.from_json(json.loads(row[0]))

    def all(self) -> list[Interaction]:
        with self._lock:
            rows = self._connection.execute("SELECT record FROM interactions ORDER BY started_at").fetchall()
        return [Interaction.from_json(json.loads(row[0])) for row in rows]

    def close(self) -> None:
        self._connection.close()
