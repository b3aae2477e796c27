"""`kore-connect kore-config`: what a team pastes into Kore.ai for a deployed metadata endpoint.

It prints the Start Flow script, the Agent Transfer dialog's Script node and its Service node,
with where each goes, as text to read and paste or, with `--json`, as one JSON document for tools.
The scripts are printed from the shipped `.js` files byte for byte, the ones the tests run in V8.
The token never appears: the Service node reads it from a secured bot environment variable.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from kore_connect.cli.errors import fail
from kore_connect.korebot import snippets
from kore_connect.korebot.service_node import (
    DEFAULT_TOKEN_VARIABLE,
    KoreConfigError,
    ServiceNode,
    token_placeholder,
    validate_api_url,
)
from kore_connect.stack import OUTPUT_METADATA_URL, OUTPUT_TOKEN_SECRET_ARN

console = Console()

SIP_TRANSFER_METHOD = "SIP BYE"
CONTACT_ID_STATUS = "context.session.BotUserSession.ContactIdStatus"
_API_GATEWAY_HOST = re.compile(r"[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


def kore_config(
    api_url: Annotated[
        str,
        typer.Option(
            "--api-url",
            help=f"The metadata endpoint: the stack output {OUTPUT_METADATA_URL}, ending in /kore-metadata.",
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of instructions.")
    ] = False,
    token_variable: Annotated[
        str,
        typer.Option(
            "--token-variable",
            help="The bot environment variable that holds the token (secured in Kore; never printed).",
        ),
    ] = DEFAULT_TOKEN_VARIABLE,
) -> None:
    """Print what to paste into Kore.ai: the Start Flow script and the Agent Transfer dialog's nodes."""
    try:
        endpoint = validate_api_url(api_url)
        node = ServiceNode.for_endpoint(endpoint, token_variable)
    except KoreConfigError as exc:
        fail(str(exc))
    try:
        start_flow = snippets.load(snippets.Snippet.START_FLOW)
        agent_transfer_script = snippets.load(snippets.Snippet.AGENT_TRANSFER_SCRIPT)
        caller_value_script = snippets.load(snippets.Snippet.CALLER_VALUE_SCRIPT)
    except OSError as exc:
        fail(f"the installed package lacks its Kore snippets ({exc.strerror}): reinstall kore-connect", 1)
    read_token = _read_token_command(endpoint)
    if json_output:
        document = _document(endpoint, node, token_variable, start_flow, agent_transfer_script, read_token)
        document["agentTransferDialog"]["callerValues"] = {
            "why": CALLER_VALUES_WHY,
            "scriptNodeExample": caller_value_script,
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    _print_instructions(endpoint, node, token_variable, start_flow, agent_transfer_script, read_token)
    _heading("4. Values the caller controls")
    _say(CALLER_VALUES_WHY + " An example Script node to adapt:")
    _code(caller_value_script)


CALLER_VALUES_WHY = (
    "Kore pastes placeholder values into the Service node's URL, headers and body as raw text. A value "
    "the caller controls (a SIP header, what the caller said or typed) could close its JSON string and "
    "add keys the agent trusts, or change the URL. Check such a value against what it may be, or escape "
    "it for where it goes, in a Script node before the Service node; never put a line break in a header."
)


def _document(
    endpoint: str,
    node: ServiceNode,
    token_variable: str,
    start_flow: str,
    agent_transfer_script: str,
    read_token: str,
) -> dict[str, Any]:
    return {
        "apiUrl": endpoint,
        "startFlow": {"scriptNode": start_flow},
        "agentTransferDialog": {
            "scriptNode": agent_transfer_script,
            "serviceNode": node.as_dict(),
            "agentTransferNode": {"sipTransferMethod": SIP_TRANSFER_METHOD},
        },
        "tokenVariable": {
            "name": token_variable,
            "placeholder": token_placeholder(token_variable),
            "secure": True,
            "valueFrom": OUTPUT_TOKEN_SECRET_ARN,
            "readWith": read_token,
        },
    }


def _print_instructions(
    endpoint: str,
    node: ServiceNode,
    token_variable: str,
    start_flow: str,
    agent_transfer_script: str,
    read_token: str,
) -> None:
    console.print(
        f"[bold]Kore.ai configuration for[/bold] {escape(endpoint)}", highlight=False, soft_wrap=True
    )
    _say(
        "The token is never printed: the Service node reads it from the bot environment variable "
        f"[bold]{token_variable}[/bold] (section 3, step 1). "
        "Blocks set apart by blank lines are to be pasted exactly as printed."
    )

    _heading("1. Start Flow: Script node")
    _say("1. In Kore.ai Voice Automation, open Start Flows and the flow your DID number is attached to.")
    _say("2. Add a Script node right after the Start node and paste this script into it:")
    _code(start_flow)
    _say("3. Save the flow and test it.")

    _heading("2. Agent Transfer dialog: Script node")
    _say("1. In the bot the Start Flow hands calls to, open the Agent Transfer dialog task.")
    _say("2. Add a Script node as its first node and paste this script into it:")
    _code(agent_transfer_script)
    _say("3. Give the Script node two connections (the script's header comment explains why):")
    _code(
        f'IF {CONTACT_ID_STATUS} equals "found" -> the Service node (section 3)\n'
        "ELSE -> the Agent Transfer node (the caller reaches an agent, without the metadata)"
    )

    _heading("3. Agent Transfer dialog: Service node")
    _say(
        f"1. Create the token variable first. In the bot's Environment Variables add "
        f"[bold]{token_variable}[/bold], mark it secured, and set its value to the stack's token "
        f"(the secret named by the stack output {OUTPUT_TOKEN_SECRET_ARN}), which this prints:"
    )
    _code(read_token)
    _say("2. Add a Service node after the Script node (custom service, REST) and define its request:")
    _say("   Request URL, placeholder included:")
    _code(node.url)
    _say("   Method:")
    _code(node.method)
    _say("   Headers, each a key and then its value:")
    _code("\n\n".join(f"{name}\n{value}" for name, value in node.headers))
    _say(
        "   Body (JSON). Edit x_metadata to carry what the agent needs and keep kore-instanceSessionId, "
        "which the Agent AI widget uses to fetch the bot's history. Kore inserts placeholder values "
        "as raw text: a value the caller controls goes in only as section 4 shows."
    )
    _code(node.body)
    _say(
        "3. Connect the Service node, on success and on failure, to the Agent Transfer node: "
        "a failed store must never keep the caller from an agent."
    )
    _say(
        "4. End the dialog with the Agent Transfer node. In Voice Automation, Settings > Integrations > "
        "Agent Transfer > Voice, choose SIP Transfer with the SIP Transfer Method "
        f"[bold]{SIP_TRANSFER_METHOD}[/bold], save, and publish the bot. After the BYE, Amazon Connect "
        "resumes its flow and reads the metadata back by its contact ID."
    )


def _read_token_command(endpoint: str) -> str:
    """The AWS CLI command that prints the token, with the region when the URL names it."""
    command = (
        f"aws secretsmanager get-secret-value --secret-id <{OUTPUT_TOKEN_SECRET_ARN}> "
        "--query SecretString --output text"
    )
    host = urlsplit(endpoint).hostname or ""
    match = _API_GATEWAY_HOST.fullmatch(host)
    return f"{command} --region {match.group(1)}" if match else command


def _heading(title: str) -> None:
    console.print()
    console.rule(f"[bold]{escape(title)}[/bold]", align="left")


def _say(markup: str) -> None:
    """Prose: rich may wrap it to the terminal."""
    console.print(markup, highlight=False)


def _code(text: str) -> None:
    """Text to paste: printed as is, never wrapped, marked up or highlighted by rich."""
    console.print()
    end = "" if text.endswith("\n") else "\n"
    console.print(text, end=end, markup=False, highlight=False, emoji=False, soft_wrap=True)
    console.print()
