"""PROTOS c07-sip turned against Connect's connector: each case's INVITE, made into the voice
gateway's answer (`SIP/2.0 200 OK` in place of its request line), answers one transfer. Figures
for docs/reliability.md.

How it works. A scripted 'gateway' (UDP, then TCP) answers each INVITE from the connector with the
case whose number is the Request-URI's user (`protos<n>`). The case's well-formed fields are made
the INVITE's own, as a real answer's are (its top Via, Call-ID, CSeq, From, and To with a tag), so
that the answer reaches the connector's transaction; a field the case malformed stays as PROTOS
wrote it. The gateway answers a BYE, a CANCEL or a PRACK 200 and ignores an ACK. Each transfer has
a 1 s time limit and its caller hangs up 0.1 s after being connected.
It passes when every transfer ends (success, CallFailed or a time-out) within `BOUND_SECONDS`, and
nothing is logged at ERROR or with a traceback, and no task's exception goes unretrieved.
Exit code 0 when it passes, 1 when not; `--json` prints the figures as one document.

    .venv/bin/python bench/sip_connector_conformance.py [--every 1] [--transports udp,tcp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

from kore_connect.twin.connect.collaborators import TransferRequest
from kore_connect.twin.connect.connector import Gateway, SipConnector
from kore_connect.twin.connect.contact import Contact
from sip_corpus import PROTOS, ProtosCase, protos_cases

CONCURRENCY = 100  # transfers at once
BOUND_SECONDS = 15.0  # a transfer still running after this is stuck
ANSWERED = b"SIP/2.0 200 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="run every Nth PROTOS case (1: all)")
    parser.add_argument("--transports", default="udp,tcp")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not PROTOS.is_file():
        sys.exit(f"the PROTOS suite is not in {PROTOS.parent} (KORE_SHARED_DIR): nothing to run")
    cases = protos_cases()[:: args.every]
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    figures = asyncio.run(run(cases, transports))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    sys.exit(0 if figures["passed"] else 1)


class Faults(logging.Handler):
    """Counts what must never happen: an ERROR, a traceback, a task's exception nobody retrieved."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.seen[f"{record.name}: {record.getMessage()[:120]}"] += 1

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen[f"asyncio: {context.get('message')} {context.get('exception')!r}"[:160]] += 1


async def run(cases: list[ProtosCase], transports: list[str]) -> dict[str, Any]:
    faults = Faults()
    logging.getLogger().addHandler(faults)
    logging.getLogger().setLevel(logging.INFO)
    asyncio.get_running_loop().set_exception_handler(faults.loop_exception)
    started = time.monotonic()
    runs = {}
    try:
        for transport in transports:
            runs[transport] = await transfers(cases, transport)
    finally:
        logging.getLogger().removeHandler(faults)
    stuck = sum(r["outcomes"].get("stuck", 0) for r in runs.values())
    figures: dict[str, Any] = {
        "protosCases": len(cases),
        "seconds": round(time.monotonic() - started, 1),
        "runs": runs,
        "stuck": stuck,
        "faults": dict(faults.seen.most_common(20)),
    }
    figures["passed"] = stuck == 0 and not faults.seen
    return figures


async def transfers(cases: list[ProtosCase], transport: str) -> dict[str, Any]:
    """One transfer per case through a scripted gateway; how each ended, counted."""
    by_number = {case.number: case for case in cases}
    gateway = ScriptedGateway(by_number)
    address = await gateway.start(transport)
    connector = SipConnector(Gateway(*address, transport), caller_hangs_up_after=0.1, max_call_seconds=2)
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes: Counter[str] = Counter()
    started = time.monotonic()

    async def one(case: ProtosCase) -> None:
        contact = Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn="arn")
        request = TransferRequest(
            time_limit_seconds=1,
            connector_arn="arn:aws:chime:us-east-1:000000000000:vc/protos",
            to_user=f"protos{case.number}",
            from_user="+14155550123",
        )
        async with limit:
            try:
                result = await asyncio.wait_for(connector(contact, request), BOUND_SECONDS)
            except TimeoutError:
                outcomes["stuck"] += 1
                return
        outcomes[result.outcome.name if result.outcome is not None else "none"] += 1

    try:
        await asyncio.gather(*(one(case) for case in cases))
    finally:
        gateway.close()
    return {
        "transfers": len(cases),
        "seconds": round(time.monotonic() - started, 1),
        "outcomes": dict(outcomes.most_common()),
        "answersSent": gateway.answered,
    }


