"""The DynamoDB backend behind the served API, against a real dynalite that is paused, resumed,
killed and restarted on its own data while the Kore bot's requests keep coming (issue 8). A store
that fails answers 503 (the Service node retries those); when it returns, requests work again with
no restart of anything; every request that got a 200 is still stored, exactly, and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from kore_connect import config
from kore_connect.sessions.dynamodb import DynamoDBSessionStore, ensure_table
from kore_connect.stack import AUTHORIZER_FUNCTION
from kore_connect.twin.apigw.app import FunctionOverrides, LocalApi
from kore_connect.twin.connect.contact import ActionTaken
from kore_connect.twin.kore.interactions import NodeResult
from kore_connect.twin.local.report import CallReport
from kore_connect.twin.local.store import LocalStore
from kore_connect.twin.local.twin import LocalTwin
from tests.faulty_dynamodb import FaultyDynamoDB
from tests.peers import Dynalite, free_port, peer, wait_for_port
from tests.servers import serving

pytestmark = pytest.mark.dynalite

TOKEN = "dynamo-fault-token-0123456789"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # dynalite takes any


def dynalite(port: int, data: Path) -> subprocess.Popen[bytes]:
    """dynalite keeping its tables in `data` (LevelDB), so that a restart finds them again."""
    process = subprocess.Popen(
        [
            peer("dynalite"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--path",
            str(data),
            "--createTableMs",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return process


def test_a_paused_or_killed_dynamodb_answers_503_and_loses_nothing_once_back(tmp_path: Path) -> None:
    port, table = free_port(), "koreCcSessions"
    endpoint = f"http://127.0.0.1:{port}"
    server = dynalite(port, tmp_path / "dynalite")
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", **_keys())
    ensure_table(client, table)
    api = LocalApi(
        overrides=FunctionOverrides(
            all_functions={
                config.SESSION_BACKEND: "dynamodb",
                config.TABLE_NAME: table,
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                **CREDENTIALS,
            },
            by_function={AUTHORIZER_FUNCTION: {config.AUTH_TOKEN: TOKEN}},
        ),
        containers=1,
    )
    sent: dict[str, tuple[int, dict[str, str]]] = {}
    try:
        with serving(api.app) as base, httpx.Client(timeout=60) as http:

            def post(step: str) -> int:
                contact_id = str(uuid.uuid4())
                metadata = {"x_metadata": f"step {step}", "kore-instanceSessionId": uuid.uuid4().hex[:24]}
                answer = http.post(
                    f"{base}/prod/kore-metadata",
                    params={"contactId": contact_id},
                    json=metadata,
                    headers={"authorizationToken": TOKEN},
                )
                sent[contact_id] = (answer.status_code, metadata)
                return answer.status_code

            assert post("before") == 200
            os.kill(server.pid, signal.SIGSTOP)  # paused: connections hang, the client times out
            assert post("paused") == 503
            os.kill(server.pid, signal.SIGCONT)
            assert post("resumed") == 200  # no restart of the API or its functions
            server.kill()
            server.wait(10)
            assert post("stopped") == 503
            server = dynalite(port, tmp_path / "dynalite")  # back, on its own data
            assert post("restarted") == 200
    finally:
        server.kill()
        server.wait(10)
    server = dynalite(port, tmp_path / "dynalite")
    try:
        store = DynamoDBSessionStore(table, client=client)
        for contact_id, (status, metadata) in sent.items():
            record = store.get(contact_id)
            if status == 200:  # every 200 is stored, exactly as sent
                assert record is not None and json.loads(record.metadata) == metadata
            else:
                # A timed-out write may still land once the store wakes (the request sat in its
                # socket): as with DynamoDB itself, a timeout is not a failure. It can only ever be
                # this contact's own metadata, exactly; the Service node's retry writes the same.
                assert record is None or json.loads(record.metadata) == metadata
    finally:
        server.kill()
        server.wait(10)


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


# Whole calls through the twin on DynamoDB: Connect's flow, the Kore gateway's bot, the served API
# and the retrieve function all on a dynalite table, behind a proxy that throttles or slows it.


def run_calls(tmp_path: Path, endpoint: str, table: str, scenario: Any) -> Any:
    async def main() -> Any:
        store = LocalStore(tmp_path / "unused.db", dynamodb_endpoint=endpoint, table=table)
        async with LocalTwin(tmp_path / "twin", token=TOKEN, store=store) as twin:
            return await scenario(twin)

    return asyncio.run(main())


def service_node(report: CallReport) -> NodeResult:
    assert report.kore is not None, "the gateway never saw the call"
    (node,) = [n for n in report.kore.nodes if n.kind == "service"]
    return node


def action(report: CallReport, action_type: str) -> ActionTaken:
    return next(a for a in report.contact.actions if a.type == action_type)


def test_a_throttled_dynamodb_fails_the_call_softly_and_the_next_call_works(
    tmp_path: Path, dynalite: Dynalite
) -> None:
    table = f"throttled-{uuid.uuid4().hex[:8]}"
    proxy = FaultyDynamoDB(dynalite.endpoint)
    with serving(proxy.app) as endpoint:

        async def scenario(twin: LocalTwin) -> list[CallReport]:
            before = await twin.call()
            proxy.fault = "throttle"  # every request: the bot's write, the flow's read, our report's read
            during = await twin.call()
            proxy.fault = "none"
            proxy.throttle_next = 1  # one throttled write, which botocore's own retry gets past
            proxy.only = {"PutItem"}
            blip = await twin.call()
            after = await twin.call()  # no restart of anything
            return [before, during, after, blip]

        before, during, after, blip = run_calls(tmp_path, endpoint, table, scenario)

    # during: the store function answered 503 each time; the Service node tried 3 times (1 + its
    # 2 retries), each time botocore tried twice (standard mode, 2 attempts in all): 6 writes
    failed = service_node(during)
    assert failed.status == "error" and failed.http_status == 503 and "after 3 attempts" in failed.detail
    throttled_writes = proxy.operations("PutItem", "throttled")
    assert throttled_writes == 6 + 1  # and the blip's one
    # the bot still hung up to transfer, the flow's read failed (Error branch), the caller was queued
    assert during.kore is not None and during.kore.ended == "agent transfer (SIP BYE, answered 200)"
    assert action(during, "InvokeLambdaFunction").branch == "NoMatchingError"
    assert during.contact.ended == "queued"
    assert during.metadata.stored is None and during.metadata.store_error
    # Connect invoked the retrieve function again and again (up to 1 + its 3 retries, within the
    # flow's 3 s limit: botocore's random backoff decides how many fit), each read tried twice
    invoke = action(during, "InvokeLambdaFunction")
    attempts = len(re.findall(r"attempt \d+:", invoke.reason))
    assert attempts >= 2, invoke.reason
    assert proxy.operations("GetItem", "throttled") >= 2 * attempts - 1  # the last may be cut off
    # a single throttled write: botocore retried it with backoff and the call never noticed
    for report in (before, blip, after):
        assert service_node(report).http_status == 200 and report.contact.ended == "queued"
        assert report.metadata.handed_back
        assert report.metadata.stored["x_metadata"].endswith(report.contact.contact_id)
    # the store holds exactly the three calls that got a 200, and nothing for the throttled one
    store = LocalStore(tmp_path / "unused.db", dynamodb_endpoint=dynalite.endpoint, table=table).open()
    try:
        for report in (before, blip, after):
            record = store.get(report.contact.contact_id)
            assert record is not None and json.loads(record.metadata) == report.metadata.stored
        assert store.get(during.contact.contact_id) is None
    finally:
        store.close()


def test_a_slow_dynamodb_delays_the_call_and_changes_nothing_else(tmp_path: Path, dynalite: Dynalite) -> None:
    table = f"slow-{uuid.uuid4().hex[:8]}"
    proxy = FaultyDynamoDB(dynalite.endpoint, slow_seconds=0.7)  # well within botocore's 2 s read timeout
    with serving(proxy.app) as endpoint:

        async def scenario(twin: LocalTwin) -> CallReport:
            proxy.fault = "slow"
            return await twin.call()

        report = run_calls(tmp_path, endpoint, table, scenario)

    assert service_node(report).http_status == 200 and report.contact.ended == "queued"
    assert report.timings.total_ms >= 1400  # the write and the flow's read each waited (a lower bound)
    assert report.metadata.handed_back
    assert proxy.operations("PutItem", "slowed") == 1  # slow is not failed: nothing was retried
