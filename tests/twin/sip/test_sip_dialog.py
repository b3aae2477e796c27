"""Dialogs as data (`twin/sip/dialog.py`): route sets, remote targets, CSeq, in-dialog requests."""

from __future__ import annotations

import pytest

from kore_connect.twin.sip.dialog import DialogError, SipDialog
from kore_connect.twin.sip.fields import Address, Via
from kore_connect.twin.sip.message import Headers, Request, Response

INVITE = Request(
    method="INVITE",
    uri="sip:+12065551118@198.51.100.73",
    headers=Headers.of(
        ("Via", "SIP/2.0/UDP proxy.example;branch=z9hG4bK-p"),
        ("Via", "SIP/2.0/UDP 192.0.2.44:5060;branch=z9hG4bK-1"),
        ("Record-Route", "<sip:edge.example;lr>, <sip:proxy.example;lr>"),
        ("From", '"Connect" <sip:+12125550187@192.0.2.44>;tag=conn'),
        ("To", "<sip:+12065551118@198.51.100.73>"),
        ("Call-ID", "call-1"),
        ("CSeq", "7 INVITE"),
        ("Contact", "<sip:+12125550187@192.0.2.44:5060;transport=udp>"),
    ),
)
OK = Response(
    status=200,
    reason="OK",
    headers=INVITE.headers.without("Contact")
    .setting("To", "<sip:+12065551118@198.51.100.73>;tag=gw")
    .adding("Contact", "<sip:gw@198.51.100.73:5080>"),
)
OUR_VIA = "SIP/2.0/UDP 198.51.100.73:5080"


def test_the_answering_side_routes_by_record_route_in_order_to_the_callers_contact() -> None:
    # GIVEN the dialog our 200 makes (RFC 3261 §12.1.1)
    dialog = SipDialog.as_uas(INVITE, local_tag="gw")
    # WHEN the gateway hangs up
    bye = dialog.request("BYE", OUR_VIA, (("X-Transfer", "agent"),))
    # THEN the BYE goes to the caller's Contact through both proxies, in order
    assert bye.uri == "sip:+12125550187@192.0.2.44:5060;transport=udp"
    assert bye.headers.get_all("Route") == ("<sip:edge.example;lr>", "<sip:proxy.example;lr>")
    assert dialog.next_hop() == ("edge.example", None)
    assert bye.headers.get("From") == "<sip:+12065551118@198.51.100.73>;tag=gw"
    assert bye.headers.get("To") == "<sip:+12125550187@192.0.2.44>;tag=conn"
    assert bye.headers.get("CSeq") == "1 BYE" and bye.call_id == "call-1"
    assert bye.headers.get("X-Transfer") == "agent"
    via = Via.parse(bye.top_via or "")
    assert via.sent_by == "198.51.100.73:5080" and via.branch.startswith("z9hG4bK-")
    assert dialog.request("BYE", OUR_VIA).headers.get("CSeq") == "2 BYE"  # each request, the next number


def test_the_calling_side_routes_by_record_route_reversed_to_the_gateways_contact() -> None:
    dialog = SipDialog.as_uac(INVITE, OK)  # §12.1.2
    assert dialog.id == ("call-1", "conn", "gw")
    bye = dialog.request("BYE", "SIP/2.0/UDP 192.0.2.44:5060")
    assert bye.uri == "sip:gw@198.51.100.73:5080"
    assert bye.headers.get_all("Route") == ("<sip:proxy.example;lr>", "<sip:edge.example;lr>")
    assert bye.headers.get("CSeq") == "8 BYE"  # after the INVITE's 7
    assert bye.headers.get("From") == "<sip:+12125550187@192.0.2.44>;tag=conn"


def test_the_ack_of_the_2xx_carries_the_invites_number_and_a_branch_of_its_own() -> None:
    dialog = SipDialog.as_uac(INVITE, OK)
    ack = dialog.ack("SIP/2.0/UDP 192.0.2.44:5060")
    assert ack.method == "ACK" and ack.headers.get("CSeq") == "7 ACK"
    assert Via.parse(ack.top_via or "").branch not in ("z9hG4bK-1", "z9hG4bK-p")
    assert dialog.ack("SIP/2.0/UDP 192.0.2.44:5060").top_via != ack.top_via
    assert dialog.request("BYE", "SIP/2.0/UDP h").headers.get("CSeq") == "8 BYE"  # the ACK took no number


