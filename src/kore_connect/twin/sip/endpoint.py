"""A SIP endpoint: one transport, its transaction layer and their timers, around a transaction
user (the gateway's calls, the connector's call) that sees only sound, new messages.

How it works. A message in: unreadable ones are answered 400 or 513 at their Via when they have
one we can read (and dropped when not); requests from a source not allowed are answered 403 once,
statelessly (no transaction: no resends, no amplification); the top Via is stamped with where the
request came from; then the transaction layer absorbs copies, and what is new goes to the user. A
message out goes through the layer, and its effects (sends, deliveries, time-outs) are carried out
here; the layer's next timer is one `call_at` on the loop. Every refusal and drop is one line in a
log a peer cannot flood.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal, Protocol

from kore_connect.log_text import printable
from kore_connect.twin.sip.fields import Via, reply_address, stamp
from kore_connect.twin.sip.message import Message, ParseError, Request, Response
from kore_connect.twin.sip.quiet_log import QuietLog
from kore_connect.twin.sip.rules import bare_response, reply_via, response_problem
from kore_connect.twin.sip.trace import Direction
from kore_connect.twin.sip.transactions import (
    Deliver,
    Effect,
    TimedOut,
    TransactionLayer,
    Transmit,
    TransportFailed,
)
from kore_connect.twin.sip.transport import HostPort, TcpTransport, UdpTransport

logger = logging.getLogger(__name__)


class TransactionUser(Protocol):
    """What an endpoint hands on: new requests, responses to our requests, and ends of transactions."""

    def request_received(self, request: Request, source: HostPort, endpoint: SipEndpoint) -> None: ...

    def response_received(self, response: Response, endpoint: SipEndpoint) -> None: ...

    def transaction_failed(self, request: Request, why: str, endpoint: SipEndpoint) -> None:
        """A transaction gave up: our request unanswered (Timer B, F), our non-2xx answer never
        ACKed (Timer H), or our request could not be sent."""
        ...


class SipEndpoint:
    def __init__(
        self,
        user: TransactionUser,
        transport: Literal["udp", "tcp"],
        *,
        allowed: Callable[[str], bool] = lambda host: True,
        on_icmp_error: Callable[[OSError], None] | None = None,
        on_connection_closed: Callable[[HostPort], None] | None = None,
        observer: Callable[[Direction, Message], None] | None = None,
        log: QuietLog | None = None,
    ) -> None:
        self.user = user
        self.allowed = allowed
        self.observer = observer  # told of every message from an allowed source, and every one sent
        self.transport: UdpTransport | TcpTransport = (
            TcpTransport(self._received, on_closed=on_connection_closed)
            if transport == "tcp"
            else UdpTransport(self._received, on_icmp_error=on_icmp_error)
        )
        self.layer = TransactionLayer(reliable=self.transport.reliable)
        # one budget of log lines per source for all a peer can make us log (`log`: shared)
        self.log = log or QuietLog(logger)
        self.transport.log = self.log
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._closed = False

    @property
    def name(self) -> Literal["udp", "tcp"]:
        return self.transport.name

    @property
    def local_address(self) -> HostPort:
        return self.transport.local_address

    async def listen(self, local: HostPort) -> None:
        if isinstance(self.transport, TcpTransport):
            await self.transport.listen(local)
        else:
            await self.transport.open(local)

    async def connect(self, remote: HostPort, local_host: str = "") -> HostPort:
        """A client's transport: bound to `local_host` (any free port) and connected to `remote`."""
        if isinstance(self.transport, TcpTransport):
            return await self.transport.connect(remote, local_host or None)
        await self.transport.open(
            (local_host, 0), remote
        )  # "": the kernel picks the address that routes there
        return self.transport.local_address

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        await self.transport.close()

    # ------------------------------------------------------------------ the user's side

    def respond(self, request: Request, response: Response) -> None:
        """Answer `request` (as the user received it): through its transaction, or, for a request
        that has none (an RFC 2543 branch), once, where its Via says."""
        effects = self.layer.respond(response, self._now())
        if not effects and self.layer.find(response, server=True) is None:
            address = self._reply_address(request)
            if address is not None:
                self._send(response, address)
            return
        self._run(effects, None)

    def request(self, request: Request, destination: HostPort) -> None:
        """Send our `request` through a new client transaction (an ACK without one)."""
        self._run(self.layer.request(request, destination, self._now()), None)

    def send(self, message: Message, destination: HostPort) -> bool:
        """Send `message` outside any transaction (a stateless answer)."""
        return self._send(message, destination)

    def _send(self, message: Message, destination: HostPort) -> bool:
        if self.observer is not None:
            self.observer("sent", message)
        return self.transport.send(message, destination)

    # ------------------------------------------------------------------ what comes in

    def _received(self, item: Message | ParseError, source: HostPort) -> None:
        if self._closed:
            return
        if isinstance(item, ParseError):
            self._unreadable(item, source)
        elif isinstance(item, Response):
            self._response(item, source)
        else:
            self._request(item, source)

    def _unreadable(self, error: ParseError, source: HostPort) -> None:
        request = error.request
        via = reply_via(request) if request is not None else None
        if request is None or via is None:
            self.log.warning(source[0], "dropped an unreadable message from %s: %s", source[0], error.reason)
            return
        if not self.allowed(source[0]):
            self._forbid(request, source)
            return
        self.log.warning(source[0], "refused a message from %s: %s", source[0], error.reason)
        if request.method != "ACK":
            self._answer_statelessly(request, via, source, error.status, error.reason)

    def _response(self, response: Response, source: HostPort) -> None:
        if not self.allowed(source[0]):
            return  # a stranger's response matches nothing we sent
        why = response_problem(response)
        if why is not None:  # RFC 3261 §18.1.2: dropped
            self.log.warning(source[0], "dropped a response from %s: %s", source[0], why)
            return
        if self.observer is not None:
            self.observer("received", response)
        self._run(self.layer.receive(response, source, self._now()), source)

    def _request(self, request: Request, source: HostPort) -> None:
        via = reply_via(request)
        if via is None:
            self.log.warning(
                source[0],
                "dropped a %s from %s: its Via cannot be read",
                printable(request.method, 16),
                source[0],
            )
            return  # nowhere to answer
        if not self.allowed(source[0]):
            self._forbid(request, source)
            return
        stamped = stamp(via, source, reliable=self.transport.reliable)
        vias = [str(stamped), *request.headers.values("Via")[1:]]
        request = request.replacing(headers=request.headers.with_list("Via", vias))
        if self.observer is not None:
            self.observer("received", request)
        self._run(self.layer.receive(request, reply_address(stamped), self._now()), source)

    def _forbid(self, request: Request, source: HostPort) -> None:
        """A stranger learns that it may not call, nothing more: once, to where it sent from."""
        self.log.warning(
            source[0], "refused a %s from %s: not allowed", printable(request.method, 16), source[0]
        )
        if request.method != "ACK":
            self._send(bare_response(request, 403, "Forbidden"), source)

    def _answer_statelessly(
        self, request: Request, via: Via, source: HostPort, status: int, reason: str
    ) -> None:
        stamped = stamp(via, source, reliable=self.transport.reliable)
        self._send(bare_response(request, status, reason), reply_address(stamped))

    def _reply_address(self, request: Request) -> HostPort | None:
        via = reply_via(request)  # stamped when it came in: received and rport say where
        return reply_address(via) if via is not None else None

    # ------------------------------------------------------------------ effects and time

    def _run(self, effects: list[Effect], source: HostPort | None) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                sent = self._send(effect.message, effect.address)
                if not sent and isinstance(effect.message, Request):
                    self._run(self.layer.transport_failed(effect.message), source)
            elif isinstance(effect, Deliver):
                self._deliver(effect, source)
            elif isinstance(effect, TimedOut):
                self.user.transaction_failed(effect.request, f"Timer {effect.timer.value} fired", self)
            elif isinstance(effect, TransportFailed):
                self.user.transaction_failed(effect.request, "it could not be sent", self)
        self._schedule()

    def _deliver(self, effect: Deliver, source: HostPort | None) -> None:
        message = effect.message
        if isinstance(message, Request):
            self.user.request_received(message, source or effect.source, self)
        else:
            self.user.response_received(message, self)

    def _schedule(self) -> None:
        due = self.layer.next_deadline()
        if due == self._timer_due or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_at(due, self._expire) if due is not None else None

    def _expire(self) -> None:
        self._timer, self._timer_due = None, None
        try:
            self._run(self.layer.expire(self._now()), None)
        except Exception:  # our bug: the timers must go on for every other transaction
            logger.exception("the SIP timers failed")
            self._schedule()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()
