"""Which local function a flow's `LambdaFunctionARN` reaches.

A flow exported from Amazon Connect names functions by ARN, from the account it was built in. The
twin maps each ARN to a function of the local runtime by the function's name (the part after
`function:`, without a version or alias), compared without regard to case, so that the reference
flow's `koreRetrieveSessionMetadata` reaches the template's `KoreRetrieveSessionMetadata`. Names
can also be mapped explicitly. A function is started (its containers) the first time a flow
invokes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kore_connect.twin.runtime import FunctionSpec, Invocation, LocalFunction

_FUNCTION_NAME = re.compile(r"arn:[^:]+:lambda:[^:]*:[^:]*:function:(?P<name>[^:]+)(?::.+)?")


def function_name(arn: str) -> str:
    """The function's name in a Lambda ARN (or the value itself when it is already a name)."""
    match = _FUNCTION_NAME.fullmatch(arn)
    return match["name"] if match else arn


class LocalLambdas:
    """Invokes flow Lambda ARNs on local functions; usable as the interpreter's `invoke_lambda`."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        *,
        aliases: Mapping[str, str] | None = None,
        containers: int = 1,
        max_containers: int = 4,  # as the local API's: more workers than cores only add contention
    ) -> None:
        self._specs = {name.lower(): spec for name, spec in specs.items()}
        self._aliases = {alias.lower(): target.lower() for alias, target in (aliases or {}).items()}
        self._containers = containers
        self._max_containers = max_containers
        self._running: dict[str, LocalFunction] = {}

    async def __call__(self, function_arn: str, event: dict[str, Any]) -> Invocation:
        name = function_name(function_arn).lower()
        name = self._aliases.get(name, name)
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(sorted(s.name for s in self._specs.values())) or "none"
            wanted = function_name(function_arn)
            return Invocation(
                error_type="ResourceNotFoundException",
                error_message=f"no local function is named {wanted!r} (local functions: {known})",
            )
        function = self._running.get(name)
        if function is None:
            function = LocalFunction(spec, containers=self._containers, max_containers=self._max_containers)
            await function.start()
            self._running[name] = function
        return await function.invoke(event)

    async def close(self) -> None:
        for function in self._running.values():
            await function.close()
        self._running.clear()
