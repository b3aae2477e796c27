"""`kore-connect connect`: the local Amazon Connect."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from kore_connect import config
from kore_connect.cli.errors import fail, warn
from kore_connect.cli.tables import wrapping_table
from kore_connect.errors import KoreConnectError
from kore_connect.twin.connect.contact import ContactRecord
from kore_connect.twin.connect.local import run_contact

if TYPE_CHECKING:
    from kore_connect.contactflow.model import Flow
    from kore_connect.twin.connect.caller import ScriptedCaller
    from kore_connect.twin.connect.local import LocalContactSettings
    from kore_connect.twin.connect.world import World
    from kore_connect.twin.local.running import RunningUp
    from kore_connect.twin.local.store import LocalStore

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
app = typer.Typer(help="The local Amazon Connect: run exported contact flows.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
notes = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


@app.command("run")
def run(
    flow_file: Annotated[
        Path, typer.Argument(metavar="FLOW.json", help="A contact flow as Connect exports it.")
    ],
    gateway: Annotated[
        str | None,
        typer.Option(
            help="The voice gateway the flow's connector calls: HOST:PORT (none: such a transfer fails)."
        ),
    ] = None,
    transport: Annotated[str, typer.Option(help="SIP transport to the gateway: udp or tcp.")] = "udp",
    caller: Annotated[
        str, typer.Option(help="The caller's number ($.CustomerEndpoint.Address).")
    ] = "+14155550123",
    db: Annotated[
        Path | None,
        typer.Option(
            help="The SQLite store the flow's functions read (default: that of the kore-connect up whose "
            f"gateway is --gateway, else {config.DEFAULT_SQLITE_PATH})."
        ),
    ] = None,
    caller_hangs_up_after: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds after the gateway answers at which the caller hangs up."),
    ] = None,
    max_call_seconds: Annotated[
        float,
        typer.Option(min=1, help="Hang up a transferred call the gateway has not ended after this long."),
    ] = 3600.0,
    local_host: Annotated[
        str | None,
        typer.Option(help="The local address to call from (default: the one routed to the gateway)."),
    ] = None,
    function: Annotated[
        list[str] | None,
        typer.Option(
            "--function",
            help="NAME=FUNCTION: the flow's Lambda function NAME runs the template's FUNCTION "
            "(by default names match the template's functions, ignoring case).",
        ),
    ] = None,
    contact_id: Annotated[
        str | None, typer.Option(help="The contact ID to use (default: a fresh UUID, as Connect makes).")
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="NAME=VALUE: fill the flow's ${NAME}, a placeholder a deployment template left in it "
            "(repeatable). One left unset stays as it is, named in a warning.",
        ),
    ] = None,
    world_file: Annotated[
        Path | None,
        typer.Option(
            "--world",
            metavar="WORLD.yaml",
            help="The local world: hours, queues and metrics, Lambda functions, Lex bots, flows, phone "
            "numbers, the clock (see docs/local-connect.md). Without one, any queue exists and nothing else.",
        ),
    ] = None,
    keys: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="DTMF the caller enters, in order, one entry per input block (e.g. 1, 12#; repeatable).",
        ),
    ] = None,
    utterances: Annotated[
        list[str] | None,
        typer.Option("--say", help="What the caller says to a Lex bot, in order (repeatable)."),
    ] = None,
    hang_up_at: Annotated[
        str | None,
        typer.Option(
            help="When the caller hangs up: SECONDS on the contact's clock, or an action identifier "
            "the flow reaches (default: after 600 s)."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")] = False,
) -> None:
    """Run one inbound call through FLOW.json: prompts, input, Lambda calls, transfers, attributes, queue."""
    from kore_connect.cli.up import private_home
    from kore_connect.private_files import FOLDER_MODE
    from kore_connect.twin.connect.connector import Gateway
    from kore_connect.twin.connect.local import LocalContactSettings
    from kore_connect.twin.local.running import IgnoredRunningUp, running_at
    from kore_connect.twin.local.store import LocalStore

    if transport not in ("udp", "tcp"):
        fail(f"--transport {transport!r}: use udp or tcp")
    if contact_id is not None and not _UUID.fullmatch(contact_id):
        fail(f"--contact-id {contact_id!r}: a contact ID is a lower-case UUID")
    values = _assignments(assignments or [])
    flow, used = _load(flow_file, values)
    world = _world(world_file, values)
    _unused_assignments(values, used | world.placeholders_used, world_file is not None)
    script = _caller(flow, keys or [], utterances or [], hang_up_at)
    sip_transport: Literal["udp", "tcp"] = "tcp" if transport == "tcp" else "udp"
    # None: no gateway, so a transfer to a voice connector takes its error branch
    sip_gateway = Gateway(*_host_port(gateway), sip_transport) if gateway is not None else None
    running = None
    try:
        if sip_gateway is not None and db is None and _is_this_machine(sip_gateway.host):
            running = running_at(sip_gateway.port)
    except IgnoredRunningUp as exc:
        warn(f"{exc}; the flow runs on a store of its own")
        running = None
    if running is not None:
        store, function_log = running.store, running.home / "functions.log"
        note(f"The kore-connect up at {running.dashboard} serves {gateway}: its store, {store.describe()}")
    else:
        store = LocalStore(db or config.DEFAULT_SQLITE_PATH)
        function_log = store.sqlite_path.parent / "functions.log"
        try:
            if db is None:  # the twin's home, as up's
                private_home(function_log.parent)
            else:  # the user's folder: made private only if it is new
                function_log.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        except (KoreConnectError, OSError) as exc:
            fail(f"cannot keep the store and the functions' log in {function_log.parent}: {exc}")
        why = "" if db is not None or sip_gateway is None else f" (no kore-connect up serves {gateway})"
        note(f"Session store: {store.describe()}{why}")
    note(f"Function logs: {function_log.absolute()}")
    settings = LocalContactSettings(
        gateway=sip_gateway,
        caller=caller,
        store=store,
        caller_hangs_up_after=caller_hangs_up_after,
        max_call_seconds=max_call_seconds,
        local_host=local_host,
        contact_id=contact_id,
        aliases=_aliases(function or []),
        function_log=function_log,
        world=world,
        caller_script=script,
    )
    try:
        record = asyncio.run(_run(flow, settings, running, store))
    except KoreConnectError as exc:
        fail(str(exc))
    for warning in record.warnings:
        warn(warning)
    if json_output:
        typer.echo(json.dumps(record.to_json(), indent=2))
    else:
        _print(record)
    if running is not None:
        note(f"On the dashboard: {running.dashboard}/calls/{record.contact_id}")


async def _run(
    flow: Flow, settings: LocalContactSettings, running: RunningUp | None, local_store: LocalStore
) -> ContactRecord:
    """What the contact came to; with a running `up`, also recorded in its calls (its dashboard),
    with what its gateway and store saw of the call."""
    started = time.monotonic()
    contact = await run_contact(flow, settings)
    if running is None:
        return ContactRecord.of(contact)
    from kore_connect.twin.kore.interactions import InteractionStore
    from kore_connect.twin.local.call_log import CallLog
    from kore_connect.twin.local.report import dialled_number, report_contact

    store = await asyncio.to_thread(local_store.open)
    interactions = InteractionStore(running.home / "interactions.db")
    calls = CallLog(running.home / "calls.db")
    try:
        report = await report_contact(
            contact, did=dialled_number(contact), store=store, interactions=interactions, started=started
        )
        calls.add(report)
    finally:
        for closable in (store, interactions, calls):
            closable.close()
    return report.contact


def _assignments(pairs: list[str]) -> dict[str, str]:
    """The `--set NAME=VALUE` pairs; one line and exit 2 for a bad one."""
    from kore_connect.contactflow.placeholders import BadAssignment, parse_assignments

    try:
        return parse_assignments(pairs)
    except BadAssignment as exc:
        fail(f"--set {exc}")


def _load(flow_file: Path, values: dict[str, str]) -> tuple[Flow, set[str]]:
    """The flow in `flow_file`, its placeholders filled from `values`, and the placeholders it holds;
    one line and exit 2 when it cannot be read or loaded, a warning for each left unset."""
    from kore_connect.contactflow.model import Flow, FlowError
    from kore_connect.contactflow.placeholders import fill, placeholders

    try:
        document = json.loads(flow_file.read_bytes())
    except OSError as exc:
        fail(f"cannot read {flow_file}: {exc.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"{flow_file}: the flow is not valid JSON: {exc}")
    used = placeholders(document.get("Actions") if isinstance(document, dict) else document)
    for name in sorted(used - set(values)):
        template = "a deployment template's placeholder"
        warn(f"the flow leaves ${{{name}}} unset ({template}): --set {name}=VALUE fills it")
    try:
        flow = Flow.parse(fill(document, values))
    except FlowError as exc:
        fail(f"{flow_file}: {'; '.join(exc.problems)}")
    for warning in flow.warnings:
        warn(f"{flow_file.name}: {warning}")
    return flow, used


def _unused_assignments(values: dict[str, str], used: set[str], with_world: bool) -> None:
    """A warning for each `--set` that neither the flow nor its world's flows use."""
    where = "neither the flow nor the world's flows have" if with_world else "the flow has no"
    for name in sorted(set(values) - used):
        warn(f"--set {name}: {where} ${{{name}}}")


