"""A real softphone against the gateway as users run it (`kore-connect serve gateway`): baresip calls
over UDP and over TCP with real RTP, and hangs up at every moment of the call: while ringing, right
after the ACK, during each script node, during the service call, after the bot's BYE. Each time the
gateway ends the call as the caller did, keeps how far the bot got, stops V8 cleanly, took the
caller's RTP, and logs no traceback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kore_connect.korebot import snippets
from kore_connect.twin.kore.interactions import Interaction, InteractionStore
from kore_connect.twin.local.api_token import TOKEN_VARIABLE
from kore_connect.twin.local.parts import Part
from tests.servers import serving
from tests.softphone import Softphone, softphone

DID = "+12065551118"
TOKEN = "softphone-token-0123456789-abcdef"  # known to the secret sweep (tests/secret_sweep.py)
RING_SECONDS = 0.5
SCRIPT_SECONDS = 1.0  # each script node spins this long (under the 2 s limit), so a hang-up lands in it
SERVICE_SECONDS = 1.0  # the metadata endpoint answers this late
READY = r"sip:([0-9.]+):([0-9]+);transport=tcp"


def spinning(snippet: snippets.Snippet) -> str:
    """The shipped snippet, after a busy wait of SCRIPT_SECONDS (a slow script, in V8's own time)."""
    wait = f"var __until = Date.now() + {SCRIPT_SECONDS * 1000:.0f}; while (Date.now() < __until) {{}}\n"
    return wait + snippets.load(snippet)


class SlowEndpoint:
    """The metadata endpoint, answering SERVICE_SECONDS late; `called` is set when a POST arrives."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.app = Starlette(routes=[Route("/prod/kore-metadata", self.store, methods=["POST"])])

    async def store(self, request: Request) -> JSONResponse:
        self.called.set()
        await asyncio.sleep(SERVICE_SECONDS)
        return JSONResponse({"message": "Metadata stored"})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[SlowEndpoint, str]]:
    slow = SlowEndpoint()
    with serving(slow.app) as base:
        yield slow, f"{base}/prod/kore-metadata"


def gateway_yaml(folder: Path, url: str) -> Path:
    flow = {
        "start_flow": [
            {"script": {"name": "Start Flow script", "code": spinning(snippets.Snippet.START_FLOW)}}
        ],
        "nodes": [
            {"message": "Hello, I am the virtual assistant. Let me get you to an agent."},
            {
                "script": {
                    "name": "find the contact ID",
                    "code": spinning(snippets.Snippet.AGENT_TRANSFER_SCRIPT),
                }
            },
            {"service": {"name": "send the metadata", "url": url, "body": "{}"}},
            {"transfer": {}},
        ],
    }
    document = {
        "listen": {"host": "127.0.0.1", "port": 0, "transports": ["udp", "tcp"]},
        "dids": [{"number": DID, "flow": "default"}],
        "flows": {"default": flow},
        "metadata": {"url": url, "token_env": TOKEN_VARIABLE},
        "ring_seconds": RING_SECONDS,
        "interactions": str(folder / "interactions.db"),
    }
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


async def hang_up_at(phone: Softphone, moment: str, endpoint: SlowEndpoint, uri: str) -> None:
    endpoint.called.clear()
    phone.command("dial", uri)
    if moment == "while ringing":
        await phone.event("CALL_RINGING")
        await asyncio.sleep(RING_SECONDS / 2)
        phone.command("hangup")
    elif moment == "after the bot's BYE":
        await phone.event("CALL_ESTABLISHED")
        await phone.event("CALL_CLOSED", timeout=30)
        phone.command("hangup")  # nothing left to hang up: the gateway must see nothing of it
        return
    else:
        await phone.event("CALL_ESTABLISHED")
        if moment == "during the Start Flow script":
            await asyncio.sleep(SCRIPT_SECONDS / 2)
        elif moment == "during the contact ID script":
            await asyncio.sleep(SCRIPT_SECONDS * 1.5)
        elif moment == "during the service call":
            await asyncio.to_thread(endpoint.called.wait, 15)
            await asyncio.sleep(SERVICE_SECONDS / 3)
        phone.command("hangup")
    await phone.event("CALL_CLOSED")


STOPPED_AT = {  # the moment -> the bot's nodes as the interaction keeps them
    "while ringing": [],
    "right after the ACK": [("Start Flow script", "stopped")],
    "during the Start Flow script": [("Start Flow script", "stopped")],
    "during the contact ID script": [
        ("Start Flow script", "ok"),
        ("message", "ok"),
        ("find the contact ID", "stopped"),
    ],
    "during the service call": [
        ("Start Flow script", "ok"),
        ("message", "ok"),
        ("find the contact ID", "ok"),
        ("send the metadata", "stopped"),
    ],
    "after the bot's BYE": [
        ("Start Flow script", "ok"),
        ("message", "ok"),
        ("find the contact ID", "ok"),
        ("send the metadata", "ok"),
        ("transfer", "ok"),
    ],
}


@pytest.mark.baresip
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_softphone_hanging_up_at_every_moment_ends_each_call_cleanly(
    tmp_path: Path, endpoint: tuple[SlowEndpoint, str], transport: str
) -> None:
    slow, url = endpoint
    config = gateway_yaml(tmp_path, url)
    log = tmp_path / "gateway.log"

    async def main() -> None:
        gateway = Part(
            "Kore gateway", ["serve", "gateway", "--config", str(config)], log, {TOKEN_VARIABLE: TOKEN}
        )
        try:
            found = await gateway.ready(re.compile(READY))
            uri = f"sip:{DID}@{found.group(1)}:{found.group(2)};transport={transport}"
            async with softphone(tmp_path / "baresip") as phone:
                for moment in STOPPED_AT:
                    await hang_up_at(phone, moment, slow, uri)
                await asyncio.sleep(2 * SCRIPT_SECONDS)  # every stopped script has ended
        finally:
            await gateway.stop()

    asyncio.run(main())
    store = InteractionStore(tmp_path / "interactions.db")
    try:
        calls = sorted(store.all(), key=lambda i: i.started_at)
    finally:
        store.close()
    # THEN each call ended as the caller did, with the bot stopped where it was
    assert len(calls) == len(STOPPED_AT)
    for (moment, nodes), call in zip(STOPPED_AT.items(), calls, strict=True):
        assert _nodes(call) == nodes, (moment, _nodes(call))
        expected_end = {
            "while ringing": "cancelled by the caller",
            "after the bot's BYE": "agent transfer (SIP BYE, answered 200)",
        }.get(moment, "the caller hung up")
        assert call.ended == expected_end, (moment, call.ended)
        # the caller's RTP reached the gateway's media port while the call was up (a hang-up at
        # once after the ACK may come before the first 20 ms packet)
        if moment not in ("while ringing", "right after the ACK"):
            assert call.rtp is not None and call.rtp.packets > 0 and call.rtp.other == 0, (moment, call.rtp)
    # AND the gateway's log holds the calls and nothing from V8 or a traceback
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "UnicodeDecodeError" not in text, text[-3000:]


def _nodes(call: Interaction) -> list[tuple[str, str]]:
    """(name, status) of each node the call ran; a message or transfer node by its kind."""
    return [(n.node if n.kind in ("script", "service") else n.kind, n.status) for n in call.nodes]
