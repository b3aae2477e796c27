"""`kore-connect kore-config`: what a team pastes into Kore.ai for a deployed metadata endpoint.

It prints the Start Flow script, the Agent Transfer dialog's Script node and its Service node,
with where each goes, as text to read and paste or, with `--json`, as one JSON document for tools.
The scripts are printed from the shipped `.js` files byte for byte, the ones the tests run in V8.
The token never appears: the Service node reads it from a secured bot environment variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
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
from kore_connect.korebot.trunk import AGENT_TRANSFER, SIP_PORT, SipTrunk, TrunkError, flow_dids
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
    did: Annotated[
        str | None,
        typer.Option(help="The Kore DID the flow transfers to (kore-connect flow --did, its ToUser)."),
    ] = None,
    connector_addresses: Annotated[
        list[str] | None,
        typer.Option(
            "--connector-address",
            help="An address Amazon Connect's voice transfer connector calls from (IP, IP:PORT or a "
            "CIDR range); Kore allow-lists it (repeatable).",
        ),
    ] = None,
    transport: Annotated[str, typer.Option(help="The connector's SIP transport: udp or tcp.")] = "udp",
    check_flow: Annotated[
        Path | None,
        typer.Option(
            "--check-flow",
            metavar="FLOW.json",
            help="The flow as imported in Connect: its DID must be --did (the DID, when --did is not given).",
        ),
    ] = None,
) -> None:
    """Print what to paste into Kore.ai: the SIP trunk (CCAI configuration), the Start Flow script and
    the Agent Transfer dialog's nodes."""
    try:
        endpoint = validate_api_url(api_url)
        node = ServiceNode.for_endpoint(endpoint, token_variable)
    except KoreConfigError as exc:
        fail(str(exc))
    try:
        if check_flow is not None:
            did = _did_of_flow(check_flow, did)
        trunk = SipTrunk.of(did, connector_addresses or [], transport)
    except TrunkError as exc:
        fail(f"{exc.option}: {exc}")
    try:
        start_flow = snippets.load(snippets.Snippet.START_FLOW)
        agent_transfer_script = snippets.load(snippets.Snippet.AGENT_TRANSFER_SCRIPT)
        caller_value_script = snippets.load(snippets.Snippet.CALLER_VALUE_SCRIPT)
    except OSError as exc:
        fail(f"the installed package lacks its Kore snippets ({exc.strerror}): reinstall kore-connect", 1)
    read_token = _read_token_command(endpoint)
    if json_output:
        document = _document(endpoint, node, token_variable, start_flow, agent_transfer_script, read_token)
        document["sipTrunk"] = trunk.to_json()
        document["agentTransferDialog"]["callerValues"] = {
            "why": CALLER_VALUES_WHY,
            "scriptNodeExample": caller_value_script,
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    _print_trunk(trunk)
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


def _did_of_flow(path: Path, did: str | None) -> str:
    """The DID the flow at `path` transfers to; TrunkError when it has none, several, or not `did`."""
    from kore_connect.contactflow.model import Flow, FlowError

    try:
        dids = flow_dids(Flow.loads(path.read_bytes()))
    except OSError as exc:
        raise TrunkError("--check-flow", f"cannot read {path}: {exc.strerror}") from None
    except FlowError as exc:
        raise TrunkError("--check-flow", f"{path}: {'; '.join(exc.problems)}") from None
    if len(dids) != 1:
        found = ", ".join(dids) or "none"
        raise TrunkError("--check-flow", f"{path} must transfer to one DID, and transfers to: {found}")
    if did is not None and did != dids[0]:
        raise TrunkError(
            "--check-flow",
            f"{path} transfers to {dids[0]}, not to --did {did}: Kore refuses an INVITE for a DID it "
            "does not have, so use one value in both (kore-connect flow --did)",
        )
    return dids[0]


def _print_trunk(trunk: SipTrunk) -> None:
    _heading("0. The SIP trunk: Kore's CCAI configuration")
    _say(
        "In Kore.ai, Flows & Channels > Channels > Voice Gateway > SIP Numbers > Configure SIP Trunk, choose "
        "Contact Center AI and enter what follows. Kore refuses an INVITE from an address it has not "
        "allow-listed, or for a DID it does not have: the likeliest reason a first call fails."
    )
    _say("1. Incoming IP addresses (the allow-list): where Amazon Connect's connector calls from, each one:")
    if trunk.addresses:
        _code("\n".join(trunk.addresses))
    else:
        _say(
            "   [bold]not given[/bold]: pass --connector-address with each address or range Amazon "
            "Connect's connector calls from (docs/setup.md, step 4, says where to find them)."
        )
    _say("2. DID number (the flow's ToUser: Amazon Connect calls it):")
    if trunk.did is not None:
        _code(trunk.did)
    else:
        _say("   [bold]not given[/bold]: pass --did, as kore-connect flow --did (or --check-flow FLOW.json).")
    _say(
        f"3. SIP transport: [bold]{trunk.transport}[/bold], port {SIP_PORT} (the connector's "
        "encryption is Disabled). Enable inbound calls."
    )
    _say("4. Attach the DID to the Start Flow of section 1.")
    _say(
        f"5. Agent Transfer (Settings > Integrations > Agent Transfer > Voice): "
        f"[bold]{AGENT_TRANSFER['type']}[/bold], method [bold]{AGENT_TRANSFER['method']}[/bold]."
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
