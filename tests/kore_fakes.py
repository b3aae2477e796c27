"""Kore's script-node globals, faked in embedded V8, so that the shipped snippets run unchanged.

A `FakeKoreSession` is one call: the Start Flow's `context.BotUserSession.channels[0].handle`
holding the INVITE's SIP headers, the bot's `context.session.{BotUserSession,UserSession}`,
`BotUserSession.put`, `userSessionUtils.put`, `setCallFlowVariable` and `koreDebugger.log`.
Values put into a session go through JSON, as Kore persists them, so a snippet that stores
something Kore could not keep fails here too.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from py_mini_racer import mini_racer

from kore_connect.twin.kore.session import KORE_GLOBALS, KoreSession, SipHeaders, _answers_loop


def sip_headers(message: str) -> SipHeaders:
    """The headers of a SIP message as Kore hands them to the Start Flow: `[{name, value}]`, in order.

    Folded lines (a line starting with whitespace) continue the previous header (RFC 3261 section 7.3.1).
    """
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    headers: SipHeaders = []
    for line in head.split("\n")[1:]:  # the first line is the request line
        if line[:1] in (" ", "\t") and headers:
            headers[-1]["value"] = f"{headers[-1]['value']} {line.strip()}"
            continue
        name, _, value = line.partition(":")
        headers.append({"name": name.strip(), "value": value.strip()})
    return headers


def header_value(headers: SipHeaders, name: str) -> str:
    return next(h["value"] for h in headers if h["name"].lower() == name.lower())


class FakeKoreSession(KoreSession):
    """One call's Kore session in V8, as the twin's `KoreSession` but with any channel handle (or
    none), no instance session ID, and JavaScript errors raised as they are. `channel_handle` is
    what Kore puts in `channels[0].handle`."""

    def __init__(self, channel_handle: dict[str, Any] | None = None) -> None:
        self.instance_session_id = ""
        self._loop = _answers_loop()
        self._lock = threading.Lock()
        self._running = None
        self._isolate = mini_racer(self._loop)  # as the twin's sessions are made
        self._v8 = self._isolate.__enter__()
        self._v8.eval(KORE_GLOBALS)
        if channel_handle is not None:
            self._v8.eval(f"context.BotUserSession.channels = [{{handle: {json.dumps(channel_handle)}}}];")

    @classmethod
    def for_invite(cls, headers: SipHeaders) -> FakeKoreSession:
        return cls({"sipHeaders": headers})

    def run(self, script: str) -> None:
        """Run a snippet as a Kore script node does: as a script, in the session's globals."""
        self._v8.eval(script)

    def put_in_user_session(self, key: str, value: Any) -> None:
        self._v8.eval(f"userSessionUtils.put({json.dumps(key)}, {json.dumps(value)});")

    def put_in_bot_user_session(self, key: str, value: Any) -> None:
        self._v8.eval(f"BotUserSession.put({json.dumps(key)}, {json.dumps(value)});")
