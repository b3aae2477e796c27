"""Runs a contact through a contact flow, as Amazon Connect does (flow language 2019-10-30).

How it works. Starting at `StartAction`, each action is run (`actions.HANDLERS`) and takes one
branch: its `NextAction` on success, the `NextAction` of one of its `Errors` on failure, or the
`NextAction` of a condition. Every action run is appended to the contact's trace with the branch
taken, why, and the contact's clock. A contact always ends: when the flow does (an action with no
transition to take, a queue, a disconnect), when the caller hangs up (the scripted caller's time or
action), or at `MAX_STEPS` actions; `Contact.ended_because` says which.

What an action needs from outside the contact (a Lambda function, the SIP connector, the queues,
the local world's hours, bots and flows, the caller) comes from collaborators given to the
interpreter, so the interpreter itself is plain logic: tests pass coroutines and data, the local
twin passes the Lambda runtime and the SIP connector.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field

from kore_connect.contactflow.language import ErrorType
from kore_connect.contactflow.model import Flow
from kore_connect.twin.connect.actions import HANDLERS
from kore_connect.twin.connect.branch import CALLER_HUNG_UP, Branch, error
from kore_connect.twin.connect.caller import ScriptedCaller
from kore_connect.twin.connect.collaborators import (
    LambdaInvoker,
    LocalQueues,
    ThirdPartyTransfer,
    no_lambdas,
)
from kore_connect.twin.connect.contact import Contact, ContactState, Step
from kore_connect.twin.connect.contact_run import ContactRun, Frame
from kore_connect.twin.connect.world import World

MAX_STEPS = 1000  # a flow that loops forever is stopped
ASYNCHRONOUS_WAIT_SECONDS = 60.0  # how long a finished contact waits for its asynchronous invocations


@dataclass
class Interpreter:
    flow: Flow
    invoke_lambda: LambdaInvoker = no_lambdas
    transfer: ThirdPartyTransfer | None = None
    queues: LocalQueues = field(default_factory=LocalQueues)
    world: World = field(default_factory=World)
    caller: ScriptedCaller = field(default_factory=ScriptedCaller)

    async def run(self, contact: Contact) -> Contact:
        """Run `contact` through the flow until it ends; the contact holds the outcome and the trace."""
        caller = copy.deepcopy(self.caller)  # each contact's caller gives the whole script
        run = ContactRun(
            contact,
            self.world,
            caller,
            self.invoke_lambda,
            self.transfer,
            self.queues,
            frames=[Frame(self.flow)],
            started_at=self.world.start_time(),
        )
        contact.flow_attributes = run.frame.flow_attributes
        action_id: str | None = self.flow.start_action
        for _ in range(MAX_STEPS):
            if action_id is None or contact.ended:
                break
            hangs_up = caller.hangs_up_before(action_id, contact.clock)
            if hangs_up is not None:
                contact.state = ContactState.CALLER_HUNG_UP
                contact.ended_because = hangs_up
                break
            action = run.flow.action(action_id)
            try:
                branch = await HANDLERS[action.type](run, action)
            except Exception as exc:  # the action fails, the contact goes on, and the trace says why
                # (a collaborator's failure, or a defect of ours: the hostile-flow tests look for these)
                branch = error(action, ErrorType.NO_MATCHING_ERROR, f"{type(exc).__name__}: {exc}")
            if run.caller_gone and branch.name != CALLER_HUNG_UP:
                branch = Branch(CALLER_HUNG_UP, f"the caller hung up during it ({branch.reason})", None)
            contact.trace.append(
                Step(
                    action.identifier,
                    str(action.type),
                    branch.name,
                    branch.reason,
                    branch.sip,
                    clock=contact.clock,
                )
            )
            action_id = self._next(run, branch)
        else:
            contact.state = ContactState.FLOW_ERROR
            contact.ended_because = f"the flow ran {MAX_STEPS} actions without ending"
            contact.trace.append(Step("", "", "Stopped", contact.ended_because, clock=contact.clock))
        if not contact.ended:
            contact.state = ContactState.DISCONNECTED  # a flow that runs out of actions hangs up
        if not contact.ended_because:
            contact.ended_because = _why(contact)
        if run.asynchronous:  # asynchronous invocations run to their end, as they do in Lambda
            await asyncio.wait(run.asynchronous, timeout=ASYNCHRONOUS_WAIT_SECONDS)
        return contact

    @staticmethod
    def _next(run: ContactRun, branch: Branch) -> str | None:
        if branch.name == CALLER_HUNG_UP:
            run.contact.state = ContactState.CALLER_HUNG_UP
            if not run.contact.ended_because:
                run.contact.ended_because = f"{branch.reason} (at {run.contact.clock:g} s)"
        return branch.next_action


def _why(contact: Contact) -> str:
    last = contact.trace[-1] if contact.trace else None
    if last is None:
        return "the flow has no action to run"
    if contact.state is ContactState.DISCONNECTED and last.action_type in (
        "DisconnectParticipant",
        "EndFlowExecution",
    ):
        return f"the flow ended it ({last.action_type})"
    if contact.state is ContactState.DISCONNECTED:
        return f"the flow ran out of actions after {last.action_type} took {last.branch}: Connect hangs up"
    return f"{contact.state}: {last.reason}"
