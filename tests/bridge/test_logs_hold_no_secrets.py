"""A full store / retrieve / deny cycle logs correlation, never a token or a metadata value."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kore_connect.bridge import authorizer, retrieve, store
from tests.conftest import CONTACT_ID, context, load_event

SECRET_TOKEN = "tok-7c1d9e0f2a4b6c8d0e1f3a5b7c9d"
WRONG_TOKEN = "tok-wrong-0000111122223333444455"
VALUES = ["Ada Lovelace", "+44 20 7946 0958", "4111111111111111", "sk_live_very_private", "3.14159", "Zoë 👋"]


def test_no_log_line_of_a_full_cycle_holds_a_token_or_a_metadata_value(
    backend_env: str, monkeypatch: pytest.MonkeyPatch, function_logs: io.StringIO, capfd: Any
) -> None:
    monkeypatch.setenv("AUTH_TOKEN", SECRET_TOKEN)
    metadata = {
        "name": VALUES[0],
        "phone": VALUES[1],
        "card": VALUES[2],
        "nested": {"apiKey": VALUES[3], "pi": 3.14159},
        "greeting": VALUES[5],
    }
    token_event = dict(load_event("authorizer-token-event.json"), authorizationToken=SECRET_TOKEN)
    store_event = load_event("apigw-store-request.json")
    store_event["body"] = json.dumps(metadata, ensure_ascii=False)
    store_event["headers"]["authorizationToken"] = SECRET_TOKEN
    store_event["multiValueHeaders"]["authorizationToken"] = [SECRET_TOKEN]

    # allow, store, retrieve, deny, a bad store, an oversized retrieve
    authorizer.lambda_handler(token_event, context())
    assert store.lambda_handler(store_event, context())["statusCode"] == 200
    assert retrieve.lambda_handler(load_event("connect-retrieve-event.json"), context())["statusCode"] == 200
    with pytest.raises(authorizer.Unauthorized):
        authorizer.lambda_handler(dict(token_event, authorizationToken=WRONG_TOKEN), context())
    store_event["body"] = json.dumps(metadata) + json.dumps(metadata)
    assert store.lambda_handler(store_event, context())["statusCode"] == 400

    lines = (function_logs.getvalue() + "".join(capfd.readouterr())).splitlines()
    assert len(lines) >= 6
    for line in lines:
        for secret in (SECRET_TOKEN, WRONG_TOKEN, *VALUES, SECRET_TOKEN[:8], SECRET_TOKEN[-8:]):
            assert secret not in line, f"{secret!r} leaked into a log line"
    # and what is there serves correlation
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r.get("contact_id") == CONTACT_ID and r.get("correlation_id") for r in records)
    assert all("function_request_id" in r for r in records if "level" in r)
