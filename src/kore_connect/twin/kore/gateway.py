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
from kore_connect.twin.siptransport import ServerUdpTransport

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
        self._peers: dict[str, tuple[str, int]] = {}  # Call-ID -> where its messages came from
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
        for task in list(self._bots.values()):
            task.cancel()
        for uas in self._servers:
            await uas.stop()
        self._servers.clear()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self.interactions.close()

    # ------------------------------------------------------------ the SIP side

    def _guard(self, uas: SipUAS) -> None:
        """Refuse any source not on the allow-list (403), and record every message by call."""
        transport = uas.transport
        inner = transport.on_message
        send = transport.send

        def received(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            if not self.config.allowed(addr[0]):
                if isinstance(message, SipRequest) and message.method != "ACK":
                    uas._send_error(message, 403, "Forbidden")
                return
            self._note(message, "received")
            self._peers[message.call_id or ""] = addr
            if inner is not None:
                inner(message, addr)

        def sent(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            self._note(message, "sent")
            if isinstance(transport, TcpSipTransport) and addr not in transport._connections:
                # Over TCP, answers and in-dialog requests go back on the caller's connection
                # (RFC 3261 §18.2.2), not to the port its Via names.
                addr = self._peers.get(message.call_id or "", addr)
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

    def _on_invite(self, call: IncomingCall) -> None:
        invite = call.invite
        did = _user(invite.uri)
        headers = [
            {"name": name, "value": value} for name, values in invite.headers.items() for value in values
        ]
        contact_id = next(
            (h["value"] for h in headers if h["name"].lower() == "x-amzn-connectcontactid"), None
        )
        record: dict[str, Any] = {
            "callId": call.call_id,
            "contactId": contact_id,
            "did": did,
            "source": f"{call.source_addr[0]}:{call.source_addr[1]}",
            "startedAt": time.time(),
            "nodes": [],
            "sip": [],
            "ended": None,
        }
        self._records[call.call_id] = record
        record["sip"].append(
            {"direction": "received", "firstLine": f"INVITE {invite.uri} SIP/2.0", "at": time.time()}
        )
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
                self._hang_up(call, run)
                self._ended(call.call_id, "agent transfer (SIP BYE)")
            else:
                self._ended(call.call_id, "the bot ended without a transfer")
        except asyncio.CancelledError:
            pass  # the caller hung up: the bot stops
        except Exception:  # a bug must not take the gateway down: the call is recorded as failed
            logger.exception("call %s failed", call.call_id)
            self._ended(call.call_id, "the gateway failed (see its log)")
        finally:
            self._bots.pop(call.call_id, None)

    def _hang_up(self, call: IncomingCall, run: BotRun) -> None:
        """The agent transfer: a BYE, with the transfer node's custom headers."""
        bye = call.dialog.create_request(
            "BYE", via_host=self._local_ip(call), via_port=self._local_port(call)
        )
        assert run.transfer is not None
        for name, value in run.transfer.bye_headers:
            bye.headers.set_single(name, value)
        call.dialog.terminate()
        if call.transport is not None:
            call.transport.send(bye, call.source_addr)

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
        self._peers.pop(call_id, None)

    def _local_ip(self, call: IncomingCall) -> str:
        return call.transport.local_addr[0] if call.transport is not None else self.config.host

    def _local_port(self, call: IncomingCall) -> int:
        return call.transport.local_addr[1] if call.transport is not None else self.config.port


def _user(uri: str) -> str:
    """The user part of a SIP URI: sip:+12065551118@host;params -> +12065551118."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""
