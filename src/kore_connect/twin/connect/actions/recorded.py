"""Recorded actions: settings with no audible effect in a local call (recording, media streaming,
the voice, event hooks, routing criteria, tags, views, customer profiles, cases, Wisdom/Q, Voice
ID). Each is kept on the contact with its parameters resolved, shown in the trace, and takes the
branch the local world says for it (by action identifier, else by type), Success by default."""

from __future__ import annotations

from typing import Any

from kore_connect.contactflow.language import ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.branch import Branch, condition_target, error, success
from kore_connect.twin.connect.contact_run import ContactRun


async def recorded(run: ContactRun, action: Action) -> Branch:
    resolved = _resolved(run, action.parameters)
    run.contact.settings[str(action.type)] = resolved if isinstance(resolved, dict) else {"value": resolved}
    chosen = run.world.branches.get(action.identifier) or run.world.branches.get(str(action.type))
    if chosen is None or chosen == "Success":
        return success(action, "recorded (no effect on a local call)")
    if chosen in ErrorType.__members__.values():
        return error(action, ErrorType(chosen), "the local world chooses this branch")
    target = condition_target(action, chosen)
    if str(action.type) == "ShowView":
        run.contact.system["Views.Action"] = chosen  # the button the agent or customer chose
    if target is None:
        run.warn(f"the local world's branch {chosen!r} for {action.label} is not one of its branches")
        return success(action, f"recorded; the local world's branch {chosen!r} is not one it has")
    return Branch(f"Condition: Equals {chosen}", "the local world chooses this branch", target)


def _resolved(run: ContactRun, value: Any) -> Any:
    if isinstance(value, str):
        return run.resolve(value)
    if isinstance(value, dict):
        return {key: _resolved(run, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(run, item) for item in value]
    return value
