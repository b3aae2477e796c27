"""Raw SIP peers for the hostile-input tests: a running gateway to send exact bytes to, the request
those tests start from, and a 'gateway' that answers the connector's INVITEs with exact bytes."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from pathlib import Path

from kore_connect.twin.kore.config import DidRoute, GatewayConfig
from kore_connect.twin.kore.gateway import KoreGateway

DID = "+12065551118"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


class Running:
    """A gateway in an event loop of its own thread, for tests that talk to it from outside."""

    def __init__(self, folder: Path, allow: str = "127.0.0.1/32") -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = KoreGateway(
            GatewayConfig(
                port=0,
                transports=("udp",),
                dids=(DidRoute(DID, "default"),),
                allow=(ipaddress.ip_network(allow),),
                metadata_url="http://127.0.0.1:9/prod/kore-metadata",  # refused: straight to the BYE
                token="t" * 20,
                interactions=folder / "interactions.db",
            )
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.gateway.start(), self.loop).result(30)
        self.port = self.gateway.addresses["udp"][1]

    def exchange(self, data: bytes, source: str = "127.0.0.1", wait: float = 0.3) -> list[bytes]:
        """Send one datagram; everything that comes back within `wait` seconds."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((source, 0))
            peer.settimeout(wait)
            peer.sendto(data, ("127.0.0.1", self.port))
            answers = []
            try:
                while True:
                    answers.append(peer.recv(65535))
            except TimeoutError:
                return answers

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gateway.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def request(
    method: str = "OPTIONS", *, uri: str = f"sip:{DID}@127.0.0.1", extra: str = "", body: str = ""
) -> bytes:
    head = (  # rport: answers come back to the port we send from (RFC 3581)
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-hostile-{n}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:caller@127.0.0.1>;tag=hostile\r\n"
        f"To: <{uri}>\r\n"
        "Call-ID: hostile-{n}@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
    )
    if "Content-Length" not in extra:
        head += f"Content-Length: {len(body.encode())}\r\n"
    return (head + "\r\n" + body).encode()


_counter = iter(range(10**9))


def fresh(message: bytes) -> bytes:
    """The message with a Call-ID and branch of its own (copies would be absorbed as retransmissions)."""
    return message.replace(b"{n}", str(next(_counter)).encode())


class HostileGateway:
    """A UDP 'gateway' that answers each INVITE it gets with whatever the test hands it: `{call_id}`,
    `{via}`, `{from}` and `{cseq}` in an answer become the INVITE's own. With `answer_byes` set it
    answers a BYE 200."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answers: list[bytes] = []
        self.answer_byes = False
        self._running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            if data.startswith(b"INVITE"):
                for answer in self.answers:
                    self.sock.sendto(_filled(answer, data), addr)
            elif data.startswith(b"BYE") and self.answer_byes:
                kept = b"".join(
                    line + b"\r\n"
                    for line in data.split(b"\r\n")
                    if line.split(b":", 1)[0].lower() in (b"via", b"from", b"to", b"call-id", b"cseq")
                )
                self.sock.sendto(b"SIP/2.0 200 OK\r\n" + kept + b"Content-Length: 0\r\n\r\n", addr)

    def close(self) -> None:
        self._running = False
        self.thread.join(2)
        self.sock.close()


def _filled(answer: bytes, invite: bytes) -> bytes:
    for name in (b"call-id", b"via", b"from", b"cseq"):
        answer = answer.replace(b"{" + name.replace(b"-", b"_") + b"}", header(invite, name))
    return answer


def header(message: bytes, name: bytes) -> bytes:
    """The first value of header `name` (lower case, full form) in a raw message, or b""."""
    prefix = name + b":"
    return next(
        (
            line.split(b":", 1)[1].strip()
            for line in message.split(b"\r\n")
            if line.lower().startswith(prefix)
        ),
        b"",
    )
