"""The external voice connector against a real SIP peer: SIPp (Debian's sip-tester) playing the
voice gateway, over UDP and TCP. SIPp's own message log is checked for what Connect sends."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from kore_connect.bridge import container
from kore_connect.contactflow.model import Flow
from kore_connect.sessions.sqlite import SQLiteSessionStore
from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest
from kore_connect.twin.connect.connector import Gateway, SipConnector
from kore_connect.twin.connect.contact import Contact, ContactState
from kore_connect.twin.connect.interpreter import Interpreter
from kore_connect.twin.connect.lambdas import LocalLambdas
from kore_connect.twin.connect.local import template_functions
from kore_connect.twin.local.store import LocalStore
from tests.conftest import REPO
from tests.peers import peer

SCENARIOS = REPO / "tests" / "sipp"
INSTANCE = "arn:aws:connect:us-west-2:123456789012:instance/c5eb3029-d95f-432f-8589-4f2a5844b299"
CONNECTOR = "arn:aws:chime:us-west-2:123456789012:vc/k7rw2mhx9tqe4vnc0ybd3a"  # tests/flows' export's


def connector_of(document: dict[str, Any]) -> str:
    """The external voice connector an exported flow transfers to."""
    (transfer,) = (a for a in document["Actions"] if a["Type"] == "TransferParticipantToThirdParty")
    return str(transfer["Parameters"]["VoiceConnector"]["VoiceConnectorArn"])


@dataclass
class Sipp:
    port: int
    transport: str
    process: subprocess.Popen[str]
    log: Path

    def finish(self) -> tuple[int, str]:
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err

    def received(self) -> list[str]:
        """The SIP messages SIPp received, as text."""
        text = self.log.read_text(errors="replace")
        blocks = text.split("-----------------------------------------------")
        # each block: a time stamp, "UDP message received [n] bytes :", a blank line, the message
        return [b.split("\n\n", 1)[1].strip() for b in blocks if "message received" in b]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def sipp(scenario: str, tmp_path: Path, transport: str = "udp", answer: str | None = None) -> Iterator[Sipp]:
    """SIPp playing `scenario` on a free port; `answer` replaces the reject scenario's final answer."""
    program = peer("sipp")
    port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    log = tmp_path / f"sipp-{scenario}.log"
    path = SCENARIOS / f"{scenario}.xml"
    if answer is not None:  # SIPp checks status codes when it loads a scenario: no variables there
        path = tmp_path / f"{scenario}-{answer.split()[0]}.xml"
        path.write_text((SCENARIOS / f"{scenario}.xml").read_text().replace("486 Busy Here", answer))
    command = [program, "-sf", str(path), "-i", "127.0.0.1", "-p", str(port)]
    command += ["-m", "1", "-t", "u1" if transport == "udp" else "t1", "-nostdin", "-timeout", "30s"]
    command += ["-trace_msg", "-message_file", str(log)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_listening(port, transport, process)
        yield Sipp(port, transport, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _wait_listening(port: int, transport: str, process: subprocess.Popen[str]) -> None:
    kind = "udp" if transport == "udp" else "tcp"
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError(f"SIPp exited: {process.communicate()[1]}")
        table = Path(f"/proc/net/{kind}").read_text()
        if f":{port:04X} " in table:
            return
        asyncio.run(asyncio.sleep(0.05))
    raise RuntimeError("SIPp did not start listening")


def ladder(messages: Any) -> list[str]:
    """'-> INVITE', '<- 180'...: each message's direction and method or status, retransmissions dropped."""
    steps: list[str] = []
    for message in messages:
        arrow, first, second = str(message).split(" ")[:3]
        step = f"{arrow} {second if first == 'SIP/2.0' else first}"
        if not steps or steps[-1] != step:
            steps.append(step)
    return steps


def new_contact() -> Contact:
    return Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn=INSTANCE)


def transfer(
    peer: Sipp, contact: Contact, *, limit: int = 5, hang_up_after: float | None = None, **request: Any
) -> Any:
    connector = SipConnector(
        Gateway("127.0.0.1", peer.port, "tcp" if peer.transport == "tcp" else "udp"),
        account_id="123456789012",
        caller_hangs_up_after=hang_up_after,
    )
    values = {"connector_arn": CONNECTOR, "to_user": "+12065551118", "from_user": "+14155550123"}
    values.update(request)
    return asyncio.run(connector(contact, TransferRequest(time_limit_seconds=limit, **values)))


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_answered_then_hung_up_by_the_gateway(tmp_path: Path, transport: str) -> None:
    # a transferred contact: its initial contact ID is not its own, so the two headers can be told apart
    contact = replace(new_contact(), initial_contact_id=str(uuid.uuid4()))
    with sipp("answer_then_bye", tmp_path, transport) as peer:
        result = transfer(peer, contact)
        code, err = peer.finish()
    assert code == 0, err
    assert result.outcome is TransferOutcome.FAR_END_HUNG_UP
    assert ladder(result.messages) == [
        "-> INVITE",
        "<- 100",
        "<- 180",
        "<- 200",
        "-> ACK",
        "<- BYE",
        "-> 200",
    ]
    # THEN the INVITE SIPp received is Connect's
    invite = peer.received()[0]
    request_line, *header_lines = invite.split("\n\n", 1)[0].splitlines()
    suffix = ";transport=tcp" if transport == "tcp" else ""
    assert request_line == f"INVITE sip:+12065551118@127.0.0.1:{peer.port}{suffix} SIP/2.0"
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert headers["X-Amzn-ConnectContactId"] == contact.contact_id  # exactly this spelling
    assert headers["X-Amzn-ConnectInitialContactId"] == contact.initial_contact_id
    assert headers["X-Amzn-SourceAccount"] == "123456789012"
    assert headers["X-Amzn-SourceArn"] == INSTANCE
    assert headers["X-Amzn-TargetArn"] == CONNECTOR
    assert headers["From"].startswith("<sip:+14155550123@") and headers["To"].startswith("<sip:+12065551118@")
    assert headers["Via"].startswith(f"SIP/2.0/{transport.upper()} ")
    assert (
        "m=audio" in invite
        and "PCMU/8000" in invite
        and "PCMA/8000" in invite
        and "telephone-event" in invite
    )


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_gateway_that_requires_reliable_provisionals_gets_its_prack(tmp_path: Path, transport: str) -> None:
    # GIVEN a gateway whose 183 requires 100rel (our INVITE says Supported: 100rel, and SIPp checks it)
    with sipp("reliable_provisional", tmp_path, transport) as peer:
        result = transfer(peer, new_contact())
        code, err = peer.finish()
    # THEN the PRACK names the RSeq and the INVITE's CSeq (SIPp checks the RAck), the call goes on
    assert code == 0, err
    assert result.outcome is TransferOutcome.FAR_END_HUNG_UP
    assert ladder(result.messages) == [
        "-> INVITE",
        "<- 183",
        "-> PRACK",
        "<- 200",
        "-> ACK",
        "<- BYE",
        "-> 200",
    ]
    prack = next(m.text or "" for m in result.messages if m.first_line.startswith("PRACK"))
    assert prack.startswith(f"PRACK sip:127.0.0.1:{peer.port}")  # to the 183's Contact, in its early dialog
    assert "\r\nCSeq: 2 PRACK\r\n" in prack and "\r\nRAck: 4475 1 INVITE\r\n" in prack


@pytest.mark.sipp
def test_user_to_user_information_rides_as_hex(tmp_path: Path) -> None:
    with sipp("answer_then_bye", tmp_path) as peer:
        transfer(peer, new_contact(), user_to_user="hello kore")
        peer.finish()
    invite = peer.received()[0]
    assert "User-to-User: 68656c6c6f206b6f7265;encoding=hex" in invite


@pytest.mark.sipp
@pytest.mark.parametrize(
    ("code", "reason"), [("486", "Busy Here"), ("403", "Forbidden"), ("503", "Service Unavailable")]
)
def test_a_final_refusal_is_call_failed(tmp_path: Path, code: str, reason: str) -> None:
    with sipp("reject", tmp_path, answer=f"{code} {reason}") as peer:
        result = transfer(peer, new_contact())
        status, err = peer.finish()
    assert status == 0, err  # SIPp got its ACK
    assert result.outcome is TransferOutcome.FAILED and code in result.reason
    assert ladder(result.messages) == ["-> INVITE", "<- 100", f"<- {code}", "-> ACK"]


@pytest.mark.sipp
def test_no_answer_within_the_limit_is_cancelled(tmp_path: Path) -> None:
    with sipp("no_answer", tmp_path) as peer:
        result = transfer(peer, new_contact(), limit=1)
        status, err = peer.finish()
    assert status == 0, err  # SIPp saw the CANCEL and got the ACK for its 487
    assert result.outcome is TransferOutcome.TIMED_OUT
    assert ladder(result.messages) == [
        "-> INVITE",
        "<- 100",
        "<- 180",
        "-> CANCEL",
        "<- 200",
        "<- 487",
        "-> ACK",
    ]


@pytest.mark.sipp
def test_the_caller_hanging_up_sends_bye(tmp_path: Path) -> None:
    with sipp("caller_hangup", tmp_path) as peer:
        result = transfer(peer, new_contact(), hang_up_after=0.3)
        status, err = peer.finish()
    assert status == 0, err
    assert result.outcome is TransferOutcome.CALLER_HUNG_UP
    assert ladder(result.messages)[-2:] == ["-> BYE", "<- 200"]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_nothing_listening_is_call_failed(transport: str) -> None:
    class Nobody:
        port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)

    Nobody.transport = transport  # type: ignore[attr-defined]
    result = transfer(Nobody(), new_contact(), limit=5)  # type: ignore[arg-type]
    # the kernel says nothing listens there: CallFailed, not a wait for the time limit
    assert result.outcome is TransferOutcome.FAILED
    assert "unreachable" in result.reason or "cannot reach" in result.reason


