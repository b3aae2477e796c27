"""RFC 4475's SIP torture tests (section 3), one case at a time, against our SIP code.

The RFC's messages are reference only: each message here is our own, written for our setup (our
DID at 127.0.0.1, answers routed back to the sender by `rport`, a Call-ID and branch of its own per
run) so that it reaches the logic the RFC case aims at. The requests go to the local Kore gateway;
the five responses (unreason, noreason, scalarlg, bigcode, bcast) are what a gateway answers
Connect's connector with. Each request case asserts the answer RFC 3261 calls for (or, where RFC
4475 allows more than one, the one we chose, said in a comment), no handler error, the interaction
recorded (or none), no state left behind, and a gateway that still answers a sound OPTIONS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest
from kore_connect.twin.connect.connector import Gateway, SipConnector
from kore_connect.twin.connect.contact import Contact
from tests.sip_peers import DID, HostileGateway, Running, fresh, header, request

US = f"sip:{DID}@127.0.0.1"
NOBODY = "sip:+4475000@127.0.0.1"  # a DID no route matches
VIA = "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-4475-{n}"
CALL_ID = "Call-ID: 4475-{n}@127.0.0.1"
FROM = "From: <sip:+14155550123@127.0.0.1>;tag=4475"
CONTACT = "Contact: <sip:+14155550123@127.0.0.1:5999>"
FORWARDS = "Max-Forwards: 70"
SDP = (
    "v=0\r\no=- 4475 4475 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
OFFER = "Content-Type: application/sdp"


def sip(*lines: str, body: str | bytes = "") -> bytes:
    """A message from its start line and header lines, a blank line and `body`. Content-Length is
    added unless a line sets it (in either form)."""
    raw = body.encode() if isinstance(body, str) else body
    named = {line.split(":", 1)[0].strip().lower() for line in lines[1:]}
    if not named & {"content-length", "l"}:
        lines = (*lines, f"Content-Length: {len(raw)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + raw


def invite(*lines: str, uri: str = US, body: str = SDP) -> bytes:
    """An INVITE that is sound but for `lines`, which come after the usual headers."""
    return sip(
        f"INVITE {uri} SIP/2.0", VIA, FORWARDS, FROM, f"To: <{uri}>", CALL_ID, "CSeq: 1 INVITE", CONTACT,
        OFFER, *lines, body=body,
    )  # fmt: skip


def options(*lines: str, uri: str = US) -> bytes:
    return sip(
        f"OPTIONS {uri} SIP/2.0", VIA, FORWARDS, FROM, f"To: <{uri}>", CALL_ID, "CSeq: 1 OPTIONS", *lines
    )


def register(*lines: str) -> bytes:
    return sip(
        "REGISTER sip:127.0.0.1 SIP/2.0", VIA, FORWARDS, f"From: <{US}>;tag=4475", f"To: <{US}>", CALL_ID,
        "CSeq: 1 REGISTER", *lines,
    )  # fmt: skip


# What a caller sees of a call: tried, ringing, answered, then the bot's agent transfer (a BYE).
CALL = frozenset({"SIP/2.0 100", "SIP/2.0 180", "SIP/2.0 200", "BYE"})
TRANSFERRED = "agent transfer (SIP BYE, answered 200)"
NOT_FOUND = frozenset({"SIP/2.0 100", "SIP/2.0 404"})
NO_DID = "no DID matches"
CONTACT_ID = "44754475-0000-4000-8000-000000004475"


@dataclass(frozen=True)
class Case:
    name: str
    message: bytes
    answers: frozenset[str]  # every first line that comes back (status lines cut to 11); empty: dropped
    recorded: str | None = None  # how the interaction it records ended (its start); None: none
    holding: tuple[str, ...] = ()  # what the last answer must hold
    source: str = "127.0.0.1"
    contact_id: str | None = None  # the Connect contact ID its interaction holds, where it matters


def only(*lines: str) -> frozenset[str]:
    return frozenset(lines)


MULTIPART = (
    b"--4475-boundary\r\nContent-Type: application/sdp\r\n\r\n" + SDP.encode() + b"\r\n"
    b"--4475-boundary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    + bytes(range(256))
    + b"\r\n--4475-boundary--\r\n"
)

CASES = [
    # 3.1.1: valid messages
    Case(
        "3.1.1.1 wsinv: an INVITE in odd but legal whitespace, case, folding and compact forms",
        sip(
            f"INVITE {US};user=phone SIP/2.0",
            "tO :",
            f"  <{US}>",
            'fROM   :   "Kore \\"torture\\" tester" <sip:+14155550123@127.0.0.1>',
            "   ;  tag =  4475ws",
            "i:4475-{n}@127.0.0.1",
            "CsEq: 0017",
            "\t INVITE",
            "v  :  SIP / 2.0 / UDP",
            "  127.0.0.1:5999 ;  rport ; branch = z9hG4bK-4475-{n}",
            "max-forwards:    0070",
            "Subject:",
            "X-Made-Up:   a value",
            "     folded over",
            "\t two lines",
            'm: "Quoted \\"name\\"" <sip:+14155550123@127.0.0.1:5999> ; q = 0.5 ; expires = 600',
            "c: application/sdp",
            body=SDP,
        ),
        CALL,
        TRANSFERRED,
    ),
    Case(
        "3.1.1.2 intmeth: a method and header names that use every token character",
        sip(
            "Odd.Method-4475_*+`%'~! sip:1-_.!~*'()&=+$,;?/%2B@127.0.0.1 SIP/2.0",
            VIA,
            FORWARDS,
            FROM,
            f"To: <{US}>",
            CALL_ID,
            "CSeq: 5 Odd.Method-4475_*+`%'~!",
            "X-!%*_+`'~.Token-Name: chars `~!@#$%^&*()_+-={}[]|:;'<>,.?/ are fine in a value",
        ),
        only("SIP/2.0 405"),  # a well-formed request with a method we do not take
    ),
    Case(
        "3.1.1.3 esc01: our DID with escaped digits is our DID",
        invite(uri="sip:+1206555%31%31%318@127.0.0.1").replace(
            b"From: <sip:+14155550123@", b"From: <sip:%2b1415555%30123@"
        ),
        CALL,
        TRANSFERRED,
    ),
    Case(
        "3.1.1.4 escnull: escaped NULs in the Request-URI, To and From",
        invite(uri="sip:nul-%00-nul@127.0.0.1").replace(b"From: <sip:+", b"From: <sip:%00+"),
        NOT_FOUND,
        NO_DID,
    ),
    Case(
        "3.1.1.5 esc02: a % in a method is no escape: INV%49TE is not INVITE",
        sip(
            f"INV%49TE {US} SIP/2.0",
            VIA,
            FORWARDS,
            FROM,
            f'To: "100% %Zz sure" <{US}>',
            CALL_ID,
            "CSeq: 1 INV%49TE",
        ),
        only("SIP/2.0 405"),
    ),
    Case(
        "3.1.1.6 lwsdisp: no space between a display name and its <",
        sip(
            f"OPTIONS {US} SIP/2.0",
            VIA,
            FORWARDS,
            "From: caller<sip:+14155550123@127.0.0.1>;tag=4475",
            f"To: gateway<{US}>",
            CALL_ID,
            "CSeq: 1 OPTIONS",
        ),
        only("SIP/2.0 200"),
    ),
    Case(
        "3.1.1.7 longreq: long values in many header fields",
        sip(
            f"INVITE {US};x-long={'p' * 1000} SIP/2.0",
            f"{VIA};x-long={'v' * 500}",
            *(f"Via: SIP/2.0/UDP 10.44.75.{i}:5060;branch=z9hG4bK-long-{i}" for i in range(1, 31)),
            FORWARDS,
            f'From: "{"Caller " * 200}" <sip:+14155550123@127.0.0.1>;tag={"t" * 1000}',
            f'To: "{"Kore " * 200}" <{US}>',
            f"Call-ID: 4475-{{n}}-{'c' * 1000}@127.0.0.1",
            "CSeq: 1 INVITE",
            f"Contact: <sip:{'u' * 500}@127.0.0.1:5999>",
            f"X-{'Very-Long-Header-Name-' * 20}: {'value ' * 500}",
            OFFER,
            body=SDP,
        ),
        CALL,
        TRANSFERRED,
    ),
    Case(
        "3.1.1.8 dblreq: octets after the Content-Length (a whole INVITE) are not a second request",
        options("Content-Length: 0") + invite(),
        only("SIP/2.0 200"),
    ),
    Case(
        "3.1.1.9 semiuri: semicolons in the user part of the Request-URI",
        options(uri="sip:+12065551118;isub=4475;x=%40y@127.0.0.1"),
        only("SIP/2.0 200"),
    ),
    Case(
        "3.1.1.10 transports: Vias with known, unusual and unknown transports",
        options(
            "Via: SIP/2.0/SCTP 10.44.75.1;branch=z9hG4bK-sctp",
            "Via: SIP/2.0/TLS 10.44.75.2:5061;branch=z9hG4bK-tls",
            "Via: SIP/2.0/WS 10.44.75.3;branch=z9hG4bK-ws",
            "Via: SIP/2.0/X-NEVER-HEARD-OF 10.44.75.4;branch=z9hG4bK-x",
            "Via: SIP/2.0/TCP 10.44.75.5;branch=z9hG4bK-tcp",
        ),
        only("SIP/2.0 200"),
    ),
    Case(
        "3.1.1.11 mpart01: a multipart/mixed body (SDP and binary): a type we do not take",
        sip(
            f"INVITE {US} SIP/2.0",
            VIA,
            FORWARDS,
            FROM,
            f"To: <{US}>",
            CALL_ID,
            "CSeq: 1 INVITE",
            CONTACT,
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="4475-boundary"',
            body=MULTIPART,
        ),
        only("SIP/2.0 415"),
        holding=("Accept: application/sdp",),
    ),
    # 3.1.2: invalid messages
    Case(
        "3.1.2.1 badinv01: empty parameters and stray separators in Via, From and Contact",
        sip(
            f"INVITE {US} SIP/2.0",
            f"{VIA};;,;,,",
            FORWARDS,
            "From: <sip:+14155550123@127.0.0.1>;;tag=4475;;",
            f"To: <{US}>",
            CALL_ID,
            "CSeq: 1 INVITE",
            "Contact: <sip:+14155550123@127.0.0.1:5999>;;;;",
            OFFER,
            body=SDP,
        ),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.1.2.2 clerr: a Content-Length larger than the datagram",
        invite("Content-Length: 4475"),
        only("SIP/2.0 400"),
    ),
    Case("3.1.2.3 ncl: a negative Content-Length", invite("Content-Length: -4475"), only("SIP/2.0 400")),
    Case(
        "3.1.2.4 scalar02: CSeq, Max-Forwards and Expires past their ranges",
        invite("Expires: 18446744073709551621")
        .replace(b"CSeq: 1 INVITE", b"CSeq: 1180591620717411303424 INVITE")
        .replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.1.2.6 quotbal: a display name whose quote never closes",
        invite().replace(f"To: <{US}>".encode(), f'To: "The gateway <{US}>'.encode()),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.1.2.7 ltgtruri: a Request-URI in <>",
        invite().replace(f"INVITE {US} ".encode(), f"INVITE <{US}> ".encode()),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.1.2.8 lwsruri: a space inside the Request-URI",
        invite().replace(f"INVITE {US} ".encode(), f"INVITE {US}; user=phone ".encode()),
        only("SIP/2.0 400"),
    ),
    Case(
        # RFC 4475 lets a receiver reject this or ignore the extra SPs; we ignore them
        "3.1.2.9 lwsstart: several SPs between the request line's elements",
        invite(uri=NOBODY).replace(
            f"INVITE {NOBODY} SIP/2.0".encode(), f"INVITE  \t {NOBODY}   SIP/2.0".encode()
        ),
        NOT_FOUND,
        NO_DID,
    ),
    Case(
        # may be rejected or the SP ignored (RFC 4475); we ignore it
        "3.1.2.10 trws: SP after the request line's SIP version",
        options().replace(b" SIP/2.0\r\n", b" SIP/2.0 \r\n", 1),
        only("SIP/2.0 200"),
    ),
    Case(
        # may be rejected or the headers ignored (RFC 4475); we never read headers from a URI, and the
        # call takes the contact ID of its real header, not the forged one in the URI
        "3.1.2.11 escruri: escaped headers in the Request-URI",
        invite(f"X-Amzn-ConnectContactId: {CONTACT_ID}").replace(
            f"INVITE {US} ".encode(),
            f"INVITE {US}?X-Amzn-ConnectContactId=forged&Route=%3Csip:127.0.0.1:9%3E ".encode(),
        ),
        CALL,
        TRANSFERRED,
        contact_id=CONTACT_ID,
    ),
    Case(
        # may be rejected or the Date ignored (RFC 4475); we never read Date
        "3.1.2.12 baddate: a Date in a time zone other than GMT",
        invite("Date: Sat, 13 Jan 2024 25:61:00 PST", uri=NOBODY),
        NOT_FOUND,
        NO_DID,
    ),
    Case(
        # a registrar would answer 400; we are none, and the method is checked first (RFC 3261 §8.2.1)
        "3.1.2.13 regbadct: a Contact URI with headers but without <>",
        register("Contact: sip:+14155550123@127.0.0.1?Route=%3Csip:127.0.0.1:9%3E"),
        only("SIP/2.0 405"),
    ),
    Case(
        # 400 or liberal (RFC 4475): we take no space inside a URI
        "3.1.2.14 badaspec: spaces inside an addr-spec",
        options().replace(f"To: <{US}>".encode(), b"To: <sip:+1206 555 1118@127.0.0.1>"),
        only("SIP/2.0 400"),
    ),
    Case(
        # 400 or liberal (RFC 4475): display names are never read nor forwarded here, so we take them
        "3.1.2.15 baddn: unquoted display names with characters outside token",
        options()
        .replace(FROM.encode(), b"From: Tester, The (RFC 4475) <sip:+14155550123@127.0.0.1>;tag=4475")
        .replace(f"To: <{US}>".encode(), f"To: Kore @ gateway: <{US}>".encode()),
        only("SIP/2.0 200"),
    ),
    Case(
        "3.1.2.16 badvers: a SIP version we do not speak",
        options().replace(b" SIP/2.0\r\n", b" SIP/9.1\r\n", 1),
        only("SIP/2.0 505"),
    ),
    Case(
        "3.1.2.17 mismatch01: an INVITE whose CSeq names another method",
        invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 OPTIONS"),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.1.2.18 mismatch02: an unknown method whose CSeq names ACK",
        sip(f"NOTAMETHOD {US} SIP/2.0", VIA, FORWARDS, FROM, f"To: <{US}>", CALL_ID, "CSeq: 3 ACK"),
        only("SIP/2.0 400"),
    ),
    # 3.2: transaction layer
    Case(
        # 400 or a fallback to RFC 2543 matching (RFC 4475): such a branch identifies no transaction,
        # and two requests with it are two requests (test_a_bare_magic_cookie_branch_...)
        "3.2.1 badbranch: a branch that is the magic cookie and nothing else",
        options().replace(b"branch=z9hG4bK-4475-{n}", b"branch=z9hG4bK"),
        only("SIP/2.0 200"),
    ),
    # 3.3: application layer
    Case(
        "3.3.1 insuf: an INVITE without Call-ID, From, To and Max-Forwards",
        sip(f"INVITE {US} SIP/2.0", VIA, "CSeq: 1 INVITE", CONTACT, OFFER, body=SDP),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.3.2 unkscm: a Request-URI scheme nobody knows",
        options(uri="x-no.such+scheme-4475:opaque/stuff?here").replace(
            b"To: <x-no.such+scheme-4475:opaque/stuff?here>", f"To: <{US}>".encode()
        ),
        only("SIP/2.0 416"),
    ),
    Case(
        "3.3.3 novelsc: a known scheme a voice gateway cannot serve (an emergency service URN)",
        invite(uri="urn:service:sos").replace(b"To: <urn:service:sos>", f"To: <{US}>".encode()),
        only("SIP/2.0 416"),
    ),
    Case(
        # RFC 4475: a registrar answers 400, as To must be a SIP URI; we take sip, sips and tel only in
        # From and To of any request, as we build dialogs from them
        "3.3.4 unksm2: unknown schemes in To, From and Contact",
        sip(
            "REGISTER sip:127.0.0.1 SIP/2.0",
            VIA,
            FORWARDS,
            "From: <http://127.0.0.1/caller>;tag=4475",
            "To: <isbn:0-4475-4475-0>",
            CALL_ID,
            "CSeq: 1 REGISTER",
            "Contact: <name:Torture_Tester>",
        ),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.3.5 bext01: Require and Proxy-Require with options nobody supports",
        invite(
            "Require: x-4475-feature, another-4475-feature",
            "Proxy-Require: x-4475-proxy-feature",
        ),
        only("SIP/2.0 420"),
        holding=("Unsupported: x-4475-feature, another-4475-feature",),
    ),
    Case(
        "3.3.6 invut: an INVITE whose body is of a type nobody knows",
        invite(body="<offer>not SDP</offer>").replace(
            b"Content-Type: application/sdp", b"Content-Type: application/x-4475-unknown"
        ),
        only("SIP/2.0 415"),
        holding=("Accept: application/sdp",),
    ),
    Case(
        # a registrar would challenge in a scheme it knows; the gateway takes no credentials at all
        # (its allow-list is by source address), so a stranger's unknown scheme gets it a bare 403
        "3.3.7 regaut01: an Authorization in a scheme nobody knows, from a source not allow-listed",
        invite('Authorization: X-4475-Scheme key="opaque", other=4475'),
        only("SIP/2.0 403"),
        source="127.0.0.2",
    ),
    Case(
        "3.3.8 multi01: several values in fields that take one",
        sip(
            f"INVITE {US} SIP/2.0",
            VIA,
            FORWARDS,
            "CSeq: 1 INVITE",
            CALL_ID,
            FROM,
            f"To: <{US}>",
            "Call-ID: 4475-{n}-second@127.0.0.1",
            "To: <sip:+4475000@127.0.0.1>",
            "From: <sip:+4475001@127.0.0.1>;tag=second",
            "CSeq: 2 INVITE",
            "Max-Forwards: 5",
            CONTACT,
            OFFER,
            body=SDP,
        ),
        only("SIP/2.0 400"),
    ),
    Case(
        "3.3.9 mcl01: two Content-Lengths that disagree",
        invite(f"l: {len(SDP) - 10}", f"Content-Length: {len(SDP)}"),
        only("SIP/2.0 400"),
    ),
    Case(
        # a proxy answers 483; a UAS processes the request as if Max-Forwards were still positive
        "3.3.11 zeromf: an INVITE with Max-Forwards 0",
        invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"),
        CALL,
        TRANSFERRED,
    ),
    Case(
        # a registrar's concern (RFC 3261 §8.2.1: the method first): we take no REGISTER
        "3.3.12 cparam01: a REGISTER whose Contact, an addr-spec, has header parameters",
        register("Contact: sip:+14155550123@127.0.0.1;x-4475-param;expires=3600"),
        only("SIP/2.0 405"),
    ),
    Case(
        "3.3.13 cparam02: a REGISTER whose Contact URI has URI parameters",
        register("Contact: <sip:+14155550123@127.0.0.1;x-4475-param;transport=udp>;expires=3600"),
        only("SIP/2.0 405"),
    ),
    Case(
        "3.3.14 regescrt: a REGISTER whose Contact URI carries an escaped header",
        register("Contact: <sip:+14155550123@127.0.0.1?Route=%3Csip:127.0.0.1:9%3E>"),
        only("SIP/2.0 405"),
    ),
    Case(
        "3.3.15 sdp01: an INVITE whose Accept leaves out SDP, the only answer we can give",
        invite("Accept: text/x-4475-unknown"),
        only("SIP/2.0 406"),
    ),
    # 3.4: backwards compatibility
    Case(
        # RFC 3261 takes RFC 2543's syntax (§8.2.2.2, §17.2.3), and so do we
        "3.4.1 inv2543: an INVITE as RFC 2543 wrote it: no branch, no tag, no Max-Forwards, no <>",
        sip(
            f"INVITE {US} SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:5999;rport",
            "From: sip:+14155550123@127.0.0.1",
            f"To: {US}",
            CALL_ID,
            "CSeq: 1 INVITE",
            OFFER,
            body=SDP,
        ),
        CALL,
        TRANSFERRED,
    ),
]


# ------------------------------------------------------------------ the caller's part

QUIET = 0.3  # seconds with nothing new that end a conversation (a call goes on to its BYE)


def converse(running: Running, message: bytes, source: str) -> list[bytes]:
    """Send `message` and play a caller's part: ACK an INVITE's final answer, answer a BYE 200.
    Everything that came back, in order."""
    received: list[bytes] = []
    gateway = ("127.0.0.1", running.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((source, 0))
        peer.settimeout(QUIET)
        peer.sendto(message, gateway)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                data = peer.recv(65535)
            except TimeoutError:
                if _more_to_come(received):
                    continue
                break
            received.append(data)
            reply = _reply(data, message)
            if reply is not None:
                peer.sendto(reply, gateway)
    return received


def _reply(message: bytes, sent: bytes) -> bytes | None:
    if message.startswith(b"BYE "):
        return _ok_for(message)
    status = _status(message)
    if status >= 200 and header(message, b"cseq").upper().endswith(b"INVITE"):
        return _ack_for(message, status, sent)
    return None


def _status(message: bytes) -> int:
    parts = message.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if message.startswith(b"SIP/2.0 ") and parts[1:2] and parts[1].isdigit() else 0


def _more_to_come(received: list[bytes]) -> bool:
    """What a caller waits for: a first answer; after a 1xx, the final one; once answered, the BYE."""
    finals = {_status(m) // 100 for m in received if header(m, b"cseq").upper().endswith(b"INVITE")}
    if not received or finals == {1}:
        return True
    return 2 in finals and not any(m.startswith(b"BYE ") for m in received)  # the bot is still running


def _ack_for(response: bytes, status: int, invite: bytes) -> bytes:
    """The ACK of an INVITE's final answer: a new transaction to its Contact for a 2xx; otherwise part
    of the INVITE's transaction, with its Via, Request-URI and version, whatever they were (RFC 3261
    §13.2.2.4, §17.1.1.3)."""
    number = header(response, b"cseq").split()[0].decode()
    if status < 300:
        via = b"SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-4475-ack-" + str(time.monotonic_ns()).encode()
        start = b"ACK " + header(response, b"contact").strip(b"<>") + b" SIP/2.0"
    else:
        via, start = header(response, b"via"), b"ACK" + invite.split(b"\r\n", 1)[0][len(b"INVITE") :]
    lines = [
        start,
        b"Via: " + via,
        b"Max-Forwards: 70",
        *(name + b": " + header(response, name.lower()) for name in (b"From", b"To", b"Call-ID")),
        f"CSeq: {number if len(number) < 10 else 1} ACK".encode(),  # an overlarge one would be refused
        b"Content-Length: 0",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _ok_for(request: bytes) -> bytes:
    kept = [line for line in request.split(b"\r\n") if line.split(b":", 1)[0].lower() in _ANSWER_HEADERS]
    return b"SIP/2.0 200 OK\r\n" + b"".join(line + b"\r\n" for line in kept) + b"Content-Length: 0\r\n\r\n"


_ANSWER_HEADERS = (b"via", b"from", b"to", b"call-id", b"cseq")


def first_lines(received: list[bytes]) -> set[str]:
    """Status lines cut to their code ("SIP/2.0 200"); requests by their method ("BYE")."""
    lines = {m.split(b"\r\n", 1)[0].decode("utf-8", "replace") for m in received}
    return {line[:11] if line.startswith("SIP/2.0 ") else line.split(" ", 1)[0] for line in lines}


# ------------------------------------------------------------------ the gateway's state


def leftovers(running: Running) -> list[str]:
    """What the gateway still holds for any call (or still resends), read in its own loop."""

    async def look() -> list[str]:
        return running.gateway.held()

    return asyncio.run_coroutine_threadsafe(look(), running.loop).result(5)


def settled(running: Running, seconds: float = 5.0) -> list[str]:
    """Once the calls in progress are over (or `seconds` have passed): what is still held."""
    deadline = time.monotonic() + seconds
    while (held := leftovers(running)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    gateway = Running(tmp_path_factory.mktemp("rfc4475"))
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.mark.parametrize("case", CASES, ids=[case.name.split(":")[0] for case in CASES])
def test_each_torture_request_gets_its_sound_answer(
    running: Running, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    before = {i.call_id for i in running.gateway.interactions.all()}
    received = converse(running, fresh(case.message), case.source)
    assert first_lines(received) == case.answers, (case.name, first_lines(received))
    finals = [m for m in received if _status(m) >= 200]
    for text in case.holding:
        assert text.encode() in finals[-1], (case.name, text)
    assert settled(running) == [], f"{case.name}: state left behind"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], f"{case.name}: a handler raised"
    recorded = [i for i in running.gateway.interactions.all() if i.call_id not in before]
    if case.recorded is None:
        assert recorded == [], f"{case.name}: an interaction was recorded"
    else:
        assert [i.ended[: len(case.recorded)] for i in recorded] == [case.recorded], case.name
        if case.contact_id is not None:
            assert recorded[0].contact_id == case.contact_id, case.name
    assert running.exchange(fresh(request()))[0].startswith(b"SIP/2.0 200")  # and it goes on


def test_a_bare_magic_cookie_branch_identifies_no_transaction(running: Running) -> None:
    # 3.2.1 badbranch: two requests whose branch is z9hG4bK alone are two requests, each answered
    message = CASES[[c.name.split(":")[0] for c in CASES].index("3.2.1 badbranch")].message
    for _ in range(2):
        sent = fresh(message)
        (reply,) = running.exchange(sent)
        assert reply.startswith(b"SIP/2.0 200") and header(reply, b"call-id") == header(sent, b"call-id")


# ------------------------------------------------------------------ responses, at the connector


def answer(status_line: str, *lines: str, body: str = "") -> bytes:
    """A gateway's answer to the connector's INVITE, sound but for `status_line` and `lines`."""
    return sip(
        status_line,
        "Via: {via}",
        "From: {from}",
        f"To: <{US}>;tag=gw-4475",
        "Call-ID: {call_id}",
        *lines,
        body=body,
    )


ANSWERED = ("CSeq: {cseq}", "Contact: <sip:gateway@127.0.0.1:5080>", OFFER)


@dataclass(frozen=True)
class Answering:
    name: str
    answers: tuple[bytes, ...]  # what the gateway answers the INVITE with
    outcome: TransferOutcome
    then: tuple[str, ...]  # the requests the connector sends after its INVITE


CONNECTED = TransferOutcome.CALLER_HUNG_UP  # answered, and hung up by the connector at its time limit

ANSWERINGS = [
    Answering(
        "3.1.1.12 unreason: a 200 whose reason phrase is unusual UTF-8",
        (answer("SIP/2.0 200 Ça marche — 9 \u00d7 9 = 81, ☎ ✓ 👍 (was: OK)", *ANSWERED, body=SDP),),
        CONNECTED,
        ("ACK", "BYE"),
    ),
    Answering(
        "3.1.1.13 noreason: a 180 and a 200 with no reason phrase at all",
        (answer("SIP/2.0 180 ", "CSeq: {cseq}"), answer("SIP/2.0 200 ", *ANSWERED, body=SDP)),
        CONNECTED,
        ("ACK", "BYE"),
    ),
    Answering(
        # a CSeq past 2**31 (and Retry-After, Warning past theirs, which the connector never reads):
        # dropped, so no answer came within the time limit (and with no 1xx, no CANCEL goes out)
        "3.1.2.5 scalarlg: a 503 whose CSeq, Retry-After and Warning are past their ranges",
        (
            answer(
                "SIP/2.0 503 Service Unavailable",
                "CSeq: 4294967301 INVITE",
                "Retry-After: 18446744073709551621",
                'Warning: 4475 gateway.example "a code of four digits"',
            ),
        ),
        TransferOutcome.TIMED_OUT,
        (),
    ),
    Answering(
        "3.1.2.19 bigcode: a status code far past 699",
        (answer("SIP/2.0 4294967301 Far Too Large", *ANSWERED, body=SDP),),
        TransferOutcome.TIMED_OUT,
        (),
    ),
    Answering(
        # RFC 3261 §8.1.3.3: a UAC discards a response with more than one Via (ours is the only one)
        "3.3.10 bcast: a 200 with a second Via, at the broadcast address",
        (
            answer("SIP/2.0 200 OK", *ANSWERED, body=SDP).replace(
                b"\r\nFrom:", b"\r\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK-bcast\r\nFrom:"
            ),
        ),
        TransferOutcome.TIMED_OUT,
        (),
    ),
]


@pytest.fixture(scope="module")
def hostile_gateway() -> Iterator[HostileGateway]:
    peer = HostileGateway()
    peer.answer_byes = True
    yield peer
    peer.close()


@pytest.mark.parametrize("case", ANSWERINGS, ids=[case.name.split(":")[0] for case in ANSWERINGS])
def test_each_torture_response_ends_the_transfer_soundly(
    hostile_gateway: HostileGateway, case: Answering, caplog: pytest.LogCaptureFixture
) -> None:
    hostile_gateway.answers = list(case.answers)
    contact = Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn="arn")
    connector = SipConnector(Gateway("127.0.0.1", hostile_gateway.port, "udp"), max_call_seconds=0.3)
    transfer = TransferRequest(
        time_limit_seconds=1,
        connector_arn="arn:aws:chime:us-east-1:000000000000:vc/x",
        to_user=DID,
        from_user="+14155550123",
    )
    result = asyncio.run(asyncio.wait_for(connector(contact, transfer), 10))
    sent = [m.first_line.split(" ", 1)[0] for m in result.messages if m.direction == "sent"]
    steps = [method for n, method in enumerate(sent) if n == 0 or sent[n - 1] != method]  # resends as one
    assert (result.outcome, steps) == (case.outcome, ["INVITE", *case.then]), (case.name, result.reason)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], f"{case.name}: a handler raised"
