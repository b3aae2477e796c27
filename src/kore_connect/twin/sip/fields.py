"""The header values a SIP stack acts on, read into data: Via, addresses (From, To, Contact, Route),
CSeq, and the user part of a URI (RFC 3261 §19.1, §20, §25; pure).

Each `parse` raises `FieldError` with a reason phrase fit for a 400; `str()` writes a value back in
its canonical form. Values are read as RFC 3261's grammar has them; the leniency RFC 4475 asks for
(white space around separators, case in names) is taken, anything else is an error.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

WORD = r"[A-Za-z0-9.!%*_+`'~-]+"  # RFC 3261 §25.1 "token" (a method, a parameter name, a transport)
QUOTED = r'"(?:[^"\\]|\\.)*"'  # §25.1 quoted-string: \" and \\ inside are quoted-pairs
_PARAMETER = re.compile(rf"\s*({WORD})(?:\s*=\s*([^\s;,\"<>]+|{QUOTED}))?\s*", re.DOTALL)
_SENT_PROTOCOL = re.compile(rf"\s*SIP\s*/\s*2\.0\s*/\s*({WORD})\s+", re.IGNORECASE)
_SENT_BY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s;,:\[\]]+)(?:\s*:\s*([0-9]{1,5}))?\s*")
_NAME_ADDR = re.compile(rf"({QUOTED}|[^<\"]*?)\s*<\s*([^>\s]+)\s*>(.*)", re.DOTALL)
_ADDR_SPEC = re.compile(r"([^\s<>;]+)(.*)", re.DOTALL)
_URI_SCHEME = re.compile(r"(sips?|tel):", re.IGNORECASE)
_CSEQ = re.compile(rf"\s*([0-9]{{1,10}})\s+({WORD})\s*")
MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5
MAX_PORT = 65535
DEFAULT_PORT = 5060


class FieldError(ValueError):
    """A header value that does not read as its grammar says. `reason` fits a reason phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Parameters = tuple[tuple[str, str | None], ...]  # (name in lower case, value or None), in order


def parse_parameters(text: str, what: str) -> Parameters:
    """`;a=1;b` -> (("a", "1"), ("b", None)). Empty parameters and stray separators are errors
    (RFC 4475 §3.1.2.1)."""
    if not text.strip():
        return ()
    if not text.lstrip().startswith(";"):
        raise FieldError(f"Bad {what}")
    parameters: list[tuple[str, str | None]] = []
    for part in _split_parameters(text.lstrip()[1:]):
        match = _PARAMETER.fullmatch(part)
        if match is None:
            raise FieldError(f"Bad {what}")
        parameters.append((match.group(1).lower(), match.group(2)))
    return tuple(parameters)


def _split_parameters(text: str) -> list[str]:
    """Split at semicolons outside quoted strings."""
    parts, start, quoted, escaped = [], 0, False, False
    for index, character in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = character == "\\", character != '"'
        elif character == '"':
            quoted = True
        elif character == ";":
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _lenient_parameters(text: str) -> Parameters:
    """The parameters of `text` that read, the others left out (for answering a malformed Via)."""
    parameters: list[tuple[str, str | None]] = []
    for part in _split_parameters(text.split(",", 1)[0].strip().removeprefix(";")):
        match = _PARAMETER.fullmatch(part)
        if match is not None:
            parameters.append((match.group(1).lower(), match.group(2)))
    return tuple(parameters)


def _write_parameters(parameters: Parameters) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in parameters)


def _get(parameters: Parameters, name: str) -> str | None:
    return next((value or "" for key, value in parameters if key == name), None)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via element (§20.42): `SIP/2.0/UDP host:port;branch=...;rport`."""

    transport: str
    host: str
    port: int | None = None
    parameters: Parameters = ()

    @classmethod
    def parse(cls, text: str, *, strict: bool = True) -> Via:
        """`strict=False` skips malformed parameters instead of refusing the Via: enough to send
        a 400 back to it (the sent-by and its port are still checked)."""
        protocol = _SENT_PROTOCOL.match(text)
        if protocol is None:
            raise FieldError("Bad Via")
        sent_by = _SENT_BY.match(text, protocol.end())
        if sent_by is None:
            raise FieldError("Bad Via")
        port = int(sent_by.group(2)) if sent_by.group(2) else None
        if port is not None and not 0 < port <= MAX_PORT:
            raise FieldError("Bad Via Port")  # PROTOS: a port past 65535 must not reach a socket
        rest = text[sent_by.end() :]
        parameters = parse_parameters(rest, "Via") if strict else _lenient_parameters(rest)
        rport = _get(parameters, "rport")
        if rport and not (rport.isascii() and rport.isdigit() and 0 < int(rport) <= MAX_PORT):
            raise FieldError("Bad Via Port")
        return cls(protocol.group(1).upper(), sent_by.group(1), port, parameters)

    @property
    def branch(self) -> str:
        return _get(self.parameters, "branch") or ""

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def get(self, name: str) -> str | None:
        """A parameter's value ("" when it has none), or None when absent."""
        return _get(self.parameters, name.lower())

    def with_parameter(self, name: str, value: str | None) -> Via:
        kept = tuple(p for p in self.parameters if p[0] != name.lower())
        return Via(self.transport, self.host, self.port, (*kept, (name.lower(), value)))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{_write_parameters(self.parameters)}"


