"""The flow interpreter runs exported flows unchanged: our export, Kore's reference export when
../shared is there, and our rendered flow, with the real retrieve function behind InvokeLambdaFunction
and a stand-in for the SIP transfer."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kore_connect import config
from kore_connect.bridge import container
from kore_connect.bridge.retrieve import lambda_handler as retrieve_handler
from kore_connect.contactflow.model import Flow
from kore_connect.contactflow.render import render_flow
from kore_connect.sessions.sqlite import SQLiteSessionStore
from kore_connect.twin.connect.collaborators import (
    LocalQueues,
    TransferOutcome,
    TransferRequest,
    TransferResult,
)
from kore_connect.twin.connect.contact import Contact, ContactState
from kore_connect.twin.connect.interpreter import Interpreter
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.sip.trace import TracedMessage
from tests.conftest import context
from tests.deploy.test_flow_render import OPTIONS

INSTANCE = "arn:aws:connect:us-west-2:123456789012:instance/c5eb3029-d95f-432f-8589-4f2a5844b299"
METADATA = {
    "x_metadata": "Hello from Kore",
    "kore-instanceSessionId": "6744a1f2c0ffee0011223344",
    "score": 0.75,
}


def new_contact() -> Contact:
    return Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn=INSTANCE)


TRANSFER_MESSAGES = (
    TracedMessage("sent", "INVITE sip:+12065551118@127.0.0.1 SIP/2.0", 0.0),
    TracedMessage("received", "SIP/2.0 200 OK", 0.02),
)


class FakeTransfer:
    """Stands in for the external voice connector: records the request, answers the outcome given."""

    def __init__(self, outcome: TransferOutcome = TransferOutcome.FAR_END_HUNG_UP) -> None:
        self.outcome = outcome
        self.requests: list[TransferRequest] = []

    async def __call__(self, contact: Contact, request: TransferRequest) -> TransferResult:
        self.requests.append(request)
        return TransferResult(self.outcome, f"the far end: {self.outcome}", TRANSFER_MESSAGES)


@pytest.fixture
def retrieve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """An invoker running the real retrieve handler on a SQLite store, and a way to store metadata."""
    database = tmp_path / "sessions.db"
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    monkeypatch.setenv(config.SQLITE_PATH, str(database))
    container.reset()
    calls: list[tuple[str, dict[str, Any]]] = []

    async def invoke(function_arn: str, event: dict[str, Any], time_limit: float | None = None) -> Invocation:
        calls.append((function_arn, event))
        try:
            return Invocation(result=json.loads(json.dumps(retrieve_handler(event, context("retrieve")))))
        except Exception as exc:
            return Invocation(error_type=type(exc).__name__, error_message=str(exc))

    def store(contact_id: str, metadata: dict[str, Any]) -> None:
        SQLiteSessionStore(database).put(
            contact_id, json.dumps(metadata, separators=(",", ":")), ttl_seconds=3600
        )

    invoke.calls = calls  # type: ignore[attr-defined]
    invoke.store = store  # type: ignore[attr-defined]
    return invoke


def run(flow: Any, contact: Contact, **collaborators: Any) -> Contact:
    return asyncio.run(Interpreter(Flow.parse(flow), **collaborators).run(contact))


def path_of(contact: Contact) -> list[tuple[str, str]]:
    return [(step.action_type, step.branch) for step in contact.trace]


def action_of_type(document: dict[str, Any], action_type: str) -> dict[str, Any]:
    """The export's one action of `action_type` (TransferParticipantToThirdParty, ...)."""
    (action,) = (a for a in document["Actions"] if a["Type"] == action_type)
    return action


def prompt_before(document: dict[str, Any], action_type: str) -> str:
    """The text of the prompt that leads to the action of `action_type` (the welcome, before the transfer)."""
    target = action_of_type(document, action_type)["Identifier"]
    (prompt,) = (
        a
        for a in document["Actions"]
        if a["Type"] == "MessageParticipant" and a["Transitions"].get("NextAction") == target
    )
    return str(prompt["Parameters"]["Text"])


