"""One external voice transfer on the wire: Connect's connector calling the voice gateway, as a SIP
user agent client on our `twin/sip` stack (RFC 3261 §13.2, §15; RFC 3262 for reliable provisionals).

How it works. `TransferCall.place` opens a transport of its own (a fresh local port, connected to
the gateway), sends the INVITE, and waits for the first of: a final answer, the time limit, or a
transport failure. A 2xx makes the dialog and is ACKed (each copy of it again); a 3xx-6xx is
ACKed by the transaction layer and fails the transfer. A reliable provisional answer (Require:
100rel) is PRACKed once per RSeq, since our INVITE says Supported: 100rel. Once connected, the
call waits for the gateway's BYE (answered 200), or hangs up with a BYE of its own when the caller
does. The call's state is an enum, changed in one place, and logged; every message sent and
received is kept for the contact's trace.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from kore_connect.log_text import printable
from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest, TransferResult
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.sip.dialog import DialogError, SipDialog, new_branch
from kore_connect.twin.sip.endpoint import SipEndpoint
from kore_connect.twin.sip.fields import uri_host
from kore_connect.twin.sip.message import Headers, Message, Request, Response
from kore_connect.twin.sip.rules import bare_response, new_tag
from kore_connect.twin.sip.trace import Direction, TracedMessage
from kore_connect.twin.sip.transactions import cancel_for
from kore_connect.twin.sip.transport import HostPort

if TYPE_CHECKING:
    from kore_connect.twin.connect.connector import Gateway, SipConnector

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Amazon Connect"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK"
FINAL_ANSWER_WAIT_SECONDS = 4.0  # after a CANCEL or a BYE, how long the answer is waited for


class CallState(enum.Enum):
    CALLING = "calling"  # INVITE sent
    EARLY = "early"  # a provisional answer came
    CONNECTED = "connected"  # a 2xx came and was ACKed
    CANCELLING = "cancelling"  # no answer in time: CANCEL sent
    HANGING_UP = "hanging up"  # our BYE is out
    ENDED = "ended"


class TransferCall:
    """The transaction user of one transfer's endpoint."""

    def __init__(
        self, connector: SipConnector, contact: Contact, request: TransferRequest, gateway: Gateway
    ) -> None:
        self.connector = connector
        self.contact = contact
        self.request = request
        self.gateway = gateway
        self.remote: HostPort = (gateway.host, gateway.port)
        self.messages: list[TracedMessage] = []
        self.started = time.monotonic()
        self.state = CallState.CALLING
        self.invite: Request | None = None
        self.dialog: SipDialog | None = None
        self.final_status: int | None = None
        self.final_reason = ""
        self.provisional = asyncio.Event()  # a 1xx to the INVITE came: a CANCEL may be sent
        self.final = asyncio.Event()  # a final answer to the INVITE came
        self.far_end_hung_up = asyncio.Event()
        self.failed = asyncio.Event()  # unreachable, connection lost, our request unsendable
        self.bye_answered = asyncio.Event()
        self.failure = ""
        self._prack_rseq: int | None = None  # the last reliable provisional we PRACKed
        self.endpoint = SipEndpoint(
            self,
            gateway.transport,
            on_icmp_error=self._unreachable,
            on_connection_closed=lambda peer: self.fail("the voice gateway closed the TCP connection"),
            observer=self._record,
        )

    def _set_state(self, state: CallState) -> None:
        if state is not self.state:
            call_id = self.invite.call_id if self.invite is not None else "-"
            logger.debug("transfer %s: %s -> %s", printable(call_id, 80), self.state.name, state.name)
            self.state = state

    def _unreachable(self, exc: OSError) -> None:
        """An ICMP error fails the call while it is placed (nothing listens where we call); once the
        INVITE is answered, one for an ACK or a BYE changes nothing: SIP's own timers decide then."""
        if not self.final.is_set():
            self.fail(f"the voice gateway is unreachable ({exc.strerror or exc})")

    def fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.failure = reason
            self.failed.set()

    # ------------------------------------------------------------------ placing the call

    async def place(self) -> TransferResult:
        try:
            local = await self.endpoint.connect(self.remote, self.connector.local_host or "")
        except (OSError, TimeoutError) as exc:
            return self.result(
                TransferOutcome.FAILED, f"cannot reach the voice gateway at {_where(self.remote)}: {exc}"
            )
        self.invite = self._invite(local)
        self.endpoint.request(self.invite, self.remote)
        which = await _first(
            final=self.final.wait(),
            failed=self.failed.wait(),
            limit=asyncio.sleep(self.request.time_limit_seconds),
        )
        if which == "failed" and not self.final.is_set():
            return self.result(TransferOutcome.FAILED, self.failure)
        if which == "limit":
            return await self._give_up()
        if self.final_status is not None and self.final_status >= 300:
            return self.result(TransferOutcome.FAILED, f"{self.final_status} {self.final_reason}".strip())
        return await self._connected()

    def _invite(self, local: HostPort) -> Request:
        request, host = self.request, uri_host(local[0])
        tcp = ";transport=tcp" if self.gateway.transport == "tcp" else ""
        target = f"sip:{request.to_user}@{_where(self.remote)}{tcp}"
        headers = [
            (
                "Via",
                f"SIP/2.0/{self.gateway.transport.upper()} {host}:{local[1]};branch={new_branch()};rport",
            ),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{request.from_user}@{host}>;tag={new_tag()}"),
            ("To", f"<{target}>"),
            ("Call-ID", f"{uuid.uuid4()}@{host}"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:{request.from_user}@{host}:{local[1]}{tcp}>"),
            *self.connector.headers(self.contact, request).items(),
            ("Supported", "100rel"),
            ("Allow", ALLOW),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/sdp"),
        ]
        return Request(
            method="INVITE", uri=target, headers=Headers(tuple(headers)), body=_sdp_offer(local[0]).encode()
        )

    async def _give_up(self) -> TransferResult:
        """No answer in time: CANCEL (only once the gateway has answered provisionally, RFC 3261
        §9.1), and wait a while for the INVITE's final answer; a 2xx that crossed the CANCEL is
        ended with a BYE."""
        limit = self.request.time_limit_seconds
        if self.provisional.is_set() and self.invite is not None:
            self._set_state(CallState.CANCELLING)
            self.endpoint.request(cancel_for(self.invite), self.remote)
            await _first(final=self.final.wait(), enough=asyncio.sleep(FINAL_ANSWER_WAIT_SECONDS))
            if self.dialog is not None and self.final_status is not None and self.final_status < 300:
                await self._hang_up()  # answered while we cancelled
        return self.result(TransferOutcome.TIMED_OUT, f"no answer within {limit} s: cancelled")

    async def _connected(self) -> TransferResult:
        self._set_state(CallState.CONNECTED)
        hang_up_after = self.connector.caller_hangs_up_after
        limit = hang_up_after if hang_up_after is not None else self.connector.max_call_seconds
        which = await _first(
            bye=self.far_end_hung_up.wait(), failed=self.failed.wait(), limit=asyncio.sleep(limit)
        )
        if which == "bye":
            return self.result(TransferOutcome.FAR_END_HUNG_UP, "the voice gateway hung up (BYE)")
        if which == "failed":
            return self.result(
                TransferOutcome.FAR_END_HUNG_UP, f"the voice gateway went away without a BYE ({self.failure})"
            )
        await self._hang_up()
        if hang_up_after is not None:
            return self.result(TransferOutcome.CALLER_HUNG_UP, "the caller hung up while transferred")
        return self.result(TransferOutcome.CALLER_HUNG_UP, f"the call reached its {limit:g} s limit: hung up")

    async def _hang_up(self) -> None:
        if self.dialog is None:
            return
        self._set_state(CallState.HANGING_UP)
        self.endpoint.request(self.dialog.request("BYE", self._via()), self._next_hop())
        await _first(answer=self.bye_answered.wait(), enough=asyncio.sleep(FINAL_ANSWER_WAIT_SECONDS))

    # ------------------------------------------------------------------ the transaction user

    def response_received(self, response: Response, endpoint: SipEndpoint) -> None:
        method = response.cseq_method
        if method == "INVITE":
            self._invite_answered(response)
        elif method == "BYE" and response.status >= 200:
            self.bye_answered.set()

    def _invite_answered(self, response: Response) -> None:
        assert self.invite is not None
        if response.status < 200:
            self.provisional.set()
            if self.state is CallState.CALLING:
                self._set_state(CallState.EARLY)
            self._prack(response)
            return
        if 200 <= response.status < 300:
            try:
                dialog = SipDialog.as_uac(self.invite, response)
            except DialogError as error:
                self.fail(f"the voice gateway's 200 cannot make a dialog: {error.reason}")
                return
            if self.dialog is not None:
                dialog.local_seq = max(dialog.local_seq, self.dialog.local_seq)  # after a PRACK
            self.dialog = dialog
            self.endpoint.request(dialog.ack(self._via()), self._next_hop())  # each copy of the 2xx too
        if not self.final.is_set():
            self.final_status, self.final_reason = response.status, response.reason
            self.final.set()

    def _prack(self, response: Response) -> None:
        """RFC 3262 §4: a reliable provisional answer is acknowledged with a PRACK, once per RSeq."""
        required = {tag.strip().lower() for tag in response.headers.values("Require")}
        rseq = (response.headers.get("RSeq") or "").strip()
        if "100rel" not in required or not rseq.isascii() or not rseq.isdigit() or self.invite is None:
            return
        if self._prack_rseq is not None and int(rseq) <= self._prack_rseq:
            return  # a copy: its PRACK is already on its way (and resent by its transaction)
        try:
            early = SipDialog.as_uac(self.invite, response)
        except DialogError:
            logger.warning("a reliable provisional answer without a usable Contact cannot be PRACKed")
            return
        if self.dialog is not None:
            early.local_seq = self.dialog.local_seq
        self.dialog = early
        self._prack_rseq = int(rseq)
        rack = f"{rseq} {self.invite.cseq_number} INVITE"
        self.endpoint.request(early.request("PRACK", self._via(), (("RAck", rack),)), self._next_hop())

    def request_received(self, request: Request, source: HostPort, endpoint: SipEndpoint) -> None:
        in_dialog = self.dialog is not None and self.dialog.matches(request)
        if request.method == "ACK":
            return
        if not in_dialog and request.method != "OPTIONS":
            endpoint.respond(request, bare_response(request, 481, "Call/Transaction Does Not Exist"))
            return
        if request.method == "BYE":
            endpoint.respond(request, _ours(bare_response(request, 200, "OK")))
            self.far_end_hung_up.set()
        elif request.method == "OPTIONS":
            endpoint.respond(request, _ours(bare_response(request, 200, "OK", (("Allow", ALLOW),))))
        else:
            endpoint.respond(
                request, _ours(bare_response(request, 405, "Method Not Allowed", (("Allow", ALLOW),)))
            )

    def transaction_failed(self, request: Request, why: str, endpoint: SipEndpoint) -> None:
        if request.method in ("INVITE", "BYE", "CANCEL", "PRACK"):
            self.fail(f"the voice gateway did not answer our {request.method} ({why})")

    # ------------------------------------------------------------------ helpers

    def _via(self) -> str:
        host, port = self.endpoint.local_address
        return f"SIP/2.0/{self.gateway.transport.upper()} {uri_host(host)}:{port}"

    def _next_hop(self) -> HostPort:
        """Where in-dialog requests go: the route set's first hop, or the gateway's Contact (over TCP,
        the connection to that address, which is the gateway's own when it names itself)."""
        assert self.dialog is not None
        try:
            host, port = self.dialog.next_hop()
        except DialogError:
            return self.remote
        return host, port or 5060

    def _record(self, direction: Direction, message: Message) -> None:
        text = bytes(message).decode("utf-8", "replace")
        first_line = text.split("\r\n", 1)[0]
        self.messages.append(
            TracedMessage(direction, first_line, round(time.monotonic() - self.started, 4), text)
        )

    def result(self, outcome: TransferOutcome, reason: str) -> TransferResult:
        self._set_state(CallState.ENDED)
        return TransferResult(outcome, reason, tuple(self.messages))

    async def close(self) -> None:
        await self.endpoint.close()


def _ours(response: Response) -> Response:
    return response.replacing(headers=response.headers.adding("User-Agent", USER_AGENT))


async def _first(**waits: Awaitable[Any]) -> str:
    """The name of whichever of `waits` ends first; the others are cancelled."""
    tasks = {asyncio.ensure_future(wait): name for name, wait in waits.items()}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return next(tasks[task] for task in tasks if task in done)


def _sdp_offer(address: str) -> str:
    """What Connect offers: PCMU, PCMA and telephone-event (RFC 4733)."""
    return "\r\n".join(
        [
            "v=0",
            f"o=- {int(time.time())} {int(time.time())} IN IP{6 if ':' in address else 4} {address}",
            "s=Amazon Connect (kore-connect local twin)",
            f"c=IN IP{6 if ':' in address else 4} {address}",
            "t=0 0",
            "m=audio 16384 RTP/AVP 0 8 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=sendrecv",
            "",
        ]
    )


def _where(address: HostPort) -> str:
    return f"{uri_host(address[0])}:{address[1]}"