def stamp(via: Via, source: tuple[str, int], *, reliable: bool) -> Via:
    """The top Via of a request as the server transport leaves it (RFC 3261 §18.2.1, RFC 3581
    §4): `received` when the sent-by host is not the source address, `rport` filled in when the
    sender asked for it. Over TCP both always, so that the answer goes back on the connection."""
    if reliable or via.host.strip("[]") != source[0]:
        via = via.with_parameter("received", source[0])
    if reliable or via.get("rport") is not None:
        via = via.with_parameter("rport", str(source[1]))
    return via


def reply_address(via: Via) -> tuple[str, int]:
    """Where the answer to a request goes (RFC 3261 §18.2.2, RFC 3581 §4), from its top Via as
    `stamp` left it: the `received` address, else the sent-by host; the `rport` port, else the
    sent-by port, else 5060."""
    host = via.get("received") or via.host
    rport = via.get("rport")
    port = int(rport) if rport else via.port or DEFAULT_PORT
    return host.strip("[]"), port


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec (§20.10, §25.1): `"Name" <sip:user@host>;tag=x`."""

    uri: str
    display_name: str = ""
    parameters: Parameters = ()
    bracketed: bool = True

    @classmethod
    def parse(cls, text: str, what: str = "Address") -> Address:
        text = text.strip()
        named = _NAME_ADDR.fullmatch(text)
        if named is not None:
            # An unquoted display name should be tokens (RFC 4475 §3.1.2.15 allows a liberal
            # reader): nothing reads or forwards display names here, so any text before < is taken.
            display = named.group(1).strip()
            uri, rest, bracketed = named.group(2), named.group(3), True
        else:
            spec = _ADDR_SPEC.fullmatch(text)
            if spec is None:
                raise FieldError(f"Bad {what}")
            display, uri, rest, bracketed = "", spec.group(1), spec.group(2), False
        if not _URI_SCHEME.match(uri) or len(uri.split(":", 1)[1]) == 0:
            raise FieldError(f"Bad {what}")
        return cls(uri, display, parse_parameters(rest, what), bracketed)

    @property
    def tag(self) -> str | None:
        return _get(self.parameters, "tag")

    def with_tag(self, tag: str) -> Address:
        kept = tuple(p for p in self.parameters if p[0] != "tag")
        return Address(self.uri, self.display_name, (*kept, ("tag", tag)), self.bracketed)

    def __str__(self) -> str:
        name = f"{self.display_name} " if self.display_name else ""
        return f"{name}<{self.uri}>{_write_parameters(self.parameters)}"


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str = field(default="INVITE")

    @classmethod
    def parse(cls, text: str) -> CSeq:
        match = _CSEQ.fullmatch(text)
        if match is None or int(match.group(1)) > MAX_CSEQ:
            raise FieldError("Bad CSeq")
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")  # RFC 3261 §25.1


def uri_user(uri: str) -> str:
    """The user part of a SIP URI: sip:+12065551118@host;params -> +12065551118. An escaped
    unreserved character is the character (%31 is 1: RFC 3261 §19.1.4 compares URIs so); an escaped
    reserved one is not (%2B is not +), and stays as it came, as do escaped control characters."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user = rest.split("@", 1)[0] if "@" in rest else ""
    return _ESCAPED.sub(_unescaped, user)


def _unescaped(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else escape[0]


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """The host and port of a sip: URI (`sip:user@host:port;params` -> (host, port)); the port is
    None when the URI names none. Raises FieldError for a URI with no host."""
    rest = uri.split(":", 1)[1] if ":" in uri else ""
    hostport = rest.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    match = _SENT_BY.fullmatch(hostport)
    if not hostport or match is None:
        raise FieldError("Bad URI")
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and not 0 < port <= MAX_PORT:
        raise FieldError("Bad URI Port")
    return match.group(1).strip("[]"), port


def uri_host(host: str) -> str:
    """A host as a SIP URI or Via writes it: an IPv6 address in brackets (RFC 3261 §25.1)."""
    return f"[{host}]" if ":" in host else host
