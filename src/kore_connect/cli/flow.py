"""`kore-connect flow`: write the contact flow to import into Amazon Connect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kore_connect.cli.errors import fail
from kore_connect.contactflow.render import (
    DEFAULT_FLOW_NAME,
    FlowOptionError,
    FlowOptions,
    Prompts,
    flow_json,
    render_flow,
    render_template,
)

errors = Console(stderr=True, soft_wrap=True)
_DEFAULT = Prompts()
# FlowOptions fields whose flag is not simply the field's name.
_FLAGS = {
    "transfer_time_limit_seconds": "--transfer-time-limit",
    "lambda_time_limit_seconds": "--lambda-time-limit",
}


def _flag(option: str) -> str:
    if option.startswith("prompts."):
        return "--" + option.removeprefix("prompts.").replace("_", "-") + "-prompt"
    return _FLAGS.get(option, "--" + option.replace("_", "-"))


def flow(
    to_user: Annotated[
        str,
        typer.Option(
            "--did",
            "--to-user",
            help="The Kore DID the call is transferred to (the INVITE's To user; kore-config --did).",
        ),
    ],
    connector_arn: Annotated[
        str | None,
        typer.Option(
            help="The external voice transfer connector (arn:aws:chime:<region>:<account>:vc/<id>)."
        ),
    ] = None,
    retrieve_function_arn: Annotated[
        str | None, typer.Option(help="The retrieve function (the stack output RetrieveFunctionArn).")
    ] = None,
    queue_arn: Annotated[
        str | None, typer.Option(help="The agent queue the caller reaches after the bot.")
    ] = None,
    queue_name: Annotated[
        str, typer.Option(help="The queue's name, as the flow designer shows it.")
    ] = "BasicQueue",
    from_user: Annotated[
        str, typer.Option(help="The INVITE's From user: a number or a $. reference.")
    ] = "$.CustomerEndpoint.Address",
    transfer_time_limit: Annotated[
        int, typer.Option(help="Seconds to wait for the bot to answer (1-600).")
    ] = 60,
    lambda_time_limit: Annotated[
        int, typer.Option(help="Seconds Connect waits for the retrieve function (1-8).")
    ] = 3,
    welcome_prompt: Annotated[str, typer.Option(help="Played before the transfer.")] = _DEFAULT.welcome,
    transfer_failed_prompt: Annotated[
        str, typer.Option(help="Played when the bot refuses the call (CallFailed).")
    ] = _DEFAULT.transfer_failed,
    transfer_timeout_prompt: Annotated[
        str, typer.Option(help="Played when the bot does not answer in time.")
    ] = _DEFAULT.transfer_timeout,
    transfer_error_prompt: Annotated[
        str, typer.Option(help="Played on any other transfer error.")
    ] = _DEFAULT.transfer_error,
    lookup_failed_prompt: Annotated[
        str, typer.Option(help="Played when the bot's metadata cannot be read.")
    ] = _DEFAULT.lookup_failed,
    queue_failed_prompt: Annotated[
        str, typer.Option(help="Played when the caller cannot be queued.")
    ] = _DEFAULT.queue_failed,
    queue_full_prompt: Annotated[
        str, typer.Option(help="Played when the queue is full.")
    ] = _DEFAULT.queue_full,
    name: Annotated[str, typer.Option(help="The flow's name in Amazon Connect.")] = DEFAULT_FLOW_NAME,
    as_template: Annotated[
        bool,
        typer.Option(
            "--as-template",
            help="Write ${ConnectorArn}, ${RetrieveFunctionArn} and ${QueueArn} where the ARNs go, for "
            "CloudFormation (Fn::Sub) or Terraform (templatefile) to fill; leave the ARN options out.",
        ),
    ] = False,
    function_elsewhere: Annotated[
        bool,
        typer.Option(
            help="Accept a retrieve function in another Region or account than the Connect instance "
            "(Connect invokes it only once you have granted connect.amazonaws.com leave to)."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the flow to this file instead of printing it."),
    ] = None,
) -> None:
    """Render the contact flow that hands callers to the Kore bot and reads back what it learned.

    Import it in Amazon Connect: Routing > Flows > Create flow > Import (beta), then Publish.
    """
    given = {
        "--connector-arn": connector_arn,
        "--retrieve-function-arn": retrieve_function_arn,
        "--queue-arn": queue_arn,
    }
    for flag, value in given.items():
        if as_template and value is not None:
            fail(f"{flag}: --as-template writes a placeholder for it; leave it out")
        if not as_template and value is None:
            fail(f"{flag} is needed (or --as-template, for a flow that a deployment template fills)")
    options = FlowOptions(
        connector_arn=connector_arn or "",
        to_user=to_user,
        retrieve_function_arn=retrieve_function_arn or "",
        queue_arn=queue_arn or "",
        queue_name=queue_name,
        from_user=from_user,
        transfer_time_limit_seconds=transfer_time_limit,
        lambda_time_limit_seconds=lambda_time_limit,
        prompts=Prompts(
            welcome=welcome_prompt,
            transfer_failed=transfer_failed_prompt,
            transfer_timeout=transfer_timeout_prompt,
            transfer_error=transfer_error_prompt,
            lookup_failed=lookup_failed_prompt,
            queue_failed=queue_failed_prompt,
            queue_full=queue_full_prompt,
        ),
        name=name,
        function_elsewhere=function_elsewhere,
    )
    try:
        text = flow_json(render_template(options) if as_template else render_flow(options))
    except FlowOptionError as exc:
        fail(f"{_flag(exc.option)}: {exc}")
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    errors.print(f"Wrote {output}. Import it in Amazon Connect: Routing > Flows > Create flow > Import.")
