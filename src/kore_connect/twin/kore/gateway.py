"""The local Kore Voice Gateway: a SIP server (aiosipua, UDP and TCP) that answers the calls Amazon
Connect transfers, hands each to the bot, and ends it the way Kore's SIP BYE agent transfer does.

What it answers, as the CCAI configuration makes Kore's gateway answer:
- a request from a source not on the allow-list: 403, and nothing else happens;
- a request it cannot act on (`sip_validation.refusal`): 400 if malformed, 505 for another SIP
  version, 416 for a Request-URI scheme other than sip, sips and tel, 420 for a required extension,
  415 for an INVITE body other than SDP, 406 for an INVITE that accepts no SDP;
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
import errno
import logging
import re
import string
import time
from typing import Any

import httpx
from aiosipua import SipUAS
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipRequest, SipResponse
from aiosipua.sdp_negotiate import SdpNegotiationError, negotiate_sdp
from aiosipua.transport import SipTransport, TcpSipTransport

from kore_connect.log_text import printable
from kore_connect.twin.kore.bot import BotRun, run_bot
from kore_connect.twin.kore.config import GatewayConfig
from kore_connect.twin.kore.interactions import InteractionStore
from kore_connect.twin.kore.session import KoreSession
from kore_connect.twin.sip_transactions import (
    TRANSACTION_SECONDS,
    Key,
    ServerTransactions,
    retransmit_intervals,
    transaction_key,
)
from kore_connect.twin.sip_validation import answerable, bare_response, refusal
from kore_connect.twin.siptransport import ServerUdpTransport, answer_on_connection

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Kore voice gateway"
CODECS = [0, 8]  # PCMU, PCMA
PORT_ATTEMPTS = 20  # with port 0, how often to pick a port again when a transport finds it taken


class KoreGateway:
    def __init__(self, config: GatewayConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http
        self._own_http = http is None
        self.interactions = InteractionStore(config.interactions)
        self._servers: list[SipUAS] = []
        self._records: dict[str, dict[str, Any]] = {}  # Call-ID -> the interaction being recorded
        self._bots: dict[str, asyncio.Task[None]] = {}
        # Call-ID -> (the status answering our BYE, the caller it must come from)
        self._bye_answers: dict[str, tuple[asyncio.Future[int], tuple[str, int]]] = {}
        # Call-ID -> set once the 200 is ACKed (or never will be): only then may the BYE go out
        self._confirmed: dict[str, asyncio.Event] = {}
        self.addresses: dict[str, tuple[str, int]] = {}  # transport -> bound address
        self._timers: list[dict[Key, asyncio.Task[None]]] = []  # each transport's Timer G tasks

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient()
        # With port 0 the first transport picks a free port and the others take the same number,
        # which another program may hold for their transport: then pick again.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                await self._listen(self.config.port)
                return
            except OSError as exc:
                for uas in self._servers:
                    await uas.stop()
                self._servers.clear()
                self.addresses.clear()
                if self.config.port != 0 or exc.errno != errno.EADDRINUSE or attempt == PORT_ATTEMPTS:
                    raise

    async def _listen(self, port: int) -> None:
        for name in self.config.transports:
            address = (self.config.host, port)
            transport: SipTransport = (
                TcpSipTransport(local_addr=address)
                if name == "tcp"
                else ServerUdpTransport(local_addr=address)
            )
            uas = SipUAS(transport, user_agent=USER_AGENT)
            uas.on_invite = self._on_invite
            uas.on_ack_timeout = lambda call: self._confirm(call.call_id)
            uas.on_bye = self._on_caller_bye
            uas.on_cancel = lambda request, addr: self._stop_bot(
                request.call_id or "", "cancelled by the caller"
            )
            await uas.start()
            self._guard(uas)
            if isinstance(transport, TcpSipTransport) and transport._server is not None:
                self.addresses[name] = transport._server.sockets[0].getsockname()[:2]
            else:
                self.addresses[name] = transport.local_addr
            self._servers.append(uas)
            port = self.addresses[name][1]  # with port 0, every transport on the port the first got

    async def stop(self) -> None:
        for task in [*self._bots.values(), *(t for timers in self._timers for t in timers.values())]:
            task.cancel()
        for uas in self._servers:
            await uas.stop()
        self._servers.clear()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self.interactions.close()

    # ------------------------------------------------------------ the SIP side

    def _guard(self, uas: SipUAS) -> None:
        """Wrap the transport's two ends with what aiosipua leaves to us (RFC 3261): the allow-list,
        malformed requests, server transactions (copies absorbed, non-2xx finals resent by Timer
        G), the dialog rules aiosipua skips, a 500 rather than silence when a handler fails, and
        every message recorded with its call."""
        transport = uas.transport
        inner = transport.on_message
        send = transport.send
        parse = transport._dispatch
        request_line = ""  # the first line of the message being handled, as it came
        transactions = ServerTransactions()
        clock = asyncio.get_running_loop().time
        resending: dict[Key, asyncio.Task[None]] = {}  # Timer G: non-2xx finals until their ACK

        def received(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            if isinstance(message, SipResponse):
                if self.config.allowed(addr[0]):
                    self._note(message, "received")
                    self._answered_bye(message, addr)
                return  # the gateway's only requests are BYEs: nothing else to hand on
            if not answerable(message):
                logger.warning(
                    "dropped a %s from %s: its Via cannot be read", printable(message.method, 16), addr[0]
                )
                return  # nowhere to answer
            if transport.reliable:
                answer_on_connection(message, addr)
            if not self.config.allowed(addr[0]):
                if message.method != "ACK":  # a stranger learns that it may not call, nothing more,
                    # once, to where it sent from: no transaction, no resending, no amplification
                    send(bare_response(message, 403, "Forbidden"), addr)
                return
            if message.method == "ACK":  # first: the ACK of a refusal repeats what was refused
                timer_g = resending.pop(transaction_key(message, "INVITE") or ("", "", ""), None)
                if timer_g is not None:  # (its Request-URI and version, RFC 3261 §17.1.1.3)
                    timer_g.cancel()
            refused = refusal(message, request_line)
            if refused is not None:
                logger.warning(
                    "refused a %s from %s: %s", printable(message.method, 16), addr[0], printable(refused)
                )
                answer(message, refused.status, refused.reason, dict(refused.headers))
                return
            again, last_answer = transactions.received(message, clock())
            if again:
                self._note(message, "received")
                if last_answer is not None:
                    transport.send_reply(last_answer)
                return
            rule = self._dialog_rule(uas, transactions, message)
            if rule is not None:
                answer(message, *rule)
                return
            if message.method == "INVITE":
                self._open_record(message, addr)
            self._note(message, "received")
            dispatch(message, addr)

        def answer(
            message: SipRequest, status: int, reason: str, headers: dict[str, str] | None = None
        ) -> None:
            if message.method != "ACK":  # an ACK is never answered
                uas._send_error(message, status, reason, extra_headers=headers)

        def dispatch(message: SipRequest, addr: tuple[str, int]) -> None:
            call_id = message.call_id or ""
            try:
                if inner is not None:
                    inner(message, addr)
                if message.method == "ACK":
                    self._confirm(call_id)
                elif message.method == "INVITE" and uas.get_call(call_id) is None:
                    self._ended(call_id, "refused by the SIP stack")
            except Exception:  # a handler's bug answers 500; the gateway goes on
                logger.exception("%s from %s failed", printable(message.method, 16), addr[0])
                if message.method == "INVITE":
                    uas._calls.pop(call_id, None)
                    self._ended(call_id, "the gateway failed (see its log)")
                answer(message, 500, "Server Internal Error")

        def sent(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            self._note(message, "sent")
            if isinstance(message, SipResponse):
                transactions.answered(message, clock())
                key = transaction_key(message, "INVITE")
                cseq = message.headers.get_first("cseq") or ""
                final_error = message.status_code >= 300 and cseq.upper().endswith("INVITE")
                if final_error and not transport.reliable and key is not None and key not in resending:
                    resending[key] = asyncio.get_running_loop().create_task(resend(key, message, addr))
            send(message, addr)

        async def resend(key: Key, response: SipResponse, addr: tuple[str, int]) -> None:
            """Timer G (§17.2.1): a non-2xx final answer to an INVITE, again until its ACK."""
            try:
                for wait in retransmit_intervals():
                    await asyncio.sleep(wait)
                    sent(response, addr)
            finally:
                resending.pop(key, None)

        def remember_request_line(data: bytes, addr: tuple[str, int]) -> None:
            nonlocal request_line
            request_line = data.split(b"\n", 1)[0].split(b"\r", 1)[0].decode("utf-8", "replace")
            parse(data, addr)  # and on to `received`

        transport._dispatch = remember_request_line  # type: ignore[method-assign]
        transport.on_message = received
        transport.send = sent  # type: ignore[method-assign]
        self._timers.append(resending)

    def _dialog_rule(
        self, uas: SipUAS, transactions: ServerTransactions, request: SipRequest
    ) -> tuple[int, str] | None:
        """What RFC 3261 answers for a request aiosipua would mishandle, or None to pass it on."""
        call_id = request.call_id or ""
        to_tag = request.to_addr.params.get("tag") if request.to_addr is not None else None
        if request.method == "INVITE" and to_tag and uas.get_call(call_id) is None:
            return 481, "Call/Transaction Does Not Exist"  # a re-INVITE for no dialog of ours
        if request.method == "INVITE" and not to_tag and (call_id in self._records or uas.get_call(call_id)):
            return 482, "Loop Detected"  # §8.2.2.2: a second INVITE on a Call-ID still in progress
        if request.method == "CANCEL":
            answer = transactions.answer_to_invite(request)
            if answer is not None and answer.status_code >= 200:
                return 200, "OK"  # §9.2: a CANCEL after the final answer changes nothing
        return None

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
        if invite.to_addr is not None and invite.to_addr.params.get("tag"):
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
            self._reject(call, 404, "Not Found", f"no DID matches {did!r}")
            return
        try:
            if call.sdp_offer is None:
                raise SdpNegotiationError("no SDP offer")
            answer, _ = negotiate_sdp(
                call.sdp_offer, local_ip=self._local_ip(call), rtp_port=40000, supported_codecs=CODECS
            )
        except SdpNegotiationError as exc:
            self._reject(call, 488, "Not Acceptable Here", f"no acceptable codec: {exc}")
            return
        self._bots[call.call_id] = asyncio.get_running_loop().create_task(
            self._answer_and_run(call, headers, answer, route.flow)
        )

    def _reject(self, call: IncomingCall, status: int, reason: str, how: str) -> None:
        call.reject(status, reason)
        self._ended(call.call_id, how)
        # aiosipua forgets a rejected call at its ACK; without one, when the transaction would end
        uas = self._uas(call)
        asyncio.get_running_loop().call_later(
            TRANSACTION_SECONDS, lambda: uas._calls.get(call.call_id) is call and uas._calls.pop(call.call_id)
        )

    def _uas(self, call: IncomingCall) -> SipUAS:
        return next(uas for uas in self._servers if uas.transport is call.transport)

    def _confirm(self, call_id: str) -> None:
        confirmed = self._confirmed.get(call_id)
        if confirmed is not None:
            confirmed.set()

    def _on_caller_bye(self, call: IncomingCall, request: SipRequest) -> None:
        self._stop_bot(call.call_id, "the caller hung up")

    def _stop_bot(self, call_id: str, how: str) -> None:
        task = self._bots.get(call_id)
        if task is not None and not task.done():
            task.cancel()
        self._ended(call_id, how)

    async def _answer_and_run(
        self, call: IncomingCall, headers: list[dict[str, str]], answer: Any, flow: str
    ) -> None:
        try:
            call.ringing()
            if self.config.ring_seconds:
                await asyncio.sleep(self.config.ring_seconds)
            if self._uas(call).get_call(call.call_id) is not call:
                return  # cancelled while ringing: aiosipua has answered 487, nothing more is sent
            self._confirmed[call.call_id] = asyncio.Event()
            call.accept(answer)
            # RFC 3261 §15: no BYE before the 200 is ACKed, or until 64*T1 after it without an ACK
            # (aiosipua's 2xx retransmissions give up then over UDP; over TCP it has none)
            ack_deadline = asyncio.get_running_loop().time() + TRANSACTION_SECONDS
            session = KoreSession(headers)
            record = self._records.get(call.call_id)
            if record is not None:  # what the Agent AI widget fetches the bot's history by
                record["instanceSessionId"] = session.instance_session_id
            try:
                assert self._http is not None
                run = await run_bot(
                    session, self.config.dialog(flow), environment=self.config.environment, http=self._http
                )
            finally:
                session.close()
            self._record_bot(call.call_id, run)
            if run.transfer is not None:
                remaining = ack_deadline - asyncio.get_running_loop().time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._confirmed[call.call_id].wait(), max(remaining, 0))
                status = await self._hang_up(call, run)
                answer = f"answered {status}" if status else "never answered"
                self._ended(call.call_id, f"agent transfer (SIP BYE, {answer})")
            else:
                self._ended(call.call_id, "the bot ended without a transfer")
        except asyncio.CancelledError:
            pass  # the caller hung up or cancelled: the bot stops
        except Exception:  # a bug must not take the gateway down: the call is recorded as failed
            logger.exception("call %s failed", printable(call.call_id))
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
        self._uas(call)._calls.pop(call.call_id, None)  # the dialog is over: aiosipua may forget it
        transport = call.transport
        if transport is None:
            return None
        answer = asyncio.get_running_loop().create_future()
        self._bye_answers[call.call_id] = (answer, call.source_addr)
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

    def _answered_bye(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.headers.get_first("cseq") or ""
        answer, caller = self._bye_answers.get(response.call_id or "", (None, None))
        final = response.status_code >= 200 and cseq.upper().endswith("BYE") and addr == caller
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
                "request": r.request,
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
    """The user part of a SIP URI: sip:+12065551118@host;params -> +12065551118. An escaped
    unreserved character is the character (%31 is 1: RFC 3261 §19.1.4 compares URIs so); an escaped
    reserved one is not (%2B is not +), and stays as it came, as do escaped control characters."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user = rest.split("@", 1)[0] if "@" in rest else ""
    return _ESCAPED.sub(_unescaped, user)


_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")  # RFC 3261 §25.1


def _unescaped(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else escape[0]
