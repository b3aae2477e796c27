"""Hostile SIP against the local Kore gateway: our own torture messages, a hypothesis fuzz of
everything its parser and rules see, and sipvicious (Debian) scans. No crash, no call from a source
not allow-listed, and a stranger learns nothing beyond a bare 403. RFC 4475's test cases, one by
one, are in tests/robustness/test_sip_rfc4475.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_connect.twin.kore.call import USER_AGENT
from kore_connect.twin.sip import transactions
from tests.peers import peer
from tests.sip_peers import DID, SDP, HostileGateway, Running, fresh, request


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    gateway = Running(tmp_path_factory.mktemp("hostile"))
    try:
        yield gateway
    finally:
        gateway.stop()


TORTURE: list[tuple[str, bytes, set[str]]] = [
    # (what it is, the message, the first lines acceptable in answer; empty: dropped)
    (
        "folded headers, LWS, compact forms",
        (
            b"OPTIONS sip:+12065551118@127.0.0.1 SIP/2.0\r\n"
            b"v:  SIP/2.0/UDP   127.0.0.1:5999 ;rport;branch=z9hG4bK-t{n}\r\n"
            b"f: <sip:a@127.0.0.1>\r\n ;tag=x\r\nt:\r\n <sip:+12065551118@127.0.0.1>\r\ni: t{n}\r\n"
            b"CSeq: 0009\r\n  OPTIONS\r\nMax-Forwards: 0068\r\nl: 0\r\n\r\n"
        ),
        {"SIP/2.0 200"},
    ),
    ("an unknown method", request("FROBNICATE"), {"SIP/2.0 405"}),
    (
        "an unknown header with an odd value",
        request(extra="UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"),
        {"SIP/2.0 200"},
    ),
    ("escaped characters in the Request-URI", request(uri="sip:%2B12065551118@127.0.0.1"), {"SIP/2.0 200"}),
    ("a NUL in a header value", request(extra="Subject: a\x00b\r\n"), {"SIP/2.0 200", "SIP/2.0 400"}),
    (
        "bytes that are not UTF-8",
        request(extra="Subject: \xff\xfe\r\n").replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
        {"SIP/2.0 200", "SIP/2.0 400"},
    ),
    ("a 60 KB header", request(extra=f"Subject: {'x' * 60_000}\r\n"), {"SIP/2.0 513"}),  # over 16 KB
    (
        "a From of 60,000 spaces and no address",
        request().replace(b"From: <sip:caller@127.0.0.1>;tag=hostile", b"From: a" + b" " * 60_000 + b"b"),
        {"SIP/2.0 513"},
    ),
    ("300 headers", request(extra="".join(f"X-H{i}: {i}\r\n" for i in range(300))), {"SIP/2.0 400"}),
    (
        "100 Via headers",
        request(
            extra="".join(f"Via: SIP/2.0/UDP 10.0.0.{i % 250}:5060;branch=z9hG4bK{i}\r\n" for i in range(100))
        ),
        {"SIP/2.0 200"},
    ),
    (
        "Content-Length beyond the body",
        request(extra="Content-Length: 5000\r\n", body="short"),
        {"SIP/2.0 400"},
    ),
    ("a negative Content-Length", request(extra="Content-Length: -1\r\n"), {"SIP/2.0 400"}),
    (
        "a CSeq method that does not match",
        request(extra="").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"),
        {"SIP/2.0 400"},
    ),
    ("no Call-ID", request().replace(b"Call-ID: hostile-{n}@127.0.0.1\r\n", b""), {"SIP/2.0 400"}),
    (
        "no Via: nowhere to answer",
        request().replace(b"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-hostile-{n}\r\n", b""),
        set(),
    ),
    (
        "a To without its closing bracket",
        request().replace(b"To: <sip:+12065551118@127.0.0.1>", b"To: <sip:+12065551118@127.0.0.1"),
        {"SIP/2.0 400"},
    ),
    (
        "an RFC 2543 Via without a branch",
        request().replace(b";branch=z9hG4bK-hostile-{n}", b""),
        {"SIP/2.0 200"},
    ),
    (
        "an INVITE to an unknown DID",
        request("INVITE", uri="sip:+4400@127.0.0.1", extra="Content-Type: application/sdp\r\n", body=SDP),
        {"SIP/2.0 100", "SIP/2.0 404"},
    ),
    (
        "an INVITE with SDP but no Content-Type",
        request("INVITE", uri="sip:+4401@127.0.0.1", body=SDP),
        {"SIP/2.0 100", "SIP/2.0 404", "SIP/2.0 488"},
    ),
    (
        "an INVITE with a broken SDP",
        request("INVITE", extra="Content-Type: application/sdp\r\n", body="v=0\r\nm=audio x\r\n"),
        {"SIP/2.0 400"},
    ),
    (
        "an unsolicited response",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx{n}\r\n"
        b"Call-ID: r{n}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        set(),
    ),
    ("a keepalive (CRLF CRLF)", b"\r\n\r\n", set()),
    ("binary garbage", bytes(range(256)) * 4, set()),
    ("an empty datagram", b"", set()),
]


@pytest.mark.parametrize(("what", "message", "acceptable"), TORTURE, ids=[t[0] for t in TORTURE])
def test_torture_messages_get_a_sound_answer_or_none(
    running: Running, what: str, message: bytes, acceptable: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    answers = running.exchange(fresh(message))
    lines = {answer.split(b"\r\n", 1)[0].decode("latin-1")[:11] for answer in answers}
    assert lines <= acceptable, (what, lines)
    if acceptable:
        assert lines, f"{what}: no answer"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a handler raised"
    assert running.exchange(fresh(request()))[0].startswith(b"SIP/2.0 200")  # and it goes on


_HEADER_LINES = st.sampled_from(
    [
        b"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-f{n}",
        b"From: <sip:f@127.0.0.1>;tag=f",
        b"To: <sip:+4400@127.0.0.1>",
        b"Call-ID: f{n}",
        b"CSeq: 1 OPTIONS",
        b"CSeq: 2 INVITE",
        b"Max-Forwards: 70",
        b"Content-Type: application/sdp",
        b"Content-Length: 0",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from([b"OPTIONS", b"INVITE", b"BYE", b"CANCEL", b"ACK", b"REGISTER", b"X"]),
    uri=st.sampled_from([b"sip:+4400@127.0.0.1", b"sip:x", b"tel:+1", b"<>", b""]),
    lines=st.lists(st.one_of(_HEADER_LINES, st.binary(max_size=60)), max_size=12),
    body=st.binary(max_size=200),
)
def test_fuzzed_requests_never_make_the_gateway_raise(
    running: Running,
    caplog: pytest.LogCaptureFixture,
    method: bytes,
    uri: bytes,
    lines: list[bytes],
    body: bytes,
) -> None:
    caplog.set_level(logging.WARNING)
    message = method + b" " + uri + b" SIP/2.0\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + body
    running.exchange(fresh(message), wait=0.02)
    # Unparseable datagrams are logged as warnings and dropped; an error is a handler that raised.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a handler raised"


def test_after_the_fuzz_the_gateway_answers_and_no_call_was_set_up(running: Running) -> None:
    assert running.exchange(fresh(request()))[0].startswith(b"SIP/2.0 200")
    assert all(i.did != DID for i in running.gateway.interactions.all())  # fuzz only dials +4400


def sipvicious(tool: str, *args: str) -> str:
    result = subprocess.run(
        [peer("sipvicious", tool), *args], capture_output=True, text=True, timeout=120, check=False
    )
    return result.stdout + result.stderr


@pytest.mark.sipvicious
def test_svmap_from_a_stranger_learns_only_a_bare_403(tmp_path: Path) -> None:
    gateway = Running(tmp_path)
    try:
        port = str(gateway.port)
        stranger = sipvicious("svmap", "-b", "127.0.0.2", "-p", port, "127.0.0.1")
        friend = sipvicious("svmap", "-b", "127.0.0.1", "-p", port, "127.0.0.1")
        invites = sipvicious("svmap", "-b", "127.0.0.2", "-m", "INVITE", "-e", DID, "-p", port, "127.0.0.1")
        answers = [
            gateway.exchange(
                fresh(request(method, body=SDP if method == "INVITE" else "")), source="127.0.0.2"
            )
            for method in ("INVITE", "OPTIONS", "REGISTER", "FROBNICATE")
        ]
        calls = gateway.gateway.interactions.all()
    finally:
        gateway.stop()
    assert USER_AGENT not in stranger and USER_AGENT not in invites  # no fingerprint for strangers
    assert USER_AGENT in friend  # an allow-listed peer sees what the gateway is
    for (answer,) in answers:  # whatever a stranger sends, the same bare 403
        assert answer.startswith(b"SIP/2.0 403 Forbidden\r\n")
        assert b"User-Agent" not in answer and b"Allow" not in answer
    assert calls == []  # not one call from the stranger's INVITEs


@pytest.mark.sipvicious
@pytest.mark.parametrize(
    ("allow", "method"),
    [
        ("127.0.0.3/32", "INVITE"),  # svwar always sends from 127.0.0.1 (it ignores -b): a stranger here
        ("127.0.0.3/32", "REGISTER"),
        ("127.0.0.1/32", "REGISTER"),  # an allow-listed peer: REGISTER is not a method we take (405)
    ],
)
def test_svwar_finds_no_extension_and_sets_up_no_call(tmp_path: Path, allow: str, method: str) -> None:
    gateway = Running(tmp_path, allow=allow)
    try:
        found = sipvicious("svwar", "-m", method, "-e", "1000-1020", "-p", str(gateway.port), "127.0.0.1")
        calls = gateway.gateway.interactions.all()
    finally:
        gateway.stop()
    assert "found nothing" in found, found[-500:]
    assert calls == []


def test_leftover_state_is_cleared_when_transactions_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactions, "LIFETIME", 0.3)  # Timer H, shortened for the test
    gateway = Running(tmp_path)
    try:
        for n in range(20):  # rejected INVITEs nobody ACKs, as a scanner leaves them
            gateway.exchange(fresh(request("INVITE", uri=f"sip:+44{n}@127.0.0.1", body=SDP)), wait=0.01)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.6), gateway.loop).result(5)
        assert gateway.gateway.held() == []
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def hostile_gateway() -> Iterator[HostileGateway]:
    peer = HostileGateway()
    yield peer
    peer.close()


_RESPONSE_LINES = st.sampled_from(
    [
        b"SIP/2.0 200 OK",
        b"SIP/2.0 180 Ringing",
        b"SIP/2.0 486 Busy Here",
        b"SIP/2.0 999 Whatever",
        b"SIP/2.0 abc",
        b"SIP/3.0 200 OK",
        b"HTTP/1.1 200 OK",
        b"SIP/2.0",
    ]
)
_RESPONSE_HEADERS = st.sampled_from(
    [
        b"Call-ID: {call_id}",
        b"CSeq: 1 INVITE",
        b"CSeq: x INVITE",
        b"To: <sip:+12065551118@127.0.0.1>;tag=g",
        b"From: <sip:+14155550123@127.0.0.1>;tag=c",
        b"Via: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx",
        b"Contact: <sip:g@127.0.0.1:1>",
        b"Contact: garbage",
        b"Content-Type: application/sdp",
        b"Content-Length: 99999",
    ]
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    answers=st.lists(
        st.one_of(
            st.builds(
                lambda line, headers, body: line + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body,
                _RESPONSE_LINES,
                st.lists(_RESPONSE_HEADERS, max_size=8),
                st.binary(max_size=80),
            ),
            st.binary(max_size=120),
        ),
        max_size=3,
    )
)
def test_the_connector_ends_every_transfer_whatever_the_gateway_answers(
    hostile_gateway: HostileGateway, caplog: pytest.LogCaptureFixture, answers: list[bytes]
) -> None:
    from kore_connect.twin.connect.collaborators import TransferRequest
    from kore_connect.twin.connect.connector import Gateway, SipConnector
    from kore_connect.twin.connect.contact import Contact

    hostile_gateway.answers = answers
    contact = Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn="arn")
    connector = SipConnector(Gateway("127.0.0.1", hostile_gateway.port, "udp"), max_call_seconds=2)
    request = TransferRequest(
        time_limit_seconds=1,
        connector_arn="arn:aws:chime:us-east-1:000000000000:vc/x",
        to_user=DID,
        from_user="+14155550123",
    )
    result = asyncio.run(asyncio.wait_for(connector(contact, request), 10))  # it always ends, in time
    assert result.outcome is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a handler raised"
