"""The served metadata API as template.yaml describes it, with the real functions behind it on the
embedded SQLite store: what the Kore Service node does, and schemathesis against its OpenAPI."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from kore_connect import config
from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge import container
from kore_connect.bridge.retrieve import lambda_handler as retrieve
from kore_connect.stack import RESOURCE_PATH, TOKEN_HEADER
from kore_connect.twin.apigw.openapi import openapi_document
from kore_connect.twin.template import describe_api, load_template
from tests.conftest import context, load_event
from tests.servers import serving_metadata_api

TOKEN = "local-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api") / "sessions.db"


@pytest.fixture(scope="module")
def access_log() -> Iterator[io.StringIO]:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    logger = logging.getLogger("kore_connect.apigw.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield captured
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def base_url(store_path: Path, access_log: io.StringIO) -> Iterator[str]:
    with serving_metadata_api(store_path, TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def stage() -> str:
    return describe_api(load_template()).stage


def retrieved(contact_id: str, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the Connect flow's retrieve call answers for `contact_id`, from the same store."""
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    monkeypatch.setenv(config.SQLITE_PATH, str(store_path))
    container.reset()
    answer: dict[str, Any] = retrieve(contact_flow_event(contact_id), context("retrieve"))
    return answer


def test_the_routes_are_the_templates(stage: str) -> None:
    api = describe_api(load_template())
    (route,) = api.routes
    assert (route.method, route.path, stage) == ("POST", RESOURCE_PATH, "prod")
    assert route.authorizer is not None and route.authorizer.header == TOKEN_HEADER


def test_the_kore_service_nodes_request_stores_what_the_flow_then_reads(
    base_url: str, stage: str, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Service node's request as documented (REFERENCE.md section 1), for a fresh contact
    request = load_event("apigw-store-request.json")
    contact_id = str(uuid.uuid4())
    metadata = {
        **json.loads(request["body"]),
        "amount": 42.50,
        "big": 2**60 + 1,
        "nested": {"ok": [True, None]},
    }
    body = json.dumps(metadata)
    # WHEN it is POSTed through the local API Gateway
    response = httpx.post(
        f"{base_url}/{stage}{RESOURCE_PATH}",
        params={"contactId": contact_id},
        headers={
            TOKEN_HEADER: TOKEN,
            "Content-Type": "application/json",
            "User-Agent": "kore-bot-service-node",
        },
        content=body,
    )
    # THEN it is stored, and the retrieve function gives the flow exactly that metadata
    assert response.status_code == 200, response.text
    assert response.json()["contactId"] == contact_id
    answer = retrieved(contact_id, store_path, monkeypatch)
    assert answer["statusCode"] == 200
    assert answer["body"] == json.dumps(metadata, separators=(",", ":"))
    assert json.loads(answer["body"]) == metadata
    assert answer["kore-instanceSessionId"] == metadata["kore-instanceSessionId"]


def test_a_wrong_token_is_refused_before_the_store(base_url: str, stage: str) -> None:
    contact_id = str(uuid.uuid4())
    response = httpx.post(
        f"{base_url}/{stage}{RESOURCE_PATH}",
        params={"contactId": contact_id},
        headers={TOKEN_HEADER: "x" * 32},
    )
    assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}


def test_the_stores_own_errors_come_back_as_it_answers_them(base_url: str, stage: str) -> None:
    url = f"{base_url}/{stage}{RESOURCE_PATH}"
    missing = httpx.post(url, headers={TOKEN_HEADER: TOKEN}, content=b"{}")
    assert missing.status_code == 400 and missing.json()["error"] == "InvalidContactId"
    not_json = httpx.post(
        url, params={"contactId": str(uuid.uuid4())}, headers={TOKEN_HEADER: TOKEN}, content=b"["
    )
    assert not_json.status_code == 400 and not_json.json()["error"] == "InvalidBody"


def test_access_logs_hold_no_token_and_no_metadata(
    base_url: str, stage: str, access_log: io.StringIO
) -> None:
    secret_value = f"caller-secret-{uuid.uuid4()}"
    httpx.post(
        f"{base_url}/{stage}{RESOURCE_PATH}",
        params={"contactId": str(uuid.uuid4())},
        headers={TOKEN_HEADER: TOKEN},
        json={"x_metadata": secret_value},
    )
    lines = access_log.getvalue()
    assert f"POST /{stage}{RESOURCE_PATH}" in lines
    assert TOKEN not in lines and secret_value not in lines


def test_a_request_path_with_control_characters_is_one_escaped_access_log_line(
    base_url: str, access_log: io.StringIO
) -> None:
    before = access_log.getvalue().count("\n")
    httpx.get(f"{base_url}/x%1b%5b2J%0d%0aforged%20line%07")
    added = access_log.getvalue().splitlines()[before:]
    assert len(added) == 1
    assert '"GET /x\\x1b[2J\\r\\nforged line\\x07"' in added[0]


def test_the_openapi_description_names_the_route_and_its_guard(base_url: str, stage: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    assert document["servers"] == [{"url": f"{base_url}/{stage}"}]
    operation = document["paths"][RESOURCE_PATH]["post"]
    assert operation["security"] == [{"koreClientAuth": []}]
    assert document["components"]["securitySchemes"]["koreClientAuth"]["name"] == TOKEN_HEADER


# ---------------------------------------------------------------- schemathesis


# The description is built from the template (no server needed to collect the tests); the calls go to
# the served API.
schema = schemathesis.openapi.from_dict(openapi_document(describe_api(load_template()), "http://placeholder"))


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_served_api_conforms_and_never_fails(case: Any, base_url: str, stage: str) -> None:
    # Every generated request, valid or not, with the token: no 5xx, every answer as described.
    # (The API accepts unknown query parameters, as API Gateway does, and the token header is set
    # on every call, so "invalid data must be rejected" does not apply.)
    case.call_and_validate(
        base_url=f"{base_url}/{stage}",
        headers={TOKEN_HEADER: TOKEN},
        excluded_checks=[
            schemathesis.checks.negative_data_rejection,
            schemathesis.checks.missing_required_header,
        ],
    )


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_without_the_token_every_request_is_refused_as_described(
    case: Any, base_url: str, stage: str
) -> None:
    response = case.call_and_validate(
        base_url=f"{base_url}/{stage}",
        headers={TOKEN_HEADER: "not-the-token-" + "x" * 20},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
    assert response.status_code in (401, 403, 413)
