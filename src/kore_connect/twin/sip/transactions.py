"""RFC 3261's transaction layer (§17) with RFC 6026's Accepted states, as data and plain logic.

How it works. A `TransactionLayer` serves one transport. The I/O layer hands it what came in
(`receive`), what the transaction user (the gateway, the connector) wants sent (`respond`,
`request`), and the time (`expire`, at `next_deadline()`); each returns `Effect`s to carry out:
`Transmit` a message, `Deliver` a message or an event to the user. Timers are data: every
transaction holds the time each of its running timers (A, B, D, E, F, G, H, I, J, K, L, M) is
due, and nothing here sleeps. Over a reliable transport (TCP) nothing is retransmitted and the
timers that absorb retransmissions (D, I, J, K) are zero.

What the layer guarantees the user:
- a request reaches it once: copies are absorbed, answered with the last response sent for them
  (an INVITE answered 2xx is absorbed silently: the user resends its 2xx, RFC 6026 §7.1);
- a response reaches it once per transaction state change (and every 2xx to an INVITE, which the
  user must ACK again), never a stray one;
- a non-2xx final answer to an INVITE is resent (Timer G) until its ACK, and ACKed when we are
  the client (§17.1.1.3); our requests are resent over UDP (Timers A and E) until answered;
- when a transaction gives up (Timer B, F or H) the user is told (`TimedOut`), and when the
  transport could not send our request (`TransportFailed`).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from kore_connect.twin.sip.fields import FieldError, Via
from kore_connect.twin.sip.message import Headers, Message, Request, Response

logger = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 §17: the round-trip estimate
T2 = 4.0  # the longest interval between retransmissions of a non-INVITE request or INVITE answer
T4 = 5.0  # how long a message may stay in the network
LIFETIME = 64 * T1  # Timers B, F, H, J, L and M
MAGIC_COOKIE = "z9hG4bK"  # branches that start with it identify a transaction (§8.1.1.7)
HostPort = tuple[str, int]  # (host, port)


class Timer(enum.Enum):
    A = "A"  # INVITE client: retransmit the INVITE
    B = "B"  # INVITE client: give up waiting for an answer
    D = "D"  # INVITE client: absorb copies of a non-2xx final answer
    E = "E"  # non-INVITE client: retransmit the request
    F = "F"  # non-INVITE client: give up waiting for a final answer
    G = "G"  # INVITE server: retransmit a non-2xx final answer
    H = "H"  # INVITE server: give up waiting for the ACK of a non-2xx final answer
    I = "I"  # INVITE server: absorb copies of the ACK  # noqa: E741
    J = "J"  # non-INVITE server: absorb copies of the request
    K = "K"  # non-INVITE client: absorb copies of the final answer
    L = "L"  # INVITE server, Accepted (RFC 6026): absorb copies of the INVITE
    M = "M"  # INVITE client, Accepted (RFC 6026): take copies of the 2xx


class State(enum.Enum):
    CALLING = "calling"  # INVITE client: sent, no answer yet
    TRYING = "trying"  # non-INVITE: no provisional answer yet
    PROCEEDING = "proceeding"  # a provisional answer was sent or received
    ACCEPTED = "accepted"  # INVITE: a 2xx was sent or received (RFC 6026)
    COMPLETED = "completed"  # a final answer was sent or received
    CONFIRMED = "confirmed"  # INVITE server: the ACK of a non-2xx final answer came
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send `message` to `address` (over a stream: on the connection to it)."""

    message: Message
    address: HostPort


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand `message` to the transaction user: a new request, or a response to one of its own."""

    message: Message
    source: HostPort


@dataclass(frozen=True, slots=True)
class TimedOut:
    """A transaction gave up: no answer to our request (B, F), or no ACK of our answer (H)."""

    request: Request
    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """Our `request` could not be sent (§17.1.4): its transaction is over."""

    request: Request


Effect = Transmit | Deliver | TimedOut | TransportFailed
Key = tuple[str, str, str]  # (branch, sent-by, method): RFC 3261 §17.2.3 (and §17.1.3 for clients)


def transaction_key(message: Message, method: str | None = None) -> Key | None:
    """The transaction a message belongs to; None for RFC 2543 branches, which we do not match,
    and for a branch that is the magic cookie alone: it promises an identifier and holds none (RFC
    4475 §3.2.1), and every request with it would be taken for a copy of the first."""
    top = message.top_via
    if top is None:
        return None
    try:
        via = Via.parse(top, strict=False)
    except FieldError:
        return None
    branch = via.branch
    if not branch.startswith(MAGIC_COOKIE) or branch == MAGIC_COOKIE:
        return None
    if method is None:
        method = message.method if isinstance(message, Request) else message.cseq_method
    if method == "ACK":
        method = "INVITE"  # the ACK of a non-2xx answer belongs to its INVITE's transaction
    return branch, via.sent_by.lower(), method.upper()


@dataclass
class Transaction:
    """One transaction: its request, role, state, last response and running timers."""

    request: Request
    peer: HostPort
    server: bool
    reliable: bool
    state: State
    timers: dict[Timer, float] = field(default_factory=dict)  # timer -> when it is due
    intervals: dict[Timer, float] = field(default_factory=dict)  # A, E, G: the current interval
    last_response: Response | None = None
    ack: Request | None = None  # client INVITE: the ACK we sent for a non-2xx final answer
    # set by the layer that holds it: its key there, and how a timer started is put in its queue
    key: tuple[bool, Key] | None = field(default=None, repr=False, compare=False)
    scheduled: Callable[[Transaction, Timer, float], None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def invite(self) -> bool:
        return self.request.method == "INVITE"

    def set_state(self, state: State) -> None:
        if state is not self.state:
            logger.debug(
                "%s %s transaction %s -> %s",
                self.request.method,
                "server" if self.server else "client",
                self.state.name,
                state.name,
            )
            self.state = state
        if state is State.TERMINATED:
            self.timers.clear()

    def start(self, timer: Timer, now: float, after: float) -> None:
        self.timers[timer] = now + after
        if timer in (Timer.A, Timer.E, Timer.G):
            self.intervals[timer] = after
        if self.scheduled is not None:
            self.scheduled(self, timer, now + after)

    def stop(self, *timers: Timer) -> None:
        for timer in timers:
            self.timers.pop(timer, None)


class TransactionLayer:
    """Every transaction of one transport, server and client, and what each needs done."""

    def __init__(self, *, reliable: bool, limit: int = 100_000) -> None:
        self.reliable = reliable
        self._limit = limit  # a flood of new branches cannot grow memory without bound
        self._transactions: OrderedDict[tuple[bool, Key], Transaction] = OrderedDict()
        # Every timer started, by when it is due: (due, order, transaction, timer). A timer stopped
        # or started again leaves its entry behind, skipped when it comes up (it no longer matches
        # the transaction's timers): finding the next deadline costs no scan of every transaction.
        self._due: list[tuple[float, int, Transaction, Timer]] = []
        self._order = itertools.count()
        self._ended: list[Transaction] = []  # terminated outside a timer: forgotten at the next expire

    def __len__(self) -> int:
        return len(self._transactions)

    def find(self, message: Message, *, server: bool) -> Transaction | None:
        key = transaction_key(message)
        return self._transactions.get((server, key)) if key is not None else None

    # ------------------------------------------------------------------ what comes in

    def receive(self, message: Message, source: HostPort, now: float) -> list[Effect]:
        """A message from the transport, already parsed and found well formed."""
        if isinstance(message, Request):
            return self._receive_request(message, source, now)
        return self._receive_response(message, source, now)

    def _receive_request(self, request: Request, source: HostPort, now: float) -> list[Effect]:
        key = transaction_key(request)
        known = self._transactions.get((True, key)) if key is not None else None
        if request.method == "ACK":
            if known is not None and known.state in (State.COMPLETED, State.CONFIRMED):
                # the ACK of our non-2xx answer ends Timer G's work; a copy of it is absorbed
                if known.state is State.COMPLETED:
                    known.set_state(State.CONFIRMED)
                    known.stop(Timer.G, Timer.H)
                    known.start(Timer.I, now, 0.0 if self.reliable else T4)
                return []
            return [Deliver(request, source)]  # the ACK of a 2xx: for the dialog, not a transaction
        if known is not None:
            return self._retransmitted(known)
        transaction = Transaction(
            request,
            source,
            True,
            self.reliable,
            State.PROCEEDING if request.method == "INVITE" else State.TRYING,
        )
        if key is not None:  # a request with no usable branch cannot be matched: never a copy
            self._add(key, True, transaction)
        return [Deliver(request, source)]

    def _retransmitted(self, transaction: Transaction) -> list[Effect]:
        """A copy of a request: answered again with the last response, or absorbed (§17.2.1, §17.2.2)."""
        answer = transaction.last_response
        if answer is None or transaction.state in (State.ACCEPTED, State.CONFIRMED, State.TERMINATED):
            return []
        return [Transmit(answer, transaction.peer)]

    def _receive_response(self, response: Response, source: HostPort, now: float) -> list[Effect]:
        transaction = self.find(response, server=False)
        if transaction is None:
            if 200 <= response.status < 300 and response.cseq_method == "INVITE":
                return [Deliver(response, source)]  # a 2xx after our INVITE's transaction ended
            return []  # §18.1.2: a response that matches no transaction is dropped
        if response.status < 200:
            return self._provisional(transaction, response, source)
        if transaction.invite:
            return self._invite_final(transaction, response, source, now)
        if transaction.state in (State.TRYING, State.PROCEEDING):
            transaction.set_state(State.COMPLETED)
            transaction.stop(Timer.E, Timer.F)
            transaction.start(Timer.K, now, 0.0 if self.reliable else T4)
            return [Deliver(response, source)]
        return []  # a copy of the final answer, absorbed in Completed

    def _provisional(self, transaction: Transaction, response: Response, source: HostPort) -> list[Effect]:
        if transaction.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            transaction.set_state(State.PROCEEDING)
            if transaction.invite:
                transaction.stop(Timer.A)  # §17.1.1.2: a provisional answer ends the INVITE's resends
            return [Deliver(response, source)]
        return []

    def _invite_final(
        self, transaction: Transaction, response: Response, source: HostPort, now: float
    ) -> list[Effect]:
        if 200 <= response.status < 300:
            if transaction.state in (State.CALLING, State.PROCEEDING):
                transaction.set_state(State.ACCEPTED)
                transaction.stop(Timer.A, Timer.B)
                transaction.start(Timer.M, now, LIFETIME)
                return [Deliver(response, source)]
            if transaction.state is State.ACCEPTED:
                return [Deliver(response, source)]  # a copy of the 2xx: the user ACKs it again
            return []
        if transaction.state in (State.CALLING, State.PROCEEDING):
            transaction.set_state(State.COMPLETED)
            transaction.stop(Timer.A, Timer.B)
            transaction.start(Timer.D, now, 0.0 if self.reliable else 32.0)
            transaction.ack = ack_for(transaction.request, response)
            return [Transmit(transaction.ack, transaction.peer), Deliver(response, source)]
        if transaction.state is State.COMPLETED and transaction.ack is not None:
            return [Transmit(transaction.ack, transaction.peer)]  # a copy of the final: ACK again
        return []

    # ------------------------------------------------------------------ what the user sends

    def respond(self, response: Response, now: float) -> list[Effect]:
        """Send the user's `response` to a request received: through its server transaction."""
        transaction = self.find(response, server=True)
        if transaction is None or transaction.state is State.TERMINATED:
            return []  # its transaction is gone (or never was): nothing to answer any more
        if transaction.invite and response.cseq_method == "INVITE":
            return self._respond_to_invite(transaction, response, now)
        if transaction.state in (State.COMPLETED, State.TERMINATED):
            return []  # §17.2.2: one final answer per request
        transaction.last_response = response
        if response.status < 200:
            transaction.set_state(State.PROCEEDING)
        else:
            transaction.set_state(State.COMPLETED)
            transaction.start(Timer.J, now, 0.0 if self.reliable else LIFETIME)
        return [Transmit(response, transaction.peer)]

    def _respond_to_invite(self, transaction: Transaction, response: Response, now: float) -> list[Effect]:
        if transaction.state is State.ACCEPTED and 200 <= response.status < 300:
            return [Transmit(response, transaction.peer)]  # the user resending its 2xx (§13.3.1.4)
        if transaction.state is not State.PROCEEDING:
            return []
        transaction.last_response = response
        if response.status < 200:
            return [Transmit(response, transaction.peer)]
        if response.status < 300:
            transaction.set_state(State.ACCEPTED)
            transaction.start(Timer.L, now, LIFETIME)
        else:
            transaction.set_state(State.COMPLETED)
            if not self.reliable:
                transaction.start(Timer.G, now, T1)
            transaction.start(Timer.H, now, LIFETIME)
        return [Transmit(response, transaction.peer)]

    def request(self, request: Request, destination: HostPort, now: float) -> list[Effect]:
        """Send the user's `request` through a new client transaction (an ACK has none: §17.1.1.3)."""
        if request.method == "ACK":
            return [Transmit(request, destination)]
        key = transaction_key(request)
        if key is None:
            raise ValueError("a request we send needs a Via with an RFC 3261 branch")
        if request.method == "INVITE":
            transaction = Transaction(request, destination, False, self.reliable, State.CALLING)
            if not self.reliable:
                transaction.start(Timer.A, now, T1)
            transaction.start(Timer.B, now, LIFETIME)
        else:
            transaction = Transaction(request, destination, False, self.reliable, State.TRYING)
            if not self.reliable:
                transaction.start(Timer.E, now, T1)
            transaction.start(Timer.F, now, LIFETIME)
        self._add(key, False, transaction)
        return [Transmit(request, destination)]

    def transport_failed(self, message: Message) -> list[Effect]:
        """The transport could not send `message` (§17.1.4, §17.2.4): its transaction ends."""
        transaction = self.find(message, server=isinstance(message, Response))
        if transaction is None or transaction.state is State.TERMINATED:
            return []
        transaction.set_state(State.TERMINATED)
        self._ended.append(transaction)
        if transaction.server:
            return []
        return [TransportFailed(transaction.request)]

    # ------------------------------------------------------------------ time

    def resending(self) -> list[Request]:
        """The requests whose transactions are still sending something again (Timers A, E, G)."""
        busy = (Timer.A, Timer.E, Timer.G)
        return [t.request for t in self._transactions.values() if any(timer in t.timers for timer in busy)]

    def next_deadline(self) -> float | None:
        """When the earliest running timer is due, or None when none runs."""
        while self._due:
            due, _, transaction, timer = self._due[0]
            if transaction.timers.get(timer) == due:
                return due
            heapq.heappop(self._due)  # stopped or started again since
        return None

    def expire(self, now: float) -> list[Effect]:
        """Fire every timer due by `now`, in the order they are due, and forget terminated transactions."""
        effects: list[Effect] = []
        while self._due and self._due[0][0] <= now:
            due, _, transaction, timer = heapq.heappop(self._due)
            if transaction.timers.get(timer) == due:
                effects.extend(self._fire(transaction, timer, now))
                if transaction.state is State.TERMINATED:
                    self._forget(transaction)
        ended, self._ended = self._ended, []
        for transaction in ended:
            self._forget(transaction)
        return effects

    def _forget(self, transaction: Transaction) -> None:
        if transaction.key is not None and self._transactions.get(transaction.key) is transaction:
            del self._transactions[transaction.key]

    def _schedule(self, transaction: Transaction, timer: Timer, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._order), transaction, timer))

    def _fire(self, transaction: Transaction, timer: Timer, now: float) -> list[Effect]:
        transaction.stop(timer)
        if timer in (Timer.A, Timer.E, Timer.G):
            return self._resend(transaction, timer, now)
        if timer in (Timer.B, Timer.F, Timer.H):
            transaction.set_state(State.TERMINATED)
            return [TimedOut(transaction.request, timer)]
        transaction.set_state(State.TERMINATED)  # D, I, J, K, L, M: the absorbing is over
        return []

    def _resend(self, transaction: Transaction, timer: Timer, now: float) -> list[Effect]:
        interval = transaction.intervals.get(timer, T1)
        if timer is Timer.A:
            transaction.start(Timer.A, now, interval * 2)  # §17.1.1.2: doubling, no cap
            return [Transmit(transaction.request, transaction.peer)]
        if timer is Timer.E:
            # §17.1.2.2: doubling up to T2; once a provisional answer came, every T2
            after = T2 if transaction.state is State.PROCEEDING else min(interval * 2, T2)
            transaction.start(Timer.E, now, after)
            return [Transmit(transaction.request, transaction.peer)]
        assert transaction.last_response is not None  # G runs only once a final answer went out
        transaction.start(Timer.G, now, min(interval * 2, T2))
        return [Transmit(transaction.last_response, transaction.peer)]

    def _add(self, key: Key, server: bool, transaction: Transaction) -> None:
        transaction.key = (server, key)
        replaced = self._transactions.get(transaction.key)
        if replaced is not None:
            replaced.set_state(State.TERMINATED)  # its timers' entries are skipped from now on
        self._transactions[transaction.key] = transaction
        transaction.scheduled = self._schedule
        for timer, due in transaction.timers.items():  # started before it was added
            self._schedule(transaction, timer, due)
        while len(self._transactions) > self._limit:
            _, forgotten = self._transactions.popitem(last=False)
            forgotten.set_state(State.TERMINATED)


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK of a 3xx-6xx answer: part of the INVITE transaction (same Request-URI, top Via and
    CSeq number), with the To of the answer and the INVITE's Route (RFC 3261 §17.1.1.3)."""
    return _same_transaction(invite, "ACK", response.headers.get("To") or invite.headers.get("To") or "")


def cancel_for(invite: Request) -> Request:
    """The CANCEL of our INVITE (RFC 3261 §9.1): its Request-URI, top Via (so the same branch),
    Call-ID, From, To and Route, and its CSeq number with the method CANCEL."""
    return _same_transaction(invite, "CANCEL", invite.headers.get("To") or "")


def _same_transaction(invite: Request, method: str, to: str) -> Request:
    """A request of `invite`'s transaction: its Request-URI, top Via, Max-Forwards, From, Call-ID
    and Route, with `to` and the INVITE's CSeq number under `method`."""
    fields = [("Via", invite.top_via or "")]
    for name in ("Max-Forwards", "From"):
        value = invite.headers.get(name)
        if value is not None:
            fields.append((name, value))
    fields.append(("To", to))
    fields.append(("Call-ID", invite.call_id))
    fields.append(("CSeq", f"{invite.cseq_number or 0} {method}"))
    fields.extend(("Route", route) for route in invite.headers.get_all("Route"))
    return Request(method=method, uri=invite.uri, headers=Headers(tuple(fields)))
