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
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosipua import SipUAC, SipUAS, parse_sdp
from aiosipua.dialog import DialogState
from aiosipua.message import SipRequest, SipResponse
from aiosipua.outgoing_call import OutgoingCall
from aiosipua.transport import TcpSipTransport, UdpSipTransport

from kore_connect.log_text import printable
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.interpreter import TransferOutcome, TransferRequest, TransferResult
from kore_connect.twin.sip_validation import problem, response_problem
from kore_connect.twin.siptransport import DatagramProtocol311

logger = logging.getLogger(__name__)
USER_AGENT = "kore-connect local Amazon Connect"
LONGEST_CALL_SECONDS = 3600.0  # a transferred call the far end never ends is dropped after this
FINAL_ANSWER_WAIT_SECONDS = 4.0  # after a CANCEL or a BYE, how long the answer is waited for


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
        local_host: str | None = None,
        account_id: str = "000000000000",
        caller_hangs_up_after: float | None = None,
        max_call_seconds: float = LONGEST_CALL_SECONDS,
    ) -> None:
        self.gateways = gateways
        self.local_host = local_host  # None: the address the system routes to the gateway from
        self.account_id = account_id
        self.caller_hangs_up_after = caller_hangs_up_after
        self.max_call_seconds = max_call_seconds

    def gateway_for(self, connector_arn: str) -> Gateway | None:
        if isinstance(self.gateways, Gateway):
            return self.gateways
        return self.gateways.get(connector_arn)

    async def __call__(self, contact: Contact, request: TransferRequest) -> TransferResult:
        gateway = self.gateway_for(request.connector_arn)
        if gateway is None:
            return TransferResult(
                TransferOutcome.FAILED, f"no voice gateway is configured for {request.connector_arn}"
            )
        call = _Call(self, contact, request, gateway)
        try:
            return await call.place()
        finally:
            await call.close()

    def headers(self, contact: Contact, request: TransferRequest) -> dict[str, str]:
        """The headers Connect adds to its INVITE (observed in practice; REFERENCE.md §2)."""
        headers = {
            "X-Amzn-ConnectContactId": contact.contact_id,
            "X-Amzn-ConnectInitialContactId": contact.initial_contact_id,
            "X-Amzn-SourceAccount": self.account_id,
            "X-Amzn-SourceArn": contact.instance_arn,
            "X-Amzn-TargetArn": request.connector_arn,
        }
        if request.user_to_user is not None:
            encoded = binascii.hexlify(request.user_to_user.encode("utf-8")).decode("ascii")
            headers["User-to-User"] = f"{encoded};encoding=hex"
        return headers


