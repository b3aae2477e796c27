"""The gateway's RFC 3261 dialog rules (481, 482, a CANCEL after the answer, Timer G, whose answer to
a BYE counts), driven by a raw UDP peer that sends exactly the bytes each case needs (SIPp cannot
send a request for a dialog it does not know)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kore_connect.twin.kore.config import DidRoute, GatewayConfig
from kore_connect.twin.kore.gateway import KoreGateway
from kore_connect.twin.sip import transactions
from kore_connect.twin.sip.fields import uri_user
from tests.twin.kore.test_kore_gateway import assert_nothing_left

DID = "+12065551118"
ANSWER_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Peer:
    """A UDP peer on 127.0.0.1 (or another loopback address) that sends raw SIP and reads answers."""

    def __init__(self, gateway: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.gateway = gateway
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.host, self.port = self.sock.getsockname()

    def request(
        self,
        method: str,
        call_id: str,
        *,
        branch: str,
        cseq: int = 1,
        to_tag: str = "",
        body: str = "",
        uri: str = f"sip:{DID}@127.0.0.1",
    ) -> bytes:
        headers = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK{branch}",
            "Max-Forwards: 70",
            f"From: <sip:+14155550123@{self.host}>;tag=caller",
            f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:+14155550123@{self.host}:{self.port}>",
            f"X-Amzn-ConnectContactId: {uuid.uuid4()}",
        ]
        if body:
            headers.append("Content-Type: application/sdp")
        headers.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, self.gateway)

    async def answers(self, seconds: float) -> list[str]:
        """The first lines of everything received within `seconds`."""
        loop, lines = asyncio.get_running_loop(), []
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                data, _ = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), left)
            except TimeoutError:
                break
            lines.append(data.split(b"\r\n", 1)[0].decode())
        return lines

    async def until(self, first_line_start: str, seconds: float = 5.0, *, holding: str = "") -> str:
        """Read until a message whose first line starts so (and whose text holds `holding`); its text."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), left)
            text = data.decode()
            if text.startswith(first_line_start) and holding in text:
                return text
        raise TimeoutError(first_line_start)

    async def answer_bye(self) -> None:
        """Wait for the gateway's BYE and answer it 200."""
        bye = await self.until("BYE ")
        await self.send(ok_for(bye))


def ok_for(request: str) -> bytes:
    kept = [line for line in request.split("\r\n") if line.split(":", 1)[0] in ANSWER_HEADERS]
    return (
        "SIP/2.0 200 OK\r\n" + "".join(f"{line}\r\n" for line in kept) + "Content-Length: 0\r\n\r\n"
    ).encode()


def to_tag(response: str) -> str:
    return response.split("\r\nTo:", 1)[1].split("tag=", 1)[1].split("\r\n", 1)[0]


def run(tmp_path: Path, case: Callable[[KoreGateway, Peer], Awaitable[Any]], **changes: Any) -> Any:
    settings: dict[str, Any] = {
        "port": 0,
        "transports": ("udp",),
        "dids": (DidRoute(DID, "default"),),
        "metadata_url": "http://127.0.0.1:9/prod/kore-metadata",  # refused: straight to the transfer
        "token": "t" * 20,
        "interactions": tmp_path / "interactions.db",
    }
    settings.update(changes)

    async def scenario() -> Any:
        gateway = KoreGateway(GatewayConfig(**settings))
        await gateway.start()
        peer = Peer(gateway.addresses["udp"])
        try:
            return await case(gateway, peer)
        finally:
            peer.sock.close()
            await gateway.stop()

    return asyncio.run(scenario())


def test_a_reinvite_for_a_dialog_that_does_not_exist_gets_481(tmp_path: Path) -> None:
    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "nodialog", branch="a", to_tag="gone", body=SDP))
        assert await peer.answers(0.4) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]
        await peer.send(peer.request("ACK", "nodialog", branch="a", to_tag="gone"))  # ends Timer G
        await asyncio.sleep(0.05)
        assert_nothing_left(gateway)
        assert gateway.interactions.all() == []

    run(tmp_path, case)


def test_a_second_invite_on_a_call_id_in_progress_gets_482_and_starts_no_second_bot(tmp_path: Path) -> None:
    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "twice", branch="first", body=SDP))
        await peer.until("SIP/2.0 180")
        await peer.send(peer.request("INVITE", "twice", branch="second", body=SDP))
        assert "SIP/2.0 482 Loop Detected" in await peer.answers(0.3)
        assert [held for held in gateway.held() if held.startswith("call")] == ["call twice"]  # one bot

    run(tmp_path, case, ring_seconds=1.0)