def _world(path: Path | None, values: dict[str, str]) -> World:
    """The local world of `--world` (the default one without), its library's placeholders filled by
    the same `--set`s as the flow's; one line and exit 2 when it is wrong."""
    from kore_connect.twin.connect.world import World, WorldError, load_world

    if path is None:
        return World()
    try:
        return load_world(path, values)
    except WorldError as exc:
        fail(str(exc))


def _caller(flow: Flow, keys: list[str], utterances: list[str], hang_up_at: str | None) -> ScriptedCaller:
    from kore_connect.twin.connect.caller import BadScript, ScriptedCaller

    seconds: float | None = None
    action: str | None = None
    if hang_up_at is not None:
        try:
            seconds = float(hang_up_at)
        except ValueError:
            action = hang_up_at
        if seconds is not None and not 0 <= seconds < float("inf"):
            fail(f"--hang-up-at {hang_up_at!r}: seconds must be 0 or more")
        if action is not None and action not in flow.actions:
            fail(f"--hang-up-at {hang_up_at!r}: neither seconds nor an action identifier of the flow")
    try:
        return ScriptedCaller.of(keys, utterances, hang_up_after=seconds, hang_up_at_action=action)
    except BadScript as exc:
        fail(f"--input/--say {exc}")


def note(message: str) -> None:
    """What the command chose, on stderr: stdout is the contact (one JSON document with --json)."""
    notes.print(message)


