"""The bot's flows as the gateway's YAML writes them: each a Start Flow and a dialog of nodes (pure).

    flows:
      billing:
        on_error: transfer                # or: continue
        start_flow:                       # optional; by default the Start Flow script we ship
          - script: {snippet: start_flow}
        nodes:
          - message: "Hello, let me get you to an agent."
          - script: {name: find the contact ID, snippet: agent_transfer_script}
          - script: {name: tag the call, code: "BotUserSession.put('tier', 'gold');"}
          - script: {name: mine, file: scripts/mine.js}        # relative to the YAML file
          - service: {name: send the metadata}                 # the reference Service node
          - service:
              name: notify CRM
              url: "https://crm.example/calls/{{context.session.BotUserSession.ContactId}}"
              method: PUT
              headers: {Content-Type: application/json}
              body: '{"tier": "{{context.session.BotUserSession.tier}}"}'    # see below
              timeout_seconds: 3
              retries: 1
              only_when: {path: context.session.BotUserSession.ContactIdStatus, equals: found}
          - transfer: {bye_headers: {X-Reason: agent}}

Placeholders are rendered by position (twin/kore/templates.py): percent-encoded in the URL,
JSON-escaped in a JSON body, refused in a header when the value holds a line break. Real Kore
pastes them raw, so a value the caller controls (a SIP header a script node copied, such as `tier`
above) must be checked in the script node that stores it, e.g.
`BotUserSession.put('tier', /^[a-z]{1,16}$/.test(tier) ? tier : 'unknown')`; the node's result
says when the twin had to escape a value Kore would have pasted raw.

A service node's keys default to the reference Service node (the configured metadata URL, POST,
the token header, the reference body), so `service: {}` is the node Kore's guide describes. The
flow named `default` is the reference dialog unless the file defines it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kore_connect.errors import ConfigError
from kore_connect.korebot import snippets
from kore_connect.korebot.service_node import DEFAULT_TOKEN_VARIABLE, ServiceNode
from kore_connect.twin.kore.dialog import (
    REFERENCE_RULE,
    AgentTransferNode,
    Dialog,
    MessageNode,
    Node,
    ScriptNode,
    ServiceRequestNode,
)
from kore_connect.twin.kore.templates import placeholders, url_problem

DEFAULT_FLOW = "default"
_FLOW_KEYS = {"start_flow", "nodes", "on_error"}
_SCRIPT_SOURCES = ("snippet", "code", "file")
_SERVICE_KEYS = {"name", "url", "method", "headers", "body", "timeout_seconds", "retries", "only_when"}
# The BYE's own headers, in full and compact form (RFC 3261 §7.3.3): a transfer may not set them.
_DIALOG_HEADERS = frozenset(
    {"via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "content-length", "route"}
    | {"v", "f", "t", "i", "m", "l"}
)
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_HEADER_NAME = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_flows(document: Any, *, metadata_url: str, base: Path, where: str) -> dict[str, Dialog]:
    """The flows of the YAML's `flows:` mapping (`default` among them only when the file redefines it).

    `base` is the folder script files are read from; every error raises ConfigError naming the
    flow, the node's index and the key.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: flows must map flow names to {{start_flow, nodes, on_error}}")
    flows = {}
    for name, body in document.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: flows: a flow's name must be text, found {name!r}")
        flows[name] = _FlowReader(metadata_url, base, f"{where}: flows.{name}").dialog(body)
    return flows


