"""SIP messages as data, and the parser that reads them off the wire (RFC 3261 §7, §18.3, §20; pure).

How it works. `parse(data)` reads one whole message (a datagram, or one that `framing` cut from a
TCP stream): the start line, the header fields (folded lines joined, RFC 3261 §7.3.1), then the
body, as long as Content-Length says. It returns a `Request` or a `Response`, or raises
`ParseError`, which names what is wrong in words fit for a reason phrase and carries what could be
read of the request, so that the caller can still answer (400, or 513 for a message over the size
limit) when it has a Via to answer to. No other exception leaves `parse`, whatever the bytes.

Messages are frozen. Header fields keep their names as written and their order; lookups are by
name in any case, and the compact forms (`v`, `i`, `f`, ...) are the same headers as their long
names. `bytes(message)` writes a message back out, with the Content-Length of its body.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

MAX_MESSAGE_BYTES = 16 * 1024  # Connect's INVITE is about 1.5 KB; RFC 3261 §18.1.1 keeps UDP under 1,300
MAX_HEADER_FIELDS = 256  # header fields in one message, counting each field of a repeated header
SIP_2_0 = "SIP/2.0"

# RFC 3261 §7.3.3 compact forms, and the ones later RFCs registered (RFC 3265, 3515, 3892, 4028).
COMPACT_FORMS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
}
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1): these may be split and joined.
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "require", "proxy-require", "supported",
        "unsupported", "allow", "accept", "accept-encoding", "accept-language", "content-encoding",
        "content-language", "in-reply-to", "allow-events", "path", "service-route",
    }
)  # fmt: skip

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")  # RFC 3261 §25.1 token: a method, a header name
_STATUS_LINE = re.compile(r"(SIP/[0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?", re.IGNORECASE)
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: "²".isdigit() is True
_FOLD = re.compile(r"\r?\n[ \t]+")  # a line that starts with white space continues the one above
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than HT, in a line
# In a header value, a control character is allowed as a quoted-pair (RFC 3261 §25.1; RFC 4475
# §3.1.1.4 puts BEL, NUL and DEL in a display name so).
_FORBIDDEN_IN_VALUE = re.compile(r"(?<!\\)[\x00-\x08\x0a-\x1f\x7f]")


class ParseError(Exception):
    """Bytes that are not a SIP message we can read. `reason` fits a reason phrase; `status` is
    what a request gets in answer (400, or 513 when too large); `request` is what could be read of
    it (its start line, the header fields up to the fault), or None when not even that."""

    def __init__(self, reason: str, *, status: int = 400, request: Request | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.request = request


@functools.lru_cache(maxsize=1024)  # names repeat (a few dozen); a peer's odd ones are bounded
def canonical(name: str) -> str:
    """The name a header is looked up by: lower case, compact forms spelled out."""
    lowered = name.strip().lower()
    return COMPACT_FORMS.get(lowered, lowered)


@dataclass(frozen=True, slots=True)
class Headers:
    """A message's header fields in order, as (name as written, value) pairs."""

    fields: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, *fields: tuple[str, str]) -> Headers:
        return cls(tuple(fields))

    def get(self, name: str) -> str | None:
        """The value of the first field named `name`, or None."""
        wanted = canonical(name)
        return next((value for key, value in self.fields if canonical(key) == wanted), None)

    def get_all(self, name: str) -> tuple[str, ...]:
        """The value of every field named `name`, in order, each as it came (not split)."""
        wanted = canonical(name)
        return tuple(value for key, value in self.fields if canonical(key) == wanted)

    def values(self, name: str) -> tuple[str, ...]:
        """The elements of a list header across all its fields: `Via: a, b` and `Via: a` twice
        are the same (RFC 3261 §7.3.1). A header that is not a list comes back field by field."""
        if canonical(name) not in LIST_HEADERS:
            return self.get_all(name)
        return tuple(element for value in self.get_all(name) for element in split_list(value))

    def count(self, name: str) -> int:
        return len(self.get_all(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def without(self, *names: str) -> Headers:
        unwanted = {canonical(name) for name in names}
        return Headers(tuple(f for f in self.fields if canonical(f[0]) not in unwanted))

    def adding(self, name: str, value: str) -> Headers:
        return Headers((*self.fields, (name, value)))

    def setting(self, name: str, value: str) -> Headers:
        """These headers with `name` holding `value` alone: in place of the first field so named,
        or at the end."""
        wanted = canonical(name)
        kept: list[tuple[str, str]] = []
        placed = False
        for key, old in self.fields:
            if canonical(key) != wanted:
                kept.append((key, old))
            elif not placed:
                kept.append((name, value))
                placed = True
        return Headers(tuple(kept) if placed else (*kept, (name, value)))

    def with_list(self, name: str, elements: Iterable[str]) -> Headers:
        """`name` as one field per element, where the first field so named was (or at the end)."""
        wanted = canonical(name)
        kept: list[tuple[str, str]] = []
        new = [(name, element) for element in elements]
        for key, value in self.fields:
            if canonical(key) != wanted:
                kept.append((key, value))
            elif new:
                kept.extend(new)
                new = []
        return Headers((*kept, *new))


def split_list(value: str) -> list[str]:
    """`a, "b, c" <sip:d,e>, f` -> [a, "b, c" <sip:d,e>, f]: commas inside quotes and <> do not split."""
    parts: list[str] = []
    start, depth, quoted, escaped = 0, 0, False, False
    for index, character in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            escaped = character == "\\"
            quoted = character != '"'
        elif character == '"':
            quoted = True
        elif character == "<":
            depth += 1
        elif character == ">":
            depth = max(depth - 1, 0)
        elif character == "," and depth == 0:
            parts.append(value[start:index].strip())
            start = index + 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


@dataclass(frozen=True, slots=True)
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return (self.headers.get("Call-ID") or "").strip()

    @property
    def cseq_method(self) -> str:
        """The method of the CSeq header, in upper case ("" when it has none)."""
        parts = (self.headers.get("CSeq") or "").split()
        return parts[1].upper() if len(parts) == 2 else ""

    @property
    def cseq_number(self) -> int | None:
        parts = (self.headers.get("CSeq") or "").split()
        return int(parts[0]) if parts and _DIGITS.fullmatch(parts[0]) else None

    @property
    def top_via(self) -> str | None:
        vias = self.headers.values("Via")
        return vias[0] if vias else None

    def _head_and_body(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{name}: {value}" for name, value in self.headers.without("Content-Length"))
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


@dataclass(frozen=True, slots=True)
class Request(_Message):
    method: str = "OPTIONS"
    uri: str = ""
    version: str = SIP_2_0
    start_line: str = ""  # as it came (empty for a request we build): its spacing is evidence

    def __bytes__(self) -> bytes:
        return self._head_and_body(f"{self.method} {self.uri} {self.version}")

    def replacing(self, **changes: object) -> Request:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Response(_Message):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_2_0

    def __bytes__(self) -> bytes:
        return self._head_and_body(f"{self.version} {self.status} {self.reason}")

    def replacing(self, **changes: object) -> Response:
        return replace(self, **changes)  # type: ignore[arg-type]


Message = Request | Response


def parse(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """One SIP message from `data`, or ParseError saying why not (RFC 3261 §7, §18.3).

    Over the size limit, the head is still read as far as it goes, so that a request with a
    readable Via can be answered 513. A body longer than Content-Length is cut to it (§18.3: over
    UDP the rest is not ours); a shorter one is an error. Without Content-Length the body is the
    rest of `data` (a datagram; a stream's framing requires the header)."""
    try:
        return _parse(data, max_bytes)
    except ParseError:
        raise
    except Exception as exc:  # a gap in the rules above must still not escape as a crash
        raise ParseError("Unreadable Message") from exc


def _parse(data: bytes, max_bytes: int) -> Message:
    data = data.lstrip(b"\r\n")  # §7.5: CRLFs before the start line are ignored
    if not data:
        raise ParseError("Empty Message")
    too_large = len(data) > max_bytes
    head_bytes, separator, rest = _split_head(data[:max_bytes] if too_large else data)
    lines = _FOLD.sub(" ", head_bytes.decode("utf-8", "surrogateescape")).replace("\r\n", "\n").split("\n")
    if too_large and not separator:
        lines = lines[:-1] or [""]  # cut off by the limit: its last line may be a part of a line
    elif not separator and len(lines) > 1 and not lines[-1]:
        lines.pop()  # the line break that ends the last header line, and no empty line after it
    message, fault = _start(lines[0])
    headers, header_fault = _headers(lines[1:])
    if message is not None:
        message = replace(message, headers=headers)
    request = message if isinstance(message, Request) else None
    if too_large:
        raise ParseError("Message Too Large", status=513, request=request)
    fault = fault or header_fault or (None if separator else "No Blank Line After The Headers")
    if fault is not None or message is None:
        raise ParseError(fault or "Bad Start Line", request=request)
    return replace(message, body=_body(headers, rest, request))


def _split_head(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Head, separator, body: at the first empty line (CRLF CRLF, or LF LF from a sloppy peer)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if lf != -1 and (crlf == -1 or lf < crlf):
        return data[:lf], b"\n\n", data[lf + 2 :]
    if crlf != -1:
        return data[:crlf], b"\r\n\r\n", data[crlf + 4 :]
    return data, b"", b""


def _start(line: str) -> tuple[Request | Response | None, str | None]:
    """The start line as a message with no headers yet, and what is wrong with it (§7.1, §7.2).
    A request line that cannot be read still gives a request, so that its Via can be answered.
    Runs of spaces and a trailing one are taken (RFC 4475 §3.1.2.9, §3.1.2.10)."""
    sound = not _FORBIDDEN.search(line) and not _has_undecodable(line)
    if line[:4].upper() == "SIP/":
        status = _STATUS_LINE.fullmatch(line) if sound else None
        if status is None:
            return None, "Bad Status Line"
        response = Response(
            status=int(status.group(2)), reason=status.group(3) or "", version=status.group(1).upper()
        )
        return response, None
    parts = line.split()
    if not sound or len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[2]):
        return Request(method="", uri="", version="", start_line=line), "Bad Request-Line"
    return Request(method=parts[0], uri=parts[1], version=parts[2].upper(), start_line=line), None


def _headers(lines: list[str]) -> tuple[Headers, str | None]:
    """The header fields, and the first fault (None when all are sound). Fields before the
    fault are kept, so that a request broken further down can still be answered."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if len(fields) == MAX_HEADER_FIELDS:
            return Headers(tuple(fields)), "Too Many Header Fields"
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name.strip()):
            return Headers(tuple(fields)), "Bad Header Line"
        if _FORBIDDEN_IN_VALUE.search(value) or _has_undecodable(line):
            return Headers(tuple(fields)), "Bad Character In Header"
        fields.append((name.strip(), value.strip()))
    return Headers(tuple(fields)), None


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _has_undecodable(text: str) -> bool:
    """Did `text` hold bytes that are not UTF-8 (decoded as lone surrogates)?"""
    return _UNDECODABLE.search(text) is not None


def _body(headers: Headers, rest: bytes, request: Request | None) -> bytes:
    declared = headers.get_all("Content-Length")
    if not declared:
        return rest
    if len(declared) > 1:
        raise ParseError("More Than One Content-Length", request=request)
    text = declared[0].strip()
    if not _DIGITS.fullmatch(text):
        raise ParseError("Bad Content-Length", request=request)
    length = int(text)
    if len(rest) < length:
        raise ParseError("Body Shorter Than Content-Length", request=request)
    return rest[:length]