class _Call:
    """One transfer: its transport, its user agents, and what it saw."""

    def __init__(
        self, connector: SipConnector, contact: Contact, request: TransferRequest, gateway: Gateway
    ) -> None:
        self.connector = connector
        self.contact = contact
        self.request = request
        self.gateway = gateway
        self.remote = (gateway.host, gateway.port)
        self.messages: list[SipMessageRecord] = []
        self.started = time.monotonic()
        self.invite: SipRequest | None = None
        self.provisional = asyncio.Event()  # a 1xx to the INVITE came: a CANCEL may be sent
        self.final = asyncio.Event()  # a final answer to the INVITE came
        self.far_end_hung_up = asyncio.Event()
        self.transport_failed = asyncio.Event()  # unreachable, connection lost, unparseable answers
        self.failure = ""
        self.transport: _UdpTransport | _TcpTransport = (
            _TcpTransport(local_addr=(connector.local_host or "", 0), call=self)
            if gateway.transport == "tcp"
            else _UdpTransport(local_addr=(connector.local_host or "", 0), call=self)
        )
        self.uac = SipUAC(self.transport)
        self.uas = SipUAS(self.transport, uac=self.uac, user_agent=USER_AGENT)
        self.uas.on_bye = lambda _call, _request: self.far_end_hung_up.set()

    def record_raw(self, direction: Literal["sent", "received"], raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        first_line = text.split("\r\n", 1)[0]
        self.messages.append(SipMessageRecord(direction, first_line, time.monotonic() - self.started, text))

    def fail(self, reason: str) -> None:
        if not self.transport_failed.is_set():
            self.failure = reason
            self.transport_failed.set()

    def received(self, message: SipRequest | SipResponse, addr: tuple[str, int], receive: Any) -> None:
        """Every message the transport parsed: to the user agents, and noted for the INVITE's state."""
        malformed = response_problem(message) if isinstance(message, SipResponse) else problem(message)
        if malformed is not None:  # dropped, as RFC 3261 says, and kept in the trace
            logger.warning("dropped a malformed message from the voice gateway: %s", printable(malformed))
            return
        invite = self.invite
        is_invite_answer = (
            invite is not None
            and isinstance(message, SipResponse)
            and message.call_id == invite.call_id
            and message.cseq is not None
            and message.cseq.method == "INVITE"
        )
        try:
            receive(message, addr)
        except Exception as exc:  # an answer aiosipua cannot take (say, SDP it cannot parse)
            logger.warning(
                "the voice gateway's %s could not be handled: %s", printable(message), printable(exc)
            )
            self.fail(f"the voice gateway's answer could not be handled: {exc}")
        if not is_invite_answer:
            return
        assert isinstance(message, SipResponse) and invite is not None
        if message.status_code < 200:
            self.provisional.set()
            return
        self.final.set()
        if 300 <= message.status_code <= 699:
            # aiosipua acknowledges 2xx only; the INVITE client transaction must ACK a 3xx-6xx too
            # (RFC 3261 §17.1.1.3), or the gateway retransmits it.
            self._send(_ack_for_failure(invite, message), addr)

    def _send(self, message: SipRequest, addr: tuple[str, int]) -> None:
        try:
            self.transport.send(message, addr)
        except (OSError, RuntimeError) as exc:
            self.fail(f"the connection to the voice gateway is gone: {exc}")

    async def place(self) -> TransferResult:
        try:
            await self.transport.open(self.remote)
        except OSError as exc:
            return self.result(
                TransferOutcome.FAILED, f"cannot reach the voice gateway at {_where(self.remote)}: {exc}"
            )
        receive = self.transport.on_message
        self.transport.on_message = lambda message, addr: self.received(message, addr, receive)
        request = self.request
        local_host = self.transport.local_addr[0]
        tcp = ";transport=tcp" if self.gateway.transport == "tcp" else ""
        try:
            call = self.uac.send_invite(
                from_uri=f"sip:{request.from_user}@{local_host}",
                to_uri=f"sip:{request.to_user}@{_where(self.remote)}{tcp}",
                remote_addr=self.remote,
                sdp_offer=parse_sdp(_sdp_offer(local_host)),
                extra_headers=self.connector.headers(self.contact, request),
                user_agent=USER_AGENT,
            )
        except (OSError, RuntimeError) as exc:
            return self.result(
                TransferOutcome.FAILED, f"cannot send the INVITE to {_where(self.remote)}: {exc}"
            )
        self.invite = call.invite
        which, outcome = await _first(
            answered=call.wait_answered(timeout=request.time_limit_seconds),
            failed=self.transport_failed.wait(),
        )
        if which == "failed":
            return self.result(TransferOutcome.FAILED, self.failure)
        if isinstance(outcome, TimeoutError):
            return await self.give_up(call)
        if isinstance(outcome, BaseException):  # a 3xx-6xx final answer
            return self.result(TransferOutcome.FAILED, str(outcome))
        return await self.connected(call)

    async def give_up(self, call: OutgoingCall) -> TransferResult:
        """No answer in time: CANCEL (only once the gateway has answered provisionally, RFC 3261
        §9.1), and wait a while for the INVITE's final answer; a 2xx that crossed the CANCEL is
        ended with a BYE."""
        limit = self.request.time_limit_seconds
        if self.provisional.is_set():
            try:
                call.cancel(self.uac)
            except (OSError, RuntimeError) as exc:
                self.fail(str(exc))
            await _first(final=self.final.wait(), enough=asyncio.sleep(FINAL_ANSWER_WAIT_SECONDS))
            if call.dialog.state == DialogState.CONFIRMED:  # answered while we cancelled
                self._hang_up(call)
        return self.result(TransferOutcome.TIMED_OUT, f"no answer within {limit} s: cancelled")

    async def connected(self, call: OutgoingCall) -> TransferResult:
        hang_up_after = self.connector.caller_hangs_up_after
        limit = hang_up_after if hang_up_after is not None else self.connector.max_call_seconds
        which, _ = await _first(
            bye=self.far_end_hung_up.wait(), failed=self.transport_failed.wait(), limit=asyncio.sleep(limit)
        )
        if which == "bye":
            await asyncio.sleep(0)  # the 200 OK to the far end's BYE has gone out
            return self.result(TransferOutcome.FAR_END_HUNG_UP, "the voice gateway hung up (BYE)")
        if which == "failed":
            return self.result(
                TransferOutcome.FAR_END_HUNG_UP, f"the voice gateway went away without a BYE ({self.failure})"
            )
        self._hang_up(call)
        await _first(answer=self.final_bye_answer(), enough=asyncio.sleep(FINAL_ANSWER_WAIT_SECONDS))
        if hang_up_after is not None:
            return self.result(TransferOutcome.CALLER_HUNG_UP, "the caller hung up while transferred")
        return self.result(TransferOutcome.CALLER_HUNG_UP, f"the call reached its {limit:g} s limit: hung up")

    async def final_bye_answer(self) -> None:
        """Until the gateway has answered our BYE (for the trace: the call is over either way)."""
        while not any(_answers_bye(m) for m in self.messages):
            await asyncio.sleep(0.01)

    def _hang_up(self, call: OutgoingCall) -> None:
        try:
            call.hangup(self.uac)
        except (OSError, RuntimeError) as exc:
            self.fail(str(exc))

    def result(self, outcome: TransferOutcome, reason: str) -> TransferResult:
        records = tuple(
            {"direction": m.direction, "firstLine": m.first_line, "at": round(m.at, 4), "message": m.text}
            for m in self.messages
        )
        return TransferResult(outcome, reason, tuple(str(m) for m in self.messages), records)

    async def close(self) -> None:
        try:
            await self.uas.stop()
        except Exception:  # closing a transport that never started is not worth a failure
            logger.debug("closing the SIP transport failed", exc_info=True)


def _answers_bye(record: SipMessageRecord) -> bool:
    if record.direction != "received" or not record.first_line.startswith("SIP/2.0"):
        return False
    cseq = re.search(r"^CSeq:\s*\d+\s+(\w+)", record.text, re.IGNORECASE | re.MULTILINE)
    return cseq is not None and cseq.group(1).upper() == "BYE"


async def _first(**waits: Awaitable[Any]) -> tuple[str, Any]:
    """(name, result or exception) of whichever of `waits` ends first; the others are cancelled."""
    tasks = {asyncio.ensure_future(wait): name for name, wait in waits.items()}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    first = next(task for task in tasks if task in done)
    return tasks[first], first.exception() or first.result()


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
    """Records every message as it crosses the wire, both ways, and sends Connect's spelling."""

    call: _Call

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        self.call.record_raw("received", data)  # as it came, also when it cannot be parsed
        super()._dispatch(data, addr)  # type: ignore[misc]


@dataclass
class _UdpTransport(_RecordingMixin, UdpSipTransport):
    call: _Call = field(default=None, repr=False)  # type: ignore[assignment]

    async def open(self, remote: tuple[str, int]) -> None:
        """Bind and connect to the gateway: the kernel picks the source address that routes there,
        and reports an unreachable gateway."""
        await self.uas_start()
        loop = asyncio.get_running_loop()
        local = self.local_addr if self.local_addr[0] else None  # "": the kernel chooses
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DatagramProtocol311(self, self._unreachable), local_addr=local, remote_addr=remote
        )
        self._udp_transport = transport
        self.local_addr = transport.get_extra_info("sockname")[:2]

    def _unreachable(self, exc: Exception) -> None:
        # The socket is connected, so the kernel reports an ICMP error: nothing listens there.
        self.call.fail(f"the voice gateway is unreachable ({exc})")

    async def uas_start(self) -> None:
        await self.call.uas.start()  # registers the message handler; our start() binds nothing

    async def start(self) -> None:
        """Bound in `open`, once the gateway is known."""

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if self._udp_transport is None:
            raise RuntimeError("the transport is not open")
        raw = _wire(message)
        self.call.record_raw("sent", raw)
        self._udp_transport.sendto(raw)  # connected: always to the gateway


