"""One call's Kore session in embedded V8, so that the shipped script-node snippets run unchanged.

Kore exposes to script nodes: `context` (the Start Flow's `context.BotUserSession.channels[0].
handle.sipHeaders`, the bot's `context.session.BotUserSession` and `.UserSession`),
`BotUserSession.put/get`, `userSessionUtils.put/get`, `setCallFlowVariable/getCallFlowVariable`
and `koreDebugger.log`. Values put into a session go through JSON, as Kore persists them. Each call
has its own V8 isolate: nothing of one call can reach another.

A script node is someone else's code running inside the gateway, so each isolate is fenced in
(mini-racer 0.14.1, as found by experiment):
- time: every evaluation has a limit, a script node's and every read of a session value too;
- memory: a hard limit on the isolate's heap. Without one, V8 aborts the whole process when a
  script fills its heap (about 1.5 GB); mini-racer checks the limit after each garbage collection
  and stops the script;
- nothing runs after its node: see SANDBOX for the globals that would, and `run` for promise jobs.
A session that broke a limit runs nothing more, as its V8 may still be busy or full: every later
call raises ScriptError at once, and `close` frees the V8 on a thread of its own.
What no limit in this process can stop: a C++ built-in that ignores being stopped and allocates
past V8's ceiling in one call (`new Array(1.2e8).fill(1.5)`: its node fails at 2 s, the process
aborts 11 s later). Only V8 in a process of its own would contain that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import secrets
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from py_mini_racer import JSEvalException, JSTimeoutException, MiniRacer, mini_racer

from kore_connect.errors import KoreConnectError

SipHeaders = list[dict[str, str]]
SCRIPT_TIME_LIMIT_SECONDS = 2.0  # a script node that runs longer is stopped
# A read takes milliseconds (28 at most, with 30 threads using V8 on 2 busy cores); longer is a
# script's getter. Reads run on the gateway's event loop: this is also how long one can hold it.
READ_TIME_LIMIT_SECONDS = 1.0
MEMORY_LIMIT_BYTES = 32 * 1024 * 1024  # the isolate's heap; a session's values need a few KB

# Kore's script nodes are synchronous. What would run code after its node, outside any limit, is
# taken away: mini-racer's setTimeout (declared with `var`, so replaced, not deleted), Atomics
# (waitAsync: its timers), FinalizationRegistry (its callbacks run after a garbage collection) and
# WebAssembly (compiles in the background). So are binary buffers: their memory is outside V8's
# heap, so outside the memory limit (a script filled 1.5 GB of Uint8Arrays in 2 s). No other
# built-in hands out what is deleted here.
SANDBOX = r"""
setTimeout = clearTimeout = function noTimers() {
  throw new TypeError("a script node has no timers: Kore runs it synchronously");
};
__timer_manager = undefined;
for (const name of [
  "Atomics", "FinalizationRegistry", "WebAssembly", "ArrayBuffer", "SharedArrayBuffer", "DataView",
  "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
  "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
]) { delete globalThis[name]; }
"""

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
    """A script node threw or did not parse, or a script node or a read broke a limit."""


class KoreSession:
    """One call's session: the INVITE's SIP headers in, the bot's session values out."""

    _isolate: AbstractContextManager[MiniRacer] | None = None  # frees the V8 when it exits
    _failure: str | None = None  # the limit the session broke: it runs nothing more
    _busy = False  # an evaluation is under way
    _closed = False

    def __init__(self, sip_headers: SipHeaders | None, *, instance_session_id: str | None = None) -> None:
        """`sip_headers` None: a session without a voice channel (no `channels`), as for a chat."""
        self.instance_session_id = instance_session_id or secrets.token_hex(12)
        self._loop = _answers_loop()
        self._lock = threading.Lock()  # guards _busy and _closed, set from the call's and V8's threads
        self._running: asyncio.Task[Any] | None = None  # the evaluation under way, on the answers loop
        self._isolate = mini_racer(self._loop)
        self._v8 = self._isolate.__enter__()
        self._v8.set_hard_memory_limit(MEMORY_LIMIT_BYTES)
        # One evaluation for the whole setup: each one is a round trip to V8's thread.
        setup = [SANDBOX, KORE_GLOBALS]
        if sip_headers is not None:
            handle = {"sipHeaders": sip_headers}
            setup.append(f"context.BotUserSession.channels = [{{handle: {json.dumps(handle)}}}];")
        # Where the Agent AI widget's instance session ID is found (see korebot.service_node).
        last_message = {"messagePayload": {"instanceSessionId": self.instance_session_id}}
        setup.append(f"context.session.BotUserSession.lastMessage = {json.dumps(last_message)};")
        try:
            self._eval("\n".join(setup), READ_TIME_LIMIT_SECONDS, "the session's setup")
        except ScriptError:
            self.close()
            raise

    def run(self, script: str) -> None:
        """Run a script node's code as Kore does: as a script, in the session's globals."""
        deadline = time.monotonic() + SCRIPT_TIME_LIMIT_SECONDS
        thrown: ScriptError | None = None
        try:
            # Ending on `undefined`: the script's last value is not copied out (it could be a string
            # of hundreds of MB, made outside the memory limit once copied).
            self._eval(f"{script}\n;undefined", SCRIPT_TIME_LIMIT_SECONDS, "the script")
        except ScriptError as exc:
            if self._failure is not None or self._closed:  # a broken limit, or stopped: nothing more
                raise
            thrown = exc  # it threw: the promise jobs it queued before still run
        # mini-racer runs promise jobs between evaluations, after the script's has returned and
        # outside its time limit: an empty evaluation waits for them, in what is left of the node's
        # time (at least a read's).
        left = max(deadline - time.monotonic(), READ_TIME_LIMIT_SECONDS)
        self._eval("undefined", left, "the script's promise jobs")
        if thrown is not None:
            raise thrown

    def value(self, path: str) -> Any:
        """The value at a `context...` path (`context.session.BotUserSession.ContactId`), or None."""
        expression = "context" + "".join(f"[{json.dumps(part)}]" for part in path.split(".")[1:])
        # JSON text, or "" when the path leads nowhere (undefined, or through a missing object)
        return self._read(f"__koreRead(function () {{ return {expression}; }})", path)

    @property
    def bot_user_session(self) -> dict[str, Any]:
        return self._read_object("context.session.BotUserSession")

    @property
    def user_session(self) -> dict[str, Any]:
        return self._read_object("context.session.UserSession")

    @property
    def call_flow_variables(self) -> dict[str, Any]:
        return self._read_object("__kore.callFlow")

    @property
    def debug_log(self) -> list[str]:
        lines: list[str] = self._read("JSON.stringify(__kore.log)", "the debug log")
        return lines

    def close(self) -> None:
        """Free the session's V8; the caller never waits on it. A script under way is stopped first
        (as its time limit stops it), and the V8 is freed by the evaluation's own thread once it has
        ended: freeing an isolate under way let its last answer be decoded from freed memory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            busy = self._busy
        if busy:
            self._loop.call_soon_threadsafe(self._stop_running)
        else:
            self._free()

    def _stop_running(self) -> None:
        """On the answers loop: stop the evaluation under way, if it has started."""
        if self._running is not None:
            self._running.cancel()

    def _free(self) -> None:
        isolate, self._isolate = self._isolate, None
        if isolate is None:  # freed already
            return
        if self._failure is None:
            isolate.__exit__(None, None, None)
        else:
            # After a broken limit the V8 may still be in a C++ built-in, which ignores being
            # stopped (`new Array(1e8).fill(1)` held it up for 19 s): freeing waits for it.
            threading.Thread(
                target=isolate.__exit__, args=(None, None, None), name="kore-v8-free", daemon=True
            ).start()

    def _read_object(self, expression: str) -> dict[str, Any]:
        value: dict[str, Any] = self._read(f"JSON.stringify({expression})", expression)
        return value

    def _read(self, code: str, what: str) -> Any:
        """The value of `code`, which gives JSON text ("" for none), read within the read limit."""
        text = self._eval(code, READ_TIME_LIMIT_SECONDS, f"reading {what}")
        try:
            return json.loads(text) if isinstance(text, str) and text else None
        except ValueError:
            raise ScriptError(f"reading {what} gave no JSON (a script replaced JSON.stringify?)") from None

    def _eval(self, code: str, seconds: float, what: str) -> Any:
        """Evaluate `code` within `seconds` and the memory limit. A broken limit ends the session."""
        if self._failure is not None:
            raise ScriptError(f"the session stopped after a broken limit: {self._failure}")
        with self._lock:
            if self._closed:
                raise ScriptError("the session is closed")
            self._busy = True
        try:
            result = self._evaluate(code, seconds)
        except concurrent.futures.CancelledError:
            raise ScriptError(f"{what} was stopped: the call ended") from None
        except JSEvalException as exc:  # a throw, bad syntax, a limit
            failure = self._broken_limit(what, seconds, exc)
            if failure is None:
                raise ScriptError(" ".join(str(exc).split())[:300]) from None
            self._failure = failure
            raise ScriptError(failure) from None
        finally:
            with self._lock:
                self._busy = False
                closed = self._closed
            if closed:  # closed while this ran: nothing is under way now
                self._free()
        # A single allocation can cross the limit and the evaluation still end well.
        failure = self._broken_limit(what, seconds, None)
        if failure is not None:
            self._failure = failure
            raise ScriptError(failure)
        return result

    def _evaluate(self, code: str, seconds: float) -> Any:
        """mini-racer's own `eval` with a time limit, but with its task kept, so that `close` can
        stop it: the evaluation runs on the answers loop, and this thread waits for its result."""

        async def timed() -> Any:
            if self._closed:  # closed before it started
                raise asyncio.CancelledError
            self._running = asyncio.current_task()
            try:
                return await asyncio.wait_for(self._v8.eval_cancelable(code), seconds)
            except TimeoutError:
                raise JSTimeoutException from None
            finally:
                self._running = None

        return asyncio.run_coroutine_threadsafe(timed(), self._loop).result()

    def _broken_limit(self, what: str, seconds: float, exc: JSEvalException | None) -> str | None:
        if not self._closed and self._v8.was_hard_memory_limit_reached():
            return f"{what} went past the session's memory limit ({MEMORY_LIMIT_BYTES // 2**20} MB)"
        if isinstance(exc, JSTimeoutException):
            return f"{what} ran past its time limit ({seconds:.3g} s)"
        return None


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _answers_loop() -> asyncio.AbstractEventLoop:
    """The event loop every session's V8 answers on, on a thread of its own and never stopped.

    mini-racer answers on the loop it is made on, and limits an evaluation's time only when the
    caller is on another thread: made on the gateway's loop, a read from that loop had no limit
    (a script's leftover timer froze the gateway). As it never stops, no caller waits forever on
    an answer that a stopped loop will never deliver.
    """
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="kore-v8-answers", daemon=True).start()
        return _loop
