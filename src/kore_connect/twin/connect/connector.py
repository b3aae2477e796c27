"""Amazon Connect's external voice connector, as a SIP client (aiosipua): what
`TransferParticipantToThirdParty` does on the wire.

How it works. Each transfer places one call from a fresh local port: an INVITE to the voice
gateway configured for the flow's connector ARN, with the Request-URI and To user from `ToUser`,
the From user from `FromUser`, the X-Amzn-* headers Connect sends (and `User-to-User` as
`<hex>;encoding=hex` when the flow sets it), and an SDP offer of PCMU, PCMA and telephone-event.
Then, as Connect does (REFERENCE.md §2):
- answered, and later a BYE from the far end: 200 OK, and the flow may resume;
- a 4xx/5xx/6xx final answer, or a transport failure: CallFailed;
- no answer within the time limit: CANCEL, and ConnectionTimeLimitExceeded;
- the caller hangs up while transferred (simulated after `caller_hangs_up_after` seconds): BYE to
  the far end, and the contact ends.
Every SIP message sent and received is kept, in order, for the contact's trace.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosipua import SipUAC, SipUAS, parse_sdp
from aiosipua.message import SipRequest, SipResponse
from aiosipua.transport import SipTransport, TcpSipTransport, UdpSipTransport, _UdpProtocol

from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.interpreter import TransferOutcome, TransferRequest, TransferResult

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Amazon Connect"
LONGEST_CALL_SECONDS = 3600.0  # a transferred call the far end never ends is dropped after this


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where a connector's calls go: the voice gateway's address and transport."""

    host: str
    port: int
    transport: Literal["udp", "tcp"] = "udp"


@dataclass(frozen=True, slots=True)
class SipMessageRecord:
    direction: Literal["sent", "received"]
    first_line: str
    at: float  # seconds since the transfer began
    text: str = field(repr=False)  # the whole message

    def __str__(self) -> str:
        arrow = "->" if self.direction == "sent" else "<-"
        return f"{arrow} {self.first_line}"


class SipConnector:
    """A `ThirdPartyTransfer` for the interpreter: places the transfer as a real SIP call."""

    def __init__(
        self,
        gateways: Mapping[str, Gateway] | Gateway,
        *,
        local_host: str = "127.0.0.1",
        account_id: str = "000000000000",
        caller_hangs_up_after: float | None = None,
    ) -> None:
        self._gateways = gateways
        self._local_host = local_host
        self._account_id = account_id
        self._caller_hangs_up_after = caller_hangs_up_after
        self.calls: list[list[SipMessageRecord]] = []  # every call's messages, in order

    def gateway_for(self, connector_arn: str) -> Gateway | None:
        if isinstance(self._gateways, Gateway):
            return self._gateways
        return self._gateways.get(connector_arn)

    async def __call__(self, contact: Contact, request: TransferRequest) -> TransferResult:
        gateway = self.gateway_for(request.connector_arn)
        if gateway is None:
            return TransferResult(
                TransferOutcome.FAILED, f"no voice gateway is configured for {request.connector_arn}"
            )
        call = _Call(self, contact, request, gateway)
        self.calls.append(call.messages)
        try:
            return await call.place()
        finally:
            await call.close()

    def headers(self, contact: Contact, request: TransferRequest) -> dict[str, str]:
        """The headers Connect adds to its INVITE (observed in practice; REFERENCE.md §2)."""
        headers = {
            "X-Amzn-ConnectContactId": contact.contact_id,
            "X-Amzn-ConnectInitialContactId": contact.initial_contact_id,
            "X-Amzn-SourceAccount": self._account_id,
            "X-Amzn-SourceArn": contact.instance_arn,
            "X-Amzn-TargetArn": request.connector_arn,
        }
        if request.user_to_user is not None:
            encoded = binascii.hexlify(request.user_to_user.encode("utf-8")).decode("ascii")
            headers["User-to-User"] = f"{encoded};encoding=hex"
        return headers

    @property
    def local_host(self) -> str:
        return self._local_host

    @property
    def caller_hangs_up_after(self) -> float | None:
        return self._caller_hangs_up_after


