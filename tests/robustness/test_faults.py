"""Faults in the middle of calls, on the whole twin (issue 8): the store locked by another writer,
the Kore gateway gone. The caller always reaches the queue or a clear end, never hangs; calls after
the fault work with no restart; no metadata of a call whose Service node got a 200 is ever lost."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kore_connect.cli.call import call_problems
from kore_connect.contactflow.model import Flow
from kore_connect.contactflow.render import FlowOptions, flow_json, render_flow
from kore_connect.twin.kore.interactions import NodeResult
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.twin import CONNECTOR_ARN, DEFAULT_DID, QUEUE_ARN, RETRIEVE_ARN, LocalTwin

pytestmark = pytest.mark.slow

TOKEN = "faults-token-0123456789-abcdefgh"  # known to the secret sweep (tests/secret_sweep.py)


def run(home: Path, scenario: Any, max_call_seconds: float = 300) -> Any:
    async def main() -> Any:
        async with LocalTwin(home, token=TOKEN, max_call_seconds=max_call_seconds) as twin:
            return await scenario(twin)

    return asyncio.run(main())


def service(report: CallReport) -> NodeResult:
    assert report.kore is not None, "the gateway never saw the call"
    (node,) = [n for n in report.kore.nodes if n.kind == "service"]
    return node


def test_a_locked_store_fails_the_service_node_but_the_caller_reaches_the_queue(tmp_path: Path) -> None:
    async def scenario(twin: LocalTwin) -> list[CallReport]:
        before = await twin.call()
        blocker = sqlite3.connect(twin.paths.store, timeout=1, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the store: every write waits, then 503
        try:
            during = await twin.call()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await twin.call()
        return [before, during, after]

    before, during, after = run(tmp_path, scenario)
    assert service(before).status == "ok" and before.metadata.handed_back
    # during: the Service node retried and failed, the bot still transferred, Connect still queued
    failed = service(during)
    assert failed.status == "error" and "after 3 attempts" in failed.detail
    assert during.kore is not None and during.kore.ended == "agent transfer (SIP BYE, answered 200)"
    assert during.contact.ended == "queued" and during.metadata.stored is None
    assert during.metadata.custom_data == "Data not found"  # the reference flow's 404, as the agent sees it
    # after: the store is back and the next call works, with no restart
    assert service(after).http_status == 200
    assert after.metadata.handed_back
    # every call that got a 200 has its metadata, exactly
    for report in (before, after):
        assert report.metadata.stored["x_metadata"].endswith(report.contact.contact_id)


def test_with_the_gateway_gone_the_transfer_fails_and_the_caller_is_not_left_hanging(tmp_path: Path) -> None:
    async def scenario(twin: LocalTwin) -> CallReport:
        gateway = next(part for part in twin._parts if part.name == "Kore gateway")
        gateway.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(gateway.process.wait)
        return await asyncio.wait_for(twin.call(), 60)  # never hanging: the contact ends well before

    report = run(tmp_path, scenario)
    transfer = next(a for a in report.contact.actions if a.type == "TransferParticipantToThirdParty")
    assert transfer.branch == "CallFailed"
    assert report.contact.ended in ("queued", "disconnected") and report.kore is None


@pytest.mark.parametrize("victim", ["metadata API", "Kore gateway"])
def test_a_part_killed_mid_load_and_restarted_loses_no_committed_metadata(
    tmp_path: Path, victim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A call the killed gateway took never gets its record: Connect's side waits for it this long,
    # not the default 40 s (which only made this test wait, 64 s in all).
    monkeypatch.setattr("kore_connect.twin.local.report.INTERACTION_WAIT_SECONDS", 5.0)

    # An INVITE the dead gateway never answers ends at the flow's transfer time limit: 5 s here,
    # not the rendered flow's 60 s, which only made this test wait (62 s in all when one did).
    options = FlowOptions(
        connector_arn=CONNECTOR_ARN,
        to_user=DEFAULT_DID,
        retrieve_function_arn=RETRIEVE_ARN,
        queue_arn=QUEUE_ARN,
        transfer_time_limit_seconds=5,
    )
    flow = Flow.loads(flow_json(render_flow(options)).encode("utf-8"))

    async def scenario(twin: LocalTwin) -> list[CallReport]:
        part = next(p for p in twin._parts if p.name == victim)
        slots, reports = asyncio.Semaphore(10), []

        async def one(index: int) -> None:
            await asyncio.sleep(index * 0.02)  # 50 calls/s
            async with slots:
                reports.append(await asyncio.wait_for(twin.call(flow=flow), 120))

        load = asyncio.gather(*(one(i) for i in range(300)))
        await asyncio.sleep(1.5)
        part.process.send_signal(signal.SIGKILL)  # mid-load, no warning
        await asyncio.to_thread(part.process.wait)
        await asyncio.sleep(1.0)  # calls keep coming while it is down
        await twin.restart(victim)
        await load
        after = [await twin.call() for _ in range(5)]  # once it is back, calls work
        return [*reports, *after]

    reports = run(tmp_path, scenario, max_call_seconds=5)  # calls the dead gateway never ends: hung up
    assert len(reports) == 305
    # each call ended cleanly: queued, or hung up by Connect's side when the gateway died mid-call
    assert {r.contact.ended for r in reports} <= {"queued", "disconnected", "caller hung up"}
    for report in reports:  # never another caller's data, whatever happened to the call
        stored, custom = report.metadata.stored, report.metadata.custom_data
        if stored is not None:
            assert stored["x_metadata"].endswith(report.contact.contact_id)
        if isinstance(custom, dict):
            assert custom == stored
    ok = [r for r in reports if r.kore and any(n.http_status == 200 for n in r.kore.nodes)]
    assert ok and all(r.metadata.stored is not None for r in ok)  # every 200 is kept
    assert all(r.metadata.custom_data == r.metadata.stored for r in reports[-5:])
    # A call fails only by losing its metadata (its Service node ran out of retries during the API's
    # outage, or the gateway died with it), never by a mix-up.
    for report in reports:
        problems = call_problems(report)
        assert not [p for p in problems if p.startswith("mixed up")], problems
        if problems and report.kore is not None and victim == "metadata API":
            assert any(n.status == "error" for n in report.kore.nodes), problems
    with sqlite3.connect(tmp_path / "sessions.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_slow_store_delays_the_call_but_loses_nothing(tmp_path: Path) -> None:
    async def scenario(twin: LocalTwin) -> CallReport:
        blocker = sqlite3.connect(twin.paths.store, timeout=1, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the store for 2 s (within the wait)
        release = asyncio.get_running_loop().call_later(2.0, lambda: blocker.execute("ROLLBACK"))
        try:
            return await twin.call()
        finally:
            release.cancel()
            blocker.close()

    report = run(tmp_path, scenario)
    node = service(report)
    assert node.status == "ok" and node.http_status == 200  # slow, not failed
    assert report.timings.total_ms >= 1500  # the write did wait for the other writer (a lower bound)
    assert report.contact.ended == "queued"
    assert report.metadata.handed_back