def _is_this_machine(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _aliases(pairs: list[str]) -> dict[str, str]:
    from kore_connect.twin.template import describe_api, load_template

    known = set(describe_api(load_template()).functions)
    aliases = {}
    for pair in pairs:
        name, _, target = pair.partition("=")
        if not name or target not in known:
            fail(
                f"--function {pair!r}: expected NAME=FUNCTION with FUNCTION one of {', '.join(sorted(known))}"
            )
        aliases[name] = target
    return aliases


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        fail(f"--gateway {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5080")
    return host.strip("[]"), int(port)


def _print(record: ContactRecord) -> None:
    console.print(f"Contact {record.contact_id} from {record.customer}")
    steps = wrapping_table("#", "Clock", "Action", "Branch", "Why", whole=("#", "Clock", "Action"))
    for number, action in enumerate(record.actions, 1):
        steps.add_row(str(number), f"{action.clock:.1f}s", action.type, action.branch, action.reason)
    console.print(steps)
    for heard in record.heard:
        console.print(f"Heard: {heard}")
    for given in record.inputs:
        value = given.value if given.value is not None else "nothing"
        console.print(f"Input ({given.kind}) at {given.clock:.1f}s: {value}")
    for transfer in record.transfers:
        console.print("SIP:")
        for message in transfer:
            console.print(f"  {message.at:7.3f}s {message}")
    console.print(f"Attributes: {json.dumps(record.attributes)}")
    if record.flow_attributes:
        console.print(f"Flow attributes: {json.dumps(record.flow_attributes)}")
    console.print(f"Queue: {record.queue or 'none'}")
    console.print(f"Ended: {record.ended} ({record.ended_because}) after {record.clock:.1f} s")
