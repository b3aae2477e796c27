"""Which local function a flow's `LambdaFunctionARN` reaches.

A flow exported from Amazon Connect names functions by ARN, from the account it was built in. The
twin maps each ARN to a function of the local runtime by the function's name (the part after
`function:`, without a version or alias), compared without regard to case, so that the reference
flow's `koreRetrieveSessionMetadata` reaches the template's `KoreRetrieveSessionMetadata`. The
name CloudFormation generates for a deployed function (`<stack>-<logical ID, cut>-<suffix>`, such as
`kore-connect-KoreRetrieveSessionMetad-AbC123xYz9`) reaches the template function whose logical ID
it starts with, so a flow written for a deployed stack runs locally as it is. Names can also be
mapped explicitly. A function is started (its containers) the first time a flow
invokes it, or ahead of any contact with `warm`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from typing import Any

from kore_connect.twin.connect.world import LambdaFunction, World
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.lambda_runtime.runtime import FunctionSpec, FunctionStartError, LocalFunction

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
        self._starting: dict[str, asyncio.Future[LocalFunction]] = {}

    async def __call__(
        self, function_arn: str, event: dict[str, Any], time_limit: float | None = None
    ) -> Invocation:
        """The function's answer to `event`; `time_limit` counts from when a container runs it
        (`LocalFunction.invoke`), so that the twin's own start-up and queueing fail no contact."""
        name = self._local_name(function_arn)
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(sorted(s.name for s in self._specs.values())) or "none"
            wanted = function_name(function_arn)
            return Invocation(
                error_type="ResourceNotFoundException",
                error_message=f"no local function is named {wanted!r} (local functions: {known})",
            )
        try:
            function = await self._started(name, spec)
        except FunctionStartError as failure:  # as Lambda answers when the handler cannot be imported
            return Invocation(error_type="Runtime.ImportModuleError", error_message=str(failure))
        return await function.invoke(event, time_limit)

    async def warm(self, function_arns: list[str]) -> None:
        """Start the functions these ARNs reach now, with all their containers, so that no contact
        waits for the twin's own start-up (a Lambda cold start in AWS takes a fraction of a second;
        one here, several)."""
        for arn in function_arns:
            name = self._local_name(arn)
            spec = self._specs.get(name)
            if spec is not None:
                # one that cannot start fails each contact that invokes it, as in Lambda: not here
                with contextlib.suppress(FunctionStartError):
                    await self._started(name, spec)

    async def close(self) -> None:
        for starting in self._starting.values():
            starting.cancel()
        for function in self._running.values():
            await function.close()
        self._running.clear()

    def _local_name(self, function_arn: str) -> str:
        name = function_name(function_arn).lower()
        if name in self._aliases:
            return self._aliases[name]
        if name in self._specs:
            return name
        return generated_name_of(name, self._specs) or name

    async def _started(self, name: str, spec: FunctionSpec) -> LocalFunction:
        """The running function `name`, started once however many contacts ask for it at once."""
        function = self._running.get(name)
        if function is not None:
            return function
        starting = self._starting.get(name)
        if starting is None or (starting.done() and starting.exception() is not None):
            starting = asyncio.ensure_future(self._start(name, spec))
            # a failure is each waiting contact's to report; seen here so that none goes unretrieved
            starting.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._starting[name] = starting
        # shielded: a contact that stops waiting (it hung up) does not cancel the start for the others
        return await asyncio.shield(starting)

    async def _start(self, name: str, spec: FunctionSpec) -> LocalFunction:
        function = LocalFunction(spec, containers=self._containers, max_containers=self._max_containers)
        await function.start()
        self._running[name] = function
        return function


class WorldLambdas:
    """The local world's functions (`World.lambdas`: a canned response, a template function, a
    Python callable, an error) in front of the template's functions; usable as `invoke_lambda`."""

    def __init__(self, world: World, local: LocalLambdas) -> None:
        self._world = world
        self._local = local

    async def __call__(
        self, function_arn: str, event: dict[str, Any], time_limit: float | None = None
    ) -> Invocation:
        entry = self._world.lambdas.get(function_arn) or self._by_name(function_arn)
        if entry is None:
            return await self._local(function_arn, event, time_limit)
        if entry.function is not None:
            return await self._local(entry.function, event, time_limit)
        if entry.error is not None:
            return Invocation(error_type="Error", error_message=entry.error)
        if entry.python is None:
            return Invocation(result=entry.response)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(asyncio.to_thread(entry.python, event, None), time_limit)
        except TimeoutError:
            return Invocation.no_answer_within(time_limit or 0.0)
        except Exception as exc:  # the callable's failure is the function's, as Lambda reports it
            return Invocation(
                error_type=type(exc).__name__,
                error_message=str(exc),
                duration_ms=(time.monotonic() - started) * 1000,
            )
        return Invocation(result=result, duration_ms=(time.monotonic() - started) * 1000)

    def _by_name(self, function_arn: str) -> LambdaFunction | None:
        wanted = function_name(function_arn)
        return next((e for arn, e in self._world.lambdas.items() if function_name(arn) == wanted), None)


# CloudFormation's generated function names: the stack, the logical ID cut to fit 64 characters,
# and a random suffix of letters and digits.
_GENERATED = re.compile(r"(?P<stack>[a-z][a-z0-9-]*)-(?P<logical>[a-z0-9]{6,})-(?P<suffix>[a-z0-9]{8,13})")


def generated_name_of(name: str, functions: Mapping[str, Any]) -> str | None:
    """The one function of `functions` (lower-case logical IDs) whose CloudFormation-generated
    name `name` (lower case) is; None when it is none, or could be more than one."""
    match = _GENERATED.fullmatch(name)
    if match is None:
        return None
    candidates = [logical for logical in functions if logical.startswith(match["logical"])]
    return candidates[0] if len(candidates) == 1 else None
