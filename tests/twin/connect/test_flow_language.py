"""Every modelled action of the flow language, every branch it has, driven by a scripted caller and a
local world, on small flows written as the console exports them (tests/console_flows.py).
Recorded actions: kept on the contact, the branch the world says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kore_connect.contactflow.language import ACTIONS, ActionType, Kind
from kore_connect.twin.connect.actions import HANDLERS, MODELLED
from kore_connect.twin.connect.caller import PATIENCE_SECONDS, ScriptedCaller
from kore_connect.twin.connect.collaborators import LocalQueues
from kore_connect.twin.connect.contact import ContactState
from kore_connect.twin.connect.interpreter import MAX_STEPS
from kore_connect.twin.connect.world import World, parse_world
from tests.console_flows import END, action, export, path, run_flow, say

QUEUE = "arn:aws:connect:us-east-1:111122223333:instance/0c3c4d1e/queue/5d2cba7e-8480-42a1-a508-61f22edc3953"
# Monday 2 December 2026, 10:30 in New York
MONDAY_MORNING = "2026-11-30T10:30:00-05:00"


def world(**document: Any) -> World:
    return parse_world(document, base=Path("."), name="world.yaml")


def caller(*keys: str, says: tuple[str, ...] = (), **options: Any) -> ScriptedCaller:
    return ScriptedCaller.of(list(keys), list(says), **options)


def test_every_action_type_has_a_handler_and_the_modelled_ones_their_own() -> None:
    assert set(HANDLERS) == set(ActionType) == set(ACTIONS)
    modelled = {kind for kind, spec in ACTIONS.items() if spec.kind is Kind.MODELLED}
    assert set(MODELLED) == modelled
    # the actions the issue names as modelled are
    for name in (
        "GetParticipantInput",
        "Loop",
        "TransferToFlow",
        "InvokeFlowModule",
        "EndFlowModuleExecution",
        "EndFlowExecution",
        "MessageParticipantIteratively",
        "Wait",
        "CheckHoursOfOperation",
        "CheckMetricData",
        "GetMetricData",
        "ConnectParticipantWithLexBot",
        "UpdateFlowAttributes",
        "UpdateContactData",
        "UpdateContactCallbackNumber",
        "CreateCallbackContact",
        "TransferContactToAgent",
        "DequeueContactAndTransferToQueue",
        "TransferParticipantToThirdParty",
    ):
        assert ActionType(name) in modelled, name


# ------------------------------------------------------------------ prompts


def test_text_and_ssml_are_heard_as_words_with_references_filled_and_take_time() -> None:
    flow = export(
        action(
            "set",
            "UpdateContactAttributes",
            {"Attributes": {"name": "Ada"}},
            next_action="hi",
            errors={"NoMatchingError": END},
        ),
        say("hi", "Hello $.Attributes.name, you called from $.CustomerEndpoint.Address.", next_action="ssml"),
        action(
            "ssml",
            "MessageParticipant",
            {
                "SSML": '<speak>Your case <say-as interpret-as="digits">42</say-as>'
                '<break time="2s"/> is open.</speak>'
            },
            errors={"NoMatchingError": END},
        ),
    )
    contact = run_flow(flow)
    assert contact.heard == ["Hello Ada, you called from +14155550123.", "Your case 42 is open."]
    # about 150 words a minute, plus the SSML's pause
    assert contact.trace[1].clock == pytest.approx(6 / 2.5)  # six words
    assert contact.trace[2].clock - contact.trace[1].clock == pytest.approx(5 / 2.5 + 2)


def test_a_prompt_that_resolves_to_nothing_takes_the_error_branch() -> None:
    flow = export(
        action(
            "play", "MessageParticipant", {"Text": "$.External.message"}, errors={"NoMatchingError": "sorry"}
        ),
        say("sorry", "Sorry."),
    )
    assert path(run_flow(flow))[:2] == [("play", "NoMatchingError"), ("sorry", "Success")]


def test_messages_play_in_turn_until_the_interrupt_or_until_the_caller_hangs_up() -> None:
    messages = [{"Text": "Your call is important to us."}, {"PromptId": "arn:aws:connect:::prompt/music"}]
    interrupted = export(
        action(
            "hold",
            "MessageParticipantIteratively",
            {"Messages": messages, "InterruptFrequencySeconds": "30"},
            conditions=[("Equals", "MessagesInterrupted", "again")],
            errors={"NoMatchingError": END},
        ),
        say("again", "Still there?"),
    )
    contact = run_flow(interrupted)
    assert path(contact)[0] == ("hold", "Condition: Equals MessagesInterrupted") and contact.clock >= 30
    endless = export(
        action(
            "hold", "MessageParticipantIteratively", {"Messages": messages}, errors={"NoMatchingError": END}
        )
    )
    contact = run_flow(endless, caller=caller(hang_up_after=120))
    assert contact.state is ContactState.CALLER_HUNG_UP and "while messages played" in contact.ended_because
    assert 120 <= contact.clock < 130
    assert contact.clock == 120  # the clock stops when the caller hangs up, part-way through a message
    unresolved = export(
        action(
            "hold",
            "MessageParticipantIteratively",
            {"Messages": [{"Text": "$.External.none"}]},
            errors={"NoMatchingError": "x"},
        ),
        say("x", "x"),
    )
    assert path(run_flow(unresolved))[0] == ("hold", "NoMatchingError")


# ------------------------------------------------------------------ DTMF


def menu(**parameters: Any) -> dict[str, Any]:
    return export(
        action(
            "menu",
            "GetParticipantInput",
            {
                "Text": "Press 1 for sales, 2 for support.",
                "StoreInput": "False",
                "InputTimeLimitSeconds": "5",
                **parameters,
            },
            next_action=END,
            conditions=[("Equals", "1", "sales"), ("Equals", "2", "support")],
            errors={
                "InputTimeLimitExceeded": "timeout",
                "NoMatchingCondition": "invalid",
                "NoMatchingError": END,
            },
        ),
        say("sales", "Sales."),
        say("support", "Support."),
        say("timeout", "We did not hear you."),
        say("invalid", "That is not an option."),
    )


@pytest.mark.parametrize(
    ("keys", "branch", "next_"),
    [
        (("1",), "Condition: Equals 1", "sales"),
        (("2#",), "Condition: Equals 2", "support"),
        (("7",), "NoMatchingCondition", "invalid"),
        ((), "InputTimeLimitExceeded", "timeout"),
    ],
)
def test_a_menu_takes_the_branch_of_the_key_pressed(keys: tuple[str, ...], branch: str, next_: str) -> None:
    contact = run_flow(menu(), caller=caller(*keys))
    assert path(contact)[:2] == [("menu", branch), (next_, "Success")]
    (given,) = contact.inputs
    assert (given.kind, given.value) == ("dtmf", keys[0] if keys else None)


def test_silence_runs_the_input_time_limit_on_the_contacts_clock_without_sleeping() -> None:
    contact = run_flow(menu(InputTimeLimitSeconds="8"))
    prompt_seconds = 7 / 2.5
    assert contact.trace[0].clock == pytest.approx(prompt_seconds + 8)


def test_entries_are_taken_in_order_one_per_input_block() -> None:
    flow = export(
        action(
            "first",
            "GetParticipantInput",
            {"Text": "First?", "StoreInput": "False", "InputTimeLimitSeconds": "5"},
            conditions=[("Equals", "1", "second")],
            errors={"InputTimeLimitExceeded": END, "NoMatchingCondition": END, "NoMatchingError": END},
        ),
        action(
            "second",
            "GetParticipantInput",
            {"Text": "Second?", "StoreInput": "False", "InputTimeLimitSeconds": "5"},
            conditions=[("Equals", "3", "done")],
            errors={"InputTimeLimitExceeded": END, "NoMatchingCondition": END, "NoMatchingError": END},
        ),
        say("done", "Done."),
    )
    contact = run_flow(flow, caller=caller("1", "3"))
    assert [branch for _, branch in path(contact)] == [
        "Condition: Equals 1",
        "Condition: Equals 3",
        "Success",
        "Success",
    ]


def stored_input(**parameters: Any) -> dict[str, Any]:
    return export(
        action(
            "account",
            "GetParticipantInput",
            {
                "Text": "Enter your account number, then the pound key.",
                "StoreInput": "True",
                "InputTimeLimitSeconds": "5",
                **parameters,
            },
            next_action="copy",
            errors={"InvalidPhoneNumber": "invalid", "InputTimeLimitExceeded": END, "NoMatchingError": END},
        ),
        action(
            "copy",
            "UpdateContactAttributes",
            {"Attributes": {"account": "$.StoredCustomerInput"}},
            errors={"NoMatchingError": END},
        ),
        say("invalid", "That number is not valid."),
    )


def test_stored_input_ends_at_the_termination_key_or_the_maximum_length() -> None:
    terminated = run_flow(
        stored_input(
            InputValidation={"CustomValidation": {"MaximumLength": "10"}},
            DTMFConfiguration={"InputTerminationSequence": "#"},
        ),
        caller=caller("12345#"),
    )
    assert terminated.attributes["account"] == "12345" and path(terminated)[0] == ("account", "Success")
    capped = run_flow(
        stored_input(InputValidation={"CustomValidation": {"MaximumLength": "3"}}), caller=caller("98765")
    )
    assert capped.attributes["account"] == "987"


def test_a_phone_number_entered_is_validated_and_stored_in_e164() -> None:
    local = {"PhoneNumberValidation": {"NumberFormat": "Local", "CountryCode": "US"}}
    valid = run_flow(stored_input(InputValidation=local), caller=caller("2065550100#"))
    assert valid.attributes["account"] == "+12065550100"
    invalid = run_flow(stored_input(InputValidation=local), caller=caller("12#"))
    assert path(invalid)[:2] == [("account", "InvalidPhoneNumber"), ("invalid", "Success")]


# ------------------------------------------------------------------ Lex

BOT = "arn:aws:lex:us-east-1:111122223333:bot-alias/PIZZA/TSTALIAS"


def lex_flow() -> dict[str, Any]:
    return export(
        action(
            "bot",
            "ConnectParticipantWithLexBot",
            {
                "Text": "How can I help?",
                "LexV2Bot": {"AliasArn": BOT},
                "LexSessionAttributes": {"caller": "$.CustomerEndpoint.Address"},
            },
            next_action=END,
            conditions=[("Equals", "OrderPizza", "order"), ("Equals", "Agent", "agent")],
            errors={
                "InputTimeLimitExceeded": "silence",
                "NoMatchingCondition": "fallback",
                "NoMatchingError": "nobot",
            },
        ),
        action(
            "order",
            "UpdateContactAttributes",
            {"Attributes": {"size": "$.Lex.Slots.Size", "intent": "$.Lex.IntentName"}},
            errors={"NoMatchingError": END},
        ),
        say("agent", "An agent."),
        say("silence", "Are you there?"),
        say("fallback", "Sorry, I did not get that."),
        say("nobot", "The assistant is unavailable."),
    )


PIZZA_WORLD = {
    "lex_bots": {
        BOT: {
            "intents": {
                "OrderPizza": {"utterances": ["I want a {Size} pizza", "order a pizza"]},
                "Agent": {"utterances": ["talk to an agent", "a human please"]},
            },
            "slots": {"Size": ["small", "large"]},
        }
    }
}


def test_a_lex_bot_hears_an_intent_and_its_slots() -> None:
    contact = run_flow(lex_flow(), world=world(**PIZZA_WORLD), caller=caller(says=("I want a large pizza",)))
    assert path(contact)[0] == ("bot", "Condition: Equals OrderPizza")
    assert contact.attributes == {"size": "large", "intent": "OrderPizza"}
    assert contact.keyed["Lex.SessionAttributes"] == {"caller": "+14155550123"}
    agent = run_flow(lex_flow(), world=world(**PIZZA_WORLD), caller=caller(says=("can I talk to an agent",)))
    assert path(agent)[0] == ("bot", "Condition: Equals Agent")


def test_lex_fallback_silence_and_a_bot_the_world_lacks_each_take_their_branch() -> None:
    fallback = run_flow(lex_flow(), world=world(**PIZZA_WORLD), caller=caller(says=("what is the weather",)))
    assert (
        path(fallback)[0] == ("bot", "NoMatchingCondition") and "FallbackIntent" in fallback.trace[0].reason
    )
    silence = run_flow(lex_flow(), world=world(**PIZZA_WORLD))
    assert path(silence)[0] == ("bot", "InputTimeLimitExceeded")
    missing = run_flow(lex_flow(), caller=caller(says=("I want a large pizza",)))
    assert path(missing)[0] == ("bot", "NoMatchingError")
    assert missing.warnings == [f"the Lex bot {BOT} is not in the local world"]


# ------------------------------------------------------------------ third parties


def phone_transfer(number: str, resume: str = "True") -> dict[str, Any]:
    return export(
        action(
            "dial",
            "TransferParticipantToThirdParty",
            {
                "ThirdPartyPhoneNumber": number,
                "ThirdPartyConnectionTimeLimitSeconds": "30",
                "ContinueFlowExecution": resume,
            },
            next_action="after",
            errors={
                "CallFailed": "failed",
                "ConnectionTimeLimitExceeded": "noanswer",
                "NoMatchingError": END,
            },
        ),
        say("after", "Back in the flow."),
        say("failed", "The line is busy."),
        say("noanswer", "Nobody answered."),
    )


@pytest.mark.parametrize(
    ("outcome", "branch"),
    [("answers", "Success"), ("busy", "CallFailed"), ("no-answer", "ConnectionTimeLimitExceeded")],
)
def test_a_phone_number_answers_is_busy_or_does_not_answer_as_the_world_says(
    outcome: str, branch: str
) -> None:
    contact = run_flow(phone_transfer("+15551230000"), world=world(phone_numbers={"+15551230000": outcome}))
    assert path(contact)[0] == ("dial", branch)
    if outcome == "no-answer":
        assert contact.trace[0].clock == pytest.approx(30)


def test_a_phone_transfer_that_does_not_resume_ends_the_flow_and_a_bad_number_fails() -> None:
    joined = run_flow(phone_transfer("+15551230000", resume="False"))
    assert joined.state is ContactState.TRANSFERRED and len(joined.trace) == 1
    assert path(run_flow(phone_transfer("+1{{phoneNumber}}")))[0] == ("dial", "CallFailed")


# ------------------------------------------------------------------ flow control


def test_a_loop_continues_its_count_then_is_done_and_starts_again() -> None:
    flow = export(
        action(
            "loop",
            "Loop",
            {"LoopCount": "2"},
            next_action="done",
            conditions=[("Equals", "ContinueLooping", "body"), ("Equals", "DoneLooping", "done")],
        ),
        say("body", "Again.", next_action="loop"),
        say("done", "Done."),
    )
    contact = run_flow(flow)
    assert [branch for action_id, branch in path(contact) if action_id == "loop"] == [
        "Condition: Equals ContinueLooping",
        "Condition: Equals ContinueLooping",
        "Condition: Equals DoneLooping",
    ]
    assert contact.heard == ["Again.", "Again.", "Done."]


def test_a_loop_reached_again_after_it_is_done_counts_from_the_start() -> None:
    flow = export(
        action(
            "loop",
            "Loop",
            {"LoopCount": "1"},
            next_action="done",
            conditions=[("Equals", "ContinueLooping", "body"), ("Equals", "DoneLooping", "done")],
        ),
        say("body", "Again.", next_action="loop"),
        action(
            "done",
            "GetParticipantInput",
            {"Text": "Press 1 to hear it again.", "StoreInput": "False", "InputTimeLimitSeconds": "5"},
            conditions=[("Equals", "1", "loop")],
            errors={"InputTimeLimitExceeded": END, "NoMatchingCondition": END, "NoMatchingError": END},
        ),
    )
    contact = run_flow(flow, caller=caller("1"))
    assert contact.heard.count("Again.") == 2  # once per pass: the count started again


def test_a_flow_that_never_ends_is_stopped_at_the_action_limit_with_the_reason() -> None:
    flow = export(
        action("a", "UpdateFlowLoggingBehavior", {"FlowLoggingBehavior": "Enabled"}, next_action="b"),
        action("b", "UpdateFlowLoggingBehavior", {"FlowLoggingBehavior": "Disabled"}, next_action="a"),
    )
    contact = run_flow(flow)
    assert (
        contact.state is ContactState.FLOW_ERROR
        and contact.ended_because == f"the flow ran {MAX_STEPS} actions without ending"
    )


def test_distribute_by_percentage_draws_the_same_for_the_same_contact_and_spreads_across_contacts() -> None:
    flow = export(
        action(
            "split",
            "DistributeByPercentage",
            {},
            conditions=[("NumberLessThan", "51", "a")],
            errors={"NoMatchingCondition": "b"},
        ),
        say("a", "A."),
        say("b", "B."),
    )
    branches = [path(run_flow(flow))[0][1] for _ in range(60)]
    assert 10 < branches.count("Condition: NumberLessThan 51") < 50 and "NoMatchingCondition" in branches


def test_end_flow_execution_ends_the_contact_with_the_reason() -> None:
    contact = run_flow(
        export(action("end-here", "EndFlowExecution", next_action=None), say("never", "Never."))
    )
    assert (
        contact.state is ContactState.DISCONNECTED
        and contact.ended_because == "the flow ended it (EndFlowExecution)"
    )


def test_flow_attributes_are_the_flows_own() -> None:
    flow = export(
        action(
            "set",
            "UpdateFlowAttributes",
            {"FlowAttributes": {"greeting": {"Value": "Hi $.CustomerEndpoint.Address"}}},
            next_action="play",
            errors={"NoMatchingError": END},
        ),
        say("play", "$.FlowAttributes.greeting"),
    )
    contact = run_flow(flow)
    assert contact.heard == ["Hi +14155550123"] and contact.flow_attributes == {"greeting": "Hi +14155550123"}
    assert contact.attributes == {}


def library(tmp_path: Path) -> World:
    """A world whose flow library holds a module and a second flow."""
    flows = tmp_path / "flows"
    flows.mkdir()
    module = export(
        action(
            "mod-set",
            "UpdateFlowAttributes",
            {"FlowAttributes": {"where": {"Value": "module"}}},
            next_action="mod-say",
            errors={"NoMatchingError": END},
        ),
        say("mod-say", "In the module, $.FlowAttributes.where.", next_action="mod-end"),
        action("mod-end", "EndFlowModuleExecution", next_action=None),
        name="Greeting module",
    )
    other = export(say("other", "This is the other flow: $.FlowAttributes.where."), name="Other flow")
    import json

    (flows / "1bc263e9-09cf-432c-971c-32da62c784af.json").write_text(json.dumps(module))
    (flows / "other.json").write_text(json.dumps(other))
    return parse_world({"flows": "flows"}, base=tmp_path, name="world.yaml")


def test_a_module_runs_and_returns_to_its_invoker_with_flow_attributes_of_its_own(tmp_path: Path) -> None:
    flow = export(
        action(
            "set",
            "UpdateFlowAttributes",
            {"FlowAttributes": {"where": {"Value": "caller"}}},
            next_action="call",
            errors={"NoMatchingError": END},
        ),
        action(
            "call",
            "InvokeFlowModule",
            {
                "FlowModuleId": "arn:aws:connect:us-east-1:111122223333:instance/x/flow-module/"
                "1bc263e9-09cf-432c-971c-32da62c784af"
            },
            next_action="after",
            errors={"NoMatchingError": END},
        ),
        say("after", "Back in the $.FlowAttributes.where."),
    )
    contact = run_flow(flow, world=library(tmp_path))
    assert contact.heard == ["In the module, module.", "Back in the caller."]
    assert [action_id for action_id, _ in path(contact)] == [
        "set",
        "call",
        "mod-set",
        "mod-say",
        "mod-end",
        "after",
        END,
    ]


def test_transfer_to_flow_runs_the_other_flow_with_fresh_flow_attributes(tmp_path: Path) -> None:
    flow = export(
        action(
            "set",
            "UpdateFlowAttributes",
            {"FlowAttributes": {"where": {"Value": "first"}}},
            next_action="go",
            errors={"NoMatchingError": END},
        ),
        action(
            "go",
            "TransferToFlow",
            {"ContactFlowId": "Other flow"},
            next_action=None,
            errors={"NoMatchingError": "lost"},
        ),
        say("lost", "No such flow."),
    )
    contact = run_flow(flow, world=library(tmp_path))
    assert contact.heard == ["This is the other flow: ."]


def test_a_flow_or_module_the_world_lacks_takes_the_error_branch_with_a_warning() -> None:
    flow = export(
        action(
            "go",
            "TransferToFlow",
            {"ContactFlowId": "arn:aws:connect:::contact-flow/nope"},
            next_action=None,
            errors={"NoMatchingError": "mod"},
        ),
        action(
            "mod",
            "InvokeFlowModule",
            {"FlowModuleId": "missing-module"},
            next_action=END,
            errors={"NoMatchingError": END},
        ),
    )
    contact = run_flow(flow)
    assert path(contact)[:2] == [("go", "NoMatchingError"), ("mod", "NoMatchingError")]
    assert len(contact.warnings) == 2 and "arn:aws:connect:::contact-flow/nope" in contact.warnings[0]


def wait_flow(seconds: str) -> dict[str, Any]:
    return export(
        action(
            "wait",
            "Wait",
            {"TimeLimitSeconds": seconds, "Events": ["CustomerReturned"]},
            conditions=[("Equals", "CustomerReturned", END), ("Equals", "WaitCompleted", "done")],
            errors={"NoMatchingError": "bad"},
        ),
        say("done", "Waited."),
        say("bad", "Cannot wait."),
    )


def test_a_wait_advances_the_clock_or_outlasts_the_caller_or_fails_on_a_bad_time() -> None:
    waited = run_flow(wait_flow("90"))
    assert path(waited)[0] == ("wait", "Condition: Equals WaitCompleted") and waited.trace[0].clock == 90
    outlasted = run_flow(wait_flow("900"))
    assert outlasted.state is ContactState.CALLER_HUNG_UP and outlasted.clock == PATIENCE_SECONDS
    assert path(run_flow(wait_flow("$.External.missing")))[0] == ("wait", "NoMatchingError")


HOURS_WORLD = {
    "clock": MONDAY_MORNING,
    "hours": {
        "Office": {
            "timezone": "America/New_York",
            "open": {"Monday": ["09:00-17:00"], "Tuesday": ["09:00-17:00"]},
        },
        "Weekend": {"timezone": "Europe/London", "open": {"Saturday": ["10:00-12:00"]}},
    },
    "queues": {
        "Support": {
            "id": QUEUE,
            "hours": "Office",
            "agents": {"online": 2, "available": 1, "staffed": 2},
            "contacts": 3,
            "oldest_contact_age": 95,
        }
    },
}


def hours_flow(hours_id: str | None) -> dict[str, Any]:
    parameters = {"HoursOfOperationId": hours_id} if hours_id is not None else {}
    return export(
        action(
            "queue",
            "UpdateContactTargetQueue",
            {"QueueId": QUEUE},
            next_action="hours",
            errors={"NoMatchingError": END},
        ),
        action(
            "hours",
            "CheckHoursOfOperation",
            parameters,
            conditions=[("Equals", "True", "open"), ("Equals", "False", "closed")],
            errors={"NoMatchingError": "unknown"},
        ),
        say("open", "We are open."),
        say("closed", "We are closed."),
        say("unknown", "No hours."),
    )


@pytest.mark.parametrize(
    ("hours", "branch"),
    [
        ("Office", "Condition: Equals True"),
        ("Weekend", "Condition: Equals False"),
        (None, "Condition: Equals True"),
        ("Nightshift", "NoMatchingError"),
    ],
)
def test_hours_of_operation_by_the_worlds_clock_and_time_zone(hours: str | None, branch: str) -> None:
    contact = run_flow(hours_flow(hours), world=world(**HOURS_WORLD))
    assert path(contact)[1] == ("hours", branch)
    if hours == "Nightshift":
        assert contact.warnings == ["the hours of operation Nightshift are not in the local world"]


def test_hours_are_read_in_their_own_time_zone() -> None:
    # 13:30 UTC on a Monday is 08:30 in New York: before the office opens
    early = world(**{**HOURS_WORLD, "clock": "2026-11-30T13:30:00Z"})
    assert path(run_flow(hours_flow("Office"), world=early))[1] == ("hours", "Condition: Equals False")
    # and 14:30 UTC is 09:30 there: open
    opened = world(**{**HOURS_WORLD, "clock": "2026-11-30T14:30:00Z"})
    assert path(run_flow(hours_flow("Office"), world=opened))[1] == ("hours", "Condition: Equals True")


def test_hours_close_as_the_clock_moves_past_closing_time() -> None:
    evening = world(**{**HOURS_WORLD, "clock": "2026-11-30T16:59:59-05:00"})
    flow = export(
        say("hold", "One moment, " + "please " * 20, next_action="hours"),
        *hours_flow("Office")["Actions"][1:-1],
    )
    assert path(run_flow(flow, world=evening))[1] == ("hours", "Condition: Equals False")


def metric_flow(
    operator: str, operand: str, metric: str = "NumberOfAgentsAvailable", queue: str = QUEUE
) -> dict[str, Any]:
    return export(
        action(
            "metric",
            "CheckMetricData",
            {"MetricType": metric, "QueueId": queue},
            conditions=[(operator, operand, "yes")],
            errors={"NoMatchingCondition": "no", "NoMatchingError": "error"},
        ),
        say("yes", "Yes."),
        say("no", "No."),
        say("error", "Error."),
    )


def test_check_metric_data_compares_the_worlds_queue_metrics() -> None:
    figures = world(**HOURS_WORLD)
    assert path(run_flow(metric_flow("NumberGreaterThan", "0"), world=figures))[0] == (
        "metric",
        "Condition: NumberGreaterThan 0",
    )
    assert path(run_flow(metric_flow("NumberGreaterThan", "5", "NumberOfContactsInQueue"), world=figures))[
        0
    ] == ("metric", "NoMatchingCondition")
    lacking = run_flow(
        metric_flow("NumberGreaterThan", "0", queue="arn:aws:connect:::queue/other"), world=figures
    )
    assert (
        path(lacking)[0] == ("metric", "NoMatchingError")
        and "arn:aws:connect:::queue/other" in lacking.warnings[0]
    )


def test_get_metric_data_sets_the_metrics_references() -> None:
    flow = export(
        action(
            "queue",
            "UpdateContactTargetQueue",
            {"QueueId": QUEUE},
            next_action="get",
            errors={"NoMatchingError": END},
        ),
        action("get", "GetMetricData", {}, next_action="say", errors={"NoMatchingError": END}),
        say(
            "say",
            "$.Metrics.Queue.Size waiting, oldest $.Metrics.Queue.OldestContactAge s, "
            "$.Metrics.Agents.Available.Count free in $.Queue.Name.",
        ),
    )
    assert run_flow(flow, world=world(**HOURS_WORLD)).heard == ["3 waiting, oldest 95 s, 1 free in Support."]


# ------------------------------------------------------------------ contact data and routing


def test_an_attribute_key_may_be_a_reference_or_hold_one() -> None:
    flow = export(
        action(
            "lookup",
            "InvokeLambdaFunction",
            {
                "LambdaFunctionARN": "arn:aws:lambda:us-east-1:111122223333:function:rules",
                "InvocationTimeLimitSeconds": "3",
            },
            next_action="set",
            errors={"NoMatchingError": END},
        ),
        action(
            "set",
            "UpdateContactAttributes",
            {"Attributes": {"$.External.key": "$.External.value", "survey_$.External.n": "yes"}},
            errors={"NoMatchingError": END},
        ),
    )
    rules = world(
        lambdas={
            "arn:aws:lambda:us-east-1:111122223333:function:rules": {
                "response": {"key": "tier", "value": "gold", "n": "3"}
            }
        }
    )
    assert run_flow(flow, world=rules).attributes == {"tier": "gold", "survey_3": "yes"}


def test_update_contact_data_sets_the_language_and_keeps_the_rest() -> None:
    flow = export(
        action(
            "data",
            "UpdateContactData",
            {"LanguageCode": "en-AU", "IsVoiceIdStreamingEnabled": "True"},
            next_action="say",
            errors={"NoMatchingError": END},
        ),
        say("say", "$.LanguageCode"),
    )
    contact = run_flow(flow)
    assert (
        contact.heard == ["en-AU"]
        and contact.settings["UpdateContactData"]["IsVoiceIdStreamingEnabled"] == "True"
    )


def queue_flow(queue: str) -> dict[str, Any]:
    return export(
        action(
            "target",
            "UpdateContactTargetQueue",
            {"QueueId": queue},
            next_action="enqueue",
            errors={"NoMatchingError": "noqueue"},
        ),
        action(
            "enqueue",
            "TransferContactToQueue",
            {},
            next_action=END,
            errors={"QueueAtCapacity": "full", "NoMatchingError": END},
        ),
        say("noqueue", "No queue."),
        say("full", "Full."),
    )


def test_a_queue_the_world_defines_is_reached_and_one_it_lacks_is_the_error_branch() -> None:
    defined = world(queues={"Support": {"id": QUEUE}})
    contact = run_flow(queue_flow(QUEUE), world=defined)
    assert contact.state is ContactState.QUEUED and contact.queue_arn == QUEUE
    lacking = run_flow(queue_flow("arn:aws:connect:::queue/other"), world=defined)
    assert path(lacking)[0] == ("target", "NoMatchingError") and lacking.warnings
    # without a world file, any queue a flow names exists (Connect checked it when the flow was imported)
    assert run_flow(queue_flow("arn:aws:connect:::queue/other")).state is ContactState.QUEUED


def test_a_full_queue_is_queue_at_capacity() -> None:
    contact = run_flow(queue_flow(QUEUE), world=world(queues={"Support": {"id": QUEUE, "capacity": 0}}))
    assert path(contact)[1] == ("enqueue", "QueueAtCapacity")


def test_transfer_to_an_agent_needs_the_agent_targeted_first() -> None:
    flow = export(
        action(
            "target",
            "UpdateContactTargetQueue",
            {"AgentId": "jdoe"},
            next_action="agent",
            errors={"NoMatchingError": "noagent"},
        ),
        action("agent", "TransferContactToAgent", {}, next_action=END, errors={"NoMatchingError": "noagent"}),
        say("noagent", "No agent."),
    )
    contact = run_flow(flow, world=world(agents=["jdoe"]))
    assert contact.state is ContactState.QUEUED and path(contact)[1] == ("agent", "Success")
    assert path(run_flow(flow, world=world(agents=["someone"])))[0] == ("target", "NoMatchingError")
    untargeted = export(
        action("agent", "TransferContactToAgent", {}, next_action=END, errors={"NoMatchingError": "x"}),
        say("x", "x"),
    )
    assert path(run_flow(untargeted))[0] == ("agent", "NoMatchingError")


def test_dequeue_moves_the_contact_to_another_queue() -> None:
    other = QUEUE.replace("5d2cba7e", "7a57b363")
    flow = export(
        action(
            "target",
            "UpdateContactTargetQueue",
            {"QueueId": QUEUE},
            next_action="enqueue",
            errors={"NoMatchingError": END},
        ),
        action(
            "enqueue",
            "TransferContactToQueue",
            {},
            next_action=END,
            errors={"QueueAtCapacity": END, "NoMatchingError": END},
        ),
    )
    queues = LocalQueues()
    contact = run_flow(flow, queues=queues)
    mover = export(
        action(
            "move",
            "DequeueContactAndTransferToQueue",
            {"QueueId": other},
            next_action=END,
            errors={"QueueAtCapacity": END, "NoMatchingError": END},
        )
    )
    moved = run_flow(mover, queues=queues)
    assert (
        moved.queue_arn == other and moved.state is ContactState.QUEUED and queues.waiting[QUEUE] == [contact]
    )


@pytest.mark.parametrize(
    ("number", "branch"),
    [
        ("+14155550199", "Success"),
        ("12345", "InvalidCallbackNumber"),
        ("+15550000000", "CallbackNumberNotDialable"),
    ],
)
def test_a_callback_number_is_checked_then_a_callback_created(number: str, branch: str) -> None:
    flow = export(
        action(
            "target",
            "UpdateContactTargetQueue",
            {"QueueId": QUEUE},
            next_action="number",
            errors={"NoMatchingError": END},
        ),
        action(
            "number",
            "UpdateContactCallbackNumber",
            {"CallbackNumber": number},
            next_action="callback",
            errors={
                "InvalidCallbackNumber": "bad",
                "CallbackNumberNotDialable": "bad",
                "NoMatchingError": END,
            },
        ),
        action(
            "callback",
            "CreateCallbackContact",
            {"InitialCallDelaySeconds": "60", "MaximumConnectionAttempts": "1"},
            next_action="ok",
            errors={"NoMatchingError": END},
        ),
        say("ok", "We will call you back on $.CustomerCallbackNumber."),
        say("bad", "That number cannot be used."),
    )
    contact = run_flow(
        flow, world=world(queues={"Support": {"id": QUEUE}}, phone_numbers={"+15550000000": "not-dialable"})
    )
    assert path(contact)[1] == ("number", branch)
    if branch == "Success":
        assert contact.heard == [f"We will call you back on {number}."]
        assert contact.settings["CreateCallbackContact"]["number"] == number


def test_a_callback_without_a_queue_is_the_error_branch() -> None:
    flow = export(
        action("callback", "CreateCallbackContact", {}, next_action=END, errors={"NoMatchingError": "x"}),
        say("x", "x"),
    )
    assert path(run_flow(flow))[0] == ("callback", "NoMatchingError")


# ------------------------------------------------------------------ Lambda functions from the world

ARN = "arn:aws:lambda:us-east-1:111122223333:function:lookup"


def lambda_flow() -> dict[str, Any]:
    return export(
        action(
            "invoke",
            "InvokeLambdaFunction",
            {
                "LambdaFunctionARN": ARN,
                "InvocationTimeLimitSeconds": "3",
                "LambdaInvocationAttributes": {"who": "$.CustomerEndpoint.Address"},
            },
            next_action="say",
            errors={"NoMatchingError": "failed"},
        ),
        say("say", "Status: $.External.status."),
        say("failed", "Lookup failed."),
    )


def status_of(event: dict[str, Any], context: Any) -> dict[str, str]:
    return {"status": "called by " + event["Details"]["Parameters"]["who"]}


def failing(event: dict[str, Any], context: Any) -> dict[str, str]:
    raise RuntimeError("the database is down")


@pytest.mark.parametrize(
    ("entry", "heard"),
    [
        ({"response": {"status": "gold"}}, "Status: gold."),
        ({"python": f"{__name__}:status_of"}, "Status: called by +14155550123."),
        ({"python": f"{__name__}:failing"}, "Lookup failed."),
        ({"error": "timeout upstream"}, "Lookup failed."),
    ],
)
def test_the_worlds_functions_answer_the_flow(entry: dict[str, Any], heard: str) -> None:
    contact = run_flow(lambda_flow(), world=world(lambdas={ARN: entry}))
    assert contact.heard == [heard]


def test_a_function_the_world_lacks_is_the_error_branch_with_a_warning() -> None:
    contact = run_flow(lambda_flow())
    assert contact.heard == ["Lookup failed."] and contact.warnings == [
        "the Lambda function lookup is not in the local world"
    ]


# ------------------------------------------------------------------ recorded settings


def test_a_recorded_action_is_kept_on_the_contact_and_takes_success_by_default() -> None:
    flow = export(
        action(
            "record",
            "UpdateContactRecordingBehavior",
            {"RecordingBehavior": {"RecordedParticipants": ["Agent", "Customer"]}},
            next_action="voice",
        ),
        action(
            "voice",
            "UpdateContactTextToSpeechVoice",
            {"TextToSpeechVoice": "Joanna"},
            next_action="say",
            errors={"NoMatchingError": END},
        ),
        say("say", "Recorded."),
    )
    contact = run_flow(flow)
    assert [branch for _, branch in path(contact)][:3] == ["Success", "Success", "Success"]
    assert contact.warnings == []  # the default branch is no choice of the world's
    assert contact.settings["UpdateContactRecordingBehavior"] == {
        "RecordingBehavior": {"RecordedParticipants": ["Agent", "Customer"]}
    }
    assert contact.settings["UpdateContactTextToSpeechVoice"] == {"TextToSpeechVoice": "Joanna"}


def test_the_world_chooses_a_recorded_actions_branch_by_type_or_by_identifier() -> None:
    flow = export(
        action(
            "profile",
            "GetCustomerProfile",
            {
                "ProfileRequestData": {"PhoneNumber": "$.CustomerEndpoint.Address"},
                "ProfileResponseData": ["FirstName"],
            },
            next_action="view",
            errors={"NoneFoundError": "new", "MultipleFoundError": END, "NoMatchingError": END},
        ),
        say("new", "Welcome, new customer.", next_action="view"),
        action(
            "view",
            "ShowView",
            {"ViewResource": {"Id": "confirmation"}, "InvocationTimeLimitSeconds": "30", "ViewData": {}},
            next_action=END,
            conditions=[("Equals", "Next", "next")],
            errors={"NoMatchingCondition": END, "NoMatchingError": END, "TimeLimitExceeded": END},
        ),
        say("next", "You chose $.Views.Action."),
    )
    contact = run_flow(flow, world=world(branches={"GetCustomerProfile": "NoneFoundError", "view": "Next"}))
    assert path(contact)[:4] == [
        ("profile", "NoneFoundError"),
        ("new", "Success"),
        ("view", "Condition: Equals Next"),
        ("next", "Success"),
    ]
    assert contact.heard[-1] == "You chose Next."


# ------------------------------------------------------------------ the caller


def test_the_caller_hangs_up_at_an_action_or_a_time() -> None:
    flow = menu()
    at_action = run_flow(flow, caller=caller("1", hang_up_at_action="sales"))
    assert at_action.state is ContactState.CALLER_HUNG_UP and path(at_action) == [
        ("menu", "Condition: Equals 1")
    ]
    assert at_action.ended_because == "the caller hung up on reaching action sales"
    at_time = run_flow(flow, caller=caller(hang_up_after=2))
    # the caller hangs up part-way through the menu's prompt: they heard only part of it
    assert at_time.state is ContactState.CALLER_HUNG_UP and at_time.clock == 2
    assert at_time.ended_because == "the caller hung up during the prompt (at 2 s)"
    assert at_time.heard[0].endswith("[the caller hung up during this]") and at_time.inputs == []
    between = run_flow(export(say("a", "One."), say("b", "Two.")), caller=caller(hang_up_after=0.5))
    assert between.ended_because == "the caller hung up after 0.5 s" and between.heard == ["One."]


def test_a_contacts_clock_starts_at_the_worlds_time() -> None:
    flow = export(say("a", "Hello."))
    contact = run_flow(flow, world=world(clock=MONDAY_MORNING))
    assert contact.clock == pytest.approx(0.5) and dt.datetime.fromisoformat(MONDAY_MORNING).weekday() == 0


def test_a_recorded_prompt_takes_five_seconds_and_is_named() -> None:
    flow = export(
        action(
            "play",
            "MessageParticipant",
            {"PromptId": "arn:aws:connect:::prompt/welcome"},
            errors={"NoMatchingError": END},
        )
    )
    contact = run_flow(flow)
    assert contact.heard == ["[prompt arn:aws:connect:::prompt/welcome]"] and contact.trace[0].clock == 5.0


def test_a_world_function_may_be_a_template_function_under_another_name() -> None:
    from kore_connect.twin.connect.lambdas import WorldLambdas

    asked: list[str] = []

    class Template:
        async def __call__(self, arn: str, event: dict[str, Any], time_limit: float | None = None) -> Any:
            from kore_connect.twin.lambda_runtime.invocation import Invocation

            asked.append(arn)
            return Invocation(result={"status": "from the template"})

    functions = world(lambdas={ARN: {"function": "KoreRetrieveSessionMetadata"}})
    contact = run_flow(lambda_flow(), world=functions, invoke_lambda=WorldLambdas(functions, Template()))  # type: ignore[arg-type]
    assert asked == ["KoreRetrieveSessionMetadata"] and contact.heard == ["Status: from the template."]


# ------------------------------------------------------------------ found by review


def test_an_error_the_flow_has_no_branch_for_takes_its_no_matching_error_branch() -> None:
    # 28 of the corpus's input blocks have no InputTimeLimitExceeded branch: Connect's NoMatchingError
    # is the branch "if no other Error matches"
    flow = export(
        action(
            "menu",
            "GetParticipantInput",
            {"Text": "Press 1.", "StoreInput": "False", "InputTimeLimitSeconds": "5"},
            conditions=[("Equals", "1", END)],
            errors={"NoMatchingCondition": END, "NoMatchingError": "sorry"},
        ),
        say("sorry", "Sorry."),
    )
    contact = run_flow(flow)
    assert path(contact)[:2] == [("menu", "NoMatchingError"), ("sorry", "Success")]
    assert contact.trace[0].reason.startswith("InputTimeLimitExceeded: no key within 5 s")


def test_a_phone_number_entered_in_e164_or_as_any_countrys_local_number() -> None:
    e164 = {"PhoneNumberValidation": {"NumberFormat": "E164"}}
    assert run_flow(stored_input(InputValidation=e164), caller=caller("14155550100#")).attributes == {
        "account": "+14155550100"
    }
    new_zealand = {"PhoneNumberValidation": {"NumberFormat": "Local", "CountryCode": "NZ"}}
    assert run_flow(stored_input(InputValidation=new_zealand), caller=caller("0211234567#")).attributes == {
        "account": "+64211234567"
    }
    nowhere = {"PhoneNumberValidation": {"NumberFormat": "Local", "CountryCode": "XX"}}
    assert path(run_flow(stored_input(InputValidation=nowhere), caller=caller("0211234567#")))[0] == (
        "account",
        "InvalidPhoneNumber",
    )


def test_a_queue_is_full_with_the_contacts_the_world_says_are_in_it() -> None:
    full = world(queues={"Support": {"id": QUEUE, "capacity": 5, "contacts": 5}})
    assert path(run_flow(queue_flow(QUEUE), world=full))[1] == ("enqueue", "QueueAtCapacity")
    roomy = world(queues={"Support": {"id": QUEUE, "capacity": 500}})
    queues = LocalQueues()
    for _ in range(101):  # beyond the local queues' own 100
        assert run_flow(queue_flow(QUEUE), world=roomy, queues=queues).state is ContactState.QUEUED


def test_a_module_that_runs_out_of_actions_ends_the_contact(tmp_path: Path) -> None:
    import json

    (tmp_path / "flows").mkdir()
    module = {
        "Version": "2019-10-30",
        "StartAction": "m",
        "Actions": [action("m", "MessageParticipant", {"Text": "In the module."}, next_action=None)],
    }
    (tmp_path / "flows" / "mod.json").write_text(json.dumps(module))
    flow = export(
        action(
            "call",
            "InvokeFlowModule",
            {"FlowModuleId": "mod"},
            next_action="after",
            errors={"NoMatchingError": END},
        ),
        say("after", "Back."),
    )
    contact = run_flow(flow, world=parse_world({"flows": "flows"}, base=tmp_path))
    assert contact.heard == ["In the module."] and contact.state is ContactState.DISCONNECTED


def test_a_lex_bot_sharing_an_alias_id_with_the_worlds_is_not_taken_for_it() -> None:
    other = BOT.replace("PIZZA", "OTHERBOT")
    flow = lex_flow()
    flow["Actions"][0]["Parameters"]["LexV2Bot"]["AliasArn"] = other
    contact = run_flow(flow, world=world(**PIZZA_WORLD), caller=caller(says=("I want a large pizza",)))
    assert path(contact)[0] == ("bot", "NoMatchingError") and contact.warnings


def test_a_silent_second_bot_leaves_no_intent_of_the_first() -> None:
    flow = export(
        action(
            "first",
            "ConnectParticipantWithLexBot",
            {"LexV2Bot": {"AliasArn": BOT}},
            next_action="second",
            conditions=[("Equals", "OrderPizza", "second")],
            errors={"InputTimeLimitExceeded": END, "NoMatchingCondition": END, "NoMatchingError": END},
        ),
        action(
            "second",
            "ConnectParticipantWithLexBot",
            {"LexV2Bot": {"AliasArn": BOT}},
            next_action=END,
            errors={"InputTimeLimitExceeded": "say", "NoMatchingCondition": END, "NoMatchingError": END},
        ),
        say("say", "Intent: $.Lex.IntentName."),
    )
    contact = run_flow(flow, world=world(**PIZZA_WORLD), caller=caller(says=("order a pizza",)))
    assert contact.heard == ["Intent: ."]


def test_an_empty_agent_with_a_queue_targets_the_queue() -> None:
    flow = queue_flow(QUEUE)
    flow["Actions"][0]["Parameters"]["AgentId"] = ""
    assert run_flow(flow).queue_arn == QUEUE


def test_an_entry_of_only_the_termination_key_is_no_input() -> None:
    flow = stored_input(InputValidation={"CustomValidation": {"MaximumLength": "10"}})
    assert path(run_flow(flow, caller=caller("#")))[0] == ("account", "InputTimeLimitExceeded")


# ------------------------------------------------------------------ the remaining error branches


def test_end_module_outside_a_module_ends_the_flow() -> None:
    contact = run_flow(
        export(action("end-mod", "EndFlowModuleExecution", next_action=None), say("never", "Never."))
    )
    assert path(contact) == [("end-mod", "Success")] and contact.state is ContactState.DISCONNECTED


def test_metrics_without_a_queue_or_of_an_unknown_type_take_the_error_branch() -> None:
    no_queue = export(action("get", "GetMetricData", {}, errors={"NoMatchingError": "x"}), say("x", "x"))
    assert path(run_flow(no_queue))[0] == ("get", "NoMatchingError")
    unknown = metric_flow("NumberGreaterThan", "0", metric="NumberOfUnicorns")
    assert path(run_flow(unknown, world=world(**HOURS_WORLD)))[0] == ("metric", "NoMatchingError")


def test_dequeue_to_a_queue_the_world_lacks_or_that_is_full() -> None:
    other = QUEUE.replace("5d2cba7e", "7a57b363")
    mover = export(
        action(
            "move",
            "DequeueContactAndTransferToQueue",
            {"QueueId": other},
            errors={"QueueAtCapacity": "full", "NoMatchingError": "lost"},
        ),
        say("full", "Full."),
        say("lost", "Lost."),
    )
    assert path(run_flow(mover, world=world(queues={"Support": {"id": QUEUE}})))[0] == (
        "move",
        "NoMatchingError",
    )
    full = world(queues={"Other": {"id": other, "capacity": 0}})
    assert path(run_flow(mover, world=full))[0] == ("move", "QueueAtCapacity")


def test_attributes_that_resolve_to_nothing_or_to_a_bad_key_take_the_error_branch() -> None:
    flow_attribute = export(
        action(
            "set",
            "UpdateFlowAttributes",
            {"FlowAttributes": {"a": {"Value": "$.External.none"}}},
            errors={"NoMatchingError": "x"},
        ),
        say("x", "x"),
    )
    assert path(run_flow(flow_attribute))[0] == ("set", "NoMatchingError")
    bad_key = export(
        action(
            "set",
            "UpdateContactAttributes",
            {"Attributes": {"$.External.none": "v"}},
            errors={"NoMatchingError": "x"},
        ),
        say("x", "x"),
    )
    assert path(run_flow(bad_key))[0] == ("set", "NoMatchingError")
