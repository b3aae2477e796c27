"""Which requests a UAS refuses, and how (`twin/sip/rules.py`): plain messages in, refusals out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.twin.sip.fields import Address
from kore_connect.twin.sip.message import ParseError, Request, Response, parse
from kore_connect.twin.sip.rules import Refusal, bare_response, problem, refusal, reply_via, response_problem
from tests.conftest import EVENTS

# Connect's INVITE from the fixtures, with the CRLF line ends of the wire
INVITE = (EVENTS / "connect-invite.sip").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
REQUEST_LINE = "INVITE sip:+12065551118@198.51.100.73:5060;transport=udp SIP/2.0"


def invite(old: bytes = b"", new: bytes = b"") -> Request:
    assert old in INVITE, old
    message = parse(INVITE.replace(old, new, 1) if old else INVITE)
    assert isinstance(message, Request)
    return message


def test_connects_invite_from_the_fixtures_is_well_formed() -> None:
    assert problem(invite()) is None
    assert refusal(invite()) is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"INVITE sip:", b"INVITE sip", "Bad Request-URI"),  # no scheme: http: would be 416
        (b"CSeq: 1 INVITE", b"CSeq: one INVITE", "Bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 99999999999 INVITE", "Bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 1 BYE", "CSeq Method Does Not Match"),
        (b"Via: SIP/2.0/UDP", b"Via: HTTP/1.1", "Bad Via"),
        (b"Via: SIP/2.0/UDP 192.0.2.44:5060", b"Via: SIP/2.0/UDP 192.0.2.44:99999", "Bad Via"),
        (b"From: <sip:+12125550187@192.0.2.44>", b"From: +12125550187", "Bad From"),
        (b"To: <sip:", b"To: <mailto:", "Bad To"),
        (b"Max-Forwards: 70", b"Max-Forwards: many", "Bad Max-Forwards"),
        (b"Max-Forwards: 70", "Max-Forwards: \u00b2".encode(), "Bad Max-Forwards"),  # a digit, not ASCII
        (b"Max-Forwards: 70", b"Max-Forwards: 256", "Bad Max-Forwards"),
        (b"v=0", b"v=zero", "Bad SDP"),
        (b"m=audio 20480", b"m=audio xxxxx", "Bad SDP"),
        (b";rport\r\n", b";rport;;\r\n", "Malformed Via"),  # an empty parameter
        (b";rport\r\n", b";rport,;,\r\n", "Malformed Via"),  # stray separators: empty Via values
        (b"Via: SIP/2.0/UDP 192.0.2.44:5060", b"Via: SIP/2.0/UDP 192.0.2.44 :5060 x", "Malformed Via"),
        (b">;tag=a3c9f1e0-conn", b">;;tag=a3c9f1e0-conn", "Bad From"),
        (b">;tag=a3c9f1e0-conn", b">;tag=", "Bad From"),  # a parameter's = with no value
        (b"To: <sip:+12065551118@198.51.100.73>", b"To: <sip:+1@h>, <sip:+2@h>", "Bad To"),  # two in one
        (b"CSeq: 1 INVITE", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE", "More Than One CSeq"),
        (b"To: <sip:", b"To: <sip:+4475@127.0.0.1>\r\nt: <sip:", "More Than One To"),
        (b"Call-ID: ", b"i: other\r\nCall-ID: ", "More Than One Call-ID"),
        (b"Call-ID: 3a858169-3c37-464b-8717-13675f0aee41\r\n", b"", "Missing Call-ID"),  # §8.1.1
        (b"CSeq: 1 INVITE\r\n", b"", "Missing CSeq"),
        # PROTOS c07-sip's Contact cases: the dialog's requests would have nowhere to go
        (b"Contact: <sip:+12125550187@192.0.2.44:5060;transport=udp>", b"Contact: <>", "Bad Contact"),
        (b"Contact: <sip:", b"Contact: <sip:+1@192.0.2.9>, <sip:", "More Than One Contact"),
    ],
)
def test_a_malformed_request_is_named_with_its_fault(old: bytes, new: bytes, reason: str) -> None:
    assert problem(invite(old, new)) == reason
    assert refusal(invite(old, new)) == Refusal(400, reason)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"Content-Length: 234", "Content-Length: \u0662\u0663\u0664".encode(), "Bad Content-Length"),
        (b"Content-Length: 234", b"l: 200\r\nContent-Length: 234", "More Than One Content-Length"),
        (b"Content-Length: 234", b"Content-Length: 300", "Body Shorter Than Content-Length"),
    ],
)
def test_a_request_whose_body_cannot_be_framed_is_refused_by_the_parser(
    old: bytes, new: bytes, reason: str
) -> None:
    with pytest.raises(ParseError) as error:
        invite(old, new)
    assert error.value.reason == reason
    assert error.value.request is not None and reply_via(error.value.request) is not None  # answerable


@pytest.mark.parametrize("content_type", ["Application/SDP", "application/sdp;charset=utf-8"])
def test_sdp_is_read_as_sdp_whatever_the_case_or_parameters_of_its_media_type(content_type: str) -> None:
    broken = invite(b"v=0", b"v=zero")
    broken = broken.replacing(headers=broken.headers.setting("Content-Type", content_type))
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
    request = invite(b"CSeq: 1 INVITE", f"CSeq: 1 {method}".encode()).replacing(method=method)
    assert problem(request) is None  # well formed: the UAS answers it 405, not 400


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (REQUEST_LINE.replace(" ", "   ") + " ", None),  # runs of SP, a trailing SP: taken (RFC 4475)
        (REQUEST_LINE.replace("SIP/2.0", "sip/2.0"), None),  # the version is case-insensitive (§7.1)
        (REQUEST_LINE.replace("SIP/2.0", "SIP/9.1"), Refusal(505, "Version Not Supported")),
    ],
)
def test_a_request_line_is_refused_for_its_version(line: str, answer: Refusal | None) -> None:
    assert refusal(invite(REQUEST_LINE.encode(), line.encode())) == answer


@pytest.mark.parametrize(
    "line",
    [REQUEST_LINE.replace(";transport", "; transport"), REQUEST_LINE.replace("SIP/2.0", "HTTP/1.1")],
)
def test_a_request_line_with_a_space_in_its_uri_or_no_sip_version_cannot_be_read(line: str) -> None:
    with pytest.raises(ParseError) as error:
        invite(REQUEST_LINE.encode(), line.encode())
    assert error.value.reason == "Bad Request-Line"


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
    assert refusal(invite().replacing(uri=uri)) == answer


def test_a_required_extension_we_lack_is_420_naming_it_and_proxy_require_is_not_ours() -> None:
    request = invite(b"Allow:", b"Require: 100rel, x-made-up\r\nProxy-Require: x-proxy-only\r\nAllow:")
    assert refusal(request) == Refusal(420, "Bad Extension", (("Unsupported", "100rel, x-made-up"),))
    assert refusal(request, option_tags=frozenset({"100rel"})) == Refusal(
        420, "Bad Extension", (("Unsupported", "x-made-up"),)
    )
    assert refusal(invite(b"Allow:", b"Proxy-Require: x-proxy-only\r\nAllow:")) is None


def test_a_require_in_a_cancel_is_ignored() -> None:
    request = invite(b"Allow:", b"Require: x-made-up\r\nAllow:")
    cancel = request.replacing(method="CANCEL", headers=request.headers.setting("CSeq", "1 CANCEL"))
    assert refusal(cancel) is None


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
    assert refusal(invite(b"Content-Type: application/sdp", b"Content-Type: " + content_type)) == answer


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
    assert refusal(invite(b"Allow:", b"Accept: " + accept + b"\r\nAllow:")) == answer


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
    assert problem(invite(old, new)) is None


def test_a_malformed_via_can_still_be_answered_where_it_says() -> None:
    via = reply_via(invite(b";rport\r\n", b";rport;;\r\n"))
    assert via is not None and (via.host, via.port, via.get("rport")) == ("192.0.2.44", 5060, "")


@given(st.binary(max_size=400))
def test_garbage_after_a_request_line_is_refused_or_acted_on_never_raises(noise: bytes) -> None:
    try:
        message = parse(b"INVITE sip:+1@127.0.0.1 SIP/2.0\r\n" + noise)
    except ParseError:
        return
    assert isinstance(message, Request)
    reason = problem(message)
    # a reason phrase goes into the 400's status line: one printable line
    assert reason is None or (reason != "" and reason.isprintable())
    if not message.headers.get_all("Via"):
        assert reason == "Bad Via"  # no Via at all: nowhere to answer, whatever else is wrong


def test_a_bare_response_holds_what_rfc_3261_requires_and_nothing_more() -> None:
    request = invite()
    answer = bare_response(request, 403, "Forbidden", (("Retry-After", "60"),))
    assert [name for name, _ in answer.headers] == ["Via", "From", "Call-ID", "CSeq", "To", "Retry-After"]
    assert answer.headers.get("Via") == request.headers.get("Via")
    to = Address.parse(answer.headers.get("To") or "")
    assert to.uri == "sip:+12065551118@198.51.100.73" and to.tag and len(to.tag) >= 8
    assert bare_response(request, 403, "Forbidden").headers.get("To") != answer.headers.get("To")  # a new tag


def test_a_bare_response_keeps_a_to_tag_the_request_has() -> None:
    request = invite(
        b"To: <sip:+12065551118@198.51.100.73>", b"To: <sip:+12065551118@198.51.100.73>;tag=ours"
    )
    assert bare_response(request, 481, "Call/Transaction Does Not Exist").headers.get("To") == (
        "<sip:+12065551118@198.51.100.73>;tag=ours"
    )


def response_to(request: Request, status: int = 200) -> Response:
    return bare_response(request, status, "x")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"", b"", None),
        (b"CSeq: 1 INVITE", b"CSeq: 4294967301 INVITE", "Bad CSeq"),  # past 2**31: no request of ours
        (b"CSeq: 1 INVITE", b"CSeq: 1 IN VITE", "Bad CSeq"),
        (b"\r\nFrom:", b"\r\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bKx\r\nFrom:", "More Than One Via"),
        (b"Call-ID: 3a858169-3c37-464b-8717-13675f0aee41\r\n", b"", "Bad Call-ID or Via"),
    ],
)
def test_a_response_that_cannot_answer_a_request_of_ours_is_named(
    old: bytes, new: bytes, reason: str | None
) -> None:
    answer = parse(bytes(response_to(invite())).replace(old, new, 1))
    assert isinstance(answer, Response)
    assert response_problem(answer) == reason


def test_a_status_code_outside_100_to_699_matches_no_request() -> None:
    assert response_problem(response_to(invite()).replacing(status=99)) == "Bad Status Code"
    assert response_problem(response_to(invite()).replacing(status=700)) == "Bad Status Code"
