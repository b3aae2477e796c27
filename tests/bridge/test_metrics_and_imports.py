"""The functions count what happened (EMF metrics), and the retrieve module loads only what its path needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from kore_connect.bridge import authorizer, retrieve, store
from tests.conftest import TOKEN, context, load_event


def emitted_metrics(output: str) -> list[str]:
    """Names of the metrics in the EMF documents printed to stdout."""
    names = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "KoreConnect"
                names += [
                    metric["Name"] for metric in directive["Metrics"] if document[metric["Name"]] == [1.0]
                ]
    return names


def test_each_outcome_is_counted(sqlite_env: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    token_event = load_event("authorizer-token-event.json")
    authorizer.lambda_handler(token_event, context())
    with pytest.raises(authorizer.Unauthorized):
        authorizer.lambda_handler(dict(token_event, authorizationToken="wrong-but-long-enough"), context())
    retrieve.lambda_handler(load_event("connect-retrieve-event.json"), context())
    store.lambda_handler(load_event("apigw-store-request.json"), context())
    store.lambda_handler(dict(load_event("apigw-store-request.json"), body="[]"), context())
    retrieve.lambda_handler(load_event("connect-retrieve-event.json"), context())

    assert emitted_metrics(capsys.readouterr().out) == [
        "Allowed",
        "Denied",
        "NotFound",
        "Stored",
        "Rejected",
        "Retrieved",
    ]


def test_a_storage_failure_is_counted(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "koreStoreSessionMetadata")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    assert store.lambda_handler(load_event("apigw-store-request.json"), context())["statusCode"] == 503
    assert emitted_metrics(capsys.readouterr().out) == ["Failed"]


def test_the_retrieve_module_loads_nothing_its_path_does_not_need() -> None:
    unneeded_roots = ("boto3", "s3transfer", "sqlite3", "typer", "rich")
    unneeded = ("kore_connect.bridge.tokens", "aws_lambda_powertools.utilities.data_classes")
    probe = (
        "import sys, kore_connect.bridge.retrieve; "
        f"print([m for m in sys.modules if m.split('.')[0] in {unneeded_roots!r} or m in {unneeded!r}])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    assert done.stdout.strip() == "[]"
