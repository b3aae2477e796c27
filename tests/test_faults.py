"""Faults in the middle of calls, on the whole twin (issue 8): the store locked by another writer,
the Kore gateway gone. The caller always reaches the queue or a clear end, never hangs; calls after
the fault work with no restart; no metadata of a call whose Service node got a 200 is ever lost."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sqlite3
from pathlib import Path
from typing import Any

from kore_connect.twin.local_twin import LocalTwin


def run(home: Path, scenario: Any) -> Any:
    async def main() -> Any:
        async with LocalTwin(home, token=secrets.token_urlsafe(32)) as twin:
            return await scenario(twin)

    return asyncio.run(main())


def service(report: dict[str, Any]) -> dict[str, Any]:
    (node,) = [n for n in report["kore"]["nodes"] if n["kind"] == "service"]
    return dict(node)


def test_a_locked_store_fails_the_service_node_but_the_caller_reaches_the_queue(tmp_path: Path) -> None:
    async def scenario(twin: LocalTwin) -> list[dict[str, Any]]:
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
    assert (
        service(before)["status"] == "ok" and before["metadata"]["customData"] == before["metadata"]["stored"]
    )
    # during: the Service node retried and failed, the bot still transferred, Connect still queued
    failed = service(during)
    assert failed["status"] == "error" and "after 3 attempts" in failed["detail"]
    assert during["kore"]["ended"] == "agent transfer (SIP BYE, answered 200)"
    assert during["ended"] == "queued" and during["metadata"]["stored"] is None
    assert (
        during["metadata"]["customData"] == "Data not found"
    )  # the reference flow's 404, as the agent sees it
    # after: the store is back and the next call works, with no restart
    assert service(after)["httpStatus"] == 200
    assert after["metadata"]["customData"] == after["metadata"]["stored"] is not None
    # every call that got a 200 has its metadata, exactly
    for report in (before, after):
        assert report["metadata"]["stored"]["x_metadata"].endswith(report["contactId"])


def test_with_the_gateway_gone_the_transfer_fails_and_the_caller_is_not_left_hanging(tmp_path: Path) -> None:
    async def scenario(twin: LocalTwin) -> dict[str, Any]:
        gateway = next(part for part in twin._parts if part.name == "Kore gateway")
        gateway.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(gateway.process.wait)
        return await asyncio.wait_for(twin.call(), 60)  # never hanging: the contact ends well before

    report = run(tmp_path, scenario)
    transfer = next(a for a in report["actions"] if a["type"] == "TransferParticipantToThirdParty")
    assert transfer["branch"] == "CallFailed"
    assert report["ended"] in ("queued", "disconnected") and report["kore"] is None
