"""RFC 3261's transactions as data (`twin/sip/transactions.py`): messages and the time in, effects out."""

from __future__ import annotations

import pytest

from kore_connect.twin.sip.message import Headers, Request, Response
from kore_connect.twin.sip.transactions import (
    LIFETIME,
    T1,
    T2,
    T4,
    Deliver,
    State,
    TimedOut,
    Timer,
    TransactionLayer,
    Transmit,
    TransportFailed,
    ack_for,
    cancel_for,
    transaction_key,
)

PEER = ("192.0.2.44", 5060)


def request(method: str = "INVITE", branch: str = "z9hG4bK-1", cseq: int = 1) -> Request:
    return Request(
        method=method,
        uri="sip:+12065551118@198.51.100.73",
        headers=Headers.of(
            ("Via", f"SIP/2.0/UDP 192.0.2.44:5060;branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", "<sip:+12125550187@192.0.2.44>;tag=conn"),
            ("To", "<sip:+12065551118@198.51.100.73>"),
            ("Call-ID", "call-1"),
            ("CSeq", f"{cseq} {method}"),
            ("Route", "<sip:proxy.example;lr>"),
        ),
    )


def answer(to: Request, status: int, method: str | None = None) -> Response:
    headers = to.headers.without("Max-Forwards", "Route").setting(
        "To", "<sip:+12065551118@198.51.100.73>;tag=gw"
    )
    if method is not None:
        headers = headers.setting("CSeq", f"{to.cseq_number} {method}")
    return Response(status=status, reason="x", headers=headers)


def sent(effects: list[object]) -> list[object]:
    return [e.message for e in effects if isinstance(e, Transmit)]


def delivered(effects: list[object]) -> list[object]:
    return [e.message for e in effects if isinstance(e, Deliver)]


# ---------------------------------------------------------------- server INVITE


def test_a_new_invite_is_delivered_once_and_its_copies_get_the_last_provisional() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    assert delivered(layer.receive(invite, PEER, 0.0)) == [invite]
    assert layer.receive(invite, PEER, 0.1) == []  # nothing sent yet: absorbed
    ringing = answer(invite, 180)
    assert sent(layer.respond(ringing, 0.2)) == [ringing]
    assert layer.receive(invite, PEER, 0.3) == [Transmit(ringing, PEER)]


def test_a_2xx_to_an_invite_leaves_its_copies_absorbed_and_its_resending_to_the_user() -> None:
    # RFC 6026 §7.1: Accepted; the 2xx goes out again on the user's own timer
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    ok = answer(invite, 200)
    assert sent(layer.respond(ok, 0.1)) == [ok]
    assert layer.find(invite, server=True).state is State.ACCEPTED  # type: ignore[union-attr]
    assert layer.receive(invite, PEER, 0.2) == []
    assert sent(layer.respond(ok, 0.6)) == [ok]  # the user's resend passes
    assert layer.expire(0.1 + LIFETIME) == []  # Timer L: the transaction ends quietly
    assert len(layer) == 0


def test_a_non_2xx_final_answer_is_resent_by_timer_g_until_its_ack() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    busy = answer(invite, 486)
    layer.respond(busy, 0.0)
    assert sent(layer.expire(T1)) == [busy]  # G: T1, then 2 T1, 4 T1 ... capped at T2
    assert sent(layer.expire(T1 + 2 * T1)) == [busy]
    assert layer.receive(invite, PEER, 1.6) == [Transmit(busy, PEER)]  # a copy of the INVITE
    ack = ack_for(invite, busy)
    assert layer.receive(ack, PEER, 1.7) == []  # the ACK ends G and H, and is not the user's
    assert layer.find(invite, server=True).state is State.CONFIRMED  # type: ignore[union-attr]
    assert layer.receive(ack, PEER, 1.8) == []  # a copy of the ACK, absorbed while Timer I runs
    assert sent(layer.expire(1.7 + T4 - 0.01)) == []  # G is over
    assert len(layer) == 1
    layer.expire(1.7 + T4)
    assert len(layer) == 0  # Timer I (T4) has ended it


def test_timer_g_doubles_up_to_t2() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    layer.respond(answer(invite, 500), 0.0)
    times, now = [], 0.0
    while (due := layer.next_deadline()) is not None and due < 20.0:
        now = due
        if sent(layer.expire(now)):
            times.append(now)
    assert times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]


def test_no_ack_for_a_non_2xx_answer_times_out_with_timer_h() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    layer.respond(answer(invite, 404), 0.0)
    effects = layer.expire(LIFETIME)
    assert TimedOut(invite, Timer.H) in effects
    assert len(layer) == 0


