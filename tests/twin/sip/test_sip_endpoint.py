"""The asyncio layer of our SIP stack (`twin/sip/transport.py`, `twin/sip/endpoint.py`) on loopback:
hostile bytes are answered or dropped in one log line, a reply that cannot be sent changes nothing,
and the socket keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator, Awaitable
from typing import Literal

import pytest

from kore_connect.twin.sip.endpoint import SipEndpoint
from kore_connect.twin.sip.message import Request, Response, parse
from kore_connect.twin.sip.rules import bare_response

HostPort = tuple[str, int]


class Echo:
    """A transaction user that answers OPTIONS 200, INVITE 486 (or `invite_status`), and keeps what it saw."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.failures: list[tuple[str, str]] = []
        self.invite_status = 486
        self.reason = "OK"

    def request_received(self, request: Request, source: HostPort, endpoint: SipEndpoint) -> None:
        self.requests.append(request)
        if request.method == "ACK":
            return
        status = self.invite_status if request.method == "INVITE" else 200
        answer = bare_response(request, status, "x" * 70_000 if self.reason == "huge" else self.reason)
        endpoint.respond(request, answer)

    def response_received(self, response: Response, endpoint: SipEndpoint) -> None:
        self.responses.append(response)

    def transaction_failed(self, request: Request, why: str, endpoint: SipEndpoint) -> None:
        self.failures.append((request.method, why))


