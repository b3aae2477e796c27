"""Flow control actions: branches on values, loops, time, hours and metrics, and moving between
flows and modules."""

from __future__ import annotations

import hashlib

from kore_connect.contactflow.language import LOOP_COUNT_LIMIT, ErrorType
from kore_connect.contactflow.model import Action, Flow
from kore_connect.twin.connect.branch import (
    Branch,
    by_condition,
    condition_target,
    error,
    hung_up,
    result,
    success,
)
from kore_connect.twin.connect.contact_run import ContactRun
from kore_connect.twin.connect.world import AGENT_STATES, Queue

MODULE_DEPTH_LIMIT = 20  # modules invoked within modules: a module that invokes itself stops here

# CheckMetricData's agent metrics, by the world's name for each figure of the queue.
METRICS = {
    "NumberOfAgentsAvailable": "available",
    "NumberOfAgentsStaffed": "staffed",
    "NumberOfAgentsOnline": "online",
}


async def logging(run: ContactRun, action: Action) -> Branch:
    run.contact.logging_enabled = action.parameters.get("FlowLoggingBehavior") == "Enabled"
    return success(action, f"flow logging {'enabled' if run.contact.logging_enabled else 'disabled'}")


async def compare(run: ContactRun, action: Action) -> Branch:
    raw = str(action.parameters.get("ComparisonValue", ""))
    value = run.resolve(raw)
    if value is None:
        return error(action, ErrorType.NO_MATCHING_CONDITION, f"{raw} resolves to nothing")
    return by_condition(action, value, f"{raw} = {value!r}", run.resolve)


async def loop(run: ContactRun, action: Action) -> Branch:
    """`LoopCount` times ContinueLooping, then DoneLooping once, and the count starts again."""
    raw = str(action.parameters.get("LoopCount", "0"))
    resolved = run.resolve(raw) or ""
    if not resolved.isdigit():
        return result(action, "DoneLooping", f"LoopCount {raw} = {resolved!r} is not a count")
    count, done = min(int(resolved), LOOP_COUNT_LIMIT), run.frame.loops.get(action.identifier, 0)
    if done < count:
        run.frame.loops[action.identifier] = done + 1
        return result(action, "ContinueLooping", f"loop {done + 1} of {count}")
    run.frame.loops[action.identifier] = 0
    return result(action, "DoneLooping", f"looped {count} times")


async def distribute(run: ContactRun, action: Action) -> Branch:
    """A number from 1 to 100, the same for the same contact and action (so that runs repeat)."""
    seed = hashlib.sha256(f"{run.contact.contact_id}/{action.identifier}".encode()).digest()
    number = seed[0] * 256 + seed[1]
    return by_condition(action, str(number % 100 + 1), f"drew {number % 100 + 1} of 100", run.resolve)


async def end_flow(run: ContactRun, action: Action) -> Branch:
    return Branch("Success", "the flow ends here", None)


async def transfer_to_flow(run: ContactRun, action: Action) -> Branch:
    found = _library_flow(run, action, "ContactFlowId", "flow")
    if isinstance(found, Branch):
        return found
    flow, wanted = found
    run.enter(flow)
    return Branch("Success", f"transferred to the flow {flow.name or wanted}", flow.start_action)


async def invoke_module(run: ContactRun, action: Action) -> Branch:
    found = _library_flow(run, action, "FlowModuleId", "flow module")
    if isinstance(found, Branch):
        return found
    module, wanted = found
    if len(run.frames) > MODULE_DEPTH_LIMIT:
        return error(
            action, ErrorType.NO_MATCHING_ERROR, f"modules invoked within modules {MODULE_DEPTH_LIMIT} deep"
        )
    run.enter(module, module=True, returns_to=action.next_action)
    return Branch("Success", f"runs the module {module.name or wanted}", module.start_action)


def _library_flow(run: ContactRun, action: Action, parameter: str, what: str) -> tuple[Flow, str] | Branch:
    """The world's flow that `parameter` names, and the name; else the error branch, with a warning."""
    wanted = run.resolve(str(action.parameters.get(parameter, ""))) or ""
    flow = run.world.find_flow(wanted)
    if flow is None:
        run.warn(f"the {what} {wanted or '(none named)'} is not in the local world's flows")
        return error(action, ErrorType.NO_MATCHING_ERROR, f"no {what} {wanted!r} in the local world")
    return flow, wanted


async def end_module(run: ContactRun, action: Action) -> Branch:
    if not run.frame.module:
        return Branch("Success", "not in a module: the flow ends", None)
    returns_to = run.leave_module()
    return Branch("Success", "the module ends; its invoker goes on", returns_to)


