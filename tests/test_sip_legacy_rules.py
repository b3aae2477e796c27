"""(The rules of the aiosipua-based connector, until it runs on twin/sip: see test_sip_rules.py.)

RFC 3261's rules as plain logic: which requests are malformed (400), which are retransmissions
(absorbed, answered with the last response), and Timer E's schedule."""

from __future__ import annotations

import re

import pytest
from aiosipua.message import SipMessage, SipRequest, SipResponse
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.twin.sip_transactions import ServerTransactions, retransmit_intervals
from kore_connect.twin.sip_validation import Refusal, problem, refusal, response_problem
from tests.conftest import EVENTS

# Connect's INVITE from the fixtures, with the CRLF line ends of the wire
INVITE = (EVENTS / "connect-invite.sip").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def invite(old: bytes = b"", new: bytes = b"") -> SipRequest:
    message = SipMessage.parse(INVITE.replace(old, new, 1) if old else INVITE)
    assert isinstance(message, SipRequest)
    return message


def response(request: SipRequest, status: int) -> SipResponse:
    answer = SipResponse(status_code=status, reason_phrase="x")
    for name in ("via", "from", "to", "call-id", "cseq"):
        for value in request.headers.get(name):
            answer.headers.append(name, value)
    return answer


def test_connects_invite_from_the_fixtures_is_well_formed() -> None:
    assert problem(invite()) is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"INVITE sip:", b"INVITE http:", "Bad Request-URI"),
        (b"CSeq: 1 INVITE", b"CSeq: one INVITE", "Bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 99999999999 INVITE", "Bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 1 BYE", "CSeq Method Does Not Match"),
        (b"Via: SIP/2.0/UDP", b"Via: HTTP/1.1", "Bad Via"),
        (b"From: <sip:+12125550187@192.0.2.44>", b"From: +12125550187", "Bad From"),
        (b"To: <sip:", b"To: <mailto:", "Bad To"),
        (b"Max-Forwards: 70", b"Max-Forwards: many", "Bad Max-Forwards"),
        (b"Max-Forwards: 70", "Max-Forwards: \u00b2".encode(), "Bad Max-Forwards"),  # a digit, not ASCII
        (b"Content-Length: 234", "Content-Length: \u0662\u0663\u0664".encode(), "Bad Content-Length"),
        (b"v=0", b"v=zero", "Bad SDP"),
        (b";rport\r\n", b";rport;;\r\n", "Malformed Via"),  # an empty parameter
        (b";rport\r\n", b";rport,;,\r\n", "Malformed Via"),  # stray separators: empty Via values
        (b"Via: SIP/2.0/UDP 192.0.2.44:5060", b"Via: SIP/2.0/UDP 192.0.2.44 :5060 x", "Malformed Via"),
        (b">;tag=a3c9f1e0-conn", b">;;tag=a3c9f1e0-conn", "Bad From"),
        (b">;tag=a3c9f1e0-conn", b">;tag=", "Bad From"),  # a parameter's = with no value
        (b"To: <sip:+12065551118@198.51.100.73>", b"To: <sip:+1@h>, <sip:+2@h>", "Bad To"),  # two in one
        (b"CSeq: 1 INVITE", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE", "More Than One CSeq"),
        (b"To: <sip:", b"To: <sip:+4475@127.0.0.1>\r\nt: <sip:", "More Than One To"),
        (b"Content-Length: 234", b"l: 200\r\nContent-Length: 234", "More Than One Content-Length"),
        (b"m=audio 20480", b"m=audio xxxxx", "Bad SDP"),
    ],
)
def test_a_malformed_request_is_named_with_its_fault(old: bytes, new: bytes, reason: str) -> None:
    assert old in INVITE, old
    assert problem(invite(old, new)) == reason


@pytest.mark.parametrize("content_type", ["Application/SDP", "application/sdp;charset=utf-8"])
def test_sdp_is_read_as_sdp_whatever_the_case_or_parameters_of_its_media_type(content_type: str) -> None:
    broken = invite(b"v=0", b"v=zero")
    broken.headers.set_single("content-type", content_type)
    assert problem(broken) == "Bad SDP"  # not taken for another body type, whose offer has no codec


@pytest.mark.parametrize(
    "sender",
    [
        b'"Amazon Connect" <sip:+12125550187@192.0.2.44>',  # a quoted display name, then a space
        b'"Caller \\"the\\" one \\\\ two"<sip:+12125550187@192.0.2.44>',  # quoted-pairs inside
        b"Amazon Connect <sip:+12125550187@192.0.2.44>",  # unquoted tokens
    ],
)
def test_display_names_as_rfc_3261_writes_them_are_well_formed(sender: bytes) -> None:
    assert problem(invite(b"From: <sip:+12125550187@192.0.2.44>", b"From: " + sender)) is None


def test_a_display_name_whose_quote_never_closes_is_malformed() -> None:
    assert problem(invite(b"From: <sip:", b'From: "Amazon Connect <sip:')) == "Bad From"


