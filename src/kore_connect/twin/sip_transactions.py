"""What RFC 3261's transaction layer does about retransmissions over UDP, as plain logic (pure).

aiosipua retransmits a 2xx until its ACK, but keeps no server transactions: a retransmitted
INVITE would start a second call and a retransmitted BYE would get a 481. `ServerTransactions`
absorbs them as §17.2 (with RFC 6026's Accepted state) says: a request seen before is answered
with the last response sent for it (but an INVITE already answered 2xx, or one not answered yet,
is absorbed silently), and never reaches the call logic twice. `retransmit_intervals` is Timer E,
for the requests we send.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from aiosipua.message import SipMessage, SipRequest, SipResponse

T1 = 0.5  # RFC 3261 §17: the round-trip estimate
T2 = 4.0  # the longest interval between retransmissions of a non-INVITE request
TRANSACTION_SECONDS = 64 * T1  # Timers B, F, H, J and L: how long a transaction lives
MAGIC_COOKIE = "z9hG4bK"  # branches that start with it identify a transaction (RFC 3261 §8.1.1.7)


@dataclass
class _Transaction:
    response: SipResponse | None
    expires: float


Key = tuple[str, str, str]  # (branch, sent-by, method)


class ServerTransactions:
    """The server transactions of one transport, keyed as §17.2.3 says: branch, sent-by, method."""

    def __init__(self, lifetime: float = TRANSACTION_SECONDS, limit: int = 100_000) -> None:
        self._lifetime = lifetime
        self._limit = limit  # a flood of new branches cannot grow memory without bound
        self._transactions: OrderedDict[Key, _Transaction] = OrderedDict()

    def received(self, request: SipRequest, now: float) -> tuple[bool, SipResponse | None]:
        """(is it a retransmission, the response to send again). A new request opens a transaction.

        ACKs are never absorbed: the ACK of a 2xx is a transaction of its own, and the ACK of an
        error response only tells the call logic the INVITE is over.
        """
        self._expire(now)
        key = transaction_key(request, request.method)
        if key is None or request.method == "ACK":
            return False, None
        known = self._transactions.get(key)
        if known is not None:
            answer = known.response
            if answer is not None and 200 <= answer.status_code < 300 and key[2] == "INVITE":
                return True, None  # RFC 6026 §7.1: the 2xx goes out again on the call's own timer
            return True, answer
        self._transactions[key] = _Transaction(None, now + self._lifetime)
        while len(self._transactions) > self._limit:
            self._transactions.popitem(last=False)
        return False, None

    def answered(self, response: SipResponse, now: float) -> None:
        """Remember `response` as the one to send again for its request's retransmissions."""
        cseq = response.headers.get_first("cseq") or ""
        key = transaction_key(response, cseq.split()[-1] if cseq.split() else "")
        transaction = self._transactions.get(key) if key is not None else None
        if transaction is not None and key is not None:
            transaction.response = response
            transaction.expires = now + self._lifetime
            self._transactions.move_to_end(key)

    def answer_to_invite(self, request: SipRequest) -> SipResponse | None:
        """The last response sent for the INVITE that `request` (a CANCEL or an ACK) refers to."""
        key = transaction_key(request, "INVITE")
        known = self._transactions.get(key) if key is not None else None
        return known.response if known is not None else None

    def __len__(self) -> int:
        return len(self._transactions)

    def _expire(self, now: float) -> None:
        while self._transactions:
            key, oldest = next(iter(self._transactions.items()))
            if oldest.expires > now:
                return
            del self._transactions[key]


def transaction_key(message: SipMessage, method: str) -> Key | None:
    """The transaction a message belongs to; None for RFC 2543 branches, which we do not match, and
    for a branch that is the magic cookie alone: it promises an identifier and holds none (RFC 4475
    §3.2.1), and every request with it would be taken for a copy of the first."""
    top = message.headers.get_first("via") or ""
    sent_by, _, parameters = top.partition(";")
    pairs = (p.strip().partition("=") for p in parameters.split(";"))
    branch = next((value.strip() for name, _, value in pairs if name.strip().lower() == "branch"), "")
    if not branch.startswith(MAGIC_COOKIE) or branch == MAGIC_COOKIE or not method:
        return None
    return branch, " ".join(sent_by.split()).lower(), method.upper()


def retransmit_intervals(
    t1: float = T1, t2: float = T2, lifetime: float = TRANSACTION_SECONDS
) -> Iterator[float]:
    """Timer E (§17.1.2.2): the waits before each retransmission of a non-INVITE request over UDP,
    doubling from T1 up to T2, for as long as the transaction lives."""
    waited, interval = 0.0, t1
    while waited + interval < lifetime:
        yield interval
        waited += interval
        interval = min(interval * 2, t2)