async def flow_attributes(run: ContactRun, action: Action) -> Branch:
    updated = dict(run.contact.flow_attributes)
    for key, value in action.parameters.get("FlowAttributes", {}).items():
        resolved = run.resolve(str(value.get("Value", "")))
        if resolved is None:
            return error(
                action, ErrorType.NO_MATCHING_ERROR, f"{key}: {value.get('Value')} resolves to nothing"
            )
        updated[key] = resolved
    run.contact.flow_attributes.clear()
    run.contact.flow_attributes.update(updated)
    return success(action, "set flow attributes " + ", ".join(action.parameters.get("FlowAttributes", {})))


async def wait(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    raw = parameters.get("TimeLimitSeconds", parameters.get("TimeoutSeconds", "0"))
    limit = run.seconds(raw, 0.0)
    if limit is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, f"the time limit {raw} is not a number of seconds")
    if not run.advance(limit):
        return hung_up(f"the caller hung up during a wait of {limit:g} s")
    return result(action, "WaitCompleted", f"waited {limit:g} s")


async def check_hours(run: ContactRun, action: Action) -> Branch:
    wanted = run.resolve(str(action.parameters.get("HoursOfOperationId", ""))) or ""
    if not wanted:
        queue = _queue_of(run, "")
        if queue is None:
            return error(action, ErrorType.NO_MATCHING_ERROR, "no hours named and no target queue")
        if queue.hours is None:
            return _hours_result(
                action, True, f"the queue {queue.name} has no hours in the local world: open"
            )
        wanted = queue.hours
    hours = run.world.find_hours(wanted)
    if hours is None:
        run.warn(f"the hours of operation {wanted} are not in the local world")
        return error(
            action, ErrorType.NO_MATCHING_ERROR, f"no hours of operation {wanted!r} in the local world"
        )
    now = run.now()
    open_ = hours.is_open(now)
    local = now.astimezone(hours.timezone)
    reason = f"{hours.name} at {local:%A %H:%M} {hours.timezone.key}: {'open' if open_ else 'closed'}"
    return _hours_result(action, open_, reason)


def _hours_result(action: Action, open_: bool, reason: str) -> Branch:
    answer = "True" if open_ else "False"
    target = condition_target(action, answer)  # both answers need their condition: no NextAction here
    if target is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, f"{reason}; no condition for {answer}")
    return Branch(f"Condition: Equals {answer}", reason, target)


async def check_metric(run: ContactRun, action: Action) -> Branch:
    queue = _queue_of(run, str(action.parameters.get("QueueId", "")))
    if queue is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "no queue to read metrics of")
    kind = str(action.parameters.get("MetricType", ""))
    value = _metric(queue, kind)
    if value is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, f"unknown metric type {kind!r}")
    return by_condition(action, str(value), f"{kind} of {queue.name} = {value}", run.resolve)


async def get_metrics(run: ContactRun, action: Action) -> Branch:
    queue = _queue_of(run, str(action.parameters.get("QueueId", "")))
    if queue is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "no queue to read metrics of")
    values = {
        "Metrics.Queue.Name": queue.name,
        "Metrics.Queue.ARN": queue.arn,
        "Metrics.Queue.Size": str(queue.contacts),
        "Metrics.Queue.OldestContactAge": str(queue.oldest_contact_age),
    }
    for state in AGENT_STATES:
        name = "".join(part.capitalize() for part in state.split("_"))
        values[f"Metrics.Agents.{name}.Count"] = str(queue.agents.get(state, 0))
    run.contact.system.update(values)
    available = queue.agents.get("available", 0)
    return success(action, f"metrics of {queue.name}: {queue.contacts} queued, {available} agents available")


def _metric(queue: Queue, kind: str) -> int | None:
    if kind in METRICS:
        return queue.agents.get(METRICS[kind], 0)
    return {
        "NumberOfContactsInQueue": queue.contacts,
        "OldestContactInQueueAgeSeconds": queue.oldest_contact_age,
    }.get(kind)


def _queue_of(run: ContactRun, wanted: str) -> Queue | None:
    """The queue named (resolved), else the contact's target queue; a warning when the world lacks it."""
    name = (run.resolve(wanted) if wanted else None) or run.contact.queue_arn or ""
    if not name:
        return None
    queue = run.world.find_queue(name)
    if queue is None:
        run.warn(f"the queue {name} is not in the local world")
    return queue
