"""Cutting SIP messages out of a TCP byte stream (RFC 3261 §18.3, RFC 5626 §3.5.1; pure).

Over a stream, a message ends where its Content-Length says (empty when it has none). Feed
bytes in as they arrive; `next_message` gives each complete message's bytes, a `Keepalive` for a
CRLF CRLF ping between messages (answered with a CRLF pong), or None until more bytes come. A
stream that cannot be framed (a head over the size limit, Content-Lengths that disagree) raises
`FramingError`: nothing after it can be trusted, and the connection is closed after answering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kore_connect.twin.sip.message import MAX_MESSAGE_BYTES, ParseError, Request, parse

_CONTENT_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE
)
_LENGTH_LINE = re.compile(rb"[ \t]*(content-length|l)[ \t]*:", re.IGNORECASE)
PING = b"\r\n\r\n"
PONG = b"\r\n"


class FramingError(Exception):
    """The stream cannot be cut into messages any further. `head` is the head of the message that
    could not be framed (for an answer), or empty."""

    def __init__(self, reason: str, status: int, head: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.head = head


@dataclass(frozen=True, slots=True)
class Keepalive:
    """A CRLF CRLF ping (RFC 5626 §3.5.1): answer with `PONG`."""


class StreamFramer:
    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> bytes | Keepalive | None:
        if self._buffer.startswith(PING):
            del self._buffer[: len(PING)]
            return Keepalive()
        while self._buffer.startswith(b"\r\n"):  # §7.5: CRLFs before a start line are ignored
            if len(self._buffer) < len(PING) and PING.startswith(bytes(self._buffer)):
                return None  # perhaps the start of a ping: wait for the rest
            del self._buffer[:2]
        end = self._buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(self._buffer) > self._max:
                raise FramingError("Message Too Large", 513, bytes(self._buffer[: self._max]))
            return None
        head = bytes(self._buffer[:end])
        lengths = set(_CONTENT_LENGTH.findall(head))
        if len(lengths) > 1:
            raise FramingError("Content-Lengths Disagree", 400, head)
        # A stream requires Content-Length (§18.3); without it the body is taken as empty, so that
        # a peer that leaves it out of bodiless requests stays in step.
        length = int(lengths.pop()) if lengths else 0
        total = end + 4 + length
        if total > self._max:
            raise FramingError("Message Too Large", 513, head)
        if len(self._buffer) < total:
            return None
        message = bytes(self._buffer[:total])
        del self._buffer[:total]
        return message

    @property
    def pending(self) -> int:
        """Bytes received and not yet given out."""
        return len(self._buffer)


def head_as_request(head: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Request | None:
    """What the head of a message that could not be framed reads as, to answer it: its request
    line and header fields (Content-Length left out, as the body is not there), or None."""
    lines = [line for line in head.split(b"\r\n") if not _LENGTH_LINE.match(line)]
    try:
        message = parse(b"\r\n".join(lines) + b"\r\n\r\n", max_bytes=max_bytes)
    except ParseError as error:
        return error.request
    return message if isinstance(message, Request) else None