@pytest.mark.parametrize("method", ["FROBNICATE", "X-Odd.Method_4475*+`%'~!", "INV%49TE"])
def test_an_extension_method_is_any_token_in_its_cseq_too(method: str) -> None:
    request = invite(b"CSeq: 1 INVITE", f"CSeq: 1 {method}".encode())
    request.method = method
    assert problem(request) is None  # well formed: the UAS answers it 405, not 400


REQUEST_LINE = "INVITE sip:+12065551118@198.51.100.73:5060;transport=udp SIP/2.0"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (REQUEST_LINE, None),
        (REQUEST_LINE.replace(" ", "   ") + " ", None),  # runs of SP, a trailing SP: taken (RFC 4475)
        (REQUEST_LINE.replace("SIP/2.0", "sip/2.0"), None),  # the version is case-insensitive (§7.1)
        (REQUEST_LINE.replace("SIP/2.0", "SIP/9.1"), Refusal(505, "Version Not Supported")),
        (REQUEST_LINE.replace(";transport", "; transport"), Refusal(400, "Bad Request-Line")),
        (REQUEST_LINE.replace("SIP/2.0", "HTTP/1.1"), Refusal(400, "Bad Request-Line")),
    ],
)
def test_a_request_line_is_refused_for_its_version_or_a_space_in_its_uri(
    line: str, answer: Refusal | None
) -> None:
    assert REQUEST_LINE in INVITE.decode()
    assert refusal(invite(), line) == answer


def test_a_malformed_request_is_refused_400_with_its_fault() -> None:
    assert refusal(invite(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), REQUEST_LINE) == Refusal(400, "Bad CSeq")


@pytest.mark.parametrize(
    ("uri", "answer"),
    [
        ("tel:+12065551118", None),
        ("http://198.51.100.73/kore", Refusal(416, "Unsupported URI Scheme")),
        ("urn:service:sos", Refusal(416, "Unsupported URI Scheme")),
        ("x-no.such+scheme-2:opaque", Refusal(416, "Unsupported URI Scheme")),
        ("<sip:+12065551118@198.51.100.73>", Refusal(400, "Bad Request-URI")),  # no scheme at all
    ],
)
def test_a_request_uri_in_a_scheme_we_do_not_serve_is_416_and_one_without_a_scheme_400(
    uri: str, answer: Refusal | None
) -> None:
    request = invite()
    request.uri = uri
    assert refusal(request, f"INVITE {uri} SIP/2.0") == answer


def test_a_required_extension_we_lack_is_420_naming_it_and_proxy_require_is_not_ours() -> None:
    request = invite(b"Allow:", b"Require: 100rel, x-made-up\r\nProxy-Require: x-proxy-only\r\nAllow:")
    assert refusal(request, REQUEST_LINE) == Refusal(
        420, "Bad Extension", (("Unsupported", "100rel, x-made-up"),)
    )
    assert refusal(invite(b"Allow:", b"Proxy-Require: x-proxy-only\r\nAllow:"), REQUEST_LINE) is None


def test_a_require_in_a_cancel_is_ignored() -> None:
    request = invite(b"Allow:", b"Require: x-made-up\r\nAllow:")
    request.method = "CANCEL"
    request.headers.set_single("CSeq", "1 CANCEL")
    assert refusal(request, REQUEST_LINE.replace("INVITE", "CANCEL")) is None


@pytest.mark.parametrize(
    ("content_type", "answer"),
    [
        (b"Application/SDP; charset=utf-8", None),
        (
            b"multipart/mixed; boundary=x",
            Refusal(415, "Unsupported Media Type", (("Accept", "application/sdp"),)),
        ),
        (b"application/x-unknown", Refusal(415, "Unsupported Media Type", (("Accept", "application/sdp"),))),
    ],
)
def test_an_invite_body_other_than_sdp_is_415_naming_what_we_accept(
    content_type: bytes, answer: Refusal | None
) -> None:
    request = invite(b"Content-Type: application/sdp", b"Content-Type: " + content_type)
    assert refusal(request, REQUEST_LINE) == answer


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (b"application/sdp;level=1, text/plain", None),
        (b"application/*", None),
        (b"*/*", None),
        (b"text/x-unknown, application/json", Refusal(406, "Not Acceptable")),
    ],
)
def test_an_invite_that_accepts_no_sdp_is_406_as_sdp_is_all_we_answer(
    accept: bytes, answer: Refusal | None
) -> None:
    request = invite(b"Allow:", b"Accept: " + accept + b"\r\nAllow:")
    assert refusal(request, REQUEST_LINE) == answer


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"192.0.2.44:5060;branch", b"[2001:db8::1]:5060;received=2001:db8::9;branch"),
        (b"192.0.2.44:5060;branch=", b'192.0.2.44:5060 ; maddr = 239.1.1.1 ; x="a; b" ; branch = '),
        (
            b"From: <sip:+12125550187@192.0.2.44>;tag=a3c9f1e0-conn",
            b"From: sip:+12125550187@192.0.2.44;tag=a3c9f1e0-conn",
        ),
        (b">;tag=a3c9f1e0-conn", b"> ; tag = a3c9f1e0-conn ; x-flag"),
    ],
)
def test_parameters_as_rfc_3261_writes_them_are_well_formed(old: bytes, new: bytes) -> None:
    assert old in INVITE, old
    assert problem(invite(old, new)) is None


