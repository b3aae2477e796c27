"""One call's Kore session in embedded V8, so that the shipped script-node snippets run unchanged.

Kore exposes to script nodes: `context` (the Start Flow's `context.BotUserSession.channels[0].
handle.sipHeaders`, the bot's `context.session.BotUserSession` and `.UserSession`),
`BotUserSession.put/get`, `userSessionUtils.put/get`, `setCallFlowVariable/getCallFlowVariable`
and `koreDebugger.log`. Values put into a session go through JSON, as Kore persists them. Each call
has its own V8 isolate: nothing of one call can reach another.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from py_mini_racer import JSEvalException, MiniRacer

from kore_connect.errors import KoreConnectError

SipHeaders = list[dict[str, str]]
SCRIPT_TIMEOUT_MS = 2000  # a script node that runs longer is stopped

KORE_GLOBALS = r"""
var __kore = {log: [], callFlow: {}};
var context = {BotUserSession: {}, session: {BotUserSession: {}, UserSession: {}}};

function __koreKeep(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
function setCallFlowVariable(name, value) { __kore.callFlow[name] = __koreKeep(value); }
function getCallFlowVariable(name) { return __kore.callFlow[name]; }
var userSessionUtils = {
  put: function (key, value) { context.session.UserSession[key] = __koreKeep(value); },
  get: function (key) { return context.session.UserSession[key]; }
};
var BotUserSession = {
  put: function (key, value) { context.session.BotUserSession[key] = __koreKeep(value); },
  get: function (key) { return context.session.BotUserSession[key]; }
};
var koreDebugger = {log: function (message) { __kore.log.push(String(message)); }};
function __koreRead(get) {
  try { return JSON.stringify(get()) || ""; } catch (e) { return ""; }
}
"""


class ScriptError(KoreConnectError):
    """A script node threw, did not parse, or ran past its time limit."""


class KoreSession:
    """One call's session: the INVITE's SIP headers in, the bot's session values out."""

    def __init__(self, sip_headers: SipHeaders | None, *, instance_session_id: str | None = None) -> None:
        """`sip_headers` None: a session without a voice channel (no `channels`), as for a chat."""
        self.instance_session_id = instance_session_id or secrets.token_hex(12)
        self._v8 = MiniRacer()
        # One evaluation for the whole setup: each one is a round trip to V8's thread.
        setup = [KORE_GLOBALS]
        if sip_headers is not None:
            handle = {"sipHeaders": sip_headers}
            setup.append(f"context.BotUserSession.channels = [{{handle: {json.dumps(handle)}}}];")
        # Where the Agent AI widget's instance session ID is found (see korebot.service_node).
        last_message = {"messagePayload": {"instanceSessionId": self.instance_session_id}}
        setup.append(f"context.session.BotUserSession.lastMessage = {json.dumps(last_message)};")
        self._v8.eval("\n".join(setup))

    def run(self, script: str) -> None:
        """Run a script node's code as Kore does: as a script, in the session's globals."""
        try:
            self._v8.eval(script, timeout=SCRIPT_TIMEOUT_MS)
        except JSEvalException as exc:  # a throw, bad syntax, the time limit, memory: all of them
            raise ScriptError(" ".join(str(exc).split())[:300]) from None

    def value(self, path: str) -> Any:
        """The value at a `context...` path (`context.session.BotUserSession.ContactId`), or None."""
        expression = "context" + "".join(f"[{json.dumps(part)}]" for part in path.split(".")[1:])
        # JSON text, or "" when the path leads nowhere (undefined, or through a missing object)
        text = self._v8.eval(f"__koreRead(function () {{ return {expression}; }})")
        return json.loads(str(text)) if text else None

    @property
    def bot_user_session(self) -> dict[str, Any]:
        return self._read("context.session.BotUserSession")

    @property
    def user_session(self) -> dict[str, Any]:
        return self._read("context.session.UserSession")

    @property
    def call_flow_variables(self) -> dict[str, Any]:
        return self._read("__kore.callFlow")

    @property
    def debug_log(self) -> list[str]:
        lines: list[str] = json.loads(str(self._v8.eval("JSON.stringify(__kore.log)")))
        return lines

    def close(self) -> None:
        self._v8.close()

    def _read(self, expression: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(str(self._v8.eval(f"JSON.stringify({expression})")))
        return value