@dataclass
class _TcpTransport(_RecordingMixin, TcpSipTransport):
    call: _Call = field(default=None, repr=False)  # type: ignore[assignment]

    async def open(self, remote: tuple[str, int]) -> None:
        await self.call.uas.start()
        await self.connect(remote)
        _, writer = self._connections[remote]
        host, port = writer.get_extra_info("sockname")[:2]
        self.local_addr = (str(host), int(port))

    async def start(self) -> None:
        """A client only: it connects to the gateway (`open`) and listens nowhere."""

    async def _handle_incoming(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, addr: tuple[str, int]
    ) -> None:
        await super()._handle_incoming(reader, writer, addr)
        self.call.fail("the voice gateway closed the TCP connection")

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(message, SipRequest):
            # aiosipua's requests say UDP in Via and name no transport in Contact: ours is TCP.
            vias = message.headers.get("Via")
            if vias:
                message.headers.set_single("Via", vias[0].replace("SIP/2.0/UDP", "SIP/2.0/TCP", 1))
                for via in vias[1:]:
                    message.headers.append("Via", via)
            contacts = message.headers.get("Contact")
            if contacts and "transport=" not in contacts[0]:
                message.headers.set_single("Contact", contacts[0].replace(">", ";transport=tcp>", 1))
        connection = self._connections.get(addr)
        if connection is None:
            raise OSError(f"no TCP connection to {addr[0]}:{addr[1]}")
        raw = _wire(message)
        self.call.record_raw("sent", raw)
        connection[1].write(raw)
        self._spawn(self._flush(connection[1], addr))
