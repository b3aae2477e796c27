"""`kore-connect doctor`'s checks against a stack deployed into moto, with our real functions behind the
served API and the retrieve call (see tests/doctor_lab.py for what is real and what is stubbed, and why)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from kore_connect.doctor.checks import Check, CheckStatus, DoctorError, run_doctor
from kore_connect.stack import OUTPUT_TOKEN_SECRET_ARN, TOKEN_HEADER
from tests.conftest import TABLE
from tests.doctor_lab import BOT_TOKEN, INSTANCE_ID, RETRIEVE_ARN, STACK, Lab, lab_fixture

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
OTHER_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:queue-announcements"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from lab_fixture(monkeypatch, request)


def statuses(report: object) -> dict[str, CheckStatus]:
    return {result.name: result.status for result in report.results}  # type: ignore[attr-defined]


def test_a_healthy_deployment_passes_every_check_in_order(lab: Lab) -> None:
    # GIVEN the stack deployed with TTL, a Connect instance listing the function on its second page
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([OTHER_FUNCTION], [RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK, now=lambda: NOW)
    # THEN every line passes, in the documented order
    assert [r.name for r in report.results] == list(Check)
    assert report.ok, report.failures
    # every line passes; the reference setup's table is read only during a switch, which this is not
    assert {name for name, status in statuses(report).items() if status is not CheckStatus.PASSED} == {
        Check.REFERENCE_TABLE
    }
    # AND it really spoke to the API as the bot does: no token, a wrong one, then the secret's
    tokens = [request.headers.get(TOKEN_HEADER) for request in lab.api.requests]
    assert tokens[0] is None and tokens[1] not in (None, BOT_TOKEN) and tokens[2] == BOT_TOKEN
    assert {request.url.params["contactId"] for request in lab.api.requests} == {report.contact_id}
    # AND invoked the retrieve function as the Connect flow does, for the synthetic contact
    (event,) = lab.retrieve.events
    assert event["Name"] == "ContactFlowEvent"
    assert event["Details"]["Parameters"] == {"contactId": report.contact_id}
    # AND left nothing behind
    assert lab.item(report.contact_id) is None
    assert report.result(Check.CLEANUP).detail.startswith("deleted")


def test_what_the_doctor_stores_has_a_float_that_must_survive(lab: Lab) -> None:
    # GIVEN a healthy deployment, watched just before the clean-up
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    stored: list[str] = []

    def look(result: object) -> None:
        if getattr(result, "name", None) == Check.API_STORES:
            stored.append(lab.item(contact)["metadata"]["S"])  # type: ignore[index]

    contact = "0b7e4f7c-3d1a-4a52-9f0e-2c8d6b1a9e33"
    # WHEN the doctor runs for a known synthetic contact
    run_doctor(lab.clients, STACK, contact_id=contact, now=lambda: NOW, on_result=look)
    # THEN the item held the doctor's metadata, 1.5 included, as the bot's JSON text
    assert json.loads(stored[0]) == {"doctor": True, "checkedAt": "2026-05-04T09:30:00+00:00", "n": 1.5}


def test_a_missing_stack_stops_the_doctor_with_one_clear_error(lab: Lab) -> None:
    # GIVEN no stack deployed
    # WHEN the doctor looks for one
    with pytest.raises(DoctorError) as raised:
        run_doctor(lab.clients, "not-deployed")
    # THEN the error names the stack and the region, and says what to do
    message = str(raised.value)
    assert "'not-deployed'" in message and "us-east-1" in message and "sam deploy" in message
    assert "\n" not in message
    assert lab.api.requests == []


def test_a_rolled_back_stack_fails_and_nothing_else_runs(lab: Lab) -> None:
    # GIVEN CloudFormation reports the stack as ROLLBACK_COMPLETE (moto cannot put a stack in that state)
    cloudformation = boto3.client("cloudformation")
    stub = Stubber(cloudformation)
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": STACK,
                    "StackStatus": "ROLLBACK_COMPLETE",
                    "CreationTime": NOW,
                    "Outputs": [],
                }
            ]
        },
        {"StackName": STACK},
    )
    clients = dataclasses.replace(lab.clients, cloudformation=cloudformation)
    # WHEN the doctor runs
    with stub:
        report = run_doctor(clients, STACK)
    # THEN the stack line fails with the cause and the fix; every other line is skipped
    stack = report.result(Check.STACK)
    assert stack.status is CheckStatus.FAILED
    assert "ROLLBACK_COMPLETE" in stack.detail and "rolled back" in stack.cause
    assert "describe-stack-events" in stack.fix
    assert [r.status for r in report.results[1:]] == [CheckStatus.SKIPPED] * (len(Check) - 1)
    assert lab.api.requests == []


def test_a_missing_output_fails_the_stack_check_naming_it(lab: Lab) -> None:
    # GIVEN a stack deployed from a template without the TokenSecretArn output
    lab.deploy(without_outputs=[OUTPUT_TOKEN_SECRET_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN the stack line names the missing output, and nothing else runs
    stack = report.result(Check.STACK)
    assert stack.status is CheckStatus.FAILED
    assert OUTPUT_TOKEN_SECRET_ARN in stack.detail and "sam deploy" in stack.fix
    assert not report.ok
    assert lab.api.requests == []


def test_a_table_without_ttl_fails_with_a_fix_naming_expires_at(lab: Lab) -> None:
    # GIVEN the table without TTL; everything else healthy
    lab.deploy(ttl=False)
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN only the table line fails, saying why TTL matters and how to turn it on
    assert [r.name for r in report.failures] == [Check.TABLE]
    table = report.result(Check.TABLE)
    assert "DISABLED" in table.detail
    assert "expiresAt" in table.cause
    assert "update-time-to-live" in table.fix and "AttributeName=expiresAt" in table.fix


def test_an_api_without_authorizer_is_reported_as_a_security_failure(lab: Lab) -> None:
    # GIVEN an API whose POST method has no authorizer: requests reach the store function directly
    lab.deploy(authorizer=False)
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN both refusal checks fail as security failures, saying what came back
    for name in (Check.API_WITHOUT_TOKEN, Check.API_WRONG_TOKEN):
        result = report.result(name)
        assert result.status is CheckStatus.FAILED
        assert result.detail.startswith("accepted: HTTP 200")
        assert result.cause.startswith("SECURITY")
        assert "authorizer" in result.fix
    # AND the rest still ran, and the item written without a token is gone too
    assert report.result(Check.RETRIEVE).status is CheckStatus.PASSED
    assert lab.item(report.contact_id) is None


def test_a_url_that_is_not_the_apis_post_is_refused_by_api_gateway_not_the_authorizer(lab: Lab) -> None:
    # GIVEN a stack whose MetadataEndpointUrl names a stage the API does not have
    lab.deploy(metadata_url=lab.api.url().replace("/prod/", "/staging/"))
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN API Gateway's own 403 fails both refusal checks, as not koreClientAuth's 401
    for name in (Check.API_WITHOUT_TOKEN, Check.API_WRONG_TOKEN):
        result = report.result(name)
        assert result.status is CheckStatus.FAILED
        assert result.detail == 'refused, but not by koreClientAuth: HTTP 403 "Missing Authentication Token"'
        assert "MetadataEndpointUrl" in result.fix
    # AND the real token is refused the same way, so nothing was stored
    assert report.result(Check.API_STORES).detail == 'refused: HTTP 403 "Missing Authentication Token"'
    assert [request.url.path for request in lab.api.requests] == ["/staging/kore-metadata"] * 3


def test_a_token_the_authorizer_does_not_know_fails_the_store_and_skips_the_retrieve(lab: Lab) -> None:
    # GIVEN the authorizer reads another token than the stack's secret holds: the stack names a secret
    # the authorizer does not read
    other = lab.clients.secretsmanager.create_secret(Name="other", SecretString="x" * 40)["ARN"]
    lab.deploy(token_secret_arn=other)
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN the store line fails with the 401 and the likely causes; nothing was there to read back
    stored = report.result(Check.API_STORES)
    assert stored.status is CheckStatus.FAILED
    assert stored.detail == 'refused: HTTP 401 "Unauthorized"'
    assert "AUTH_TOKEN_SECRET_ARN" in stored.fix
    assert report.result(Check.RETRIEVE).status is CheckStatus.SKIPPED
    assert report.result(Check.CLEANUP).detail.startswith("no item was left")


def test_a_retrieve_function_that_changes_the_metadata_fails(lab: Lab) -> None:
    # GIVEN a retrieve function that turns numbers into strings
    lab.deploy()
    body = json.dumps({"doctor": True, "checkedAt": NOW.isoformat(timespec="seconds"), "n": "1.5"})
    lab.retrieve.answers({"statusCode": 200, "body": body})
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK, now=lambda: NOW)
    # THEN the retrieve line says which key came back changed, without showing any value
    result = report.result(Check.RETRIEVE)
    assert result.status is CheckStatus.FAILED
    assert result.detail == "the metadata came back different: n sent as float, came back as str"
    assert "1.5" not in result.detail


def test_a_failing_retrieve_function_is_reported_and_the_item_still_deleted(lab: Lab) -> None:
    # GIVEN a retrieve function that raises (FunctionError in the invoke response)
    lab.deploy()
    lab.retrieve.fails("SessionStoreError", "DynamoDB refused reading the session: AccessDeniedException")
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN the retrieve line gives the error type and message, and where the logs are
    result = report.result(Check.RETRIEVE)
    assert result.status is CheckStatus.FAILED
    assert result.detail == "the function failed: SessionStoreError"
    assert "AccessDeniedException" in result.cause and "sam logs" in result.fix
    # AND the synthetic item the API stored was deleted all the same
    assert report.result(Check.CLEANUP).detail.startswith("deleted")
    assert lab.item(report.contact_id) is None


def test_the_item_is_deleted_even_when_a_later_check_blows_up(lab: Lab) -> None:
    # GIVEN the Connect check raises something no check expects
    lab.deploy()
    lab.retrieve.runs_the_handler()

    class BrokenConnect:
        def get_paginator(self, name: str) -> None:
            raise RuntimeError("a bug")

    clients = dataclasses.replace(lab.clients, connect=BrokenConnect())  # type: ignore[arg-type]
    seen: list[str] = []
    # WHEN the doctor runs
    with pytest.raises(RuntimeError):
        run_doctor(clients, STACK, on_result=lambda result: seen.append(result.name))
    # THEN the clean-up still ran, and the table holds nothing of the doctor's
    assert seen[-2:] == [Check.RETRIEVE, Check.CLEANUP]
    assert lab.clients.dynamodb.scan(TableName=TABLE)["Items"] == []


def test_a_connect_instance_without_the_function_fails_with_the_command_to_fix_it(lab: Lab) -> None:
    # GIVEN a Connect instance whose two pages of functions do not include ours
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([OTHER_FUNCTION], [OTHER_FUNCTION + "-2"])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN the Connect line fails, after reading every page
    result = report.result(Check.CONNECT)
    assert result.status is CheckStatus.FAILED
    assert INSTANCE_ID in result.detail
    assert (
        f"associate-lambda-function --instance-id {INSTANCE_ID} --function-arn {RETRIEVE_ARN}" in result.fix
    )
    assert [r.name for r in report.failures] == [Check.CONNECT]


def test_without_a_connect_instance_the_connect_check_is_skipped(lab: Lab) -> None:
    # GIVEN a stack deployed without ConnectInstanceArn
    lab.deploy(connect_instance=False)
    lab.retrieve.runs_the_handler()
    # WHEN the doctor runs (Connect is never called: its Stubber has no answers queued)
    report = run_doctor(lab.clients, STACK)
    # THEN the line is skipped with the reason, and the run still passes
    result = report.result(Check.CONNECT)
    assert result.status is CheckStatus.SKIPPED
    assert result.detail == "no Connect instance given to the stack"
    assert report.ok


def test_the_token_appears_in_no_result(lab: Lab) -> None:
    # GIVEN a deployment failing in as many ways as can show a token: no authorizer, wrong metadata
    lab.deploy(ttl=False, authorizer=False)
    lab.retrieve.answers({"statusCode": 200, "body": json.dumps({"token": BOT_TOKEN})})
    lab.connect_lists([])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN no field of any line holds the token
    assert BOT_TOKEN not in repr(report)
    assert not report.ok


def test_during_a_switch_the_reference_table_must_be_there(lab: Lab) -> None:
    # GIVEN a stack deployed to read the reference setup's table, which is not in this account
    lab.deploy(reference_table="koreCcSessions-typo")
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    # WHEN the doctor runs
    report = run_doctor(lab.clients, STACK)
    # THEN it says that every contact without metadata would take the flow's error branch
    result = report.result(Check.REFERENCE_TABLE)
    assert result.status is CheckStatus.FAILED
    assert result.detail == "koreCcSessions-typo does not exist in us-east-1"
    assert "error branch" in result.cause and "docs/migration.md" in result.fix
    assert [r.name for r in report.failures] == [Check.REFERENCE_TABLE]


def test_during_a_switch_the_reference_table_found_passes(lab: Lab) -> None:
    lab.clients.dynamodb.create_table(
        TableName="koreCcSessions-old",
        KeySchema=[{"AttributeName": "contactId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "contactId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lab.deploy(reference_table="koreCcSessions-old")
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN])
    report = run_doctor(lab.clients, STACK)
    assert report.result(Check.REFERENCE_TABLE).status is CheckStatus.PASSED
    assert report.ok
