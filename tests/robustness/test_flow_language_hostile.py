"""Flows no one would write on purpose, generated: any action type, parameters of any shape,
transitions anywhere. Whatever loads runs to an end that is said, and no action fails with a
Python error of ours (a reason naming TypeError, KeyError...), whatever the caller does."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_connect.contactflow.language import ActionType
from kore_connect.contactflow.model import Flow, FlowError
from kore_connect.twin.connect.caller import ScriptedCaller
from kore_connect.twin.connect.world import parse_world
from tests.console_flows import run_flow

PYTHON_ERROR = re.compile(
    r"\b(TypeError|KeyError|AttributeError|ValueError|IndexError|ZeroDivisionError|RecursionError|OverflowError)\b"
)
PARAMETER_NAMES = [
    "Text", "SSML", "PromptId", "Media", "Messages", "InterruptFrequencySeconds", "StoreInput",
    "InputTimeLimitSeconds", "DTMFConfiguration", "InputValidation", "LexV2Bot", "LexBot",
    "LexSessionAttributes", "LexTimeoutSeconds", "ThirdPartyPhoneNumber", "ContinueFlowExecution",
    "ThirdPartyConnectionTimeLimitSeconds", "LambdaFunctionARN", "InvocationTimeLimitSeconds",
    "LambdaInvocationAttributes", "Attributes", "FlowAttributes", "QueueId", "AgentId", "CallbackNumber",
    "ComparisonValue", "LoopCount", "ContactFlowId", "FlowModuleId", "TimeLimitSeconds", "TimeoutSeconds",
    "HoursOfOperationId", "MetricType", "LanguageCode", "ViewResource", "ProfileRequestData",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
    st.sampled_from(["", "1", "True", "False", "$.External.x", "$.Attributes.a", "$.Nope", "+15551230000",
                     "Hello $.Attributes.a", "<speak>hi</speak>", "Office", "Support", "E164", "abc"]),
    st.text(max_size=8),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
OUTCOMES = ["Success", "NoMatchingError", "NoMatchingCondition", "InputTimeLimitExceeded", "CallFailed"]


@st.composite
def flows(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    ids = [f"a{i}" for i in range(count)]
    target = st.sampled_from(ids)
    actions = []
    for identifier in ids:
        kind = draw(st.sampled_from(list(ActionType)))
        parameters = draw(st.dictionaries(st.sampled_from(PARAMETER_NAMES), VALUES, max_size=4))
        transitions: dict[str, Any] = {}
        if draw(st.booleans()):
            transitions["NextAction"] = draw(target)
        if draw(st.booleans()):
            transitions["Errors"] = [
                {"ErrorType": e, "NextAction": draw(target)}
                for e in draw(st.lists(st.sampled_from(OUTCOMES[1:]), max_size=2, unique=True))
            ]
        if draw(st.booleans()):
            transitions["Conditions"] = [
                {
                    "NextAction": draw(target),
                    "Condition": {
                        "Operator": draw(st.sampled_from(["Equals", "NumberGreaterThan", "TextContains"])),
                        "Operands": [
                            draw(st.sampled_from(["1", "True", "DoneLooping", "ContinueLooping", "0"]))
                        ],
                    },
                }
                for _ in range(draw(st.integers(0, 2)))
            ]
        actions.append(
            {
                "Identifier": identifier,
                "Type": str(kind),
                "Parameters": parameters,
                "Transitions": transitions,
            }
        )
    return {"Version": "2019-10-30", "StartAction": ids[0], "Actions": actions}


WORLD = parse_world(
    {
        "clock": "2026-11-30T10:30:00Z",
        "hours": {"Office": {"timezone": "UTC", "open": {"Monday": ["09:00-17:00"]}}},
        "queues": {"Support": {"hours": "Office", "agents": {"available": 1}}},
        "branches": {"ShowView": "NoMatchingError"},
    },
    base=__import__("pathlib").Path("."),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=flows(),
    keys=st.lists(st.sampled_from(["1", "2", "12#", "*"]), max_size=3),
    hang_up=st.sampled_from([None, 5.0, 600.0]),
)
def test_whatever_loads_runs_to_a_said_end_without_a_python_error(
    document: dict[str, Any], keys: list[str], hang_up: float | None
) -> None:
    try:
        Flow.parse(document)
    except FlowError as refused:
        assert refused.problems and all(isinstance(p, str) and p for p in refused.problems)
        return
    # a document that names a template placeholder or a reference is still a flow: it runs
    contact = run_flow(
        document, world=WORLD, caller=ScriptedCaller.of(keys, ["order a pizza"], hang_up_after=hang_up)
    )
    assert contact.ended and contact.ended_because
    for step in contact.trace:
        assert not PYTHON_ERROR.search(step.reason), (step, document)