def test_over_tcp_nothing_is_resent() -> None:
    layer = TransactionLayer(reliable=True)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    layer.respond(answer(invite, 486), 0.0)
    assert Timer.G not in layer.find(invite, server=True).timers  # type: ignore[union-attr]
    layer.receive(ack_for(invite, answer(invite, 486)), PEER, 0.1)
    layer.expire(0.1)  # Timer I is zero over TCP
    assert len(layer) == 0


def test_the_ack_of_a_2xx_is_delivered_to_the_user() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    layer.respond(answer(invite, 200), 0.0)
    ack = request("ACK", branch="z9hG4bK-ack")  # the ACK of a 2xx is a transaction of its own
    assert delivered(layer.receive(ack, PEER, 0.1)) == [ack]
    assert delivered(layer.receive(ack, PEER, 0.2)) == [ack]  # never absorbed: the dialog decides


def test_a_response_for_a_request_never_received_is_not_sent() -> None:
    layer = TransactionLayer(reliable=False)
    assert layer.respond(answer(request(), 200), 0.0) == []


def test_one_final_answer_per_non_invite_request() -> None:
    layer = TransactionLayer(reliable=False)
    bye = request("BYE", cseq=2)
    assert delivered(layer.receive(bye, PEER, 0.0)) == [bye]
    ok = answer(bye, 200)
    assert sent(layer.respond(ok, 0.1)) == [ok]
    assert layer.respond(answer(bye, 500), 0.2) == []
    assert layer.receive(bye, PEER, 0.3) == [Transmit(ok, PEER)]  # a copy: the same answer again
    layer.expire(0.1 + LIFETIME)  # Timer J
    assert len(layer) == 0


def test_a_non_invite_copy_before_any_answer_is_absorbed() -> None:
    layer = TransactionLayer(reliable=False)
    options = request("OPTIONS")
    layer.receive(options, PEER, 0.0)
    assert layer.receive(options, PEER, 0.1) == []


def test_requests_that_differ_in_branch_sent_by_or_method_are_different_transactions() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.receive(invite, PEER, 0.0)
    other_branch = request(branch="z9hG4bK-2")
    assert delivered(layer.receive(other_branch, PEER, 0.1)) == [other_branch]
    cancel = request("CANCEL")  # same branch as the INVITE it cancels (§9.1)
    assert delivered(layer.receive(cancel, PEER, 0.2)) == [cancel]
    other_host = invite.replacing(
        headers=invite.headers.setting("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bK-1")
    )
    assert delivered(layer.receive(other_host, PEER, 0.3)) == [other_host]


@pytest.mark.parametrize("branch", ["rfc2543-1", "z9hG4bK"])
def test_requests_without_a_usable_branch_are_never_taken_for_copies(branch: str) -> None:
    # RFC 2543 branches are not matched; a branch that is the magic cookie alone (RFC 4475 §3.2.1)
    layer = TransactionLayer(reliable=False)
    options = request("OPTIONS", branch=branch)
    assert transaction_key(options) is None
    assert delivered(layer.receive(options, PEER, 0.0)) == [options]
    assert delivered(layer.receive(options, PEER, 0.1)) == [options]


def test_the_table_of_transactions_is_bounded() -> None:
    layer = TransactionLayer(reliable=False, limit=3)
    for n in range(5):
        layer.receive(request("OPTIONS", branch=f"z9hG4bK-{n}"), PEER, 0.0)
    assert len(layer) == 3


# ---------------------------------------------------------------- client INVITE


def test_our_invite_is_resent_by_timer_a_doubling_until_a_provisional_answer() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    assert sent(layer.request(invite, PEER, 0.0)) == [invite]
    assert sent(layer.expire(0.5)) == [invite]
    assert layer.next_deadline() == 1.5  # A doubled: 1 s
    trying = answer(invite, 100)
    assert delivered(layer.receive(trying, PEER, 1.0)) == [trying]
    assert Timer.A not in layer.find(invite, server=False).timers  # type: ignore[union-attr]
    assert layer.receive(trying, PEER, 1.1) == [Deliver(trying, PEER)]  # each provisional is news


def test_no_answer_to_our_invite_times_out_with_timer_b() -> None:
    layer = TransactionLayer(reliable=True)
    invite = request()
    layer.request(invite, PEER, 0.0)
    assert layer.expire(LIFETIME) == [TimedOut(invite, Timer.B)]


def test_a_non_2xx_answer_to_our_invite_is_acked_and_its_copies_acked_again() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.request(invite, PEER, 0.0)
    busy = answer(invite, 486)
    effects = layer.receive(busy, PEER, 0.2)
    ack = ack_for(invite, busy)
    assert effects == [Transmit(ack, PEER), Deliver(busy, PEER)]
    assert ack.headers.get("To") == "<sip:+12065551118@198.51.100.73>;tag=gw"
    assert (ack.headers.get("CSeq"), ack.top_via, ack.uri) == ("1 ACK", invite.top_via, invite.uri)
    assert ack.headers.get_all("Route") == ("<sip:proxy.example;lr>",)
    assert layer.receive(busy, PEER, 0.3) == [Transmit(ack, PEER)]  # not delivered twice
    layer.expire(0.2 + 32.0)  # Timer D
    assert len(layer) == 0