def options(
    n: int, via: str = "SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-e{n}", method: str = "OPTIONS"
) -> bytes:
    return (
        f"{method} sip:gw@127.0.0.1 SIP/2.0\r\nVia: {via.replace('{n}', str(n))}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:peer@127.0.0.1>;tag=p\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: e{n}@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Peer:
    """A raw UDP socket on loopback, in the test's own event loop."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def send(self, data: bytes, to: HostPort) -> None:
        self.sock.sendto(data.replace(b"{port}", str(self.port).encode()), to)

    async def answers(self, wait: float = 0.3) -> list[bytes]:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        while True:
            try:
                got.append(await asyncio.wait_for(loop.sock_recv(self.sock, 70_000), wait))
            except TimeoutError:
                return got


@contextlib.asynccontextmanager
async def serving(transport: Literal["udp", "tcp"] = "udp") -> AsyncIterator[tuple[SipEndpoint, Echo]]:
    """An endpoint on loopback that allows 127.0.0.1, with an `Echo` user."""
    user = Echo()
    endpoint = SipEndpoint(user, transport, allowed=lambda host: host == "127.0.0.1")
    await endpoint.listen(("127.0.0.1", 0))
    try:
        yield endpoint, user
    finally:
        await endpoint.close()


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(scenario)  # type: ignore[arg-type]


def status_of(data: bytes) -> tuple[int, str]:
    message = parse(data)
    assert isinstance(message, Response)
    return message.status, message.reason


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a peer's input left a traceback in the log"


def test_a_via_port_past_65535_costs_one_log_line_and_the_socket_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            # GIVEN the PROTOS sip-via-hostport case: a Via whose port no socket can send to
            peer = Peer()
            with caplog.at_level(logging.WARNING):
                peer.send(
                    options(1, via="SIP/2.0/UDP 127.0.0.1:70000;branch=z9hG4bK-e1"), endpoint.local_address
                )
                # THEN nothing comes back (there is nowhere to answer), and a sound request is answered
                assert await peer.answers(0.2) == []
                peer.send(options(2), endpoint.local_address)
                answers = await peer.answers()
            assert [status_of(a) for a in answers] == [(200, "OK")]
            assert [r.method for r in user.requests] == ["OPTIONS"]
            no_traceback(caplog)

    run(scenario())


def test_a_reply_that_cannot_be_sent_is_one_log_line_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            # GIVEN a request the user answers with more than a datagram holds (Errno 90, Message too long)
            user.reason = "huge"
            peer = Peer()
            with caplog.at_level(logging.WARNING):
                peer.send(options(3), endpoint.local_address)
                assert await peer.answers(0.2) == []
                user.reason = "OK"
                peer.send(options(4), endpoint.local_address)
                answers = await peer.answers()
            assert [status_of(a) for a in answers] == [(200, "OK")]
            lines = [r.getMessage() for r in caplog.records if "could not send" in r.getMessage()]
            assert len(lines) == 1 and "do not fit in a datagram" in lines[0]
            no_traceback(caplog)

    run(scenario())


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (options(5).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 OPTIONS\r\n\x01bad"), (400, "Bad Header Line")),
        (
            options(6).replace(b"Content-Length: 0", b"Content-Length: 99"),
            (400, "Body Shorter Than Content-Length"),
        ),
        (
            options(7).replace(b"Content-Length: 0", b"Subject: " + b"x" * 20_000 + b"\r\nContent-Length: 0"),
            (513, "Message Too Large"),
        ),
        (options(8).replace(b" SIP/2.0\r\n", b"\r\n", 1), (400, "Bad Request-Line")),
    ],
)
def test_an_unreadable_request_with_a_via_is_answered_with_what_is_wrong(
    data: bytes, answer: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            peer = Peer()
            with caplog.at_level(logging.WARNING):
                peer.send(data, endpoint.local_address)
                answers = await peer.answers()
            assert [status_of(a) for a in answers] == [answer]
            assert user.requests == []  # the user never sees it
            assert len([r for r in caplog.records if r.name.startswith("kore_connect.twin.sip")]) == 1
            no_traceback(caplog)

    run(scenario())


def test_an_unreadable_message_without_a_via_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, _user):
            peer = Peer()
            with caplog.at_level(logging.WARNING):
                peer.send(b"\x00\xff garbage \r\n\r\n", endpoint.local_address)
                peer.send(b"\r\n\r\n", endpoint.local_address)  # a keepalive: not even a log line
                assert await peer.answers(0.2) == []
            assert [r.getMessage() for r in caplog.records] == [
                "dropped an unreadable message from 127.0.0.1: Bad Request-Line"
            ]

    run(scenario())


def test_a_stranger_is_answered_403_once_and_never_resent(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        user = Echo()
        endpoint = SipEndpoint(user, "udp", allowed=lambda host: False)
        await endpoint.listen(("127.0.0.1", 0))
        peer = Peer()
        try:
            peer.send(options(9, method="INVITE"), endpoint.local_address)
            answers = await peer.answers(
                1.2
            )  # past Timer G's first two resends, had there been a transaction
        finally:
            await endpoint.close()
        assert [status_of(a) for a in answers] == [(403, "Forbidden")]
        assert user.requests == [] and len(endpoint.layer) == 0

    run(scenario())


def test_a_copy_of_a_request_is_answered_again_and_reaches_the_user_once() -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            peer = Peer()
            peer.send(options(10), endpoint.local_address)
            peer.send(options(10), endpoint.local_address)
            answers = await peer.answers()
            assert [status_of(a) for a in answers] == [(200, "OK"), (200, "OK")]
            assert len(user.requests) == 1

    run(scenario())


def test_a_refused_invite_is_resent_until_its_ack() -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            peer = Peer()
            peer.send(options(11, method="INVITE"), endpoint.local_address)
            first = await peer.answers(0.7)  # the 486, and Timer G's first resend at 0.5 s
            assert [status_of(a) for a in first] == [(486, "OK")] * 2
            ack = options(11, method="ACK").replace(b"CSeq: 1 ACK", b"CSeq: 1 ACK")
            to = parse(first[0]).headers.get("To") or ""
            peer.send(ack.replace(b"To: <sip:gw@127.0.0.1>", f"To: {to}".encode()), endpoint.local_address)
            assert await peer.answers(1.2) == []  # the ACK ended Timer G
            assert [r.method for r in user.requests] == [
                "INVITE"
            ]  # the ACK was the transaction's, not the user's

    run(scenario())


def test_the_reply_goes_to_the_via_port_without_rport() -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, _user):
            listener = Peer()
            sender = Peer()
            via = f"SIP/2.0/UDP 127.0.0.1:{listener.port};branch=z9hG4bK-e12"
            sender.send(options(12, via=via), endpoint.local_address)
            assert [status_of(a) for a in await listener.answers()] == [(200, "OK")]
            assert await sender.answers(0.1) == []

    run(scenario())


def test_our_request_unanswered_is_resent_then_given_up() -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            silent = Peer()
            request = parse(options(13, via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours"))
            assert isinstance(request, Request)
            endpoint.request(request, ("127.0.0.1", silent.port))
            copies = await silent.answers(1.8)  # at 0, 0.5 and 1.5 s (Timer E)
            assert len(copies) == 3
            assert user.failures == []

    run(scenario())


def test_our_request_to_an_impossible_address_fails_its_transaction_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, user):
            request = parse(options(14, via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-bad"))
            assert isinstance(request, Request)
            with caplog.at_level(logging.WARNING):
                endpoint.request(request, ("127.0.0.1", 70_000))
            assert user.failures == [("OPTIONS", "it could not be sent")]
            assert endpoint.layer.next_deadline() is None  # no resends of what cannot be sent
            no_traceback(caplog)

    run(scenario())


def test_a_client_hears_a_peer_other_than_the_one_it_called_and_sends_there_too() -> None:
    """A gateway that a proxy did not record-route sends its BYE from its own address: the
    connector's socket, opened toward the proxy, must still hear it and answer it there."""

    async def scenario() -> None:
        proxy, gateway = Peer(), Peer()
        user = Echo()
        client = SipEndpoint(user, "udp", allowed=lambda host: host == "127.0.0.1")
        local = await client.connect(("127.0.0.1", proxy.port))
        try:
            gateway.send(options(15), local)
            (answer,) = await gateway.answers()
            assert status_of(answer) == (200, "OK")
            assert [r.method for r in user.requests] == ["OPTIONS"]
        finally:
            await client.close()

    run(scenario())


def test_a_client_learns_at_once_that_nothing_listens_where_it_sends() -> None:
    async def scenario() -> None:
        errors: list[OSError] = []
        client = SipEndpoint(Echo(), "udp", on_icmp_error=errors.append)
        closed = Peer()
        port = closed.port
        closed.sock.close()  # nothing listens there now: the kernel answers with ICMP
        await client.connect(("127.0.0.1", port))
        try:
            request = parse(options(16, via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-closed"))
            assert isinstance(request, Request)
            client.request(request, ("127.0.0.1", port))
            for _ in range(50):
                if errors:
                    break
                await asyncio.sleep(0.01)
            assert [e.errno for e in errors][:1] == [errno.ECONNREFUSED]
        finally:
            await client.close()

    run(scenario())


def test_a_flood_of_bad_messages_leaves_a_few_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving("udp") as (endpoint, _user):
            peer = Peer()
            with caplog.at_level(logging.WARNING):
                for n in range(300):
                    peer.send(options(100 + n).replace(b"CSeq", b"\x01"), endpoint.local_address)
                await peer.answers(0.5)
            assert 1 <= len(caplog.records) <= 10
            no_traceback(caplog)

    run(scenario())


# ---------------------------------------------------------------- TCP


async def read_messages(reader: asyncio.StreamReader, wait: float = 0.3) -> bytes:
    data = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65_536), wait)
        except TimeoutError:
            return data
        if not chunk:
            return data
        data += chunk


def test_over_tcp_answers_go_back_on_the_connection_and_pings_get_pongs() -> None:
    async def scenario() -> None:
        async with serving("tcp") as (endpoint, user):
            reader, writer = await asyncio.open_connection(*endpoint.local_address)
            via = "SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t1"  # port 9: nothing listens there
            writer.write(b"\r\n\r\n" + options(20, via=via)[:40])
            await asyncio.sleep(0.05)
            writer.write(options(20, via=via)[40:])
            data = await read_messages(reader)
            writer.close()
            assert data.startswith(b"\r\nSIP/2.0 200 OK\r\n")
            assert len(user.requests) == 1

    run(scenario())


def test_over_tcp_a_message_that_cannot_be_framed_is_answered_and_the_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with serving("tcp") as (endpoint, user):
            reader, writer = await asyncio.open_connection(*endpoint.local_address)
            with caplog.at_level(logging.WARNING):
                writer.write(
                    options(21, via="SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t2").replace(
                        b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 5\r\n"
                    )
                )
                data = await read_messages(reader, 1.0)
            assert data.startswith(b"SIP/2.0 400 Content-Lengths Disagree\r\n")
            assert reader.at_eof()
            assert user.requests == []
            no_traceback(caplog)
            # and the server still takes new connections
            reader, writer = await asyncio.open_connection(*endpoint.local_address)
            writer.write(options(22, via="SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-t3"))
            assert (await read_messages(reader)).startswith(b"SIP/2.0 200 OK")
            writer.close()

    run(scenario())


def test_over_tcp_a_request_to_an_address_without_a_connection_opens_one() -> None:
    async def scenario() -> None:
        server_user, client_user = Echo(), Echo()
        server = SipEndpoint(server_user, "tcp")
        await server.listen(("127.0.0.1", 0))
        client = SipEndpoint(client_user, "tcp")
        try:
            request = parse(options(23, via="SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-t4"))
            assert isinstance(request, Request)
            client.request(request, server.local_address)
            for _ in range(50):
                if client_user.responses:
                    break
                await asyncio.sleep(0.02)
            assert [r.status for r in client_user.responses] == [200]
        finally:
            await client.close()
            await server.close()

    run(scenario())