def test_a_body_cut_short_of_its_content_length_is_malformed() -> None:
    cut = SipMessage.parse(INVITE[:-20])
    assert isinstance(cut, SipRequest)
    assert problem(cut) == "Body Shorter Than Content-Length"


@given(st.binary(max_size=400))
def test_garbage_after_a_request_line_never_raises(noise: bytes) -> None:
    try:
        message = SipMessage.parse(b"INVITE sip:+1@127.0.0.1 SIP/2.0\r\n" + noise)
    except ValueError:
        return  # aiosipua refuses it: the transport drops it
    assert isinstance(message, SipRequest)
    reason = problem(message)
    # a reason phrase goes into the 400's status line: one printable line
    assert reason is None or (reason != "" and reason.isprintable())
    if not re.search(rb"(?im)^[ \t]*(via|v)[ \t]*:", noise):
        assert reason == "Bad Via"  # no Via at all: nowhere to answer, whatever else is wrong


def test_a_retransmitted_request_is_answered_with_the_last_response_sent_for_it() -> None:
    transactions = ServerTransactions()
    first = invite()
    assert transactions.received(first, now=0.0) == (False, None)  # a new transaction
    assert transactions.received(invite(), now=0.1) == (True, None)  # nothing sent yet: absorbed
    ringing = response(first, 180)
    transactions.answered(ringing, now=0.2)
    assert transactions.received(invite(), now=0.3) == (True, ringing)
    busy = response(first, 486)
    transactions.answered(busy, now=0.4)
    assert transactions.received(invite(), now=0.5) == (True, busy)


def test_an_invite_answered_2xx_absorbs_its_copies_without_an_answer() -> None:
    transactions = ServerTransactions()
    transactions.received(invite(), now=0.0)
    transactions.answered(response(invite(), 200), now=0.1)
    assert transactions.received(invite(), now=0.2) == (True, None)  # RFC 6026: the TU resends 2xx


def test_other_branches_methods_and_acks_are_not_retransmissions() -> None:
    transactions = ServerTransactions()
    transactions.received(invite(), now=0.0)
    assert transactions.received(invite(b"branch=z9hG4bK", b"branch=z9hG4bKother"), now=0.1) == (False, None)
    cancel = invite(b"INVITE sip:", b"CANCEL sip:")
    cancel.method = "CANCEL"
    assert transactions.received(cancel, now=0.1) == (False, None)  # same branch, other method
    ack = invite()
    ack.method = "ACK"
    assert transactions.received(ack, now=0.2) == (False, None)
    assert transactions.received(ack, now=0.3) == (False, None)
    legacy = invite(b"branch=z9hG4bK", b"branch=rfc2543-")
    assert transactions.received(legacy, now=0.4) == (False, None)
    assert transactions.received(legacy, now=0.5) == (False, None)  # no branch cookie: never matched
    bare = invite(b"branch=z9hG4bK-5d3b9a2a-0001", b"branch=z9hG4bK")
    assert transactions.received(bare, now=0.6) == (False, None)
    assert transactions.received(bare, now=0.7) == (False, None)  # the cookie alone: no identifier either


def test_a_transaction_is_forgotten_after_its_lifetime_and_the_table_is_bounded() -> None:
    transactions = ServerTransactions(lifetime=32.0, limit=3)
    transactions.received(invite(), now=0.0)
    assert transactions.received(invite(), now=31.9)[0] is True
    assert transactions.received(invite(), now=32.1)[0] is False  # expired: a new transaction
    for n in range(5):
        transactions.received(invite(b"branch=z9hG4bK", f"branch=z9hG4bK{n}x".encode()), now=40.0)
    assert len(transactions) == 3


def test_timer_e_doubles_from_t1_to_t2_within_the_transactions_lifetime() -> None:
    waits = list(retransmit_intervals())
    assert waits[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert max(waits) == 4.0 and sum(waits) < 32.0 and sum(waits) + 4.0 >= 32.0


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"", b"", None),
        (b"CSeq: 1 INVITE", b"CSeq: 4294967301 INVITE", "Bad CSeq"),  # past 2**31: no request of ours
        (b"CSeq: 1 INVITE", b"CSeq: 1 IN VITE", "Bad CSeq"),
        (b"\r\nFrom:", b"\r\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bKx\r\nFrom:", "More Than One Via"),
    ],
)
def test_a_response_that_cannot_answer_a_request_of_ours_is_named(
    old: bytes, new: bytes, reason: str | None
) -> None:
    answer = SipMessage.parse(bytes(response(invite(), 200)).replace(old, new, 1))
    assert isinstance(answer, SipResponse)
    assert response_problem(answer) == reason