def prompt_on_error(document: dict[str, Any], action_type: str, error: str) -> str:
    """The text of the prompt the action of `action_type` plays on its `error` branch."""
    branches = action_of_type(document, action_type)["Transitions"]["Errors"]
    (target,) = (b["NextAction"] for b in branches if b["ErrorType"] == error)
    (prompt,) = (a for a in document["Actions"] if a["Identifier"] == target)
    assert prompt["Type"] == "MessageParticipant"
    return str(prompt["Parameters"]["Text"])


# ---------------------------------------------------------------- exported flows, unchanged


def test_an_exported_flow_hands_back_the_bots_metadata_and_queues_the_caller(
    retrieve: Any, export: dict[str, Any]
) -> None:
    # GIVEN the bot stored its metadata for this contact before hanging up
    contact = new_contact()
    retrieve.store(contact.contact_id, METADATA)
    transfer = FakeTransfer(TransferOutcome.FAR_END_HUNG_UP)
    # WHEN the contact runs through the flow, as exported
    run(export, contact, invoke_lambda=retrieve, transfer=transfer)
    # THEN the flow transferred, resumed after the BYE, read the metadata back and queued the caller
    assert path_of(contact) == [
        ("UpdateFlowLoggingBehavior", "Success"),
        ("MessageParticipant", "Success"),
        ("TransferParticipantToThirdParty", "Success"),
        ("InvokeLambdaFunction", "Success"),
        ("UpdateContactAttributes", "Success"),
        ("UpdateContactTargetQueue", "Success"),
        ("TransferContactToQueue", "Success"),
    ]
    queue = action_of_type(export, "UpdateContactTargetQueue")["Parameters"]["QueueId"]
    assert json.loads(contact.attributes["customData"]) == METADATA
    assert contact.state is ContactState.QUEUED and contact.queue_arn == queue
    assert contact.heard == [prompt_before(export, "TransferParticipantToThirdParty")]
    (request,) = transfer.requests
    transfer_parameters = action_of_type(export, "TransferParticipantToThirdParty")["Parameters"]
    assert (request.to_user, request.from_user) == ("+12065551118", "+14155550123")
    assert request.connector_arn == transfer_parameters["VoiceConnector"]["VoiceConnectorArn"]
    assert request.time_limit_seconds == int(transfer_parameters["ThirdPartyConnectionTimeLimitSeconds"])
    ((_, event),) = retrieve.calls
    assert event["Details"]["Parameters"] == {"contactId": contact.contact_id}
    assert event["Details"]["ContactData"]["ContactId"] == contact.contact_id
    assert contact.trace[2].sip == TRANSFER_MESSAGES


def test_nothing_stored_still_queues_the_caller_with_data_not_found(
    retrieve: Any, export: dict[str, Any]
) -> None:
    contact = run(export, new_contact(), invoke_lambda=retrieve, transfer=FakeTransfer())
    assert contact.attributes["customData"] == '"Data not found"'
    assert contact.state is ContactState.QUEUED


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (TransferOutcome.FAILED, "CallFailed"),
        (TransferOutcome.TIMED_OUT, "ConnectionTimeLimitExceeded"),
    ],
)
def test_a_failed_transfer_takes_its_error_branch(
    retrieve: Any, export: dict[str, Any], outcome: TransferOutcome, error: str
) -> None:
    contact = run(export, new_contact(), invoke_lambda=retrieve, transfer=FakeTransfer(outcome))
    assert ("TransferParticipantToThirdParty", error) in path_of(contact)
    assert contact.heard[-1] == prompt_on_error(export, "TransferParticipantToThirdParty", error)
    assert contact.state is ContactState.DISCONNECTED  # an export hangs up after the prompt
    assert retrieve.calls == []


def test_a_caller_who_hangs_up_while_transferred_ends_the_contact(
    retrieve: Any, export: dict[str, Any]
) -> None:
    contact = run(
        export,
        new_contact(),
        invoke_lambda=retrieve,
        transfer=FakeTransfer(TransferOutcome.CALLER_HUNG_UP),
    )
    assert contact.state is ContactState.CALLER_HUNG_UP
    assert path_of(contact)[-1] == ("TransferParticipantToThirdParty", "CallerHungUp")
    assert retrieve.calls == []


