"""The local world file (`connect run --world`): what it defines, and every mistake in it as one line
naming the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kore_connect.twin.connect.world import WorldError, load_world, parse_world

EXAMPLE = """
clock: 2026-11-30T10:30:00-05:00
hours:
  Office:
    id: 6f0f1c0e-2d54-4a8a-9b8e-0f1d2c3b4a59
    timezone: America/New_York
    open: {Monday: ["09:00-17:00"], Saturday: ["10:00-12:30", "13:00-24:00"]}
queues:
  Support:
    id: arn:aws:connect:us-east-1:111122223333:instance/x/queue/5d2cba7e
    hours: Office
    agents: {online: 3, available: 1}
    contacts: 4
agents: [jdoe]
lambdas:
  arn:aws:lambda:us-east-1:111122223333:function:lookup:
    response: {status: gold}
lex_bots:
  arn:aws:lex:us-east-1:111122223333:bot-alias/B/A:
    intents:
      Agent: {utterances: [talk to an agent]}
phone_numbers: {"+15551230000": busy, default: no-answer}
branches: {ShowView: Next}
"""


def test_a_world_file_defines_what_a_flow_names(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(EXAMPLE)
    world = load_world(path)
    assert world.clock == dt.datetime.fromisoformat("2026-11-30T10:30:00-05:00")
    office = world.find_hours(
        "arn:aws:connect:us-east-1:111122223333:instance/x/operating-hours/6f0f1c0e-2d54-4a8a-9b8e-0f1d2c3b4a59"
    )
    assert office is not None and office is world.find_hours("Office")
    assert office.is_open(dt.datetime.fromisoformat("2026-11-30T16:59:00-05:00"))
    assert not office.is_open(dt.datetime.fromisoformat("2026-11-30T17:00:00-05:00"))
    assert office.is_open(dt.datetime.fromisoformat("2026-12-05T23:59:00-05:00"))  # until midnight
    support = world.find_queue("arn:aws:connect:us-east-1:111122223333:instance/x/queue/5d2cba7e")
    assert support is not None and support.name == "Support" and support.agents["available"] == 1
    assert world.find_queue("arn:aws:connect:::queue/other") is None  # a given world is all there is
    assert world.find_agent("jdoe") == "jdoe" and world.find_agent("someone") is None
    assert (
        world.phone_outcome("+15551230000") == "busy" and world.phone_outcome("+15559999999") == "no-answer"
    )
    assert world.branches == {"ShowView": "Next"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"queue": {}}, "world.yaml: queue: unknown key (known: agents, branches, clock, flows, hours"),
        ({"clock": "yesterday"}, "world.yaml: clock: 'yesterday' is not a time"),
        (
            {"hours": {"Office": {"timezone": "Mars/Olympus"}}},
            "world.yaml: hours.Office.timezone: 'Mars/Olympus' is not a time zone",
        ),
        (
            {"hours": {"Office": {"open": {"Funday": []}}}},
            "world.yaml: hours.Office.open.Funday: a day is one of Monday",
        ),
        (
            {"hours": {"Office": {"open": {"Monday": ["9-5"]}}}},
            "world.yaml: hours.Office.open.Monday[0]: '9-5' is not a span such as 09:00-17:00",
        ),
        (
            {"hours": {"Office": {"open": {"Monday": ["17:00-09:00"]}}}},
            "hours.Office.open.Monday[0]: '17:00-09:00' ends before it starts",
        ),
        (
            {"queues": {"Support": {"hours": "Nightshift"}}},
            "world.yaml: queues.Support.hours: no hours named 'Nightshift' under hours",
        ),
        (
            {"queues": {"Support": {"agents": {"online": -1}}}},
            "world.yaml: queues.Support.agents.online: must be a whole number >= 0",
        ),
        (
            {"queues": {"Support": {"agents": {"sleeping": 1}}}},
            "world.yaml: queues.Support.agents.sleeping: unknown key",
        ),
        (
            {"lambdas": {"arn:x": {"response": {}, "error": "e"}}},
            "world.yaml: lambdas.arn:x: give exactly one of response, function, python, error",
        ),
        (
            {"lambdas": {"arn:x": {"python": "no_such_module:handler"}}},
            "world.yaml: lambdas.arn:x.python: cannot import 'no_such_module:handler'",
        ),
        (
            {"lex_bots": {"bot": {"intents": {"A": {"utterances": "hello"}}}}},
            "world.yaml: lex_bots.bot.intents.A.utterances: must be a list",
        ),
        (
            {"phone_numbers": {"+1555": "maybe"}},
            "world.yaml: phone_numbers.+1555: 'maybe' is not one of answers, busy, no-answer",
        ),
        ({"flows": "nowhere"}, "world.yaml: flows: "),
        (["a list"], "world.yaml: the document: must be a mapping"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(tmp_path: Path, document: Any, message: str) -> None:
    with pytest.raises(WorldError) as raised:
        parse_world(document, base=tmp_path, name="world.yaml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("text", ["clock: [unclosed", b"\xff\xfe", "hours: 3"])
def test_a_file_that_is_not_a_world_is_one_line(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "world.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(WorldError) as raised:
        load_world(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_flow_in_the_library_that_does_not_load_is_named(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "broken.json").write_text('{"Version": "2019-10-30"}')
    with pytest.raises(WorldError, match=r"flows: broken\.json: Actions must be a non-empty list"):
        parse_world({"flows": "flows"}, base=tmp_path, name="world.yaml")


def test_the_world_the_docs_show_loads(tmp_path: Path) -> None:
    """docs/local-connect.md's example is a world that loads, with its flow library in place."""
    from tests.conftest import REPO

    docs = (REPO / "docs" / "local-connect.md").read_text()
    example = (
        docs.split("## The local world (`--world world.yaml`)", 1)[1]
        .split("```yaml\n", 1)[1]
        .split("```", 1)[0]
    )
    (tmp_path / "flows").mkdir()
    (tmp_path / "world.yaml").write_text(example)
    world = load_world(tmp_path / "world.yaml")
    assert world.find_hours("Office") is not None and world.find_queue("Support") is not None
    assert world.lambdas and world.lex_bots and world.phone_outcome("+15551230000") == "busy"


