"""Through a real proxy: Kamailio (Debian's `kamailio`) record-routes every call between Connect's
connector and the local Kore gateway, as an SBC does in real life, over UDP and over TCP. The ACK
and the BYE of either side follow the route set through the proxy, and the bot's metadata reaches
Connect exactly. The proxy's config is tests/kamailio/proxy.cfg; its log names every relay."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kore_connect.cli.call import call_problems
from kore_connect.twin.connect.connector import Gateway
from kore_connect.twin.local.parts import free_port
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.twin import LocalTwin
from tests.conftest import REPO
from tests.peers import peer

CONFIG = REPO / "tests" / "kamailio" / "proxy.cfg"
TOKEN = "proxy-token-0123456789-abcdefghij"  # known to the secret sweep (tests/secret_sweep.py)


@contextmanager
def kamailio(tmp_path: Path, gateway: tuple[str, int], transport: str) -> Iterator[tuple[int, Path]]:
    """Kamailio on a free loopback port (UDP and TCP), relaying new calls to `gateway`."""
    port = free_port()
    log = tmp_path / "kamailio.log"
    runtime = tmp_path / "kamailio-run"
    runtime.mkdir()
    target = f'GATEWAY="sip:{gateway[0]}:{gateway[1]};transport={transport}"'
    command = [
        peer("kamailio"),
        "-f",
        str(CONFIG),
        "-l",
        f"udp:127.0.0.1:{port}",
        "-l",
        f"tcp:127.0.0.1:{port}",
    ]
    command += [
        "-A",
        target,
        "-DD",
        "-E",
        "-Y",
        str(runtime),
        "-P",
        str(runtime / "pid"),
        "-m",
        "32",
        "-M",
        "4",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_listening(port, process, log)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Kamailio ended at start: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("Kamailio did not listen within 15 s")


def relays(log: Path) -> list[str]:
    """What the proxy relayed, in order: 'relay BYE 127.0.0.1:5060 -> sip:... (route set)'."""
    return [
        line.split("relay ", 1)[1]
        for line in log.read_text(errors="replace").splitlines()
        if "relay " in line
    ]


def call_through(
    tmp_path: Path, transport: str, caller_hangs_up_after: float | None
) -> tuple[Any, list[str]]:
    async def main() -> Any:
        async with LocalTwin(tmp_path / "twin", token=TOKEN) as twin:
            with kamailio(tmp_path, twin.sip_address, transport) as (port, log):
                proxy = Gateway("127.0.0.1", port, transport)  # type: ignore[arg-type]
                report = await twin.call(through=proxy, caller_hangs_up_after=caller_hangs_up_after)
                await asyncio.sleep(0.3)  # the last relay's log line
                return report, relays(log), port

    report, relayed, port = asyncio.run(main())
    return (report, port), relayed


def sip(report: CallReport, direction: str, first_word: str) -> list[str]:
    """The connector's messages of a kind, as it sent or received them."""
    (messages,) = report.contact.transfers  # the one transfer's
    return [
        m.text or ""
        for m in messages
        if m.direction == direction and m.first_line.split(" ", 1)[0] == first_word
    ]


@pytest.mark.kamailio
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_bots_bye_and_the_connectors_ack_follow_the_proxys_route(tmp_path: Path, transport: str) -> None:
    # WHEN Connect's call reaches the gateway through the record-routing proxy, and the bot hangs up
    (report, port), relayed = call_through(tmp_path, transport, caller_hangs_up_after=None)
    # THEN the call went as without a proxy: the bot's metadata reached Connect exactly
    assert call_problems(report) == [], report
    assert report.contact.ended == "queued"
    assert report.metadata.handed_back
    # and the connector's ACK went to the proxy with the route set, which the proxy followed
    (ack,) = sip(report, "sent", "ACK")
    assert f"Route: <sip:127.0.0.1:{port}" in ack
    # and the bot's BYE came through the proxy (its Via on top), as the gateway's route set says
    (bye,) = sip(report, "received", "BYE")
    assert bye.split("Via: ", 2)[1].startswith(f"SIP/2.0/{transport.upper()} 127.0.0.1:{port}")
    kinds = [line.split(" ", 1)[0] for line in relayed]
    assert kinds == ["INVITE", "ACK", "BYE"], relayed
    assert [line.endswith("(route set)") for line in relayed] == [False, True, True]


@pytest.mark.kamailio
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_callers_bye_follows_the_proxys_route_to_the_gateway(tmp_path: Path, transport: str) -> None:
    # WHEN the caller hangs up right after the gateway answers, before the bot is done
    (report, port), relayed = call_through(tmp_path, transport, caller_hangs_up_after=0.0)
    # THEN the connector's BYE took the route set through the proxy, and the gateway answered it
    (bye,) = sip(report, "sent", "BYE")
    assert f"Route: <sip:127.0.0.1:{port}" in bye
    assert any(m.startswith("SIP/2.0 200") and "CSeq: 2 BYE" in m for m in sip(report, "received", "SIP/2.0"))
    assert [line.split(" ", 1)[0] for line in relayed][:2] == ["INVITE", "ACK"], relayed
    gateway = relayed[0].split(" -> ", 1)[1].split(";", 1)[0]  # where the proxy sent the INVITE
    assert [line for line in relayed[2:] if line.startswith("BYE") and f"-> {gateway}" in line], relayed
    # and, unless the bot's own BYE crossed it (the default bot can end within milliseconds), the
    # gateway ended the call as the caller's hang-up
    if not sip(report, "received", "BYE"):
        assert report.kore is not None and "caller" in (report.kore.ended or ""), report.kore
