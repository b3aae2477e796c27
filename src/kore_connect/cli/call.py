"""`kore-connect call`: calls through the whole local twin, one to read or many to load it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kore_connect.cli.errors import fail, warn
from kore_connect.cli.tables import wrapping_table
from kore_connect.cli.up import DEFAULT_HOME, private_home
from kore_connect.errors import KoreConnectError

if TYPE_CHECKING:
    from kore_connect.twin.local.report import CallReport

# No markup: the report prints what flows and bots say, which may hold "[...]". Wrapped to the
# terminal's width (80 columns when the output is not a terminal), never cut.
console = Console(highlight=False, markup=False)


def call(
    caller: Annotated[
        str, typer.Option(help="The caller's number ($.CustomerEndpoint.Address).")
    ] = "+14155550123",
    did: Annotated[
        str | None,
        typer.Option(help="The Kore DID the flow transfers to (default: the twin's, +12065551118)."),
    ] = None,
    flow_file: Annotated[
        Path | None,
        typer.Option("--flow", help="A contact flow as Connect exports it, instead of the default flow."),
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many calls to place.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Calls in progress at once.")] = 1,
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, max=10_000, help="Calls started per second (default: as fast as slots free)"),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            help="Where the twin keeps its store, interactions and functions' log (default: a temp dir)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document per call, one per line.")
    ] = False,
) -> None:
    """Place calls through the local twin: Connect's flow, the SIP transfer, the Kore bot, the metadata
    API, the handback. One call prints what each part did; --count N runs a load and checks that every
    caller's customData is exactly what their own bot sent (exit 1 on any loss or mix-up)."""
    from kore_connect.twin.local.twin import DEFAULT_DID, PHONE_NUMBER

    for flag, number in (("--caller", caller), ("--did", did or DEFAULT_DID)):
        if not PHONE_NUMBER.fullmatch(number):
            fail(f"{flag} {number!r}: expected a phone number such as +14155550123")
    if home is not None and home.exists() and not home.is_dir():
        fail(f"--home {home}: not a folder")
    if home is not None:
        try:
            private_home(home)
        except KoreConnectError as exc:
            fail(f"--home {exc}")
    flow = _flow(flow_file) if flow_file is not None else None
    try:
        reports, seconds = asyncio.run(_run(caller, did, flow, count, concurrency, rate, home, json_output))
    except OSError as exc:
        fail(f"the local twin could not start: {exc.strerror or exc}")
    if count == 1 and not json_output:
        _print_call(reports[0])
    if count > 1 and not json_output:
        summary = load_summary(reports, seconds)
        _print_summary(summary)
    if any(call_problems(report) for report in reports):
        raise typer.Exit(1)


async def _run(
    caller: str,
    did: str | None,
    flow: dict[str, Any] | None,
    count: int,
    concurrency: int,
    rate: float | None,
    home: Path | None,
    json_output: bool,
) -> tuple[list[CallReport], float]:
    """The reports of `count` calls (printed as they end with --json), and the seconds they took:
    through a running `kore-connect up` when there is one, else through a twin of our own."""
    from kore_connect.contactflow.model import Flow
    from kore_connect.twin.dashboard.app import TOKEN_HEADER
    from kore_connect.twin.local.report import CallReport
    from kore_connect.twin.local.twin import DEFAULT_DID, LocalTwin

    running = _running_up(home or DEFAULT_HOME)
    if running is not None:
        url, token = running
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:

            async def through_up() -> CallReport:
                request = {"caller": caller, "flow": flow} | ({"did": did} if did else {})
                try:
                    answer = await http.post(f"{url}/api/calls", json=request, headers={TOKEN_HEADER: token})
                except httpx.HTTPError as exc:
                    message = f"the running kore-connect up ({url}) stopped answering: {type(exc).__name__}"
                    raise typer.Exit(_say(message)) from None
                if answer.status_code != 200:
                    raise typer.Exit(_say(f"the running kore-connect up refused the call: {answer.text}"))
                try:
                    return CallReport.from_json(answer.json())
                except (ValueError, KeyError, TypeError):  # an up of another version of kore-connect
                    unreadable = f"the running kore-connect up ({url}) answered a report we cannot read"
                    raise typer.Exit(_say(unreadable)) from None

            return await _calls(through_up, count, concurrency, rate, json_output)
    with tempfile.TemporaryDirectory(prefix="kore-connect-twin-") as scratch:
        own = LocalTwin(home or Path(scratch), token=secrets.token_urlsafe(32), did=did or DEFAULT_DID)
        async with own as twin:
            parsed = Flow.parse(flow) if flow is not None else None
            return await _calls(
                lambda: twin.call(caller=caller, did=did, flow=parsed), count, concurrency, rate, json_output
            )


