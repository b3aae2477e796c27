"""Flow.parse: an exported flow is accepted as it is (ours, and Kore's reference export when ../shared
is there); every kind of broken flow is refused with a line naming the action at fault."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kore_connect.contactflow.language import ActionType, BadReference, ErrorType, parse_reference
from kore_connect.contactflow.model import Flow, FlowError


def action_of_type(document: dict[str, Any], action_type: str) -> dict[str, Any]:
    return next(a for a in document["Actions"] if a["Type"] == action_type)


def problems_of(document: Any) -> list[str]:
    with pytest.raises(FlowError) as raised:
        Flow.parse(document)
    return raised.value.problems


def test_an_export_is_accepted_unchanged(export_path: Path, export: dict[str, Any]) -> None:
    # GIVEN a flow exactly as the Amazon Connect console exported it
    flow = Flow.loads(export_path.read_bytes())
    # THEN every action is there, typed, with its transitions
    assert len(flow.actions) == len(export["Actions"]) == 12
    assert flow.action(flow.start_action).type is ActionType.UPDATE_FLOW_LOGGING_BEHAVIOR
    transfer = next(
        a for a in flow.actions.values() if a.type is ActionType.TRANSFER_PARTICIPANT_TO_THIRD_PARTY
    )
    assert set(transfer.errors) == {
        ErrorType.CALL_FAILED,
        ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED,
        ErrorType.NO_MATCHING_ERROR,
    }
    assert flow.name == export["Metadata"]["name"]
    assert flow.source == export


def test_an_action_type_outside_the_flow_language_is_named(export: dict[str, Any]) -> None:
    document = export
    document["Actions"][0]["Type"] = "InvokeFlowModul"  # a typo of a documented one
    (problem,) = problems_of(document)
    identifier = document["Actions"][0]["Identifier"]
    assert problem == f"action {identifier}: unknown action type 'InvokeFlowModul' (not in the flow language)"


def test_every_documented_action_type_loads(export: dict[str, Any]) -> None:
    for action_type in ActionType:
        document = {
            "Version": "2019-10-30",
            "StartAction": "a",
            "Actions": [{"Identifier": "a", "Type": str(action_type), "Parameters": {}, "Transitions": {}}],
        }
        if action_type is ActionType.COMPARE:  # a Compare needs what to compare
            continue
        try:
            Flow.parse(document)
        except FlowError as refused:
            # the only refusals are of parameters the type must have, never of the type itself
            assert not any("unknown action type" in problem for problem in refused.problems), refused


def test_a_transition_to_a_missing_action_is_named(export: dict[str, Any]) -> None:
    document = export
    lambda_action = action_of_type(document, "InvokeLambdaFunction")
    lambda_action["Transitions"]["NextAction"] = "nowhere"
    problems = problems_of(document)
    assert problems == [
        f"action {lambda_action['Identifier']} (InvokeLambdaFunction): NextAction points at 'nowhere', "
        "which is not an action in the flow"
    ]


def test_a_dangling_error_branch_is_named(export: dict[str, Any]) -> None:
    document = export
    transfer = action_of_type(document, "TransferParticipantToThirdParty")
    transfer["Transitions"]["Errors"][0]["NextAction"] = "gone"
    (problem,) = problems_of(document)
    assert transfer["Identifier"] in problem and "the CallFailed branch points at 'gone'" in problem


def test_a_missing_or_unknown_start_is_refused(export: dict[str, Any]) -> None:
    document = export
    del document["StartAction"]
    assert problems_of(document) == ["StartAction is missing"]
    document["StartAction"] = "not-there"
    assert problems_of(document) == ["StartAction 'not-there' names no action in the flow"]


def test_an_error_type_the_action_cannot_raise_is_refused(export: dict[str, Any]) -> None:
    document = export
    message = action_of_type(document, "MessageParticipant")
    message["Transitions"]["Errors"].append(
        {"NextAction": message["Transitions"]["NextAction"], "ErrorType": "CallFailed"}
    )
    (problem,) = problems_of(document)
    assert problem.endswith("MessageParticipant cannot raise CallFailed (it raises: NoMatchingError)")


def test_a_reference_to_nothing_connect_knows_loads_with_a_warning_naming_where_it_is(
    export: dict[str, Any],
) -> None:
    document = export
    attributes = action_of_type(document, "UpdateContactAttributes")
    attributes["Parameters"]["Attributes"]["customData"] = "$.Caller.Number"
    (warning,) = Flow.parse(document).warnings
    assert "Parameters.Attributes.customData" in warning and "'$.Caller.Number'" in warning
    assert "resolves to nothing" in warning


def test_references_within_text_load_as_text(export: dict[str, Any]) -> None:
    # as real exports hold them: "$.Attributes.FirstName $.Attributes.LastName is calling about..."
    document = export
    attributes = action_of_type(document, "UpdateContactAttributes")
    attributes["Parameters"]["Attributes"]["customData"] = "$.External.body text"
    assert Flow.parse(document).warnings == ()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: action_of_type(d, "MessageParticipant")["Parameters"].update(SSML="<speak/>"),
            "exactly one of",
        ),
        (
            lambda d: action_of_type(d, "InvokeLambdaFunction")["Parameters"].update(
                InvocationTimeLimitSeconds="9"
            ),
            "InvocationTimeLimitSeconds must be whole seconds from 1 to 8",
        ),
        (
            lambda d: action_of_type(d, "InvokeLambdaFunction")["Parameters"].update(
                ResponseValidation={"ResponseType": "XML"}
            ),
            "ResponseType must be JSON or STRING_MAP",
        ),
        (
            lambda d: action_of_type(d, "UpdateContactAttributes")["Parameters"]["Attributes"].update(
                {"bad key": "x"}
            ),
            "key 'bad key' may hold only letters, digits",
        ),
        (
            lambda d: action_of_type(d, "TransferParticipantToThirdParty")["Parameters"].update(
                ContinueFlowExecution="yes"
            ),
            "ContinueFlowExecution must be 'True' or 'False'",
        ),
        (
            lambda d: action_of_type(d, "TransferParticipantToThirdParty")["Parameters"][
                "VoiceConnector"
            ].pop("ToUser"),
            "VoiceConnector.ToUser is missing",
        ),
        (
            lambda d: action_of_type(d, "UpdateContactTargetQueue")["Parameters"].update(QueueId=7),
            "QueueId must be an ARN, an ID or a $. reference",
        ),
    ],
)
def test_parameters_connect_would_refuse_are_named(
    mutate: Any, expected: str, export: dict[str, Any]
) -> None:
    document = export
    mutate(document)
    (problem,) = problems_of(document)
    assert expected in problem


def test_an_unknown_condition_operator_is_refused() -> None:
    from kore_connect.contactflow.render import render_flow
    from tests.deploy.test_flow_render import OPTIONS

    document = render_flow(OPTIONS)
    compare = next(a for a in document["Actions"] if a["Type"] == "Compare")
    compare["Transitions"]["Conditions"][0]["Condition"]["Operator"] = "Equal"
    (problem,) = problems_of(document)
    assert "unknown condition operator 'Equal'" in problem and "Equals" in problem


def test_the_documented_timeout_name_is_accepted_too(export: dict[str, Any]) -> None:
    # AWS's reference page says ThirdPartyConnectionTimeoutSeconds; console exports say ...TimeLimitSeconds.
    document = export
    parameters = action_of_type(document, "TransferParticipantToThirdParty")["Parameters"]
    parameters["ThirdPartyConnectionTimeoutSeconds"] = parameters.pop("ThirdPartyConnectionTimeLimitSeconds")
    Flow.parse(document)


def test_every_problem_is_reported_at_once(export: dict[str, Any]) -> None:
    document = export
    document["Version"] = "2018-01-01"
    document["Actions"][0]["Transitions"]["NextAction"] = "a"
    document["Actions"][1]["Transitions"]["NextAction"] = "b"
    assert len(problems_of(document)) == 3


@pytest.mark.parametrize("document", [None, [], "text", {"Version": "2019-10-30"}, {"Actions": [1]}])
def test_documents_that_are_not_flows_get_a_clear_error(document: Any) -> None:
    problems = problems_of(copy.deepcopy(document))
    assert problems and all(isinstance(p, str) and p for p in problems)


def test_text_that_is_not_json_is_refused_clearly() -> None:
    with pytest.raises(FlowError, match="not valid JSON"):
        Flow.loads(b'{"Version": ')


@pytest.mark.parametrize(
    ("text", "namespace", "name"),
    [
        ("$.ContactId", "System", "ContactId"),
        ("$.CustomerEndpoint.Address", "System", "CustomerEndpoint.Address"),
        ("$.Attributes.customData", "Attributes", "customData"),
        ("$.External.kore-instanceSessionId", "External", "kore-instanceSessionId"),
    ],
)
def test_references_connect_resolves_parse(text: str, namespace: str, name: str) -> None:
    reference_ = parse_reference(text)
    assert (reference_.namespace, reference_.name, str(reference_)) == (namespace, name, text)


@pytest.mark.parametrize(
    "text", ["$.", "$.Nope", "$.Attributes.", "$.External.a.b c", "$.Attributes.k!", "ContactId"]
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(BadReference):
        parse_reference(text)


def test_a_resource_left_unnamed_loads_and_is_named_in_a_warning(export: dict[str, Any]) -> None:
    # samples whose authors removed their own ARNs: Connect takes the error branch when it runs
    document = export
    action_of_type(document, "UpdateContactTargetQueue")["Parameters"].pop("QueueId")
    action_of_type(document, "InvokeLambdaFunction")["Parameters"]["LambdaFunctionARN"] = ""
    warnings = Flow.parse(document).warnings
    assert len(warnings) == 2 and all("names nothing: it takes its error branch" in w for w in warnings)


def one_action(
    type_: str, parameters: dict[str, Any], transitions: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "Version": "2019-10-30",
        "StartAction": "a",
        "Actions": [
            {"Identifier": "a", "Type": type_, "Parameters": parameters, "Transitions": transitions or {}}
        ],
    }


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            one_action("DisconnectParticipant", {}, {"Conditions": [5]}),
            "each of Transitions.Conditions must be an object",
        ),
        (
            one_action(
                "Compare",
                {"ComparisonValue": "x"},
                {"Conditions": [{"Condition": {"Operator": "Equals", "Operands": [{"a": 1}]}}]},
            ),
            "a list of strings",
        ),
        (
            one_action("MessageParticipantIteratively", {"Messages": [{}]}),
            "Messages[0]: exactly one of Text, SSML",
        ),
        (
            one_action("MessageParticipantIteratively", {"Messages": 5}),
            "Messages must be a non-empty list of prompts",
        ),
        (one_action("MessageParticipant", {"Text": 5}), "Text must be text or a $. reference"),
        (one_action("MessageParticipant", {"Media": "s3://x"}), "Media must be an object"),
        (
            one_action("ConnectParticipantWithLexBot", {"LexSessionAttributes": ["x"]}),
            "LexSessionAttributes must be an object",
        ),
        (one_action("ConnectParticipantWithLexBot", {"LexV2Bot": "arn"}), "LexV2Bot must be an object"),
        (
            one_action("GetParticipantInput", {"DTMFConfiguration": "#"}),
            "DTMFConfiguration must be an object",
        ),
        (
            one_action(
                "GetParticipantInput",
                {"StoreInput": "True", "InputValidation": {"CustomValidation": {"MaximumLength": "x"}}},
            ),
            "MaximumLength must be digits",
        ),
        (one_action("Wait", {"TimeLimitSeconds": {"x": 1}}), "TimeLimitSeconds must be whole seconds"),
        (one_action("Loop", {"LoopCount": "1000"}), "LoopCount must be 0 to 100"),
        (
            one_action(
                "TransferParticipantToThirdParty",
                {
                    "ThirdPartyConnectionTimeLimitSeconds": "30",
                    "ContinueFlowExecution": "True",
                    "VoiceConnector": {
                        "VoiceConnectorType": "CallTransferConnector",
                        "VoiceConnectorArn": "a",
                        "ToUser": "1",
                        "FromUser": 5,
                    },
                },
            ),
            "VoiceConnector.FromUser must be text",
        ),
    ],
)
def test_parameters_of_a_shape_connect_would_not_take_are_refused_in_one_line(
    document: dict[str, Any], expected: str
) -> None:
    problems = problems_of(document)
    assert any(expected in problem for problem in problems), problems
    assert all("\n" not in problem for problem in problems)