def test_a_cancel_after_the_200_is_answered_200_and_changes_nothing(tmp_path: Path) -> None:
    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "late-cancel", branch="inv", body=SDP))
        ok = await peer.until("SIP/2.0 200")
        await peer.send(peer.request("CANCEL", "late-cancel", branch="inv"))
        await peer.until("SIP/2.0 200", holding="CSeq: 1 CANCEL")
        await peer.send(peer.request("ACK", "late-cancel", branch="ack", to_tag=to_tag(ok)))
        await peer.answer_bye()  # the bot went on and transferred the caller
        await asyncio.sleep(0.2)
        (interaction,) = gateway.interactions.all()
        assert interaction.ended == "agent transfer (SIP BYE, answered 200)"
        assert_nothing_left(gateway)

    run(tmp_path, case)


def test_a_handler_failure_answers_500_and_the_interaction_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: KoreGateway, *args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(KoreGateway, "_new_call", broken)

    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "bug", branch="b", body=SDP))
        failure = await peer.until("SIP/2.0 500 Server Internal Error")
        await peer.send(peer.request("ACK", "bug", branch="b", to_tag=to_tag(failure)))  # ends Timer G
        await asyncio.sleep(0.05)
        (interaction,) = gateway.interactions.all()
        assert interaction.ended == "the gateway failed (see its log)"
        assert_nothing_left(gateway)

    run(tmp_path, case)


def test_a_rejection_is_resent_until_its_ack_timer_g(tmp_path: Path) -> None:
    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "nobody", branch="g", body=SDP, uri="sip:+44@127.0.0.1"))
        rejection = await peer.until("SIP/2.0 404")
        lines = await peer.answers(1.7)  # again 0.5 s after the first, then 1 s after that
        assert lines.count("SIP/2.0 404 Not Found") == 2
        await peer.send(peer.request("ACK", "nobody", branch="g", to_tag=to_tag(rejection)))
        await asyncio.sleep(0.1)
        assert await peer.answers(1.2) == []  # the ACK stopped it
        assert_nothing_left(gateway)

    run(tmp_path, case)


def test_a_rejected_call_without_an_ack_is_forgotten_when_its_transaction_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactions, "LIFETIME", 0.3)  # Timer H, shortened for the test

    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "noack", branch="h", body=SDP, uri="sip:+44@127.0.0.1"))
        await peer.until("SIP/2.0 404")
        await asyncio.sleep(0.5)
        assert_nothing_left(gateway)

    run(tmp_path, case)


def test_a_response_from_a_source_not_allow_listed_is_ignored(tmp_path: Path) -> None:
    async def case(gateway: KoreGateway, peer: Peer) -> None:
        await peer.send(peer.request("INVITE", "spoof", branch="s", body=SDP))
        ok = await peer.until("SIP/2.0 200")
        await peer.send(peer.request("ACK", "spoof", branch="s2", to_tag=to_tag(ok)))
        bye = await peer.until("BYE ")
        stranger = Peer(peer.gateway, host="127.0.0.2")
        await stranger.send(ok_for(bye))
        stranger.sock.close()
        await peer.until("BYE ", seconds=2.0)  # not taken as answered: the BYE comes again
        # still waiting for the caller's own answer
        assert gateway.held() == ["call spoof", "BYE spoof being resent"]

    run(tmp_path, case)


@pytest.mark.parametrize(
    ("uri", "did"),
    [
        ("sip:+12065551118@127.0.0.1;user=phone", "+12065551118"),
        ("sip:+1206555%31%31%318@127.0.0.1", "+12065551118"),  # escaped digits are digits (§19.1.4)
        ("sip:%2B12065551118@127.0.0.1", "%2B12065551118"),  # an escaped reserved + is not a +
        ("sip:nul-%00-nul@127.0.0.1", "nul-%00-nul"),  # nor is a NUL ever unescaped
        ("sip:127.0.0.1", ""),
    ],
)
def test_the_did_is_the_request_uris_user_with_its_unreserved_escapes_decoded(uri: str, did: str) -> None:
    assert uri_user(uri) == did