def test_the_librarys_placeholders_are_filled_as_the_flows_are(tmp_path: Path) -> None:
    import json

    from tests.console_flows import action, export

    (tmp_path / "flows").mkdir()
    module = export(
        action("q", "UpdateContactTargetQueue", {"QueueId": "${QueueArn}"}, errors={"NoMatchingError": "end"})
    )
    (tmp_path / "flows" / "module.json").write_text(json.dumps(module))
    (tmp_path / "flows" / "broken.txt").write_text("not a flow, not read")
    (tmp_path / "world.yaml").write_text("flows: flows\n")
    world = load_world(tmp_path / "world.yaml", {"QueueArn": "arn:aws:connect:::queue/q1"})
    flow = world.find_flow("module")
    assert flow is not None and flow.action("q").parameters["QueueId"] == "arn:aws:connect:::queue/q1"
    (tmp_path / "flows" / "bad.json").write_text("{")
    with pytest.raises(WorldError, match=r"flows: bad\.json: not valid JSON"):
        load_world(tmp_path / "world.yaml")


def test_a_python_function_beside_the_world_file_is_found_and_one_that_fails_to_load_is_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules_for_world_test.py").write_text(
        "def handler(event, context):\n    return {'ok': 'yes'}\n"
    )
    (tmp_path / "broken_for_world_test.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "world.yaml").write_text("lambdas: {arn:x: {python: 'rules_for_world_test:handler'}}\n")
    entry = load_world(tmp_path / "world.yaml").lambdas["arn:x"]
    assert entry.python is not None and entry.python({}, None) == {"ok": "yes"}
    (tmp_path / "world.yaml").write_text("lambdas: {arn:x: {python: 'broken_for_world_test:handler'}}\n")
    with pytest.raises(WorldError) as raised:
        load_world(tmp_path / "world.yaml")
    assert "lambdas.arn:x.python: cannot import" in str(raised.value) and "boom at import" in str(
        raised.value
    )


@pytest.mark.parametrize("text", ["0\n", "false\n", "'text'\n"])
def test_a_document_that_is_not_a_mapping_is_refused_and_an_empty_file_is_the_empty_world(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(WorldError, match="must be a mapping"):
        load_world(path)
    path.write_text("")
    assert load_world(path).given
