"""One Lambda execution environment of the local runtime (`kore_connect.twin.lambda_runtime.runtime`).

Started as `python -m kore_connect.twin.lambda_runtime.worker <fd> <module.handler> <function name> <timeout>`
with the function's environment and nothing else. It imports the handler once, says it is ready,
then runs invocations one at a time: an event (JSON text) and a request ID in, the result (JSON
text) or the error out, over the socket `fd`. It ends when the runtime closes the socket.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runtime decides when a container stops
    fd, handler, name, timeout = int(argv[0]), argv[1], argv[2], float(argv[3])
    pipe = Connection(fd)
    try:
        from kore_connect.twin.lambda_runtime.context import LocalLambdaContext

        module_name, _, attribute = handler.rpartition(".")
        function = getattr(importlib.import_module(module_name), attribute)
        status: tuple[str, str | None] = ("ready", None)
    except Exception as exc:  # any import failure is reported, as Lambda's init error
        status = ("init_error", f"{type(exc).__name__}: {exc}")
    try:
        pipe.send(status)
    except OSError:
        return  # the runtime stopped while this container started: nothing to tell it
    if status[0] != "ready":
        return
    region = os.environ.get("AWS_REGION", "us-east-1")
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    while True:
        try:
            event_text, request_id = pipe.recv()
        except (EOFError, OSError):
            return  # the runtime is gone: so is this container
        context = LocalLambdaContext(
            memory_limit_in_mb=memory,
            function_name=name,
            timeout_seconds=timeout,
            region=region,
            aws_request_id=request_id,
        )
        try:
            reply: tuple[str, Any] = ("ok", json.dumps(function(json.loads(event_text), context)))
        except Exception as exc:  # a handler's failure is the invocation's result
            reply = ("error", _error(exc))
            # Lambda writes a failed invocation's error to the function's log, never the event.
            print(f"[ERROR] {reply[1]['errorType']}: {reply[1]['errorMessage']}", file=sys.stderr, flush=True)
            traceback.print_exception(exc, file=sys.stderr)
        try:
            pipe.send(reply)
        except OSError:
            return


def _error(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, TypeError) and "JSON serializable" in str(exc):
        return {"errorType": "Runtime.MarshalError", "errorMessage": f"Unable to marshal response: {exc}"}
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-3:],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