@pytest.mark.sipp
def test_a_gateway_that_closes_tcp_mid_call_ends_the_transfer_without_waiting(tmp_path: Path) -> None:
    with sipp("answer_then_bye", tmp_path, "tcp") as peer:
        connector = SipConnector(Gateway("127.0.0.1", peer.port, "tcp"), max_call_seconds=30)

        async def scenario() -> Any:
            request = TransferRequest(CONNECTOR, "+12065551118", "+14155550123", 5)
            transfer_task = asyncio.ensure_future(connector(new_contact(), request))
            await asyncio.sleep(0.1)  # answered, before SIPp's BYE (300 ms)
            peer.process.kill()  # the gateway goes away: its connection closes
            return await transfer_task

        result = asyncio.run(scenario())
    # "without a BYE": the closed connection ended it, not the 30 s limit
    assert result.outcome is TransferOutcome.FAR_END_HUNG_UP and "without a BYE" in result.reason


@pytest.mark.sipp
def test_an_exported_flow_runs_unchanged_against_sipp_and_reaches_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, export: dict[str, Any]
) -> None:
    # GIVEN the bot's metadata in the store, the template's retrieve function in the local runtime,
    # and SIPp as the voice gateway the exported flow's connector reaches
    database = tmp_path / "sessions.db"
    specs = template_functions(LocalStore(database))  # the template's functions on this SQLite store
    contact = new_contact()
    metadata = {"x_metadata": "Hello from Kore", "kore-instanceSessionId": "6744a1f2c0ffee0011223344"}
    SQLiteSessionStore(database).put(contact.contact_id, json.dumps(metadata), ttl_seconds=3600)
    container.reset()

    with sipp("answer_then_bye", tmp_path) as peer:

        async def scenario() -> None:
            lambdas = LocalLambdas(specs)
            connector = SipConnector({connector_of(export): Gateway("127.0.0.1", peer.port)})
            try:
                await Interpreter(Flow.parse(export), invoke_lambda=lambdas, transfer=connector).run(contact)
            finally:
                await lambdas.close()

        asyncio.run(scenario())
        status, err = peer.finish()
    # THEN the flow resumed after the gateway's BYE, read the metadata back, and queued the caller
    assert status == 0, err
    assert [s.action_type for s in contact.trace][2:] == [
        "TransferParticipantToThirdParty",
        "InvokeLambdaFunction",
        "UpdateContactAttributes",
        "UpdateContactTargetQueue",
        "TransferContactToQueue",
    ]
    assert json.loads(contact.attributes["customData"]) == metadata
    assert contact.state is ContactState.QUEUED
    assert str(contact.trace[2].sip[0]).startswith("-> INVITE sip:+12065551118@")
    assert f"X-Amzn-ConnectContactId: {contact.contact_id}" in peer.received()[0]
