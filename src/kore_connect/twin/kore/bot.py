"""Runs one call through the bot: the Start Flow, then the dialog's nodes, then how it ends.

Every node run is recorded with its result, like Kore's interaction log. A node that fails (a
script that throws, a placeholder that names nothing, a service that times out or answers
non-2xx after its retries) follows the dialog's error path: by default it is logged and the call
goes straight to the agent transfer, so the caller always reaches a human.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import httpx

from kore_connect.twin.kore import templates
from kore_connect.twin.kore.dialog import (
    AgentTransferNode,
    Dialog,
    MessageNode,
    ScriptNode,
    ServiceRequestNode,
)
from kore_connect.twin.kore.interactions import NodeKind, NodeResult, NodeStatus
from kore_connect.twin.kore.session import KoreSession, ScriptError
from kore_connect.twin.kore.templates import TemplateError

RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass
class BotRun:
    results: list[NodeResult] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    transfer: AgentTransferNode | None = None  # how the bot ends the call: a BYE, with these headers
    running: NodeResult | None = None  # the node under way, as its "stopped" result

    def stopped(self, why: str) -> list[NodeResult]:
        """The results so far when the call ends before the bot does: the node under way stopped."""
        if self.running is None:
            return list(self.results)
        return [*self.results, replace(self.running, detail=why)]

    @property
    def failed(self) -> bool:
        return any(r.status == "error" for r in self.results)


async def run_bot(
    session: KoreSession,
    dialog: Dialog,
    *,
    environment: Mapping[str, str],
    http: httpx.AsyncClient,
    run: BotRun | None = None,
) -> BotRun:
    """Run the Start Flow and the dialog for one call's `session`, into `run` (which the caller
    keeps, to know how far the bot got if the call ends first)."""
    run = run if run is not None else BotRun()
    for script in dialog.start_flow:
        run.running = _result(script, "stopped", "")
        run.results.append(await _script(session, script))
    failed = False
    for node in dialog.nodes:
        run.running = _result(node, "stopped", "")
        if failed and dialog.on_error == "transfer" and not isinstance(node, AgentTransferNode):
            run.results.append(
                _result(node, "skipped", "after a failed node, straight to the agent transfer")
            )
            continue
        if isinstance(node, MessageNode):
            run.said.append(node.text)
            result = NodeResult(node.name, "message", "ok", node.text)
        elif isinstance(node, ScriptNode):
            result = await _script(session, node)
        elif isinstance(node, ServiceRequestNode):
            result = await _service(session, node, environment, http)
        else:
            run.transfer = node
            run.results.append(NodeResult(node.name, "transfer", "ok", "agent transfer by SIP BYE"))
            break
        run.results.append(result)
        failed = failed or result.status == "error"
    run.running = None
    return run


async def _script(session: KoreSession, node: ScriptNode) -> NodeResult:
    try:
        # In a worker thread: a long script must not hold up the other calls.
        await asyncio.to_thread(session.run, node.script)
    except ScriptError as exc:
        return NodeResult(node.name, "script", "error", f"the script failed: {exc}")
    return NodeResult(node.name, "script", "ok", "ran")


async def _service(
    session: KoreSession, node: ServiceRequestNode, environment: Mapping[str, str], http: httpx.AsyncClient
) -> NodeResult:
    if node.only_when is not None:
        path, expected = node.only_when
        try:
            actual = session.value(path)
        except ScriptError as exc:  # the read broke a limit (a script's getter), or one was broken before
            return NodeResult(node.name, "service", "error", str(exc))
        if actual != expected:
            return NodeResult(node.name, "service", "skipped", f"{path} is {actual!r}, not {expected!r}")
    values = templates.lookup(session.value, environment)
    try:
        url = templates.render_url(node.url, values)
        headers = {name: templates.render_header(value, values) for name, value in node.headers}
        content_type = next((v.text for n, v in headers.items() if n.lower() == "content-type"), None)
        body = templates.render_body(node.body, values, content_type)
        # What the interaction shows: the request line, with every environment value (the token
        # among them) left out, wherever a node's author placed it.
        shown = templates.render_url(node.url, templates.lookup(session.value, environment, mask=True))
    except (TemplateError, ScriptError) as exc:
        return NodeResult(node.name, "service", "error", str(exc))
    line = f"{node.method} {shown.text}"
    escaped = dict.fromkeys([*url.escaped, *(p for h in headers.values() for p in h.escaped), *body.escaped])
    # Real Kore pastes values raw: say where that would have changed the request.
    warning = (
        f"; Kore would paste {', '.join(escaped)} unescaped: validate it in a script node (docs/security.md)"
        if escaped
        else ""
    )
    plain_headers = {name: header.text for name, header in headers.items()}
    delay = node.backoff_seconds
    status: int | None = None
    problem = ""
    for attempt in range(1, node.retries + 2):
        try:
            response = await http.request(
                node.method,
                url.text,
                headers=plain_headers,
                content=body.text.encode("utf-8"),
                timeout=node.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            status, problem = None, f"no answer: {type(exc).__name__}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return NodeResult(
                    node.name, "service", "ok", f"HTTP {status}{warning}", status, attempt, line
                )
            problem = f"HTTP {status}"
            if status not in RETRYABLE:
                return NodeResult(node.name, "service", "error", problem, status, attempt, line)
        if attempt <= node.retries:
            await asyncio.sleep(delay)
            delay *= 2
    return NodeResult(
        node.name,
        "service",
        "error",
        f"{problem} after {node.retries + 1} attempts",
        status,
        node.retries + 1,
        line,
    )


def _result(
    node: MessageNode | ScriptNode | ServiceRequestNode | AgentTransferNode,
    status: NodeStatus,
    detail: str,
) -> NodeResult:
    kind: NodeKind = (
        "message"
        if isinstance(node, MessageNode)
        else "script"
        if isinstance(node, ScriptNode)
        else "service"
        if isinstance(node, ServiceRequestNode)
        else "transfer"
    )
    return NodeResult(node.name, kind, status, detail)
