"""The bot's dialog as data: the nodes a call goes through, in order (pure).

The default dialog is the reference one, with the snippets `kore-connect kore-config` ships: the
Start Flow script keeps the INVITE's SIP headers; the Agent Transfer dialog greets, finds the
contact ID (Script node), POSTs the metadata (Service node, only when the contact ID was found,
as the shipped instructions connect it) and transfers by SIP BYE.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from kore_connect.korebot import snippets
from kore_connect.korebot.service_node import DEFAULT_TOKEN_VARIABLE, ServiceNode

CONTACT_ID_STATUS = "context.session.BotUserSession.ContactIdStatus"
# The Service node runs only when the Script node found the contact ID, as the shipped
# instructions connect the two nodes.
REFERENCE_RULE = (CONTACT_ID_STATUS, "found")


@dataclass(frozen=True, slots=True)
class MessageNode:
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class ScriptNode:
    name: str
    script: str  # JavaScript, run as Kore runs a Script node


@dataclass(frozen=True, slots=True)
class ServiceRequestNode:
    name: str
    url: str  # templates: {{context...}}, {{env...}}
    method: str
    headers: tuple[tuple[str, str], ...]
    body: str
    timeout_seconds: float = 5.0
    retries: int = 2  # more attempts after a 5xx, a 429 or no answer
    backoff_seconds: float = 0.5  # doubled after each attempt
    # Run only when the session value at this path equals this value (a node's connection rule).
    only_when: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AgentTransferNode:
    name: str
    bye_headers: tuple[tuple[str, str], ...] = ()  # custom headers on the BYE


Node = MessageNode | ScriptNode | ServiceRequestNode | AgentTransferNode


@dataclass(frozen=True, slots=True)
class Dialog:
    start_flow: tuple[ScriptNode, ...]  # run when the call arrives, before the bot
    nodes: tuple[Node, ...]
    # What a failing node does: "transfer" logs it and goes straight to the agent transfer, so the
    # caller is never stranded; "continue" goes on with the next node.
    on_error: Literal["transfer", "continue"] = "transfer"
    environment_variables: tuple[str, ...] = field(default=())  # the bot's env.* names it needs


@functools.lru_cache(maxsize=16)  # once per gateway, not per call: it reads the snippets' files
def default_dialog(api_url: str, token_variable: str = DEFAULT_TOKEN_VARIABLE) -> Dialog:
    """The reference dialog for the metadata endpoint `api_url`, the token in `{{env.<token_variable>}}`."""
    service = ServiceNode.for_endpoint(api_url, token_variable)
    return Dialog(
        start_flow=(ScriptNode("Start Flow script", snippets.load(snippets.Snippet.START_FLOW)),),
        nodes=(
            MessageNode("greeting", "Hello, I am the virtual assistant. Let me get you to an agent."),
            ScriptNode("find the contact ID", snippets.load(snippets.Snippet.AGENT_TRANSFER_SCRIPT)),
            ServiceRequestNode(
                "send the metadata",
                url=service.url,
                method=service.method,
                headers=service.headers,
                body=service.body,
                only_when=REFERENCE_RULE,
            ),
            AgentTransferNode("agent transfer (SIP BYE)"),
        ),
        environment_variables=(token_variable,),
    )
