"""`kore-connect doctor`: check a deployed stack end to end and say what to fix.

Exit codes: 0 every check passed, 1 a check failed, 2 the doctor could not start (bad input, no
such stack, no credentials, AWS unreachable), with one line on stderr saying what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, NoReturn, Protocol

import typer
from rich.console import Console
from rich.text import Text

from kore_connect.cli.errors import fail
from kore_connect.doctor.report import CheckResult, CheckStatus

if TYPE_CHECKING:
    from kore_connect.doctor.checks import DoctorClients, DoctorError

DEFAULT_STACK_NAME = "kore-connect"

console = Console(highlight=False)

_MARKS = {
    CheckStatus.PASSED: ("✓", "green"),
    CheckStatus.FAILED: ("✗", "red"),
    CheckStatus.SKIPPED: ("\N{EN DASH}", "dim"),
}


class ClientsFactory(Protocol):
    def __call__(self, *, profile: str | None, region: str | None) -> DoctorClients: ...


def doctor_command(make_clients: ClientsFactory | None = None) -> Callable[..., None]:
    """The `doctor` command, reaching AWS through `make_clients` (default: `build_clients`; tests pass
    moto- and stub-backed clients)."""

    def doctor(
        stack_name: Annotated[
            str, typer.Option("--stack-name", help="The CloudFormation stack `sam deploy` created.")
        ] = DEFAULT_STACK_NAME,
        region: Annotated[
            str | None,
            typer.Option(help="The stack's AWS region (default: the profile's, or AWS_DEFAULT_REGION)."),
        ] = None,
        profile: Annotated[
            str | None, typer.Option(help="The AWS CLI profile to use (default: the usual credential chain).")
        ] = None,
        flow: Annotated[
            str | None,
            typer.Option(
                help="The name of the contact flow that transfers to Kore (default: look through the "
                "instance's flows for one that invokes the retrieve function)."
            ),
        ] = None,
    ) -> None:
        """Check a deployed kore-connect stack end to end: table, API and authorizer, retrieve, and the
        Connect instance (the function associated, flow logs on, the flow, its voice connector)."""
        # Imported here: boto3 and httpx would slow down every other kore-connect command.
        from kore_connect.doctor.checks import (
            DoctorError,
            run_doctor,
            validate_flow_name,
            validate_region,
            validate_stack_name,
        )
        from kore_connect.doctor.clients import build_clients

        try:
            validate_stack_name(stack_name)
            if region is not None:
                validate_region(region)
            if flow is not None:
                validate_flow_name(flow)
            clients = (make_clients or build_clients)(profile=profile, region=region)
        except DoctorError as exc:
            _give_up(exc)
        try:
            console.print(Text.assemble("Checking stack ", (stack_name, "bold"), f" in {clients.region}\n"))
            report = run_doctor(clients, stack_name, flow_name=flow, on_result=_print_result)
        except DoctorError as exc:
            _give_up(exc)
        finally:
            clients.close()

        if report.ok:
            console.print("\n[green]All checks passed.[/green]")
            return
        count = len(report.failures)
        console.print(f"\n[red]{count} check{'s' if count > 1 else ''} failed.[/red]")
        raise typer.Exit(1)

    return doctor


doctor = doctor_command()


def _print_result(result: CheckResult) -> None:
    mark, style = _MARKS[result.status]
    failed = result.status is CheckStatus.FAILED
    line = Text.assemble((mark, style), " ", (result.name, "bold" if failed else ""))
    if result.detail:
        line.append(f": {result.detail}", style="dim" if result.status is CheckStatus.SKIPPED else "")
    console.print(line, soft_wrap=True)
    if failed:
        console.print(Text.assemble("    cause: ", result.cause), soft_wrap=True)
        console.print(Text.assemble("    fix:   ", result.fix), soft_wrap=True)


def _give_up(exc: DoctorError) -> NoReturn:
    fail(str(exc))
