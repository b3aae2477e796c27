"""One contact's run through flows: the contact, the flows it is in (a flow, and the modules it
invoked), the local world and the caller, and what every action uses from them."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from kore_connect.contactflow.model import Flow
from kore_connect.twin.connect.caller import ScriptedCaller
from kore_connect.twin.connect.collaborators import LambdaInvoker, LocalQueues, ThirdPartyTransfer
from kore_connect.twin.connect.contact import CallerInput, Contact
from kore_connect.twin.connect.references import resolve
from kore_connect.twin.connect.world import World
from kore_connect.twin.lambda_runtime.invocation import Invocation


@dataclass
class Frame:
    """A flow the contact is in. A module's frame says where its invoker goes on when it ends."""

    flow: Flow
    flow_attributes: dict[str, str] = field(default_factory=dict)
    returns_to: str | None = None  # a module: the invoking action's NextAction
    module: bool = False
    loops: dict[str, int] = field(default_factory=dict)  # Loop action -> times it continued


@dataclass
class ContactRun:
    contact: Contact
    world: World
    caller: ScriptedCaller
    invoke_lambda: LambdaInvoker
    transfer: ThirdPartyTransfer | None
    queues: LocalQueues
    frames: list[Frame]
    asynchronous: set[asyncio.Future[Invocation]] = field(default_factory=set)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    caller_gone: bool = False  # the caller hung up during the action running

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    @property
    def flow(self) -> Flow:
        return self.frame.flow

    def resolve(self, value: str) -> str | None:
        return resolve(value, self.contact)

    def now(self) -> dt.datetime:
        """The wall-clock time on the contact's clock (the world's clock, advanced as it runs)."""
        return self.started_at + dt.timedelta(seconds=self.contact.clock)

    def advance(self, seconds: float) -> bool:
        """Move the contact's clock on; False when the caller hangs up on the way (the clock then
        stops at the moment they did, and `caller_gone` says so)."""
        until = self.contact.clock + max(0.0, seconds)
        if until > self.caller.hang_up_after:  # at that very moment they heard it all
            self.contact.clock = max(self.contact.clock, self.caller.hang_up_after)
            self.caller_gone = True
            return False
        self.contact.clock = until
        return True

    def seconds(self, raw: object, default: float) -> float | None:
        """A time limit as a flow gives it (whole seconds, or a reference to them); None when it
        is not a number of seconds."""
        if raw is None:
            return default
        value = self.resolve(raw) if isinstance(raw, str) else None
        try:
            seconds = float(value) if value not in (None, "") else None
        except ValueError:
            return None
        return seconds if seconds is not None and 0 <= seconds < float("inf") else None

    def warn(self, message: str) -> None:
        """What the flow named and the local world lacks: shown with the contact, once each."""
        if message not in self.contact.warnings:
            self.contact.warnings.append(message)

    def given(self, action_id: str, kind: str, value: str | None) -> None:
        self.contact.inputs.append(CallerInput(action_id, kind, value, self.contact.clock))

    def enter(self, flow: Flow, *, module: bool = False, returns_to: str | None = None) -> None:
        """Start running `flow`: a module on top of the current flow, or a flow in its place."""
        if not module:
            self.frames.clear()
        self.frames.append(Frame(flow, returns_to=returns_to, module=module))
        self.contact.flow_attributes = self.frame.flow_attributes

    def leave_module(self) -> str | None:
        """End the running module; where its invoker goes on."""
        frame = self.frames.pop()
        self.contact.flow_attributes = self.frame.flow_attributes
        return frame.returns_to