def test_a_strict_router_becomes_the_request_uri_and_the_target_the_last_route() -> None:
    invite = INVITE.replacing(headers=INVITE.headers.setting("Record-Route", "<sip:old.example>"))
    bye = SipDialog.as_uas(invite, "gw").request("BYE", OUR_VIA)
    assert bye.uri == "sip:old.example"
    assert bye.headers.get_all("Route") == ("<sip:+12125550187@192.0.2.44:5060;transport=udp>",)


def test_without_a_route_set_the_next_hop_is_the_target() -> None:
    invite = INVITE.replacing(headers=INVITE.headers.without("Record-Route"))
    dialog = SipDialog.as_uas(invite, "gw")
    assert dialog.next_hop() == ("192.0.2.44", 5060)
    assert dialog.request("BYE", OUR_VIA).headers.get("Route") is None


def test_requests_of_the_dialog_are_recognised_by_call_id_and_both_tags() -> None:
    dialog = SipDialog.as_uas(INVITE, "gw")
    bye = SipDialog.as_uac(INVITE, OK).request("BYE", "SIP/2.0/UDP 192.0.2.44:5060")
    assert dialog.matches(bye)
    assert not dialog.matches(bye.replacing(headers=bye.headers.setting("Call-ID", "other")))
    assert not dialog.matches(bye.replacing(headers=bye.headers.setting("To", "<sip:x@h>;tag=other")))
    assert not dialog.matches(bye.replacing(headers=bye.headers.setting("From", "<sip:x@h>;tag=other")))
    assert not dialog.matches(bye.replacing(headers=bye.headers.setting("From", "nonsense")))


def test_a_request_whose_cseq_goes_back_is_out_of_order() -> None:
    dialog = SipDialog.as_uas(INVITE, "gw")  # the remote number is the INVITE's 7
    peer = SipDialog.as_uac(INVITE, OK)
    dialog.receive(peer.request("INFO", "SIP/2.0/UDP h"))  # 8
    assert dialog.remote_seq == 8
    stale = peer.request("BYE", "SIP/2.0/UDP h").replacing()  # 9, sent ...
    late = stale.replacing(headers=stale.headers.setting("CSeq", "5 BYE"))  # ... as 5
    with pytest.raises(DialogError) as error:
        dialog.receive(late)
    assert (error.value.status, error.value.reason) == (500, "CSeq Out Of Order")
    dialog.receive(stale)
    assert dialog.remote_seq == 9


def test_a_re_invite_refreshes_the_remote_target() -> None:
    dialog = SipDialog.as_uas(INVITE, "gw")
    reinvite = SipDialog.as_uac(INVITE, OK).request(
        "INVITE", "SIP/2.0/UDP h", (("Contact", "<sip:moved@192.0.2.50:5062>"),)
    )
    dialog.receive(reinvite)
    assert dialog.remote_target == "sip:moved@192.0.2.50:5062"


def test_an_invite_whose_contact_does_not_read_makes_no_dialog() -> None:
    invite = INVITE.replacing(headers=INVITE.headers.setting("Contact", "not an address"))
    with pytest.raises(DialogError):
        SipDialog.as_uas(invite, "gw")


def test_an_invite_without_contact_as_rfc_2543_allowed_targets_its_from_address() -> None:
    dialog = SipDialog.as_uas(INVITE.replacing(headers=INVITE.headers.without("Contact")), "gw")
    assert dialog.remote_target == "sip:+12125550187@192.0.2.44"


def test_a_2xx_without_contact_makes_no_dialog_for_the_caller() -> None:
    with pytest.raises(DialogError):
        SipDialog.as_uac(INVITE, OK.replacing(headers=OK.headers.without("Contact")))


def test_the_caller_display_name_is_not_carried_into_the_dialogs_uris() -> None:
    dialog = SipDialog.as_uas(INVITE, "gw")
    assert Address.parse(dialog.remote_uri).display_name == ""
