"""Small flows written as the Amazon Connect console exports them (flow language 2019-10-30), and a
way to run one through the local Connect with a scripted caller and a local world."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from kore_connect.contactflow.model import Flow
from kore_connect.twin.connect.caller import ScriptedCaller
from kore_connect.twin.connect.collaborators import LambdaInvoker, LocalQueues
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.interpreter import Interpreter
from kore_connect.twin.connect.lambdas import LocalLambdas, WorldLambdas
from kore_connect.twin.connect.world import World

INSTANCE = "arn:aws:connect:us-east-1:111122223333:instance/0c3c4d1e-58f4-4fb1-a0b4-1f3a5c7d9e21"
END = "end"  # every flow built here ends with a DisconnectParticipant of this identifier


def action(
    identifier: str,
    type_: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    next_action: str | None = END,
    errors: Mapping[str, str] | None = None,
    conditions: Sequence[tuple[str, str, str]] = (),  # (operator, operand, next action)
) -> dict[str, Any]:
    transitions: dict[str, Any] = {}
    if next_action is not None:
        transitions["NextAction"] = next_action
    if errors:
        transitions["Errors"] = [{"NextAction": target, "ErrorType": kind} for kind, target in errors.items()]
    if conditions:
        transitions["Conditions"] = [
            {"NextAction": target, "Condition": {"Operator": operator, "Operands": [operand]}}
            for operator, operand, target in conditions
        ]
    return {
        "Parameters": dict(parameters or {}),
        "Identifier": identifier,
        "Type": type_,
        "Transitions": transitions,
    }


def say(identifier: str, text: str, next_action: str | None = END) -> dict[str, Any]:
    return action(
        identifier,
        "MessageParticipant",
        {"Text": text},
        next_action=next_action,
        errors={"NoMatchingError": END},
    )


def export(*actions: dict[str, Any], name: str = "test flow") -> dict[str, Any]:
    """The flow document: the actions given (the first starts), then the disconnect they end on."""
    every = [*actions, action(END, "DisconnectParticipant", next_action=None)]
    return {
        "Version": "2019-10-30",
        "StartAction": every[0]["Identifier"],
        "Metadata": {"entryPointPosition": {"x": 40, "y": 40}, "ActionMetadata": {}, "name": name},
        "Actions": every,
    }


def run_flow(
    document: dict[str, Any],
    *,
    world: World | None = None,
    caller: ScriptedCaller | None = None,
    invoke_lambda: LambdaInvoker | None = None,  # None: the world's functions, else none
    queues: LocalQueues | None = None,
) -> Contact:
    contact = Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn=INSTANCE)
    world = world or World()
    interpreter = Interpreter(
        Flow.parse(document),
        invoke_lambda=invoke_lambda or WorldLambdas(world, LocalLambdas({})),
        world=world,
        caller=caller or ScriptedCaller(),
        queues=queues or LocalQueues(),
    )
    return asyncio.run(interpreter.run(contact))


def path(contact: Contact) -> list[tuple[str, str]]:
    """The actions run and the branch each took."""
    return [(step.action_id, step.branch) for step in contact.trace]
