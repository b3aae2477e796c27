"""The DynamoDB backend behind the served API, against a real dynalite that is paused, resumed,
killed and restarted on its own data while the Kore bot's requests keep coming (issue 8). A store
that fails answers 503 (the Service node retries those); when it returns, requests work again with
no restart of anything; every request that got a 200 is still stored, exactly, and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import boto3
import httpx

from kore_connect import config
from kore_connect.sessions.dynamodb import DynamoDBSessionStore, ensure_table
from kore_connect.stack import AUTHORIZER_FUNCTION
from kore_connect.twin.apigw.app import FunctionOverrides, LocalApi
from tests.peers import DYNALITE, free_port, wait_for_port
from tests.servers import serving

TOKEN = "dynamo-fault-token-0123456789"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # dynalite takes any


def dynalite(port: int, data: Path) -> subprocess.Popen[bytes]:
    """dynalite keeping its tables in `data` (LevelDB), so that a restart finds them again."""
    process = subprocess.Popen(
        [
            str(DYNALITE),
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
