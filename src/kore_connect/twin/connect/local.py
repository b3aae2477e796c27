"""One contact through a flow on the local twin: the template's functions on the embedded store,
the SIP connector to a voice gateway, the local world and the caller, the interpreter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kore_connect.aws_events import LOCAL_INSTANCE_ARN
from kore_connect.contactflow.model import Flow
from kore_connect.twin.connect.caller import ScriptedCaller
from kore_connect.twin.connect.collaborators import LocalQueues
from kore_connect.twin.connect.connector import Gateway, SipConnector
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.interpreter import Interpreter
from kore_connect.twin.connect.lambdas import LocalLambdas, WorldLambdas
from kore_connect.twin.connect.world import World
from kore_connect.twin.lambda_runtime.runtime import FunctionSpec, StoreChoice
from kore_connect.twin.template import describe_api, load_template


@dataclass(frozen=True, slots=True)
class LocalContactSettings:
    gateway: Gateway | None  # None: no voice gateway (a transfer to a voice connector fails)
    store: StoreChoice  # which session store the template's functions use
    caller: str = "+14155550123"
    system: str = "+18005550100"
    caller_hangs_up_after: float | None = None
    max_call_seconds: float = 3600.0
    local_host: str | None = None  # None: the address that routes to the gateway
    contact_id: str | None = None  # None: a fresh one, as Connect makes
    aliases: Mapping[str, str] = field(default_factory=dict)  # a flow's function name -> a template function
    function_log: Path | None = None  # where the functions' log goes (None: our stderr)
    world: World = field(default_factory=World)
    caller_script: ScriptedCaller | None = None  # None: the default caller


def template_functions(store: StoreChoice, log_path: Path | None = None) -> dict[str, FunctionSpec]:
    """The template's functions, as the flow may invoke them, on `store`."""
    local = store.environment()
    return {
        name: FunctionSpec(
            name,
            spec.handler,
            spec.timeout_seconds,
            {**spec.environment, **local},
            spec.memory_mb,
            log_path=log_path,
        )
        for name, spec in describe_api(load_template()).functions.items()
    }


def invoked_functions(flows: Iterable[Flow]) -> list[str]:
    """The Lambda ARNs the flows invoke (literal ones; a `$.` reference is known only at run time)."""
    return sorted(
        {
            str(action.parameters["LambdaFunctionARN"])
            for flow in flows
            for action in flow.actions.values()
            if str(action.type) == "InvokeLambdaFunction"
            and not str(action.parameters.get("LambdaFunctionARN", "$.")).startswith("$.")
        }
    )


async def run_contact(
    flow: Flow, settings: LocalContactSettings, lambdas: LocalLambdas | None = None
) -> Contact:
    """Run one inbound voice contact through `flow`; the contact holds the trace and the outcome.

    `lambdas`: functions shared by many contacts (kept running); None: this contact's own."""
    own = lambdas is None
    if lambdas is None:
        functions = template_functions(settings.store, log_path=settings.function_log)
        lambdas = LocalLambdas(functions, aliases=settings.aliases)
        await lambdas.warm(invoked_functions([flow]))  # before the contact: the twin's start is not its
    connector = (
        None
        if settings.gateway is None
        else SipConnector(
            settings.gateway,
            local_host=settings.local_host,
            caller_hangs_up_after=settings.caller_hangs_up_after,
            max_call_seconds=settings.max_call_seconds,
        )
    )
    contact = Contact.inbound(
        customer=settings.caller,
        system=settings.system,
        instance_arn=LOCAL_INSTANCE_ARN,
        contact_id=settings.contact_id,
    )
    try:
        interpreter = Interpreter(
            flow,
            invoke_lambda=WorldLambdas(settings.world, lambdas),
            transfer=connector,
            queues=LocalQueues(),
            world=settings.world,
            caller=settings.caller_script or ScriptedCaller(),
        )
        await interpreter.run(contact)
    finally:
        if own:
            await lambdas.close()
    return contact
