"""Routing actions: where the contact waits for an agent (a queue, an agent, a callback)."""

from __future__ import annotations

from kore_connect.contactflow.language import ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.branch import Branch, error, success
from kore_connect.twin.connect.contact import ContactState
from kore_connect.twin.connect.contact_run import ContactRun
from kore_connect.twin.connect.phone import is_e164


async def target_queue(run: ContactRun, action: Action) -> Branch:
    if action.parameters.get("AgentId") or not action.parameters.get("QueueId"):
        agent = run.resolve(str(action.parameters.get("AgentId", "")))
        found = run.world.find_agent(agent or "")
        if found is None:
            run.warn(f"the agent {agent or '(none named)'} is not in the local world")
            return error(action, ErrorType.NO_MATCHING_ERROR, f"no agent {agent!r}")
        run.contact.queue_arn = f"{run.contact.instance_arn}/agent/{found.rpartition('/')[2]}"
        run.contact.system["Queue.Name"] = f"agent {found}"
        return success(action, f"target: the agent {found}'s queue")
    wanted = run.resolve(str(action.parameters.get("QueueId", ""))) or ""
    queue = run.world.find_queue(wanted)
    if queue is None:
        run.warn(f"the queue {wanted or '(none named)'} is not in the local world")
        return error(action, ErrorType.NO_MATCHING_ERROR, f"no queue {wanted!r}")
    run.contact.queue_arn = queue.arn
    run.contact.system["Queue.Name"] = queue.name
    run.contact.system["Queue.ARN"] = queue.arn
    return success(action, f"target queue {queue.arn}")


async def to_queue(run: ContactRun, action: Action) -> Branch:
    if run.contact.queue_arn is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "no target queue was set")
    queue = run.world.find_queue(run.contact.queue_arn)
    # the world's figures for the queue: its capacity, and the contacts already in it
    capacity, queued = (queue.capacity, queue.contacts) if queue is not None else (None, 0)
    if not run.queues.enqueue(run.contact, run.contact.queue_arn, capacity, already_waiting=queued):
        return error(action, ErrorType.QUEUE_AT_CAPACITY, f"{run.contact.queue_arn} is at capacity")
    run.contact.state = ContactState.QUEUED
    # Transferring to a queue ends the flow: the contact now waits for an agent.
    return Branch("Success", f"in queue {run.contact.queue_arn}, waiting for an agent", None)


async def to_agent(run: ContactRun, action: Action) -> Branch:
    """TransferContactToAgent: to the agent a transfer-to-agent flow targets."""
    if run.contact.queue_arn is None or "/agent/" not in run.contact.queue_arn:
        return error(
            action, ErrorType.NO_MATCHING_ERROR, "no agent was targeted (UpdateContactTargetQueue AgentId)"
        )
    run.contact.state = ContactState.QUEUED
    return Branch("Success", f"transferred to {run.contact.queue_arn.rpartition('/')[2]}", None)


async def dequeue(run: ContactRun, action: Action) -> Branch:
    """DequeueContactAndTransferToQueue: from the queue the contact is in, to another."""
    previous = run.contact.queue_arn
    branch = await target_queue(run, action)
    if branch.name != "Success":
        return branch
    if previous and previous in run.queues.waiting and run.contact in run.queues.waiting[previous]:
        run.queues.waiting[previous].remove(run.contact)
    return await to_queue(run, action)


async def callback_number(run: ContactRun, action: Action) -> Branch:
    raw = str(action.parameters.get("CallbackNumber", ""))
    number = run.resolve(raw) or ""
    if not is_e164(number):
        return error(
            action, ErrorType.INVALID_CALLBACK_NUMBER, f"{raw} = {number!r} is not a number in E.164 form"
        )
    if run.world.phone_outcome(number) == "not-dialable":
        return error(action, ErrorType.CALLBACK_NUMBER_NOT_DIALABLE, f"{number} cannot be dialled")
    run.contact.system["CustomerCallbackNumber"] = number
    return success(action, f"callback number {number}")


async def create_callback(run: ContactRun, action: Action) -> Branch:
    number = run.contact.system.get("CustomerCallbackNumber") or run.contact.customer_address
    if run.contact.queue_arn is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "no target queue for the callback")
    run.contact.settings[str(action.type)] = {
        "number": number,
        "queue": run.contact.queue_arn,
        **{key: value for key, value in action.parameters.items() if isinstance(value, str)},
    }
    return success(action, f"a callback to {number} from {run.contact.queue_arn}")