async def _calls(
    place: Callable[[], Awaitable[CallReport]],
    count: int,
    concurrency: int,
    rate: float | None,
    json_output: bool,
) -> tuple[list[CallReport], float]:
    slots = asyncio.Semaphore(concurrency)
    reports: list[CallReport] = []
    started = time.monotonic()
    progress = Progress(
        TextColumn("calls"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=count == 1,
    )
    task = progress.add_task("calls", total=count)

    async def one(index: int) -> None:
        if rate is not None:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        async with slots:
            report = await place()
        reports.append(report)
        if json_output:
            sys.stdout.write(json.dumps(report.to_json()) + "\n")
        progress.advance(task)

    with progress:
        await asyncio.gather(*(one(i) for i in range(count)))
    return reports, time.monotonic() - started


def _running_up(home: Path) -> tuple[str, str] | None:
    """The dashboard URL and token of a `kore-connect up` running from `home`, or None."""
    from kore_connect.private_files import TRUSTED, UnsafePathError, read_private
    from kore_connect.twin.local.api_token import TOKEN_VARIABLE
    from kore_connect.twin.local.running import IgnoredRunningUp, running_in

    try:
        running = running_in(home)
    except IgnoredRunningUp as exc:  # never sent the token
        warn(f"{exc}; the calls go through a twin of this command's own")
        return None
    if running is None:
        return None
    url = running.dashboard
    try:
        httpx.get(url, timeout=5).raise_for_status()
    except httpx.HTTPError:
        return None  # not answering: stopping, or its port taken over
    try:
        token = os.environ.get(TOKEN_VARIABLE) or read_private(home / "api-token").decode().strip()
    except UnsafePathError as exc:
        fail(f"a kore-connect up runs at {url}, but its token file {exc}: it must be {TRUSTED}")
    except (OSError, UnicodeDecodeError):
        where = f"neither in {TOKEN_VARIABLE} nor in {home / 'api-token'}"
        fail(f"a kore-connect up runs at {url}, but its token is {where}")
    return str(url), token


def _say(message: str) -> int:
    Console(stderr=True).print(f"error: {message}", highlight=False, soft_wrap=True)
    return 1


def _flow(path: Path) -> dict[str, Any]:
    """The flow document at `path`, checked by the flow model (one-line error otherwise)."""
    from kore_connect.contactflow.model import Flow

    try:
        document: dict[str, Any] = json.loads(path.read_bytes())
        Flow.parse(document)
    except OSError as exc:
        fail(f"--flow {path}: {exc.strerror}")
    except json.JSONDecodeError as exc:
        fail(f"--flow {path}: not JSON ({exc.msg} at line {exc.lineno})")
    except (ValueError, KoreConnectError) as exc:
        fail(f"--flow {path}: {' '.join(str(exc).split())}")
    return document


NOT_FOUND_TEXT = "Data not found"  # the retrieve function's 404 body, as the flow sets customData


def call_problems(report: CallReport) -> list[str]:
    """What went wrong for this caller: lost or mixed-up metadata, a call that did not reach the queue."""
    from kore_connect.twin.connect.contact import ContactState

    contact = report.contact
    kore = report.kore
    if kore is None:
        return ["the gateway never saw the call"]
    expected = {
        "x_metadata": f"Hello from Kore for contact {contact.contact_id}",
        "kore-instanceSessionId": kore.instance_session_id,
    }
    problems = []
    if contact.ended is not ContactState.QUEUED:
        problems.append(f"ended {contact.ended}, not queued")
    if report.metadata.stored is None:
        problems.append("lost: nothing stored for the contact")
    elif report.metadata.stored != expected:
        problems.append("mixed up: the store holds another bot's metadata")
    custom = report.metadata.custom_data
    if custom != expected:
        # The retrieve function's 404 body is what the agent sees when nothing was stored: a loss.
        lost = custom is None or custom == NOT_FOUND_TEXT
        problems.append("lost: no customData" if lost else "mixed up: customData")
    return problems


def load_summary(reports: list[CallReport], seconds: float) -> dict[str, Any]:
    each = [call_problems(r) for r in reports]
    problems = Counter(p for found in each for p in found)
    return {
        "calls": len(reports),
        "seconds": round(seconds, 3),
        "callsPerSecond": round(len(reports) / seconds, 1),
        "setupMs": _percentiles([r.timings.setup_ms for r in reports]),
        "handoffMs": _percentiles([r.timings.handoff_ms for r in reports]),
        "failedCalls": sum(1 for found in each if found),
        "problems": dict(problems),
    }


def _percentiles(values: list[float | None]) -> dict[str, float] | None:
    known = sorted(v for v in values if v is not None)
    if len(known) < 2:
        return None
    cuts = statistics.quantiles(known, n=100, method="inclusive")
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(
        f"{summary['calls']} calls in {summary['seconds']:.1f} s: {summary['callsPerSecond']} calls/s"
    )
    table = wrapping_table("", "p50 ms", "p95 ms", "p99 ms", whole=("p50 ms", "p95 ms", "p99 ms"))
    for name, key in (
        ("call setup (INVITE -> 200)", "setupMs"),
        ("handoff (BYE -> attributes)", "handoffMs"),
    ):
        cuts = summary[key] or {}
        table.add_row(name, *(str(cuts.get(p, "-")) for p in ("p50", "p95", "p99")))
    console.print(table)
    if summary["problems"]:
        console.print(f"{summary['failedCalls']} calls failed:", style="red")
        for problem, n in sorted(summary["problems"].items(), key=lambda kv: -kv[1]):
            console.print(f"  {n} x {problem}")
    else:
        console.print("No call lost or mixed up: every caller's customData is what their own bot sent.")


def _print_call(report: CallReport) -> None:
    contact = report.contact
    console.print(f"Call {contact.contact_id} from {contact.customer} to Kore DID {report.did}", style="bold")
    flow = wrapping_table("#", "Connect flow action", "Branch", "Why", whole=("#", "Connect flow action"))
    for number, action in enumerate(contact.actions, 1):
        flow.add_row(str(number), action.type, action.branch, action.reason)
    console.print(flow)
    console.print("SIP (Connect's connector <-> Kore voice gateway)", style="bold")
    for transfer in contact.transfers:
        for message in transfer:
            arrow = "Connect  ---->  Kore   " if message.direction == "sent" else "Connect  <----  Kore   "
            console.print(f"  {message.at * 1000:8.1f} ms  {arrow} {message.first_line}")
    kore = report.kore
    if kore is not None:
        nodes = wrapping_table("Kore bot node", "Kind", "Result", "Detail", whole=("Kind", "Result"))
        for node in kore.nodes:
            status = f"HTTP {node.http_status}" if node.http_status else ""
            detail = node.detail if status in node.detail else f"{node.detail} ({status})"
            nodes.add_row(node.node, node.kind, node.status, detail)
        console.print(nodes)
        console.print(f"Kore call ended: {kore.ended}; instance session {kore.instance_session_id}")
    console.print(f"Metadata stored:    {json.dumps(report.metadata.stored)}")
    console.print(f"customData (agent): {json.dumps(report.metadata.custom_data)}")
    console.print(f"Contact attributes: {json.dumps(contact.attributes)}")
    console.print(f"Queue: {contact.queue or 'none'}; contact {contact.ended}")
    timings = report.timings

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value} ms"

    console.print(
        f"Setup {ms(timings.setup_ms)}, handoff (BYE -> attributes) {ms(timings.handoff_ms)}, "
        f"whole contact {ms(timings.total_ms)}"
    )
    for problem in call_problems(report):
        console.print(f"problem: {problem}", style="red")