def test_every_2xx_to_our_invite_reaches_the_user_who_acks_it() -> None:
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.request(invite, PEER, 0.0)
    ok = answer(invite, 200)
    assert delivered(layer.receive(ok, PEER, 0.2)) == [ok]
    assert delivered(layer.receive(ok, PEER, 0.7)) == [ok]  # Accepted (RFC 6026): the copy too
    layer.expire(0.2 + LIFETIME)  # Timer M
    assert delivered(layer.receive(ok, PEER, 40.0)) == [ok]  # even later: the user must ACK it


def test_a_response_to_nothing_of_ours_is_dropped() -> None:
    layer = TransactionLayer(reliable=False)
    assert layer.receive(answer(request("BYE"), 200), PEER, 0.0) == []
    assert layer.receive(answer(request(), 180), PEER, 0.0) == []


# ---------------------------------------------------------------- client non-INVITE


def test_our_bye_is_resent_by_timer_e_up_to_t2_then_every_t2_once_proceeding() -> None:
    layer = TransactionLayer(reliable=False)
    bye = request("BYE", cseq=2)
    layer.request(bye, PEER, 0.0)
    times = []
    while (due := layer.next_deadline()) is not None and due < 12.0:
        if sent(layer.expire(due)):
            times.append(due)
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5]
    layer.receive(answer(bye, 100), PEER, 11.6)
    due = layer.next_deadline()
    assert due == 11.5 + T2


def test_our_bye_answered_is_delivered_once_and_times_out_never() -> None:
    layer = TransactionLayer(reliable=False)
    bye = request("BYE", cseq=2)
    layer.request(bye, PEER, 0.0)
    ok = answer(bye, 200)
    assert delivered(layer.receive(ok, PEER, 0.1)) == [ok]
    assert layer.receive(ok, PEER, 0.2) == []
    assert layer.expire(100.0) == []
    assert len(layer) == 0


def test_our_bye_unanswered_times_out_with_timer_f() -> None:
    layer = TransactionLayer(reliable=False)
    bye = request("BYE", cseq=2)
    layer.request(bye, PEER, 0.0)
    effects = []
    while (due := layer.next_deadline()) is not None:
        effects.extend(layer.expire(due))
    assert effects[-1] == TimedOut(bye, Timer.F)
    assert sum(isinstance(e, Transmit) for e in effects) == 10  # 0.5 1 2 4 4 4 4 4 4 4 within 32 s


def test_an_ack_is_sent_without_a_transaction() -> None:
    layer = TransactionLayer(reliable=False)
    ack = request("ACK", branch="z9hG4bK-ack")
    assert layer.request(ack, PEER, 0.0) == [Transmit(ack, PEER)]
    assert len(layer) == 0


def test_a_request_we_cannot_send_ends_its_transaction_and_tells_the_user() -> None:
    layer = TransactionLayer(reliable=True)
    bye = request("BYE", cseq=2)
    layer.request(bye, PEER, 0.0)
    assert layer.transport_failed(bye) == [TransportFailed(bye)]
    assert layer.transport_failed(bye) == []
    layer.expire(0.0)
    assert len(layer) == 0


def test_a_request_of_ours_needs_a_branch() -> None:
    with pytest.raises(ValueError, match="branch"):
        TransactionLayer(reliable=False).request(request("BYE", branch="old"), PEER, 0.0)


def test_our_cancel_is_its_own_transaction_with_the_invites_branch() -> None:
    # RFC 3261 §9.1
    layer = TransactionLayer(reliable=False)
    invite = request()
    layer.request(invite, PEER, 0.0)
    cancel = cancel_for(invite)
    assert (cancel.uri, cancel.top_via, cancel.call_id) == (invite.uri, invite.top_via, invite.call_id)
    assert cancel.headers.get("CSeq") == "1 CANCEL" and cancel.headers.get("To") == invite.headers.get("To")
    assert cancel.headers.get_all("Route") == invite.headers.get_all("Route")
    layer.request(cancel, PEER, 0.1)
    ok = answer(cancel, 200)
    assert delivered(layer.receive(ok, PEER, 0.2)) == [ok]
    terminated = answer(invite, 487)
    effects = layer.receive(terminated, PEER, 0.3)
    assert delivered(effects) == [terminated] and sent(effects) == [ack_for(invite, terminated)]
