"""A local Lambda runtime: each function runs in its own worker processes, as in AWS.

How it works. A `LocalFunction` keeps a few *containers*, each a separate Python process that
sets the function's environment (and nothing of the caller's beyond the basics a process needs),
imports the handler module once, and then runs one invocation at a time, warm, like a Lambda
execution environment. Events and results cross the process boundary as JSON text, as they do in
Lambda, so a handler that returns something JSON cannot carry fails here as it would there.

A container that runs past the function's timeout is killed and replaced, and the invocation
fails with Lambda's "Task timed out" error. Separate processes keep what handlers hold per
container (Powertools' logger and metrics, cached clients) apart, as separate containers do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from kore_connect.aws_events import LOCAL_ACCOUNT, LOCAL_REGION
from kore_connect.errors import KoreConnectError
from kore_connect.private_files import open_private
from kore_connect.twin.lambda_runtime.invocation import Invocation

logger = logging.getLogger(__name__)
# What a process needs from its parent's environment to run at all; the rest is the function's.
_PROCESS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")
_START_TIMEOUT_SECONDS = 60.0


class FunctionStartError(KoreConnectError):
    """A container could not import its handler (Lambda's Runtime.ImportModuleError)."""


class StoreChoice(Protocol):
    """What tells the functions which session store to use (the local run's store): the variables
    to add to their environment."""

    def environment(self) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str  # the function's name (the template's logical ID)
    handler: str  # module.attribute
    timeout_seconds: float
    environment: Mapping[str, str]
    memory_mb: int = 256
    region: str = LOCAL_REGION
    account_id: str = LOCAL_ACCOUNT
    log_path: Path | None = None  # where the function's log goes; None: our stderr


class LocalFunction:
    """A function with `containers` warm worker processes, started with it; `invoke` runs an event on
    a free one. When all are busy, one more is started (a cold start), up to `max_containers`, as
    Lambda scales out; past that, invocations wait for a container. A container that times out or
    dies is dropped; the next invocation that finds none free starts a fresh one."""

    def __init__(self, spec: FunctionSpec, *, containers: int = 2, max_containers: int = 16) -> None:
        self.spec = spec
        self._size = containers
        self._max = max(containers, max_containers)
        self._free: list[_Container] = []
        self._all: set[_Container] = set()
        self._starting = 0
        self._start_failures = 0
        self._last_start_error = ""
        self._changed = asyncio.Condition()  # guards the pool above; notified on every change
        self._background: set[asyncio.Future[Any]] = set()  # cold starts and runs in flight, kept referenced
        # Invocations (one thread per container, each blocked on its pipe) and cold starts apart,
        # so a burst of starts never delays a warm container's answer.
        self._io = ThreadPoolExecutor(max_workers=self._max, thread_name_prefix=f"lambda-{spec.name}")
        self._starts = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"lambda-{spec.name}-init")
        self._closed = False

    @property
    def containers(self) -> int:
        return len(self._all)

    async def start(self) -> None:
        """Start the first containers; raises FunctionStartError when the handler cannot be imported."""
        started = await asyncio.gather(
            *(self._start_container() for _ in range(self._size)), return_exceptions=True
        )
        failure = next((r for r in started if isinstance(r, BaseException)), None)
        containers = [r for r in started if isinstance(r, _Container)]
        if failure is not None:
            for container in containers:
                container.stop()
            raise failure
        async with self._changed:
            self._all.update(containers)
            self._free.extend(containers)

    async def invoke(self, event: Any, time_limit: float | None = None) -> Invocation:
        """Run `event` through the handler; never raises for what the handler does.

        `time_limit` is how long the caller waits once a container runs the event; past it the
        answer is `Invocation.no_answer_within` and the event runs on to its end, as a Lambda
        function does when its caller stops waiting. Time spent waiting for a free container is not
        counted: it is the twin's (a few workers on one machine), where Lambda would start another.
        """
        container = await self._acquire()
        if container is None:
            message = self._last_start_error if not self._closed else f"{self.spec.name} is stopping"
            return Invocation(error_type="Runtime.ImportModuleError", error_message=message)
        # A task of its own, so that a caller who stops waiting never strands the container.
        running = asyncio.ensure_future(self._run(container, event))
        self._background.add(running)
        running.add_done_callback(self._ran)
        try:
            return await asyncio.wait_for(asyncio.shield(running), time_limit)
        except TimeoutError:
            assert time_limit is not None
            return Invocation.no_answer_within(time_limit)
        except asyncio.CancelledError:
            if not running.cancelled():
                raise  # the caller itself was cancelled
            # `close` stopped the run: the invocation failed, as when a container dies
            return Invocation(error_type="Runtime.ExitError", error_message=f"{self.spec.name} is stopping")

    def _ran(self, running: asyncio.Future[Invocation]) -> None:
        self._background.discard(running)
        failure = None if running.cancelled() else running.exception()
        if failure is not None:  # a fault of the runtime's own, which a caller that gave up never saw
            logger.error("%s: an invocation failed in the runtime: %r", self.spec.name, failure)

    async def _run(self, container: _Container, event: Any) -> Invocation:
        started = time.perf_counter()
        try:
            reply = await asyncio.get_running_loop().run_in_executor(
                self._io, container.run, json.dumps(event)
            )
        except _ContainerLost as lost:
            container.stop()
            async with self._changed:
                self._all.discard(container)
                self._changed.notify_all()
            return Invocation(
                error_type=lost.error_type,
                error_message=str(lost),
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        async with self._changed:
            self._free.append(container)
            self._changed.notify()
        duration = (time.perf_counter() - started) * 1000
        if reply[0] == "ok":
            return Invocation(result=json.loads(reply[1]), duration_ms=duration)
        return Invocation(
            error_type=reply[1]["errorType"], error_message=reply[1]["errorMessage"], duration_ms=duration
        )

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
        for task in list(self._background):
            task.cancel()
        for container in list(self._all):
            container.stop()
        self._all.clear()
        self._free.clear()
        self._io.shutdown(wait=False, cancel_futures=True)
        self._starts.shutdown(wait=False, cancel_futures=True)

    async def _acquire(self) -> _Container | None:
        """A free container; None when the function is stopping, or when starting one failed and
        no other exists (the handler cannot be imported)."""
        async with self._changed:
            failures_before = self._start_failures
            asked_for_one = False
            while True:
                if self._closed:
                    return None
                if self._free:
                    return self._free.pop()
                if self._start_failures > failures_before and not self._all and not self._starting:
                    return None
                if not asked_for_one and len(self._all) + self._starting < self._max:
                    self._starting += 1  # counted now, so that the same burst cannot overshoot the maximum
                    task = asyncio.ensure_future(self._scale_out())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                    asked_for_one = True
                try:
                    await self._changed.wait()
                except asyncio.CancelledError:
                    # A notify meant for this waiter would be lost with it (3.11's Condition does not
                    # pass it on): pass it to the next, so that a free container never sits idle.
                    self._changed.notify()
                    raise

    async def _scale_out(self) -> None:
        fresh: _Container | None = None
        try:
            fresh = await self._start_container()
        except FunctionStartError as exc:
            self._last_start_error = str(exc)
        finally:
            async with self._changed:
                self._starting -= 1
                if fresh is None:
                    self._start_failures += 1
                elif self._closed:
                    fresh.stop()
                else:
                    self._all.add(fresh)
                    self._free.append(fresh)
                self._changed.notify_all()

    async def _start_container(self) -> _Container:
        container = _Container(self.spec)
        await asyncio.get_running_loop().run_in_executor(self._starts, container.wait_ready)
        return container


class _ContainerLost(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(message)


class _Container:
    """One worker process (`python -m kore_connect.twin.lambda_runtime.worker`) and the socket to
    it, used from one thread at a time. What it prints is the function's log, as in Lambda: sent
    to our stderr."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        log = open_private(spec.log_path, "a") if spec.log_path is not None else None  # 0600, no link
        ours, theirs = socket.socketpair()
        environment = {k: os.environ[k] for k in _PROCESS_BASICS if k in os.environ}
        environment.update(_lambda_variables(spec))
        environment.update(spec.environment)
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-m",
                "kore_connect.twin.lambda_runtime.worker",
                str(theirs.fileno()),
                spec.handler,
                spec.name,
                str(spec.timeout_seconds),
            ],
            env=environment,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            # the function's logs go where logs go, never into a command's output
            stdout=log if log is not None else 2,
            stderr=log,
            # Its own process group: a Ctrl-C meant for the runtime does not reach it; the runtime
            # stops it, and a container whose runtime is gone ends when its socket closes.
            start_new_session=True,
        )
        theirs.close()
        if log is not None:
            log.close()  # the process has its own copy
        self._pipe = Connection(ours.detach())

    def wait_ready(self) -> None:
        if not self._pipe.poll(_START_TIMEOUT_SECONDS):
            self.stop()
            raise FunctionStartError(f"{self.spec.name} did not start within {_START_TIMEOUT_SECONDS:.0f} s")
        try:
            status, detail = self._pipe.recv()
        except EOFError:
            raise FunctionStartError(f"{self.spec.name}: its container exited while starting") from None
        if status != "ready":
            self.stop()
            raise FunctionStartError(f"{self.spec.name}: cannot import {self.spec.handler}: {detail}")

    def run(self, event_text: str) -> tuple[str, Any]:
        deadline = self.spec.timeout_seconds
        try:
            self._pipe.send((event_text, str(uuid.uuid4())))
            if not self._pipe.poll(deadline):
                raise _ContainerLost("Sandbox.Timedout", f"Task timed out after {deadline:.2f} seconds")
            reply: tuple[str, Any] = self._pipe.recv()
        except (EOFError, OSError):
            raise _ContainerLost("Runtime.ExitError", "the function's container exited") from None
        return reply

    def stop(self) -> None:
        self._pipe.close()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=5)


def _lambda_variables(spec: FunctionSpec) -> dict[str, str]:
    """The variables the Lambda runtime sets in every execution environment."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "TZ": ":UTC",
    }