def test_without_resume_the_contact_ends_when_the_far_end_hangs_up(
    retrieve: Any, export: dict[str, Any]
) -> None:
    flow = copy.deepcopy(export)
    action_of_type(flow, "TransferParticipantToThirdParty")["Parameters"]["ContinueFlowExecution"] = "False"
    contact = run(flow, new_contact(), invoke_lambda=retrieve, transfer=FakeTransfer())
    assert contact.state is ContactState.DISCONNECTED and retrieve.calls == []


def test_a_failing_retrieve_takes_the_error_branch_and_still_queues(
    retrieve: Any, export: dict[str, Any]
) -> None:
    async def broken(function_arn: str, event: dict[str, Any], time_limit: float | None = None) -> Invocation:
        return Invocation(error_type="SessionStoreUnavailable", error_message="the table is throttled")

    contact = run(export, new_contact(), invoke_lambda=broken, transfer=FakeTransfer())
    assert ("InvokeLambdaFunction", "NoMatchingError") in path_of(contact)
    assert "the table is throttled" in contact.trace[3].reason
    assert "customData" not in contact.attributes
    assert contact.state is ContactState.QUEUED


# ---------------------------------------------------------------- our rendered flow


def test_the_rendered_flow_sets_the_session_id_when_the_metadata_was_found(retrieve: Any) -> None:
    contact = new_contact()
    retrieve.store(contact.contact_id, METADATA)
    run(render_flow(OPTIONS), contact, invoke_lambda=retrieve, transfer=FakeTransfer())
    assert contact.attributes["kore_instanceSessionId"] == METADATA["kore-instanceSessionId"]
    assert json.loads(contact.attributes["customData"]) == METADATA
    assert ("Compare", "Condition: Equals 200") in path_of(contact)
    assert contact.state is ContactState.QUEUED


def test_the_rendered_flow_queues_without_a_session_id_when_nothing_was_stored(retrieve: Any) -> None:
    contact = run(render_flow(OPTIONS), new_contact(), invoke_lambda=retrieve, transfer=FakeTransfer())
    assert "kore_instanceSessionId" not in contact.attributes
    assert ("Compare", "NoMatchingCondition") in path_of(contact)
    assert contact.state is ContactState.QUEUED and len(contact.heard) == 1  # no error prompt


def test_the_rendered_flow_queues_a_caller_whose_transfer_failed(retrieve: Any) -> None:
    contact = run(
        render_flow(OPTIONS),
        new_contact(),
        invoke_lambda=retrieve,
        transfer=FakeTransfer(TransferOutcome.FAILED),
    )
    assert contact.state is ContactState.QUEUED
    assert contact.heard[-1].startswith("Our virtual assistant is not available")


# ---------------------------------------------------------------- InvokeLambdaFunction rules


