"""The doctor's checks of the Connect instance (issue 18): flow logs on, a published flow invoking the
deployed retrieve function, and the voice connector that flow transfers to. Connect's and the Chime
SDK Voice API's answers come from Stubbers (moto has neither); the flows are the ones
`kore-connect flow` writes (see tests/doctor_lab.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kore_connect.contactflow.render import FlowOptions, flow_json, render_template
from kore_connect.doctor import instance
from kore_connect.doctor.checks import Check, CheckStatus, run_doctor
from kore_connect.doctor.report import CheckResult
from tests.doctor_lab import (
    CONNECTOR_ARN,
    FLOW_NAME,
    HEALTHY_CONNECTOR,
    INSTANCE_ID,
    QUEUE_ARN,
    RETRIEVE_ARN,
    STACK,
    ContactFlow,
    Lab,
    flow_content,
    lab_fixture,
)

REFERENCE_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:koreRetrieveSessionMetadata"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from lab_fixture(monkeypatch, request)


def instance_has(lab: Lab, **answers: Any) -> None:
    """A healthy stack whose Connect instance lists the function, then answers as `answers` say."""
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN], healthy_instance=False)
    lab.instance_has(**answers)


def results(lab: Lab, flow_name: str | None = None) -> dict[str, CheckResult]:
    report = run_doctor(lab.clients, STACK, flow_name=flow_name)
    return {result.name: result for result in report.results}


def test_a_healthy_instance_passes_and_says_how_its_connector_speaks_sip(lab: Lab) -> None:
    instance_has(lab)
    found = results(lab)
    assert found[Check.FLOW_LOGS].status is CheckStatus.PASSED
    assert found[Check.FLOW].detail == f"'{FLOW_NAME}' invokes kore-connect-KoreRetrieveSessionMetad-Xy12"
    connector = found[Check.CONNECTOR]
    assert connector.status is CheckStatus.PASSED
    assert (
        "kore-gateway is an external voice transfer connector (SIP over UDP/TCP, port 5060"
        in connector.detail
    )


def test_flow_logs_switched_off_fail_with_the_command_that_switches_them_on(lab: Lab) -> None:
    instance_has(lab, flow_logs="false")
    found = results(lab)
    logs = found[Check.FLOW_LOGS]
    assert logs.status is CheckStatus.FAILED
    assert (
        f"aws connect update-instance-attribute --instance-id {INSTANCE_ID} "
        "--attribute-type CONTACTFLOW_LOGS --value true" in logs.fix
    )
    assert found[Check.FLOW].status is CheckStatus.PASSED  # the other checks still run


def test_a_flow_still_invoking_the_reference_function_fails_saying_so(lab: Lab) -> None:
    instance_has(lab, flows=[ContactFlow(content=flow_content(function_arn=REFERENCE_FUNCTION))])
    found = results(lab)
    flow = found[Check.FLOW]
    assert flow.status is CheckStatus.FAILED
    assert (
        flow.detail == "none of the 1 contact flows read invokes kore-connect-KoreRetrieveSessionMetad-Xy12"
    )
    assert "reference setup's function" in flow.cause
    assert "kore-connect flow" in flow.fix and "Publish" in flow.fix
    # the connector cannot be read from a flow that is not there: the doctor says what to check by hand
    connector = found[Check.CONNECTOR]
    assert connector.status is CheckStatus.SKIPPED and "External voice systems" in connector.detail


def test_a_named_flow_is_the_only_one_read(lab: Lab) -> None:
    other = ContactFlow(name="Main menu", content=flow_content(function_arn=REFERENCE_FUNCTION))
    instance_has(lab, flows=[other, ContactFlow()], described=[FLOW_NAME], connector=HEALTHY_CONNECTOR)
    found = results(lab, flow_name=FLOW_NAME)
    assert found[Check.FLOW].status is CheckStatus.PASSED
    assert found[Check.CONNECTOR].status is CheckStatus.PASSED


def test_a_named_flow_that_invokes_another_function_names_it(lab: Lab) -> None:
    instance_has(lab, flows=[ContactFlow(content=flow_content(function_arn=REFERENCE_FUNCTION))])
    flow = results(lab, flow_name=FLOW_NAME)[Check.FLOW]
    assert flow.status is CheckStatus.FAILED
    assert flow.detail == (
        f"flow '{FLOW_NAME}' does not invoke kore-connect-KoreRetrieveSessionMetad-Xy12 "
        "(it invokes koreRetrieveSessionMetadata)"
    )


def test_a_named_flow_that_is_not_there_fails_with_how_many_there_are(lab: Lab) -> None:
    instance_has(lab, flows=[ContactFlow(name="Main menu")], described=[])
    flow = results(lab, flow_name="Kore")[Check.FLOW]
    assert flow.status is CheckStatus.FAILED
    assert flow.detail == f"instance {INSTANCE_ID} has no active contact flow named 'Kore' (it has 1)"


def test_a_saved_but_unpublished_flow_fails(lab: Lab) -> None:
    instance_has(lab, flows=[ContactFlow(status="SAVED")])
    found = results(lab)
    assert found[Check.FLOW].status is CheckStatus.FAILED
    assert found[Check.FLOW].fix == "open it in the flow designer and Publish it"
    assert found[Check.CONNECTOR].status is CheckStatus.SKIPPED


def test_archived_flows_are_not_read(lab: Lab) -> None:
    instance_has(
        lab, flows=[ContactFlow(state="ARCHIVED"), ContactFlow(name="Other", content="{}")], connector=None
    )
    flow = results(lab)[Check.FLOW]
    assert flow.status is CheckStatus.FAILED
    assert flow.detail.startswith("none of the 1 contact flows read")


def test_with_more_flows_than_it_reads_the_doctor_asks_for_the_flows_name(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instance, "MAX_FLOWS_READ", 2)
    others = [ContactFlow(name=f"Flow {n}", content="{}") for n in range(3)]
    instance_has(lab, flows=[*others, ContactFlow()], described=["Flow 0", "Flow 1"])
    flow = results(lab)[Check.FLOW]
    assert flow.status is CheckStatus.FAILED
    assert flow.detail.startswith("none of the 2 of 4 contact flows read")
    assert "pass --flow NAME" in flow.fix


def test_a_connector_that_does_not_exist_fails_with_where_to_copy_the_arn(lab: Lab) -> None:
    instance_has(lab, connector="NotFoundException")
    connector = results(lab)[Check.CONNECTOR]
    assert connector.status is CheckStatus.FAILED
    assert connector.detail == "no voice connector daxr840zmmndqkhqechuca in us-east-1 for this account"
    assert "External voice systems" in connector.fix


def test_a_connector_the_credentials_may_not_read_is_left_to_check_by_hand(lab: Lab) -> None:
    instance_has(lab, connector="AccessDeniedException")
    report = run_doctor(lab.clients, STACK)
    connector = report.result(Check.CONNECTOR)
    assert connector.status is CheckStatus.SKIPPED
    assert "check by hand" in connector.detail and "destination type AudioCodes" in connector.detail
    assert report.ok


def test_a_voice_connector_that_connect_did_not_create_fails(lab: Lab) -> None:
    instance_has(lab, connector={**HEALTHY_CONNECTOR, "IntegrationType": "CONNECT_ANALYTICS_CONNECTOR"})
    connector = results(lab)[Check.CONNECTOR]
    assert connector.status is CheckStatus.FAILED
    assert "not an external voice transfer connector (integration type CONNECT_ANALYTICS_CONNECTOR)" in (
        connector.detail
    )


def test_a_connector_in_another_region_fails_without_asking_aws(lab: Lab) -> None:
    elsewhere = CONNECTOR_ARN.replace("us-east-1", "us-west-2")
    instance_has(lab, flows=[ContactFlow(content=_content_with_connector(elsewhere))], connector=None)
    connector = results(lab)[Check.CONNECTOR]
    assert connector.status is CheckStatus.FAILED
    assert connector.detail == "the connector is in us-west-2, the instance in us-east-1"


def test_a_flow_imported_with_its_placeholders_unfilled_fails_naming_the_placeholder(lab: Lab) -> None:
    template = flow_json(render_template(FlowOptions("", "+12065551118", "", "")))
    filled = template.replace("${RetrieveFunctionArn}", RETRIEVE_ARN).replace("${QueueArn}", QUEUE_ARN)
    instance_has(lab, flows=[ContactFlow(content=filled)], connector=None)
    connector = results(lab)[Check.CONNECTOR]
    assert connector.status is CheckStatus.FAILED
    assert connector.detail == "the flow still holds the placeholder ${ConnectorArn}"


def test_without_a_connect_instance_the_instance_checks_are_skipped(lab: Lab) -> None:
    lab.deploy(connect_instance=False)  # Connect is never called: its Stubber has no answers queued
    lab.retrieve.runs_the_handler()
    found = results(lab)
    for check in (Check.FLOW_LOGS, Check.FLOW, Check.CONNECTOR):
        assert found[check].status is CheckStatus.SKIPPED
        assert "ConnectInstanceArn" in found[check].detail


@pytest.mark.parametrize(
    "content", ["", "not json", "[]", '{"Actions": 5}', '{"Actions": [5, {"Parameters": 3}]}']
)
def test_flow_content_that_is_not_a_flow_names_nothing(content: str) -> None:
    assert instance.flow_references(content) == ((), ())


def test_a_function_named_with_an_alias_is_the_deployed_function() -> None:
    flow = instance.FlowRead("f", "PUBLISHED", (RETRIEVE_ARN + ":live",), ())
    assert flow.invokes(RETRIEVE_ARN)
    assert not instance.FlowRead("f", "PUBLISHED", (RETRIEVE_ARN + "2",), ()).invokes(RETRIEVE_ARN)


def _content_with_connector(arn: str) -> str:
    document = json.loads(flow_content())
    for action in document["Actions"]:
        if "VoiceConnector" in action["Parameters"]:
            action["Parameters"]["VoiceConnector"]["VoiceConnectorArn"] = arn
    return json.dumps(document)


@pytest.mark.parametrize(("value", "on"), [("true", True), ("TRUE", True), ("false", False), ("", False)])
def test_flow_logs_are_on_only_when_connect_says_true(value: str, on: bool) -> None:
    assert (instance.flow_logs_result(value, INSTANCE_ID).status is CheckStatus.PASSED) is on


def test_a_saved_copy_beside_the_published_flow_is_mentioned_not_failed(lab: Lab) -> None:
    instance_has(
        lab, flows=[ContactFlow(), ContactFlow(name="Kore copy", status="SAVED")], connector=HEALTHY_CONNECTOR
    )
    flow = results(lab)[Check.FLOW]
    assert flow.status is CheckStatus.PASSED
    assert flow.detail.endswith("(saved, not published: 'Kore copy')")


def test_published_flows_are_read_before_saved_ones(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instance, "MAX_FLOWS_READ", 1)
    draft = ContactFlow(name="Draft", status="SAVED", content="{}")
    instance_has(lab, flows=[draft, ContactFlow()], described=[FLOW_NAME], connector=HEALTHY_CONNECTOR)
    assert results(lab)[Check.FLOW].status is CheckStatus.PASSED


def test_a_throttled_flow_listing_asks_for_the_flows_name(lab: Lab) -> None:
    lab.deploy()
    lab.retrieve.runs_the_handler()
    lab.connect_lists([RETRIEVE_ARN], healthy_instance=False)
    lab.connect.add_response(
        "describe_instance_attribute", {"Attribute": {"AttributeType": "CONTACTFLOW_LOGS", "Value": "true"}}
    )
    lab.connect.add_client_error("list_contact_flows", "TooManyRequestsException", http_status_code=429)
    found = results(lab)
    assert found[Check.FLOW].status is CheckStatus.FAILED
    assert found[Check.FLOW].fix == "pass --flow NAME, so that the doctor reads that one flow"
    assert found[Check.CONNECTOR].status is CheckStatus.SKIPPED
