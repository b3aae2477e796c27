"""The local Kore Voice Gateway: a SIP server (aiosipua, UDP and TCP) that answers the calls Amazon
Connect transfers, hands each to the bot, and ends it the way Kore's SIP BYE agent transfer does.

What it answers, as the CCAI configuration makes Kore's gateway answer:
- a request from a source not on the allow-list: 403, and nothing else happens;
- an INVITE whose Request-URI user matches no DID: 404 (the longest matching pattern wins);
- an offer with no codec we take (PCMU, PCMA): 488;
- otherwise 180 (ringing for `ring_seconds`), then 200 with the SDP answer; once answered the
  bot runs (Start Flow, then the dialog), and the gateway hangs up with a BYE, carrying the
  agent transfer's custom headers. A caller's BYE stops the bot; a CANCEL before the answer ends
  the attempt (487).
Every call is recorded as an interaction (call and contact ID, DID, source, each node's result,
the service node's HTTP status, the SIP messages, how it ended) in the local SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
from aiosipua import SipUAS
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipRequest, SipResponse
from aiosipua.sdp_negotiate import SdpNegotiationError, negotiate_sdp
from aiosipua.transport import SipTransport, TcpSipTransport

from kore_connect.twin.kore.bot import BotRun, run_bot
from kore_connect.twin.kore.config import GatewayConfig
from kore_connect.twin.kore.interactions import InteractionStore
from kore_connect.twin.kore.session import KoreSession
from kore_connect.twin.sip_transactions import (
    TRANSACTION_SECONDS,
    ServerTransactions,
    retransmit_intervals,
)
from kore_connect.twin.sip_validation import problem
from kore_connect.twin.siptransport import ServerUdpTransport, answer_on_connection

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Kore voice gateway"
CODECS = [0, 8]  # PCMU, PCMA


class KoreGateway:
    def __init__(self, config: GatewayConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http
        self._own_http = http is None
        self.interactions = InteractionStore(config.interactions)
        self._servers: list[SipUAS] = []
        self._records: dict[str, dict[str, Any]] = {}  # Call-ID -> the interaction being recorded
        self._bots: dict[str, asyncio.Task[None]] = {}
        self._bye_answers: dict[str, asyncio.Future[int]] = {}  # Call-ID -> the status answering our BYE
        # Call-ID -> set once the 200 is ACKed (or never will be): only then may the BYE go out
        self._confirmed: dict[str, asyncio.Event] = {}
        self.addresses: dict[str, tuple[str, int]] = {}  # transport -> bound address

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient()
        for name in self.config.transports:
            address = (self.config.host, self.config.port)
            transport: SipTransport = (
                TcpSipTransport(local_addr=address)
                if name == "tcp"
                else ServerUdpTransport(local_addr=address)
            )
            uas = SipUAS(transport, user_agent=USER_AGENT)
            uas.on_invite = self._on_invite
            uas.on_ack_timeout = lambda call: self._confirm(call.call_id)
            uas.on_bye = self._on_caller_bye
            uas.on_cancel = lambda request, addr: self._ended(
                request.call_id or "", "cancelled by the caller"
            )
            await uas.start()
            self._guard(uas)
            if isinstance(transport, TcpSipTransport) and transport._server is not None:
                self.addresses[name] = transport._server.sockets[0].getsockname()[:2]
            else:
                self.addresses[name] = transport.local_addr
            self._servers.append(uas)

    async def stop(self) -> None:
        for task in self._bots.values():
            task.cancel()
        for uas in self._servers:
            await uas.stop()
        self._servers.clear()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self.interactions.close()

    # ------------------------------------------------------------ the SIP side

    def _guard(self, uas: SipUAS) -> None:
        """Wrap the transport's two ends with what aiosipua leaves to us: the allow-list (403),
        malformed requests (400, or dropped when no answer can be routed), retransmissions
        absorbed by server transactions, a 500 rather than silence when a handler fails, and every
        message recorded with its call."""
        transport = uas.transport
        inner = transport.on_message
        send = transport.send
        transactions = ServerTransactions()
        clock = asyncio.get_running_loop().time

        def received(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            if isinstance(message, SipResponse):
                self._note(message, "received")
                self._answered_bye(message)
                return  # the gateway's only requests are BYEs: nothing else to hand on
            reason = problem(message)
            if transport.reliable and reason != "Bad Via":
                answer_on_connection(message, addr)
            if not self.config.allowed(addr[0]):
                if message.method != "ACK":
                    uas._send_error(message, 403, "Forbidden")
                return
            if reason is not None:
                logger.warning("malformed %s from %s: %s", message.method[:16], addr[0], reason)
                if message.method != "ACK" and reason != "Bad Via":  # no Via: nowhere to answer
                    uas._send_error(message, 400, reason)
                return
            again, last_answer = transactions.received(message, clock())
            if message.method == "INVITE" and not again:
                self._open_record(message, addr)
            self._note(message, "received")
            if again:
                if last_answer is not None:
                    transport.send_reply(last_answer)
                return
            call_id = message.call_id or ""
            try:
                if inner is not None:
                    inner(message, addr)
                if message.method == "ACK":
                    self._confirm(call_id)
                elif message.method == "INVITE" and uas.get_call(call_id) is None:
                    self._ended(call_id, "refused by the SIP stack")
            except Exception:  # a handler's bug answers 500; the gateway goes on
                logger.exception("%s from %s failed", message.method, addr[0])
                if message.method != "ACK":
                    uas._send_error(message, 500, "Server Internal Error")

        def sent(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            self._note(message, "sent")
            if isinstance(message, SipResponse):
                transactions.answered(message, clock())
            send(message, addr)

        transport.on_message = received
        transport.send = sent  # type: ignore[method-assign]

    def _note(self, message: SipRequest | SipResponse, direction: str) -> None:
        record = self._records.get(message.call_id or "")
        if record is not None:
            first_line = bytes(message).split(b"\r\n", 1)[0].decode("utf-8", "replace")
            record["sip"].append(
                {"direction": direction, "firstLine": first_line, "at": round(time.time(), 4)}
            )

    def _open_record(self, invite: SipRequest, addr: tuple[str, int]) -> None:
        """Start recording a call when its INVITE arrives, before any answer goes out."""
        call_id = invite.call_id or ""
        if call_id in self._records or invite.to_addr is None or invite.to_addr.params.get("tag"):
            return  # a re-INVITE belongs to the call already recorded
        contact_id = invite.headers.get_first("x-amzn-connectcontactid")
        self._records[call_id] = {
            "callId": call_id,
            "contactId": contact_id,
            "did": _user(invite.uri),
            "source": f"{addr[0]}:{addr[1]}",
            "startedAt": time.time(),
            "nodes": [],
            "sip": [],
            "ended": None,
        }

    def _on_invite(self, call: IncomingCall) -> None:
        invite = call.invite
        did = _user(invite.uri)
        headers = [
            {"name": name, "value": value} for name, values in invite.headers.items() for value in values
        ]
        route = self.config.route(did)
        if route is None:
            call.reject(404, "Not Found")
            self._ended(call.call_id, f"no DID matches {did!r}")
            return
        try:
            if call.sdp_offer is None:
                raise SdpNegotiationError("no SDP offer")
            answer, _ = negotiate_sdp(
                call.sdp_offer, local_ip=self._local_ip(call), rtp_port=40000, supported_codecs=CODECS
            )
        except SdpNegotiationError as exc:
            call.reject(488, "Not Acceptable Here")
            self._ended(call.call_id, f"no acceptable codec: {exc}")
            return
        self._bots[call.call_id] = asyncio.get_running_loop().create_task(
            self._answer_and_run(call, headers, answer, route.flow)
        )

    def _confirm(self, call_id: str) -> None:
        confirmed = self._confirmed.get(call_id)
        if confirmed is not None:
            confirmed.set()

    def _on_caller_bye(self, call: IncomingCall, request: SipRequest) -> None:
        task = self._bots.get(call.call_id)
        if task is not None and not task.done():
            task.cancel()
        self._ended(call.call_id, "the caller hung up")

    async def _answer_and_run(
        self, call: IncomingCall, headers: list[dict[str, str]], answer: Any, flow: str
    ) -> None:
        try:
            call.ringing()
            if self.config.ring_seconds:
                await asyncio.sleep(self.config.ring_seconds)
            if call.call_id not in self._records:
                return  # cancelled while ringing: its record is closed, nothing more is sent
            self._confirmed[call.call_id] = asyncio.Event()
            call.accept(answer)
            session = KoreSession(headers)
            try:
                assert self._http is not None
                run = await run_bot(
                    session, self.config.dialog(flow), environment=self.config.environment, http=self._http
                )
            finally:
                session.close()
            self._record_bot(call.call_id, run)
            if run.transfer is not None:
                # RFC 3261 §15: no BYE before the 200 is ACKed, or until 64*T1 without an ACK
                # (aiosipua's 2xx retransmissions give up then over UDP; over TCP it has none)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._confirmed[call.call_id].wait(), TRANSACTION_SECONDS)
                status = await self._hang_up(call, run)
                answer = f"answered {status}" if status else "never answered"
                self._ended(call.call_id, f"agent transfer (SIP BYE, {answer})")
            else:
                self._ended(call.call_id, "the bot ended without a transfer")
        except asyncio.CancelledError:
            pass  # the caller hung up: the bot stops
        except Exception:  # a bug must not take the gateway down: the call is recorded as failed
            logger.exception("call %s failed", call.call_id)
            self._ended(call.call_id, "the gateway failed (see its log)")
        finally:
            self._bots.pop(call.call_id, None)
            self._confirmed.pop(call.call_id, None)

    async def _hang_up(self, call: IncomingCall, run: BotRun) -> int | None:
        """The agent transfer: a BYE, with the transfer node's custom headers; over UDP it is sent
        again (Timer E) until the caller answers it. The status that answered it, or None."""
        bye = call.dialog.create_request(
            "BYE", via_host=self._local_ip(call), via_port=self._local_port(call)
        )
        assert run.transfer is not None
        for name, value in run.transfer.bye_headers:
            bye.headers.set_single(name, value)
        call.dialog.terminate()
        transport = call.transport
        if transport is None:
            return None
        answer = self._bye_answers[call.call_id] = asyncio.get_running_loop().create_future()
        waits = [] if transport.reliable else list(retransmit_intervals())
        waits.append(TRANSACTION_SECONDS - sum(waits))  # Timer F: then the transaction gives up
        try:
            transport.send(bye, call.source_addr)
            for attempt, wait in enumerate(waits, start=1):
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(answer), wait)
                if attempt < len(waits):  # every wait but the last ends with the BYE sent again
                    transport.send(bye, call.source_addr)
            return None
        finally:
            self._bye_answers.pop(call.call_id, None)

    def _answered_bye(self, response: SipResponse) -> None:
        cseq = response.headers.get_first("cseq") or ""
        answer = self._bye_answers.get(response.call_id or "")
        final = response.status_code >= 200 and cseq.upper().endswith("BYE")
        if final and answer is not None and not answer.done():
            answer.set_result(response.status_code)

    def _record_bot(self, call_id: str, run: BotRun) -> None:
        record = self._records.get(call_id)
        if record is None:
            return
        record["nodes"] = [
            {
                "node": r.node,
                "kind": r.kind,
                "status": r.status,
                "detail": r.detail,
                "httpStatus": r.http_status,
            }
            for r in run.results
        ]
        service = [r for r in run.results if r.kind == "service"]
        record["serviceStatus"] = service[-1].http_status if service else None

    def _ended(self, call_id: str, how: str) -> None:
        record = self._records.get(call_id)
        if record is None or record["ended"]:
            return
        record["ended"] = how
        record["endedAt"] = time.time()
        self.interactions.save(record)
        self._records.pop(call_id, None)

    def _local_ip(self, call: IncomingCall) -> str:
        return call.transport.local_addr[0] if call.transport is not None else self.config.host

    def _local_port(self, call: IncomingCall) -> int:
        return call.transport.local_addr[1] if call.transport is not None else self.config.port


def _user(uri: str) -> str:
    """The user part of a SIP URI: sip:+12065551118@host;params -> +12065551118."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""