class _FlowReader:
    def __init__(self, metadata_url: str, base: Path, where: str) -> None:
        self.reference = ServiceNode.for_endpoint(metadata_url)
        self.base = base
        self.where = where

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where}{message}")

    def dialog(self, body: Any) -> Dialog:
        if not isinstance(body, dict):
            raise self.fail(": must be a mapping with nodes (and optionally start_flow, on_error)")
        unknown = set(body) - _FLOW_KEYS
        if unknown:
            raise self.fail(f": unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        on_error = body.get("on_error", "transfer")
        if on_error not in ("transfer", "continue"):
            raise self.fail(f".on_error must be transfer or continue, found {on_error!r}")
        start = body.get("start_flow", [{"script": {"snippet": snippets.Snippet.START_FLOW.value}}])
        start_flow = tuple(self._start_script(i, x) for i, x in enumerate(self._list(start, "start_flow")))
        nodes = tuple(self._node(i, x) for i, x in enumerate(self._list(body.get("nodes"), "nodes")))
        if not nodes:
            raise self.fail(".nodes must list at least one node")
        transfers = [i for i, node in enumerate(nodes) if isinstance(node, AgentTransferNode)]
        if transfers and transfers[0] != len(nodes) - 1:
            raise self.fail(f".nodes[{transfers[0]}]: the transfer ends the dialog; nothing may follow it")
        return Dialog(
            start_flow=start_flow,
            nodes=nodes,
            on_error=on_error,
            environment_variables=(DEFAULT_TOKEN_VARIABLE,),
        )

    def _list(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f".{key} must be a list of nodes")
        return value

    def _start_script(self, index: int, item: Any) -> ScriptNode:
        node = self._node(index, item, key="start_flow")
        if not isinstance(node, ScriptNode):
            raise self.fail(f".start_flow[{index}]: the Start Flow runs script nodes only")
        return node

    def _node(self, index: int, item: Any, *, key: str = "nodes") -> Node:
        at = f".{key}[{index}]"
        kinds: dict[str, Callable[[str, Any, str], Node]] = {
            "message": self._message,
            "script": self._script,
            "service": self._service,
            "transfer": self._transfer,
        }
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in kinds:
            raise self.fail(f"{at}: a node is one of {', '.join(kinds)}, e.g. `- message: Hello`")
        kind, value = next(iter(item.items()))
        return kinds[kind](at, value, f"{kind} {index + 1}")

    def _fields(self, at: str, value: Any, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{at}: expected a mapping of {', '.join(sorted(allowed))}")
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(f"{at}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        return value

    def _text(self, at: str, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{at}.{key} must be non-empty text")
        return value

    def _message(self, at: str, value: Any, name: str) -> Node:
        if isinstance(value, str):
            return MessageNode(name, self._text(at, value, "message"))
        fields = self._fields(at, value, {"name", "text"})
        return MessageNode(str(fields.get("name", name)), self._text(at, fields.get("text"), "text"))

    def _script(self, at: str, value: Any, name: str) -> Node:
        fields = self._fields(at, value, {"name", *_SCRIPT_SOURCES})
        sources = [s for s in _SCRIPT_SOURCES if s in fields]
        if len(sources) != 1:
            raise self.fail(f"{at}: a script node needs exactly one of {', '.join(_SCRIPT_SOURCES)}")
        source = sources[0]
        text = self._text(at, fields[source], source)
        if source == "snippet":
            try:
                code = snippets.load(text)
            except ValueError as exc:
                raise self.fail(f"{at}.snippet: {exc}") from None
        elif source == "file":
            path = self.base / text
            try:
                code = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise self.fail(f"{at}.file: cannot read {path}: {getattr(exc, 'strerror', exc)}") from None
        else:
            code = text
        return ScriptNode(str(fields.get("name", name)), code)

    def _service(self, at: str, value: Any, name: str) -> Node:
        fields = self._fields(at, value, _SERVICE_KEYS)
        reference = self.reference
        method = str(fields.get("method", reference.method)).upper()
        if method not in _METHODS:
            raise self.fail(f"{at}.method must be one of {', '.join(sorted(_METHODS))}, found {method!r}")
        url = self._template(at, fields.get("url", reference.url), "url")
        problem = url_problem(url)
        if problem is not None:
            raise self.fail(f"{at}.url {problem}, found {url!r}")
        headers_value = fields.get("headers", dict(reference.headers))
        if not isinstance(headers_value, dict):
            raise self.fail(f"{at}.headers must map header names to values")
        headers = []
        for header, text in headers_value.items():
            if not _is_header_name(header):
                raise self.fail(f"{at}.headers: {header!r} is not an HTTP header name")
            headers.append((header, self._template(at, text, f"headers.{header}")))
        default_body = reference.body if method != "GET" else ""
        body = self._template(at, fields.get("body", default_body), "body", empty=True)
        timeout = fields.get("timeout_seconds", 5.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
            raise self.fail(f"{at}.timeout_seconds must be a number of seconds above 0, at most 60")
        retries = fields.get("retries", 2)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
            raise self.fail(f"{at}.retries must be a whole number from 0 to 5")
        # The reference node's connection rule comes with the reference endpoint.
        only_when = None if "url" in fields else REFERENCE_RULE
        if "only_when" in fields:
            rule = self._fields(f"{at}.only_when", fields["only_when"], {"path", "equals"})
            path = self._text(f"{at}.only_when", rule.get("path"), "path")
            if not path.startswith("context."):
                raise self.fail(f"{at}.only_when.path must start with context., found {path!r}")
            only_when = (path, self._text(f"{at}.only_when", rule.get("equals"), "equals"))
        return ServiceRequestNode(
            str(fields.get("name", name)),
            url=url,
            method=method,
            headers=tuple(headers),
            body=body,
            timeout_seconds=float(timeout),
            retries=retries,
            only_when=only_when,
        )

    def _template(self, at: str, value: Any, key: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not value and not empty):
            raise self.fail(f"{at}.{key} must be text")
        for path in placeholders(value):
            if not (path.startswith("env.") or path == "context" or path.startswith("context.")):
                known = "only context.* and env.* placeholders are known"
                raise self.fail(f"{at}.{key}: {{{{{path}}}}}: {known}")
        return value

    def _transfer(self, at: str, value: Any, name: str) -> Node:
        fields = self._fields(at, value, {"name", "bye_headers"})
        bye = fields.get("bye_headers", {})
        if not isinstance(bye, dict):
            raise self.fail(f"{at}.bye_headers must map SIP header names to values")
        headers = []
        for header, text in bye.items():
            if not _is_header_name(header):
                raise self.fail(f"{at}.bye_headers: {header!r} is not a SIP header name")
            if header.lower() in _DIALOG_HEADERS:
                raise self.fail(f"{at}.bye_headers: {header} belongs to the dialog; it cannot be set")
            if (
                not isinstance(text, str | int)
                or isinstance(text, bool)
                or any(c in str(text) for c in "\r\n\0")
            ):
                raise self.fail(f"{at}.bye_headers.{header} must be one line of text")
            headers.append((header, str(text)))
        return AgentTransferNode(str(fields.get("name", "agent transfer (SIP BYE)")), tuple(headers))


def _is_header_name(name: Any) -> bool:
    """An RFC 7230 token, which is what both HTTP and SIP (RFC 3261 §25.1) allow as a header name."""
    return isinstance(name, str) and bool(name) and set(name) <= _HEADER_NAME