class _Call:
    """One transfer: its transport, its user agents, and what it saw."""

    def __init__(
        self, connector: SipConnector, contact: Contact, request: TransferRequest, gateway: Gateway
    ) -> None:
        self.connector = connector
        self.contact = contact
        self.request = request
        self.gateway = gateway
        self.messages: list[SipMessageRecord] = []
        self.started = time.monotonic()
        self.far_end_hung_up = asyncio.Event()
        self.invite: SipRequest | None = None
        self.transport_failed = asyncio.Event()
        local = (connector.local_host, 0)
        self.transport: SipTransport = (
            _TcpTransport(local_addr=local) if gateway.transport == "tcp" else _UdpTransport(local_addr=local)
        )
        self.transport.call = self
        self.uac = SipUAC(self.transport)
        self.uas = SipUAS(self.transport, uac=self.uac, user_agent=USER_AGENT)
        self.uas.on_bye = lambda _call, _request: self.far_end_hung_up.set()

    def record(self, direction: Literal["sent", "received"], message: SipRequest | SipResponse) -> None:
        self.record_raw(direction, bytes(message))

    def record_raw(self, direction: Literal["sent", "received"], raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        first_line = text.split("\r\n", 1)[0]
        self.messages.append(SipMessageRecord(direction, first_line, time.monotonic() - self.started, text))

    async def place(self) -> TransferResult:
        remote = (self.gateway.host, self.gateway.port)
        try:
            await self.uas.start()
            receive = self.transport.on_message
            assert receive is not None  # set by uas.start()

            def received(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
                self.record("received", message)
                receive(message, addr)
                invite = self.invite
                if (
                    invite is not None
                    and isinstance(message, SipResponse)
                    and _is_final_failure_to(invite, message)
                ):
                    # aiosipua acknowledges 2xx only; the INVITE client transaction must ACK a
                    # 3xx-6xx too (RFC 3261 §17.1.1.3), or the gateway retransmits it.
                    self.transport.send(_ack_for_failure(invite, message), addr)

            self.transport.on_message = received
            if isinstance(self.transport, _TcpTransport):
                await self.transport.connect(remote)
                self.transport.local_addr = self.transport.bound_address(remote)
        except OSError as exc:
            return self.result(
                TransferOutcome.FAILED, f"cannot reach the voice gateway at {_where(remote)}: {exc}"
            )
        request = self.request
        call = self.uac.send_invite(
            from_uri=f"sip:{request.from_user}@{self.connector.local_host}",
            to_uri=f"sip:{request.to_user}@{_where(remote)}",
            remote_addr=remote,
            sdp_offer=parse_sdp(_sdp_offer(self.transport.local_addr[0])),
            extra_headers=self.connector.headers(self.contact, request),
            user_agent=USER_AGENT,
        )
        self.invite = call.invite
        answered = asyncio.ensure_future(call.wait_answered(timeout=request.time_limit_seconds))
        failed = asyncio.ensure_future(self.transport_failed.wait())
        await asyncio.wait({answered, failed}, return_when=asyncio.FIRST_COMPLETED)
        failed.cancel()
        if not answered.done():
            answered.cancel()
            return self.result(
                TransferOutcome.FAILED, f"the voice gateway at {_where(remote)} is unreachable"
            )
        error = answered.exception()
        if isinstance(error, TimeoutError):
            call.cancel(self.uac)
            await asyncio.sleep(0.2)  # let the 487 and its ACK cross, for the trace
            return self.result(
                TransferOutcome.TIMED_OUT, f"no answer within {request.time_limit_seconds} s: cancelled"
            )
        if error is not None:
            return self.result(TransferOutcome.FAILED, str(error))
        return await self.connected(call)

    async def connected(self, call: Any) -> TransferResult:
        hang_up_after = self.connector.caller_hangs_up_after
        try:
            await asyncio.wait_for(self.far_end_hung_up.wait(), hang_up_after or LONGEST_CALL_SECONDS)
        except TimeoutError:
            call.hangup(self.uac)
            await asyncio.sleep(0.2)  # let the 200 OK to our BYE arrive, for the trace
            return self.result(TransferOutcome.CALLER_HUNG_UP, "the caller hung up while transferred")
        await asyncio.sleep(0)  # the 200 OK to the far end's BYE has been sent
        return self.result(TransferOutcome.FAR_END_HUNG_UP, "the voice gateway hung up (BYE)")

    def result(self, outcome: TransferOutcome, reason: str) -> TransferResult:
        return TransferResult(outcome, reason, tuple(str(m) for m in self.messages))

    async def close(self) -> None:
        try:
            await self.uas.stop()
        except Exception:  # closing a transport that never started is not worth a failure
            logger.debug("closing the SIP transport failed", exc_info=True)


def _sdp_offer(address: str) -> str:
    """What Connect offers: PCMU, PCMA and telephone-event (RFC 4733)."""
    return "\r\n".join(
        [
            "v=0",
            f"o=- {int(time.time())} {int(time.time())} IN IP4 {address}",
            "s=Amazon Connect (kore-connect local twin)",
            f"c=IN IP4 {address}",
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


def _is_final_failure_to(invite: SipRequest, message: SipResponse) -> bool:
    if message.status_code < 300:
        return False
    cseq = message.cseq
    return message.call_id == invite.call_id and cseq is not None and cseq.method == "INVITE"


def _ack_for_failure(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK of a 3xx-6xx answer: part of the INVITE transaction (same Via branch and CSeq
    number), with the To of the answer (RFC 3261 §17.1.1.3)."""
    ack = SipRequest(method="ACK", uri=invite.uri)
    ack.headers.append("Via", invite.headers.get("Via")[0])
    for name in ("From", "Call-ID", "Max-Forwards"):
        ack.headers.set_single(name, invite.headers.get(name)[0])
    ack.headers.set_single("To", response.headers.get("To")[0])
    cseq = invite.cseq
    ack.headers.set_single("CSeq", f"{cseq.seq if cseq else 1} ACK")
    return ack


def _where(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


# ------------------------------------------------------------------ transports


# Header names exactly as Amazon Connect writes them. SIP compares names without regard to case,
# but bot scripts compare strings: aiosipua would write "X-Amzn-Connectcontactid".
_EXACT_NAMES = (
    "X-Amzn-ConnectContactId",
    "X-Amzn-ConnectInitialContactId",
    "X-Amzn-SourceAccount",
    "X-Amzn-SourceArn",
    "X-Amzn-TargetArn",
    "User-to-User",
)
_EXACT = [
    (re.compile(rb"^" + re.escape(n.encode()) + rb":", re.IGNORECASE | re.MULTILINE), n.encode())
    for n in _EXACT_NAMES
]


def _wire(message: SipRequest | SipResponse) -> bytes:
    """The message as sent: aiosipua's serialisation, with Connect's header names restored."""
    raw = bytes(message)
    head, separator, body = raw.partition(b"\r\n\r\n")
    for pattern, exact in _EXACT:
        head = pattern.sub(exact + b":", head)
    return head + separator + body


class _RecordingMixin:
    """Sends the exact wire form, and records every message sent, for the trace."""

    call: _Call

    def record_sent(self, raw: bytes) -> None:
        self.call.record_raw("sent", raw)


class _Python311DatagramProtocol(_UdpProtocol):
    """aiosipua's UDP protocol asserts that its transport is an `asyncio.DatagramTransport`; on
    CPython 3.11 the selector event loop's datagram transport does not subclass it yet (it does
    from 3.12) although it is one in all but name. So the transport is taken without the check;
    and an ICMP error (nothing listening) marks the call's transport as failed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        super().error_received(exc)
        call = getattr(self._owner, "call", None)
        if call is not None:
            call.transport_failed.set()


@dataclass
class _UdpTransport(_RecordingMixin, UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Python311DatagramProtocol(self), local_addr=self.local_addr
        )
        self._udp_transport = transport
        self.local_addr = transport.get_extra_info("sockname")[:2]

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if self._udp_transport is None:
            raise RuntimeError("the transport is not started")
        raw = _wire(message)
        self.record_sent(raw)
        self._udp_transport.sendto(raw, addr)


@dataclass
class _TcpTransport(_RecordingMixin, TcpSipTransport):
    async def start(self) -> None:
        """A client only: it connects to the gateway (`connect`) and listens nowhere."""

    def bound_address(self, remote: tuple[str, int]) -> tuple[str, int]:
        _, writer = self._connections[remote]
        host, port = writer.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(message, SipRequest):
            # aiosipua's requests say UDP in their Via whatever the transport: ours is TCP.
            vias = message.headers.get("Via")
            if vias:
                message.headers.set_single("Via", vias[0].replace("SIP/2.0/UDP", "SIP/2.0/TCP", 1))
                for via in vias[1:]:
                    message.headers.append("Via", via)
        connection = self._connections.get(addr)
        if connection is None:
            raise OSError(f"no TCP connection to {addr[0]}:{addr[1]}")
        raw = _wire(message)
        self.record_sent(raw)
        connection[1].write(raw)
        self._spawn(self._flush(connection[1], addr))