def lambda_flow(limit: str = "3", response_type: str = "JSON") -> dict[str, Any]:
    return {
        "Version": "2019-10-30",
        "StartAction": "invoke",
        "Actions": [
            {
                "Identifier": "invoke",
                "Type": "InvokeLambdaFunction",
                "Parameters": {
                    "LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:probe",
                    "InvocationTimeLimitSeconds": limit,
                    "LambdaInvocationAttributes": {"caller": "$.CustomerEndpoint.Address", "fixed": "yes"},
                    "ResponseValidation": {"ResponseType": response_type},
                },
                "Transitions": {
                    "NextAction": "ok",
                    "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "bad"}],
                },
            },
            {"Identifier": "ok", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
            {"Identifier": "bad", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
        ],
    }


def scripted(*answers: Any, delay: float = 0.0) -> Any:
    remaining = list(answers)
    calls: list[dict[str, Any]] = []

    async def invoke(function_arn: str, event: dict[str, Any], time_limit: float | None = None) -> Invocation:
        calls.append(event)
        if time_limit is not None and delay > time_limit:  # as LocalFunction.invoke answers then
            await asyncio.sleep(time_limit)
            return Invocation.no_answer_within(time_limit)
        await asyncio.sleep(delay)
        answer = remaining.pop(0) if remaining else answers[-1]
        return answer if isinstance(answer, Invocation) else Invocation(result=answer)

    invoke.calls = calls  # type: ignore[attr-defined]
    return invoke


FAIL = Invocation(error_type="Exception", error_message="boom")


def test_a_failing_invocation_is_retried_within_the_limit() -> None:
    invoke = scripted(FAIL, FAIL, {"a": "1"})
    contact = run(lambda_flow(), new_contact(), invoke_lambda=invoke)
    assert path_of(contact)[0] == ("InvokeLambdaFunction", "Success") and len(invoke.calls) == 3
    assert contact.external == {"a": "1"}
    assert invoke.calls[0]["Details"]["Parameters"] == {"caller": "+14155550123", "fixed": "yes"}


def test_after_three_retries_the_error_branch() -> None:
    invoke = scripted(FAIL)
    contact = run(lambda_flow(), new_contact(), invoke_lambda=invoke)
    assert path_of(contact)[0] == ("InvokeLambdaFunction", "NoMatchingError") and len(invoke.calls) == 4


def test_a_function_slower_than_the_limit_takes_the_error_branch() -> None:
    contact = run(lambda_flow(limit="1"), new_contact(), invoke_lambda=scripted({"a": "1"}, delay=3))
    assert path_of(contact)[0] == ("InvokeLambdaFunction", "NoMatchingError")
    assert "no answer within 1 s" in contact.trace[0].reason


@pytest.mark.parametrize(
    ("response_type", "answer", "accepted"),
    [
        ("STRING_MAP", {"a": "1"}, True),
        ("STRING_MAP", {"a": 1}, False),
        ("JSON", {"a": {"nested": [1]}}, True),
        ("JSON", ["not", "an", "object"], False),
        ("JSON", {"big": "x" * (33 * 1024)}, False),
    ],
)
def test_responses_are_validated_as_connect_does(response_type: str, answer: Any, accepted: bool) -> None:
    contact = run(lambda_flow(response_type=response_type), new_contact(), invoke_lambda=scripted(answer))
    assert (path_of(contact)[0][1] == "Success") is accepted


# ---------------------------------------------------------------- attributes, conditions, loops


def attributes_flow(attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "Version": "2019-10-30",
        "StartAction": "set",
        "Actions": [
            {
                "Identifier": "set",
                "Type": "UpdateContactAttributes",
                "Parameters": {"Attributes": attributes, "TargetContact": "Current"},
                "Transitions": {
                    "NextAction": "end",
                    "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "end"}],
                },
            },
            {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
        ],
    }


def test_attributes_over_32768_bytes_take_the_error_branch() -> None:
    fits = run(attributes_flow({"a": "x" * 32_000}), new_contact())
    assert path_of(fits)[0][1] == "Success" and len(fits.attributes["a"]) == 32_000
    too_much = run(attributes_flow({"a": "x" * 32_768}), new_contact())
    assert path_of(too_much)[0][1] == "NoMatchingError" and too_much.attributes == {}


def test_references_are_resolved_when_attributes_are_set() -> None:
    contact = run(
        attributes_flow({"id": "$.ContactId", "caller": "$.CustomerEndpoint.Address"}), new_contact()
    )
    assert contact.attributes == {"id": contact.contact_id, "caller": "+14155550123"}
    missing = run(attributes_flow({"x": "$.External.nothing"}), new_contact())
    assert path_of(missing)[0][1] == "NoMatchingError"


@pytest.mark.parametrize(
    ("operator", "operand", "value", "matches"),
    [
        ("Equals", "200", 200, True),
        ("Equals", "200", "404", False),
        ("NumberGreaterThan", "10", 11.5, True),
        ("NumberLessThan", "10", "abc", False),
        ("TextStartsWith", "Hel", "Hello", True),
        ("TextContains", "ll", "Hello", True),
        ("TextEndsWith", "x", "Hello", False),
    ],
)
def test_compare_conditions(operator: str, operand: str, value: Any, matches: bool) -> None:
    flow = {
        "Version": "2019-10-30",
        "StartAction": "compare",
        "Actions": [
            {
                "Identifier": "compare",
                "Type": "Compare",
                "Parameters": {"ComparisonValue": "$.External.value"},
                "Transitions": {
                    "Conditions": [
                        {"NextAction": "yes", "Condition": {"Operator": operator, "Operands": [operand]}}
                    ],
                    "Errors": [{"ErrorType": "NoMatchingCondition", "NextAction": "no"}],
                },
            },
            {"Identifier": "yes", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
            {"Identifier": "no", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
        ],
    }
    contact = new_contact()
    contact.external = {"value": value}
    run(flow, contact)
    assert (contact.trace[0].branch != "NoMatchingCondition") is matches


def test_a_flow_that_loops_forever_is_stopped() -> None:
    flow = {
        "Version": "2019-10-30",
        "StartAction": "a",
        "Actions": [
            {
                "Identifier": "a",
                "Type": "UpdateFlowLoggingBehavior",
                "Parameters": {"FlowLoggingBehavior": "Enabled"},
                "Transitions": {"NextAction": "a"},
            }
        ],
    }
    contact = run(flow, new_contact())
    assert contact.state is ContactState.FLOW_ERROR and "without ending" in contact.trace[-1].reason


def test_a_full_queue_takes_the_at_capacity_branch(retrieve: Any, export: dict[str, Any]) -> None:
    queues = LocalQueues(capacity=0)
    contact = run(export, new_contact(), invoke_lambda=retrieve, transfer=FakeTransfer(), queues=queues)
    assert ("TransferContactToQueue", "QueueAtCapacity") in path_of(contact)
    assert contact.state is ContactState.DISCONNECTED


def test_without_a_connector_the_transfer_takes_its_error_branch(
    retrieve: Any, export: dict[str, Any]
) -> None:
    contact = run(export, new_contact(), invoke_lambda=retrieve)
    assert ("TransferParticipantToThirdParty", "NoMatchingError") in path_of(contact)
    assert "no external voice connector" in contact.trace[2].reason


# ---------------------------------------------------------------- with the local Lambda runtime


def test_an_exported_flow_reaches_the_templates_retrieve_function_in_its_own_process(
    tmp_path: Path, export: dict[str, Any]
) -> None:
    from kore_connect.twin.connect.lambdas import LocalLambdas, function_name
    from kore_connect.twin.connect.local import template_functions
    from kore_connect.twin.local.store import LocalStore

    # GIVEN the template's retrieve function, in the local runtime, on a SQLite store holding the metadata
    database = tmp_path / "sessions.db"
    specs = template_functions(LocalStore(database))  # the template's functions on this SQLite store
    contact = new_contact()
    SQLiteSessionStore(database).put(contact.contact_id, json.dumps(METADATA), ttl_seconds=3600)

    async def scenario() -> Contact:
        lambdas = LocalLambdas(specs)
        try:
            return await Interpreter(Flow.parse(export), invoke_lambda=lambdas, transfer=FakeTransfer()).run(
                contact
            )
        finally:
            await lambdas.close()

    # WHEN the exported flow, which names the function by its ARN in an AWS account, runs
    asyncio.run(scenario())
    # THEN the name in the ARN reached the local function, and the metadata came back
    assert function_name(
        "arn:aws:lambda:us-east-1:274863560648:function:koreRetrieveSessionMetadata:live"
    ) == ("koreRetrieveSessionMetadata")
    assert json.loads(contact.attributes["customData"]) == METADATA
    assert contact.state is ContactState.QUEUED


TEMPLATE_FUNCTIONS = {
    "koreretrievesessionmetadata": 1,
    "korestoresessionmetadata": 2,
    "korestoresomethingelse": 3,
    "authenticate": 4,
}


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("kore-connect-koreretrievesessionmetad-abc123xyz9", "koreretrievesessionmetadata"),
        ("prod-kore-2-korestoresessionmetadata-1a2b3c4d5e6f", "korestoresessionmetadata"),
        ("kore-connect-kore-abc123xyz9", None),  # too short a part to name one
        ("kore-connect-korestore-abc123xyz9", None),  # could be either of two
        ("kore-connect-koreretrievesessionmetad", None),  # no suffix
        ("kore-connect-queueannouncements-abc123xyz9", None),
        ("koreretrievesessionmetadata", None),
    ],
)
def test_a_name_cloudformation_generated_reaches_the_template_function_it_was_made_from(
    name: str, local: str | None
) -> None:
    from kore_connect.twin.connect.lambdas import generated_name_of

    assert generated_name_of(name, TEMPLATE_FUNCTIONS) == local


def test_an_arn_no_local_function_answers_takes_the_error_branch() -> None:
    from kore_connect.twin.connect.lambdas import LocalLambdas

    async def scenario() -> Contact:
        lambdas = LocalLambdas({})
        return await Interpreter(Flow.parse(lambda_flow()), invoke_lambda=lambdas).run(new_contact())

    contact = asyncio.run(scenario())
    assert path_of(contact)[0] == ("InvokeLambdaFunction", "NoMatchingError")
    assert "no local function is named 'probe'" in contact.trace[0].reason


# ---------------------------------------------------------------- references


def test_every_reference_form_resolves_as_connect_resolves_it() -> None:
    from kore_connect.twin.connect.references import resolve

    contact = new_contact()
    contact.attributes = {"customData": "x"}
    contact.external = {"body": "b", "statusCode": 200, "ok": True, "nested": {"a": 1}, "list": [1]}
    assert resolve("$.ContactId", contact) == contact.contact_id
    assert resolve("$.InitialContactId", contact) == contact.initial_contact_id
    assert resolve("$.CustomerEndpoint.Address", contact) == "+14155550123"
    assert resolve("$.SystemEndpoint.Address", contact) == "+18005550100"
    assert resolve("$.Attributes.customData", contact) == "x"
    assert resolve("$.Attributes.missing", contact) is None
    assert resolve("$.External.body", contact) == "b"
    assert resolve("$.External.statusCode", contact) == "200"  # as text
    assert resolve("$.External.ok", contact) == "true"
    assert resolve("$.External.nested", contact) is None and resolve("$.External.list", contact) is None
    assert resolve("static value", contact) == "static value"


@pytest.mark.parametrize(
    ("reference", "value"),
    [
        ("$.ContactId", "c0ffee00-0000-4000-8000-000000000001"),
        ("$.InitialContactId", "c0ffee00-0000-4000-8000-000000000000"),
        ("$.PreviousContactId", "c0ffee00-0000-4000-8000-000000000001"),
        ("$.Channel", "VOICE"),
        ("$.InstanceARN", "arn:aws:connect:us-west-2:123456789012:instance/i-1"),
        ("$.InitiationMethod", "INBOUND"),
        ("$.LanguageCode", "en-US"),
        ("$.CustomerEndpoint.Address", "+14155550123"),
        ("$.CustomerEndpoint.Type", "TELEPHONE_NUMBER"),
        ("$.SystemEndpoint.Address", "+18005550100"),
        ("$.SystemEndpoint.Type", "TELEPHONE_NUMBER"),
        ("$.Queue.ARN", "arn:aws:connect:us-west-2:123456789012:instance/i-1/queue/agents"),
        ("$.Queue.Name", "agents"),
    ],
)
def test_each_system_reference_resolves_to_the_contacts_value(reference: str, value: str) -> None:
    from kore_connect.twin.connect.contact import Contact
    from kore_connect.twin.connect.references import resolve

    # GIVEN a transferred contact (its initial contact is another) waiting in a queue
    contact = Contact(
        contact_id="c0ffee00-0000-4000-8000-000000000001",
        initial_contact_id="c0ffee00-0000-4000-8000-000000000000",
        customer_address="+14155550123",
        system_address="+18005550100",
        instance_arn="arn:aws:connect:us-west-2:123456789012:instance/i-1",
        queue_arn="arn:aws:connect:us-west-2:123456789012:instance/i-1/queue/agents",
    )
    assert resolve(reference, contact) == value


def test_a_contact_in_no_queue_has_no_queue_name() -> None:
    from kore_connect.twin.connect.references import resolve

    assert resolve("$.Queue.Name", new_contact()) is None and resolve("$.Queue.ARN", new_contact()) is None


def test_a_failed_invocation_leaves_no_external_values_behind() -> None:
    flow = lambda_flow()
    flow["Actions"].insert(0, copy.deepcopy(flow["Actions"][0]))
    flow["Actions"][0]["Identifier"] = "first"
    flow["Actions"][0]["Transitions"] = {
        "NextAction": "invoke",
        "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "invoke"}],
    }
    flow["StartAction"] = "first"
    contact = run(flow, new_contact(), invoke_lambda=scripted({"a": "1"}, FAIL, FAIL, FAIL, FAIL))
    assert path_of(contact)[:2] == [
        ("InvokeLambdaFunction", "Success"),
        ("InvokeLambdaFunction", "NoMatchingError"),
    ]
    assert contact.external == {}