class ScriptedGateway(asyncio.DatagramProtocol):
    """Answers the connector's INVITE with its PROTOS case, and the rest of the call plainly."""

    def __init__(self, cases: dict[int, ProtosCase]) -> None:
        self.cases = cases
        self.answered = 0
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.closers: list[Any] = []

    async def start(self, transport: str) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        if transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
            self.closers.append(udp)
            self.address = udp.get_extra_info("sockname")[:2]
        else:
            server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self.closers.append(server)
            self.address = server.sockets[0].getsockname()[:2]
        return self.address

    def close(self) -> None:
        for closer in self.closers:
            closer.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.udp = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for answer in self.answers(data):
            self.udp.sendto(answer, addr)  # type: ignore[attr-defined]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(raw_header(head, b"content-length") or b"0")
                message = head + await reader.readexactly(length)
                for answer in self.answers(message):
                    writer.write(answer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def answers(self, request: bytes) -> list[bytes]:
        method = request.split(b" ", 1)[0]
        if method == b"INVITE":
            case = self.cases.get(_case_number(request))
            if case is None:
                return []
            self.answered += 1
            return [as_answer(case, request, self.address)]
        if method in (b"BYE", b"CANCEL", b"PRACK", b"OPTIONS"):
            return [plain_ok(request)]
        return []


def as_answer(case: ProtosCase, invite: bytes, gateway: tuple[str, int]) -> bytes:
    """The case's INVITE as the gateway's 200 to `invite`: its well-formed fields made the INVITE's."""
    text = case.invite
    _, _, rest = text.partition(b"\r\n")
    text = ANSWERED + b"\r\n" + rest
    exact = {  # the fields as the valid case writes them -> this INVITE's own
        b"SIP/2.0/UDP <From-Address>:<Local-Port>;branch=z9hG4bK00000<Branch-ID>": raw_header(invite, b"via"),
        b"<Call-ID>@<From-Address>": raw_header(invite, b"call-id"),
        b"<CSeq> INVITE": raw_header(invite, b"cseq"),
        b"0 <sip:<From>>;tag=0": raw_header(invite, b"from"),
        b"Receiver <sip:<To>>": raw_header(invite, b"to") + b";tag=protos",
    }
    for valid, own in exact.items():
        text = text.replace(valid, own)
    host = gateway[0].encode()
    filled = {
        b"<To>": b"protos@" + host,
        b"<From>": b"gateway@" + host + b":" + str(gateway[1]).encode(),
        b"<From-Address>": host,
        b"<From-IP>": host,
        b"<Local-Port>": str(gateway[1]).encode(),
        b"<Branch-ID>": b"-answer",
        b"<Call-ID>": b"protos-answer",
        b"<CSeq>": b"1",
    }
    for placeholder, value in filled.items():
        text = text.replace(placeholder, value)
    _, _, body = text.partition(b"\r\n\r\n")
    return text.replace(b"<Content-Length>", str(len(body)).encode())


def plain_ok(request: bytes) -> bytes:
    kept = b"".join(
        line + b"\r\n"
        for line in request.split(b"\r\n")
        if line.split(b":", 1)[0].strip().lower() in (b"via", b"from", b"to", b"call-id", b"cseq")
    )
    return ANSWERED + b"\r\n" + kept + b"Content-Length: 0\r\n\r\n"


def raw_header(message: bytes, name: bytes) -> bytes:
    """The first value of header `name` (lower case, full form) in a raw message, or b""."""
    prefix = name + b":"
    for line in message.split(b"\r\n"):
        if line.lower().startswith(prefix):
            return line.split(b":", 1)[1].strip()
    return b""


def _case_number(invite: bytes) -> int:
    """INVITE sip:protos42@... -> 42 (-1 when it is not a case's)."""
    uri = invite.split(b" ", 2)[1] if invite.count(b" ") >= 2 else b""
    digits = uri.removeprefix(b"sip:").split(b"@", 1)[0].removeprefix(b"protos")
    return int(digits) if digits.isdigit() else -1


def report(figures: dict[str, Any]) -> None:
    print(f"PROTOS c07-sip as answers to the connector: {figures['protosCases']} cases per transport")
    for transport, run in figures["runs"].items():
        print(
            f"  {transport}: {run['transfers']} transfers in {run['seconds']} s; "
            f"{run['answersSent']} answers sent; outcomes {run['outcomes']}"
        )
    print(f"stuck: {figures['stuck']}; faults: {figures['faults'] or 'none'}")
    print("PASSED" if figures["passed"] else "FAILED")


if __name__ == "__main__":
    main()
