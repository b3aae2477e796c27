"""Script nodes are someone else's code inside the gateway: each call's V8 has a time limit on every
evaluation and every read, a memory limit, and nothing of a node runs after it. A node that breaks
a limit fails, its call goes on to the agent transfer, and the gateway goes on answering.

The hostile scripts are the security review's (issue: V8 limits in Kore script nodes). Each runs in
a child interpreter: without the limits one aborts its process ("Fatal JavaScript out of memory")
and the others block it forever, which must fail the test, not kill or freeze pytest.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kore_connect.twin.kore import session as session_module
from kore_connect.twin.kore.config import DidRoute, GatewayConfig
from kore_connect.twin.kore.dialog import (
    AgentTransferNode,
    Dialog,
    MessageNode,
    ScriptNode,
    ServiceRequestNode,
)
from kore_connect.twin.kore.gateway import KoreGateway
from kore_connect.twin.kore.session import KoreSession, ScriptError
from tests.conftest import REPO
from tests.peers import peer
from tests.twin.kore.test_kore_gateway import assert_nothing_left

ALLOCATES_FOREVER = "var a = []; while (true) { a.push(new Array(1e6).fill(1)); }"
ALLOCATES_AT_ONCE = "var a = new Array(3e7).fill(1.5);"  # 240 MB in one built-in call
TIMER_LOOPS_FOREVER = "setTimeout(function () { while (true) {} }, 10);"
PROMISE_LOOPS_FOREVER = "Promise.resolve().then(function () { while (true) {} });"
GETTER_LOOPS_FOREVER = (
    "Object.defineProperty(context.session.BotUserSession, 'ContactIdStatus',"
    " {get: function () { while (true) {} }, enumerable: true});"
)
CONTACT_ID_STATUS = "context.session.BotUserSession.ContactIdStatus"
LIMIT = 0.3  # seconds: the time limits, shortened in the child interpreters to keep the tests fast


def in_a_child(scenario: Callable[..., None], *arguments: str, seconds: float = 60) -> None:
    """Run `scenario`, a function of this module, in a fresh interpreter; it passes by returning."""
    module = "tests.twin.kore.test_kore_script_limits"
    code = f"import sys; from {module} import {scenario.__name__} as s; s(*sys.argv[1:])"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *arguments],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario.__name__} still ran after {seconds} s: something blocked forever")
    assert done.returncode == 0, f"{scenario.__name__} ended with {done.returncode}:\n{done.stderr[-4000:]}"


def short_limits() -> None:
    session_module.SCRIPT_TIME_LIMIT_SECONDS = LIMIT
    session_module.READ_TIME_LIMIT_SECONDS = LIMIT


def timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    outcome = action()
    return outcome, time.monotonic() - start


def failure(action: Callable[[], object]) -> tuple[str, float]:
    """What `action` failed with (it must raise ScriptError) and how long it took."""
    start = time.monotonic()
    with pytest.raises(ScriptError) as raised:
        action()
    return str(raised.value), time.monotonic() - start


def assert_spent_and_closable(session: KoreSession) -> None:
    """A session that broke a limit answers every later call at once with ScriptError, closes
    without waiting, and leaves every other session of the process working."""
    message, seconds = failure(lambda: session.bot_user_session)
    assert "after a broken limit" in message and seconds < 0.1
    _, seconds = timed(session.close)
    assert seconds < 0.5
    other = KoreSession(None)
    other.run("BotUserSession.put('after', 'fine');")
    assert other.value("context.session.BotUserSession.after") == "fine"
    other.close()


# --- the review's reproductions, one session each ---


def memory_scenario(script: str) -> None:
    session = KoreSession(None)
    # WHEN a script node allocates past the memory limit
    message, _ = failure(lambda: session.run(script))
    # THEN the node fails naming the limit, and this process (the gateway's) lives on
    assert message == "the script went past the session's memory limit (32 MB)"
    assert_spent_and_closable(session)


@pytest.mark.parametrize("script", [ALLOCATES_FOREVER, ALLOCATES_AT_ONCE], ids=["in-a-loop", "at-once"])
def test_a_script_that_allocates_too_much_fails_on_the_memory_limit_and_the_process_lives(
    script: str,
) -> None:
    in_a_child(memory_scenario, script)


def timer_scenario() -> None:
    short_limits()
    session = KoreSession(None)
    # WHEN a script node starts a timer that would loop forever after the node
    message, _ = failure(lambda: session.run(TIMER_LOOPS_FOREVER))
    # THEN the node fails (Kore's script nodes are synchronous) and nothing runs after it
    assert "a script node has no timers" in message
    time.sleep(0.05)  # the timer's 10 ms
    value, seconds = timed(lambda: session.value(CONTACT_ID_STATUS))
    assert value is None and seconds < LIMIT
    session.close()


def test_a_timer_cannot_run_after_its_node() -> None:
    in_a_child(timer_scenario)


def promise_scenario() -> None:
    short_limits()
    session = KoreSession(None)
    # WHEN a script node leaves a promise job that loops forever (V8 runs it after the node)
    message, seconds = failure(lambda: session.run(PROMISE_LOOPS_FOREVER))
    # THEN the node fails within its time limit, naming it
    assert "promise jobs ran past its time limit (0.3 s)" in message
    assert seconds < LIMIT + 0.5
    assert_spent_and_closable(session)


def test_promise_jobs_that_never_end_fail_their_node_within_its_time_limit() -> None:
    in_a_child(promise_scenario)


def getter_scenario() -> None:
    short_limits()
    session = KoreSession(None)
    session.run(GETTER_LOOPS_FOREVER)
    # WHEN the bot reads a value whose getter loops forever
    message, seconds = failure(lambda: session.value(CONTACT_ID_STATUS))
    # THEN the read fails within the read limit, naming it
    assert f"reading {CONTACT_ID_STATUS} ran past its time limit (0.3 s)" in message
    assert seconds < LIMIT + 0.5
    assert_spent_and_closable(session)


def test_a_read_that_never_ends_fails_within_the_read_limit() -> None:
    in_a_child(getter_scenario)


@pytest.mark.parametrize(
    "script", ["new Uint8Array(1e9);", "new ArrayBuffer(1e9);", "new SharedArrayBuffer(1e9);"]
)
def test_a_script_cannot_allocate_outside_the_heap_where_the_memory_limit_cannot_see(script: str) -> None:
    session = KoreSession(None)
    message, _ = failure(lambda: session.run(script))
    assert "is not defined" in message
    session.close()


def test_promise_jobs_that_end_still_run_before_the_next_node() -> None:
    session = KoreSession(None)
    session.run("Promise.resolve().then(function () { BotUserSession.put('later', 2); });")
    assert session.bot_user_session["later"] == 2
    session.close()


# --- end to end: hostile flows, then a sound call, through one gateway over real SIP ---

DID_PREFIX = "+1206555000"
CONNECT_CALLS_KORE = REPO / "tests" / "sipp" / "connect_to_kore.xml"  # INVITE, ACK, our BYE


def hostile_flow(script: str, *, read_by: str = "rule") -> Dialog:
    """A hostile script node, then a Service node that reads the session: by its rule (it runs
    only when ContactIdStatus is 'found') or by a placeholder in its URL; then the transfer."""
    if read_by == "rule":
        url, rule = "http://127.0.0.1:9/x", (CONTACT_ID_STATUS, "found")
        service = ServiceRequestNode("send", url, "POST", (), "{}", retries=0, only_when=rule)
    else:
        url = f"http://127.0.0.1:9/x/{{{{{CONTACT_ID_STATUS}}}}}"
        service = ServiceRequestNode("send", url, "POST", (), "{}", retries=0)
    return Dialog(
        start_flow=(), nodes=(ScriptNode("hostile", script), service, AgentTransferNode("transfer"))
    )


HOSTILE_FLOWS = (
    hostile_flow(ALLOCATES_FOREVER),
    hostile_flow(TIMER_LOOPS_FOREVER),
    hostile_flow(PROMISE_LOOPS_FOREVER),
    hostile_flow(GETTER_LOOPS_FOREVER),
    hostile_flow(GETTER_LOOPS_FOREVER, read_by="placeholder"),
)


def gateway_scenario(interactions: str, sipp: str) -> None:
    short_limits()
    flows = {f"hostile{n}": flow for n, flow in enumerate(HOSTILE_FLOWS)}
    flows["sound"] = Dialog(
        start_flow=(), nodes=(MessageNode("hello", "Hello."), AgentTransferNode("transfer"))
    )
    settings = GatewayConfig(
        port=0,
        transports=("udp",),
        dids=tuple(DidRoute(f"{DID_PREFIX}{n}", flow) for n, flow in enumerate(flows)),
        flows=flows,
        metadata_url="http://127.0.0.1:9/prod/kore-metadata",
        token="gateway-test-token-0123456789",
        interactions=Path(interactions),
    )

    async def calls() -> list[dict[str, object]]:
        gateway = KoreGateway(settings)
        await gateway.start()
        try:
            port = gateway.addresses["udp"][1]
            for n in range(len(flows)):  # one after the other: the sound call comes last
                command = [sipp, f"127.0.0.1:{port}", "-sf", str(CONNECT_CALLS_KORE)]
                command += ["-s", f"{DID_PREFIX}{n}", "-key", "contact", str(uuid.uuid4()), "-m", "1"]
                command += ["-i", "127.0.0.1", "-t", "u1", "-nostdin", "-timeout", "20s"]
                process = await asyncio.create_subprocess_exec(
                    *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
                )
                _, err = await asyncio.wait_for(process.communicate(), 30)
                assert process.returncode == 0, err.decode(errors="replace")
            await asyncio.sleep(0.1)  # the gateway records the end of the call
            assert_nothing_left(gateway)
            return gateway.interactions.all()
        finally:
            await gateway.stop()

    records = {record.did: record for record in asyncio.run(calls())}
    # THEN every hostile call failed its script node, or the read after it, and still reached the
    # agent transfer; and the sound call after them was answered and transferred
    for n in range(len(HOSTILE_FLOWS)):
        record = records[f"{DID_PREFIX}{n}"]
        assert record.ended == "agent transfer (SIP BYE, answered 200)", record
        failed = " ".join(node.detail for node in record.nodes if node.status == "error")
        assert "limit" in failed or "no timers" in failed, record
    sound = records[f"{DID_PREFIX}{len(HOSTILE_FLOWS)}"]
    assert sound.ended == "agent transfer (SIP BYE, answered 200)", sound
    assert [node.status for node in sound.nodes] == ["ok", "ok"]


@pytest.mark.sipp
def test_after_hostile_script_nodes_the_gateway_still_answers_the_next_call(tmp_path: Path) -> None:
    in_a_child(gateway_scenario, str(tmp_path / "interactions.db"), peer("sipp"))


def test_closing_a_session_stops_its_running_script_and_frees_v8_only_after() -> None:
    # GIVEN a script node that would spin far past its 2 s limit, under way in a worker thread
    session = KoreSession(None)
    outcome: list[str] = []

    def node() -> None:
        try:
            session.run("var until = Date.now() + 60000; while (Date.now() < until) {}")
        except ScriptError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=node)
    worker.start()
    while not session._busy:  # it has started
        time.sleep(0.01)
    # WHEN the call ends (the gateway closes the session from its own thread)
    session.close()
    worker.join(30)
    # THEN the script was stopped, not left to its time limit, and V8 was freed once it had ended
    assert not worker.is_alive()
    assert outcome == ["the script was stopped: the call ended"]
    assert session._isolate is None
