"""Header values read into data (`twin/sip/fields.py`): Via, addresses, CSeq, URI parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.twin.sip.fields import (
    Address,
    CSeq,
    FieldError,
    Via,
    reply_address,
    stamp,
    uri_host_port,
    uri_user,
)


def test_a_via_is_read_into_its_parts() -> None:
    via = Via.parse("SIP / 2.0 / udp 192.0.2.1:5070 ; branch = z9hG4bK-1 ;rport;received=10.0.0.1")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "192.0.2.1", 5070, "z9hG4bK-1")
    assert via.get("rport") == "" and via.get("RECEIVED") == "10.0.0.1" and via.get("maddr") is None
    assert str(via) == "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1;rport;received=10.0.0.1"


def test_an_ipv6_via_keeps_its_brackets() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bK-6")
    assert (via.host, via.port, via.sent_by) == ("[2001:db8::9:1]", 5061, "[2001:db8::9:1]:5061")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SIP/2.0/UDP 127.0.0.1:65536;branch=z9hG4bK-p", "Bad Via Port"),  # PROTOS sip-via-hostport
        ("SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bK-p", "Bad Via Port"),
        ("SIP/2.0/UDP 127.0.0.1;rport=99999", "Bad Via Port"),
        ("SIP/2.0/UDP 127.0.0.1;rport=x", "Bad Via Port"),
        ("SIP/3.0/UDP 127.0.0.1", "Bad Via"),
        ("SIP/2.0/UDP", "Bad Via"),
        ("SIP/2.0/UDP 127.0.0.1;;branch=z9hG4bK-p", "Bad Via"),  # RFC 4475 §3.1.2.1: an empty parameter
        ("SIP/2.0/UDP 127.0.0.1;branch=", "Bad Via"),
        ("SIP/2.0/UDP 127.0.0.1 junk", "Bad Via"),
    ],
)
def test_a_via_that_does_not_read_is_named(text: str, reason: str) -> None:
    with pytest.raises(FieldError) as error:
        Via.parse(text)
    assert error.value.reason == reason


SOURCE = ("198.51.100.7", 40000)


@pytest.mark.parametrize(
    ("via", "reply_to"),
    [
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-1", ("198.51.100.7", 5070)),  # received: the source
        ("SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-1", ("198.51.100.7", 5060)),
        ("SIP/2.0/UDP 198.51.100.7:5070;rport", ("198.51.100.7", 40000)),  # RFC 3581: back where it came from
        ("SIP/2.0/UDP 192.0.2.1:5070;received=10.0.0.1;rport", ("198.51.100.7", 40000)),
        ("SIP/2.0/UDP 198.51.100.7:5070;rport=7000", ("198.51.100.7", 40000)),
        ("SIP/2.0/UDP [2001:db8::1]:5070", ("198.51.100.7", 5070)),
    ],
)
def test_a_reply_over_udp_goes_where_the_via_says_once_stamped(via: str, reply_to: tuple[str, int]) -> None:
    assert reply_address(stamp(Via.parse(via), SOURCE, reliable=False)) == reply_to


def test_a_via_from_the_address_it_names_is_left_as_it_came() -> None:
    via = Via.parse("SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bK-1")
    assert stamp(via, SOURCE, reliable=False) == via


def test_over_tcp_the_reply_goes_back_on_the_connection_whatever_the_via_says() -> None:
    via = stamp(Via.parse("SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK-1"), SOURCE, reliable=True)
    assert reply_address(via) == SOURCE
    assert str(via) == "SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK-1;received=198.51.100.7;rport=40000"


def test_an_address_is_read_with_its_display_name_and_tag() -> None:
    address = Address.parse('"J Rosenberg \\""  <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert (address.display_name, address.uri, address.tag) == (
        '"J Rosenberg \\""',
        "sip:jdrosen@example.com",
        "98asjd8",
    )
    assert str(address.with_tag("x")) == '"J Rosenberg \\"" <sip:jdrosen@example.com>;tag=x'


def test_an_addr_spec_keeps_its_parameters_apart_from_the_uri() -> None:
    address = Address.parse("sip:+14155550123@127.0.0.1;tag=abc")
    assert (address.uri, address.tag, address.bracketed) == ("sip:+14155550123@127.0.0.1", "abc", False)
    assert str(address) == "<sip:+14155550123@127.0.0.1>;tag=abc"


def test_an_unquoted_display_name_outside_token_is_taken_liberally() -> None:
    # RFC 4475 §3.1.2.15 (baddn) allows a liberal reader; display names are never acted on here
    assert Address.parse("Bell, Alexander <sip:a.g.bell@bell-tel.com>").uri == "sip:a.g.bell@bell-tel.com"


def test_a_display_name_written_without_a_space_before_its_bracket_is_read() -> None:
    assert (
        Address.parse("caller<sip:caller@example.com>;tag=323").display_name == "caller"
    )  # RFC 4475 §3.1.1.6


@pytest.mark.parametrize(
    "text",
    [
        '"Mr J. User <sip:j.user@example.com>',  # §3.1.2.6 quotbal: the quote never closes
        "<http://example.com/>",  # a scheme no SIP address has
        "sip:",  # a scheme and nothing else
        "",
    ],
)
def test_an_address_that_does_not_read_is_refused(text: str) -> None:
    with pytest.raises(FieldError):
        Address.parse(text, "From")


def test_a_parameter_without_a_value_is_read_as_empty() -> None:
    assert Address.parse("<sip:a@b>;tag").tag == ""
    assert Address.parse("<sip:a@b>").tag is None


def test_a_cseq_is_a_number_and_a_method() -> None:
    assert CSeq.parse(" 0009   INVITE ") == CSeq(9, "INVITE")
    assert str(CSeq(2, "BYE")) == "2 BYE"
    for bad in ("", "1", "INVITE 1", "-1 INVITE", "2147483648 INVITE", "1 INV ITE", "²1 INVITE"):
        with pytest.raises(FieldError):
            CSeq.parse(bad)


@pytest.mark.parametrize(
    ("uri", "user"),
    [
        ("sip:+18005550100@127.0.0.1;transport=udp", "+18005550100"),
        ("sip:%2B1800%35550100@h", "%2B18005550100"),  # %35 is 5; %2B is not +
        ("sip:h", ""),
        ("tel:+1", ""),
    ],
)
def test_the_user_of_a_uri(uri: str, user: str) -> None:
    assert uri_user(uri) == user


def test_the_host_and_port_of_a_uri() -> None:
    assert uri_host_port("sip:a@192.0.2.1:5080;transport=tcp") == ("192.0.2.1", 5080)
    assert uri_host_port("sip:[2001:db8::1]") == ("2001:db8::1", None)
    for bad in ("sip:", "sip:a@h:70000", "sip:a@"):
        with pytest.raises(FieldError):
            uri_host_port(bad)


@given(st.text(max_size=80))
def test_any_text_is_a_via_or_a_field_error(text: str) -> None:
    for read in (Via.parse, Address.parse, CSeq.parse):
        try:
            value = read(text)
        except FieldError:
            continue
        assert str(value)
