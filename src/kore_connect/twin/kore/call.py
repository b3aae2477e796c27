"""One call at the local Kore gateway, from its INVITE to its end, as Kore's voice gateway runs it
with the SIP BYE agent transfer (RFC 3261 §13.3, §15).

The gateway sends 100 Trying as soon as it takes an INVITE; a call starts ringing from there.

How it works. `GatewayCall.start` rings (180, for the configured time), answers 200 with
the SDP answer, and runs the bot; the 200 is sent again (T1 doubling to T2) until the caller ACKs
it. When the bot transfers, the gateway waits for that ACK (at most 64*T1: §13.3.1.4), then hangs
up with a BYE carrying the transfer node's headers, and waits for its answer (the transaction
layer resends it over UDP). A CANCEL while ringing ends the attempt 487; a caller's BYE stops the
bot. The call's state is an enum, changed in one place, and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiosipua import parse_sdp
from aiosipua.sdp import serialize_sdp
from aiosipua.sdp_negotiate import SdpNegotiationError, negotiate_sdp

from kore_connect.log_text import printable
from kore_connect.twin.kore.bot import BotRun
from kore_connect.twin.kore.media import RtpSink
from kore_connect.twin.sip.dialog import SipDialog
from kore_connect.twin.sip.fields import uri_host
from kore_connect.twin.sip.message import Headers, Request, Response
from kore_connect.twin.sip.rules import bare_response, new_tag
from kore_connect.twin.sip.transactions import LIFETIME, T1, T2

if TYPE_CHECKING:
    from kore_connect.twin.sip.endpoint import SipEndpoint

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Kore voice gateway"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
CODECS = [0, 8]  # PCMU, PCMA


class CallState(enum.Enum):
    RINGING = "ringing"  # 180 sent
    ANSWERED = "answered"  # 200 sent, not ACKed yet
    CONFIRMED = "confirmed"  # the 200 is ACKed: a BYE may go out
    HANGING_UP = "hanging up"  # our BYE is out
    ENDED = "ended"


class NoAcceptableCodec(Exception):
    """An offer with no codec we take (488)."""


def sdp_answer(offer: bytes, local_ip: str, rtp_port: int) -> bytes:
    """Our SDP answer to `offer` (RFC 3264): PCMU or PCMA, as the offer prefers, at `rtp_port`."""
    try:
        answer, _ = negotiate_sdp(
            parse_sdp(offer.decode("utf-8")), local_ip=local_ip, rtp_port=rtp_port, supported_codecs=CODECS
        )
    except (SdpNegotiationError, UnicodeDecodeError, ValueError) as error:
        raise NoAcceptableCodec(str(error) or "no codec in common") from error
    return serialize_sdp(answer).encode("utf-8")


def answer_to(request: Request, status: int, reason: str, to_tag: str, *extra: tuple[str, str]) -> Response:
    """A response of ours: the request's Via, From, Call-ID and CSeq, its To with our tag; and, in
    an answer that makes a dialog (a 101-299), the request's Record-Route values in their order
    (RFC 3261 §12.1.1), so that the caller's ACK and BYE take the proxies' route too."""
    response = bare_response(request, status, reason)
    to = request.headers.get("To") or ""
    tagged = to if ";tag=" in to.replace(" ", "") else f"{to};tag={to_tag}"
    headers = response.headers.setting("To", tagged).adding("User-Agent", USER_AGENT)
    routes = request.headers.get_all("Record-Route") if 100 < status < 300 else ()
    return response.replacing(
        headers=Headers((*headers.fields, *(("Record-Route", route) for route in routes), *extra))
    )


class GatewayCall:
    """A call in progress; the gateway feeds it the caller's requests and the answers to our BYE."""

    def __init__(
        self,
        invite: Request,
        endpoint: SipEndpoint,
        *,
        caller: tuple[str, int],
        contact: str,
        sdp: bytes,
        media: RtpSink,
        ring_seconds: float,
        run_bot: Callable[[BotRun], Awaitable[BotRun]],
        on_end: Callable[[GatewayCall, str], None],
    ) -> None:
        self.invite = invite
        self.endpoint = endpoint
        self.caller = caller
        self.contact = contact  # our Contact: where the caller's in-dialog requests come
        self.sdp = sdp
        self.media = media  # where the caller's RTP lands: closed when the call ends
        self.ring_seconds = ring_seconds
        self.local_tag = new_tag()
        # made before anything is sent, so that an INVITE that cannot make one is refused (400)
        self.dialog = SipDialog.as_uas(invite, self.local_tag)
        self.state = CallState.RINGING
        self._run_bot = run_bot
        self.bot = BotRun()  # how far the bot got: kept when the call ends before it
        self._on_end = on_end
        self._acked = asyncio.Event()
        self._bye_answer: asyncio.Future[int | None] | None = None
        self._bye: Request | None = None
        self._task: asyncio.Task[None] | None = None
        self._resending: asyncio.Task[None] | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _set_state(self, state: CallState) -> None:
        if state is not self.state:
            logger.debug("call %s: %s -> %s", printable(self.call_id, 80), self.state.name, state.name)
            self.state = state

    # ------------------------------------------------------------------ the call's life

    async def _run(self) -> None:
        try:
            self._respond(180, "Ringing", ("Contact", self.contact))
            if self.ring_seconds:
                await asyncio.sleep(self.ring_seconds)
            self._answer()
            run = await self._run_bot(self.bot)
            if run.transfer is None:
                self._end("the bot ended without a transfer")
                return
            with contextlib.suppress(TimeoutError):  # §15: no BYE before the ACK, or 64*T1 without one
                await asyncio.wait_for(self._acked.wait(), LIFETIME)
            status = await self._hang_up(run.transfer.bye_headers)
            answered = f"answered {status}" if status else "never answered"
            self._end(f"agent transfer (SIP BYE, {answered})")
        except asyncio.CancelledError:
            pass  # the caller cancelled or hung up: that path has ended the call
        except Exception:  # a bug must not take the gateway down: the call is recorded as failed
            logger.exception("call %s failed", printable(self.call_id, 80))
            if self.state is CallState.RINGING:
                self._respond(500, "Server Internal Error")
            self._end("the gateway failed (see its log)")
        finally:
            self._stop_resending()

    def _answer(self) -> None:
        ok = answer_to(
            self.invite,
            200,
            "OK",
            self.local_tag,
            ("Contact", self.contact),
            ("Allow", ALLOW),
            ("Content-Type", "application/sdp"),
        ).replacing(body=self.sdp)
        self.endpoint.respond(self.invite, ok)
        self._set_state(CallState.ANSWERED)
        self._resending = asyncio.get_running_loop().create_task(self._resend_until_acked(ok))

    async def _resend_until_acked(self, ok: Response) -> None:
        """§13.3.1.4: the 2xx again, T1 doubling to T2, until its ACK or 64*T1 (over UDP only)."""
        if self.endpoint.transport.reliable:
            return
        interval, waited = T1, 0.0
        while waited + interval < LIFETIME and not self._acked.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), interval)
            if self._acked.is_set() or self.state is not CallState.ANSWERED:
                return
            waited += interval
            interval = min(interval * 2, T2)
            self.endpoint.respond(self.invite, ok)

    async def _hang_up(self, headers: Sequence[tuple[str, str]]) -> int | None:
        """The agent transfer's BYE; the status that answered it, or None."""
        assert self.dialog is not None
        self._set_state(CallState.HANGING_UP)
        host, port = self.endpoint.local_address
        via = f"SIP/2.0/{self.endpoint.name.upper()} {uri_host(host)}:{port}"
        self._bye = self.dialog.request("BYE", via, tuple(headers))
        self._bye_answer = asyncio.get_running_loop().create_future()
        try:
            self.endpoint.request(self._bye, self._next_hop())
            return await self._bye_answer
        finally:
            self._bye_answer = None

    def _next_hop(self) -> tuple[str, int]:
        """Through the route set when a proxy record-routed the call (RFC 3261 §12.2.1.1); without
        one, back where the INVITE came from, as an SBC does for callers behind NAT (the Request-URI
        still names the caller's Contact)."""
        assert self.dialog is not None
        if not self.dialog.route_set:
            return self.caller
        host, port = self.dialog.next_hop()
        return host, port or 5060

    # ------------------------------------------------------------------ what the caller sends

    def acked(self) -> None:
        self._acked.set()
        if self.state is CallState.ANSWERED:
            self._set_state(CallState.CONFIRMED)
        self._stop_resending()

    def cancelled(self) -> bool:
        """A CANCEL: while ringing, the INVITE is answered 487 and the call ends. Whether it did."""
        if self.state is not CallState.RINGING:
            return False
        self._respond(487, "Request Terminated")
        self.stop("cancelled by the caller")
        return True

    def caller_hung_up(self) -> None:
        self.stop("the caller hung up")

    def bye_answered(self, response: Response) -> None:
        if self._bye_answer is not None and not self._bye_answer.done() and response.status >= 200:
            self._bye_answer.set_result(response.status)

    def bye_failed(self) -> None:
        if self._bye_answer is not None and not self._bye_answer.done():
            self._bye_answer.set_result(None)

    def is_our_bye(self, message: Request | Response) -> bool:
        return self._bye is not None and message.headers.get("CSeq") == self._bye.headers.get("CSeq")

    def stop(self, how: str) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._stop_resending()
        self._end(how)

    async def stopped(self) -> None:
        """Until the call's task has finished (after a cancel)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ helpers

    def _respond(self, status: int, reason: str, *extra: tuple[str, str]) -> None:
        self.endpoint.respond(self.invite, answer_to(self.invite, status, reason, self.local_tag, *extra))

    def _stop_resending(self) -> None:
        if self._resending is not None and not self._resending.done():
            self._resending.cancel()

    def _end(self, how: str) -> None:
        if self.state is not CallState.ENDED:
            self._set_state(CallState.ENDED)
            self.media.close()
            self._on_end(self, how)
