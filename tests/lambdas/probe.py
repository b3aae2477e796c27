"""A function whose behaviour the event chooses, and which reports what its container saw."""

from __future__ import annotations

import os
import time
from typing import Any

IMPORTS = os.environ.get("PROBE_IMPORTS_FILE")
if IMPORTS:  # one line per import: a warm container imports once
    with open(IMPORTS, "a", encoding="utf-8") as imports:
        imports.write(f"{os.getpid()}\n")

_invocations = 0


def handler(event: dict[str, Any], context: Any) -> Any:
    global _invocations
    _invocations += 1
    action = event.get("action", "echo")
    if action == "sleep":
        time.sleep(float(event["seconds"]))
    if action == "raise":
        raise ValueError("the probe was asked to fail")
    if action == "not-json":
        return {"value": {1, 2}}
    if action == "exit":
        os._exit(3)
    return {
        "event": event,
        "pid": os.getpid(),
        "invocations": _invocations,
        "environment": dict(os.environ),
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
    }
