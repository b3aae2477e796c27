"""The local Lambda runtime: warm containers in their own processes, as Lambda runs functions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kore_connect.twin.lambda_runtime.runtime import FunctionSpec, FunctionStartError, LocalFunction
from tests.conftest import REPO


def spec(
    tmp_path: Path, *, handler: str = "tests.lambdas.probe.handler", timeout: float = 2.0
) -> FunctionSpec:
    environment = {"PYTHONPATH": str(REPO), "PROBE_IMPORTS_FILE": str(tmp_path / "imports"), "ANSWER": "42"}
    return FunctionSpec("Probe", handler, timeout, environment)


def run(function: LocalFunction, body: Callable[[LocalFunction], Awaitable[Any]]) -> Any:
    async def scenario() -> Any:
        await function.start()
        try:
            return await body(function)
        finally:
            await function.close()

    return asyncio.run(scenario())


def test_a_container_imports_once_and_stays_warm(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> list[Any]:
        return [await function.invoke({"n": n}) for n in range(5)]

    results = run(LocalFunction(spec(tmp_path), containers=1), body)
    assert [r.result["invocations"] for r in results] == [1, 2, 3, 4, 5]
    assert len({r.result["pid"] for r in results}) == 1
    assert len((tmp_path / "imports").read_text().splitlines()) == 1
    assert results[0].result["event"] == {"n": 0}


def test_the_function_sees_its_environment_and_the_lambda_variables_not_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLER_SECRET", "must-not-leak")

    async def body(function: LocalFunction) -> Any:
        return await function.invoke({})

    result = run(LocalFunction(spec(tmp_path)), body).result
    environment = result["environment"]
    assert environment["ANSWER"] == "42"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "Probe" and environment["AWS_REGION"] == "us-east-1"
    assert "CALLER_SECRET" not in environment
    assert result["function_name"] == "Probe" and result["request_id"]


def test_errors_are_reported_as_lambda_reports_them(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> list[Any]:
        return [await function.invoke({"action": a}) for a in ("raise", "not-json", "echo")]

    failed, not_json, fine = run(LocalFunction(spec(tmp_path), containers=1), body)
    assert (failed.error_type, failed.error_message) == ("ValueError", "the probe was asked to fail")
    assert not_json.error_type == "Runtime.MarshalError"
    assert fine.ok and fine.result["invocations"] == 3  # the same warm container carried on


def test_a_timeout_kills_the_container_and_the_next_invocation_gets_a_fresh_one(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> list[Any]:
        slow = await function.invoke({"action": "sleep", "seconds": 5})
        after = await function.invoke({})
        return [slow, after]

    slow, after = run(LocalFunction(spec(tmp_path, timeout=0.5), containers=1), body)
    assert slow.error_type == "Sandbox.Timedout" and "0.50 seconds" in (slow.error_message or "")
    assert after.ok and after.result["invocations"] == 1  # a cold, new container


def test_a_container_that_dies_is_replaced(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> list[Any]:
        return [await function.invoke({"action": "exit"}), await function.invoke({})]

    died, after = run(LocalFunction(spec(tmp_path), containers=1), body)
    assert died.error_type == "Runtime.ExitError"
    assert after.ok


def test_busy_containers_scale_out_so_a_slow_invocation_does_not_hold_up_the_others(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> tuple[Any, Any, int]:
        slow = asyncio.ensure_future(function.invoke({"action": "sleep", "seconds": 1.5}))
        await asyncio.sleep(0.2)
        quick = await asyncio.wait_for(function.invoke({}), timeout=1.0)
        return await slow, quick, function.containers

    slow, quick, containers = run(LocalFunction(spec(tmp_path), containers=1), body)
    assert slow.ok and quick.ok and containers == 2


def test_a_handler_that_cannot_be_imported_fails_to_start_clearly(tmp_path: Path) -> None:
    function = LocalFunction(spec(tmp_path, handler="tests.lambdas.no_such_module.handler"), containers=1)
    with pytest.raises(FunctionStartError, match=r"cannot import tests\.lambdas\.no_such_module\.handler"):
        asyncio.run(function.start())
    asyncio.run(function.close())


def test_a_burst_never_starts_more_containers_than_the_maximum(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> tuple[list[Any], int]:
        results = await asyncio.gather(
            *(function.invoke({"action": "sleep", "seconds": 0.3}) for _ in range(20))
        )
        return list(results), function.containers

    results, containers = run(LocalFunction(spec(tmp_path), containers=1, max_containers=3), body)
    assert all(r.ok for r in results)
    assert containers == 3
    assert len((tmp_path / "imports").read_text().splitlines()) == 3


def test_a_handler_broken_while_running_fails_invocations_clearly_until_it_is_fixed(tmp_path: Path) -> None:
    # GIVEN a function whose module lives in a folder we can edit while it runs
    module = tmp_path / "editable_probe.py"
    module.write_text("def handler(event, context):\n    return {'version': 1}\n")
    crash = "import os\n\ndef handler(event, context):\n    os._exit(1)\n"
    environment = {"PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}  # edits within a second
    function_spec = FunctionSpec("Editable", "editable_probe.handler", 2.0, environment)

    async def body(function: LocalFunction) -> list[Any]:
        first = await function.invoke({})
        module.write_text(crash)  # the warm container keeps the old code...
        still_warm = await function.invoke({})
        module.write_text("def handler(event, context):\n    return {'version': 1\n")  # a syntax error
        # ...until it is gone: then a new container must import the broken module
        function._free[0].stop()
        lost = await function.invoke({})
        broken = await asyncio.wait_for(function.invoke({}), timeout=10)
        module.write_text("def handler(event, context):\n    return {'version': 2}\n")
        fixed = await asyncio.wait_for(function.invoke({}), timeout=10)
        return [first, still_warm, lost, broken, fixed]

    first, still_warm, lost, broken, fixed = run(LocalFunction(function_spec, containers=1), body)
    assert first.result == {"version": 1} and still_warm.result == {"version": 1}
    assert lost.error_type == "Runtime.ExitError"
    assert broken.error_type == "Runtime.ImportModuleError" and "SyntaxError" in (broken.error_message or "")
    assert fixed.result == {"version": 2}


def test_a_caller_time_limit_counts_from_when_a_container_runs_the_event(tmp_path: Path) -> None:
    # GIVEN one container and three callers at once, each willing to wait 1 s for a 0.4 s function
    async def body(function: LocalFunction) -> list[Any]:
        event = {"action": "sleep", "seconds": 0.4}
        return list(await asyncio.gather(*(function.invoke(event, time_limit=1.0) for _ in range(3))))

    # WHEN they queue for it (the last waits 0.8 s before its event runs)
    results = run(LocalFunction(spec(tmp_path), containers=1, max_containers=1), body)
    # THEN all are answered: waiting for a worker of the twin's is not the function's time
    assert [r.ok for r in results] == [True, True, True]
    assert all(350 <= r.duration_ms < 1000 for r in results)


def test_a_caller_that_stops_waiting_leaves_the_function_running_and_its_container_usable(
    tmp_path: Path,
) -> None:
    async def body(function: LocalFunction) -> list[Any]:
        gave_up = await function.invoke({"action": "sleep", "seconds": 0.6}, time_limit=0.1)
        await asyncio.sleep(0.7)  # the container is free again, so the next caller has it at once
        with pytest.raises(TimeoutError):  # a caller cancelled from outside strands nothing either
            await asyncio.wait_for(function.invoke({"action": "sleep", "seconds": 0.6}), 0.1)
        after = await asyncio.wait_for(function.invoke({}), 5)  # a stranded container: never answered
        return [gave_up, after]

    # GIVEN one container only; WHEN two callers stop waiting before their function ends
    gave_up, after = run(LocalFunction(spec(tmp_path), containers=1, max_containers=1), body)
    # THEN the first was told so, and the container served the next event, warm (its third)
    assert gave_up.unanswered and gave_up.error_message == "no answer within 0.1 s"
    assert after.ok and after.result["invocations"] == 3


def test_a_waiter_cancelled_as_it_is_handed_the_free_container_passes_it_on(tmp_path: Path) -> None:
    # GIVEN one container, busy, and two callers waiting for it
    async def body(function: LocalFunction) -> Any:
        busy = asyncio.ensure_future(function.invoke({"action": "sleep", "seconds": 0.3}))
        await asyncio.sleep(0.1)
        first = asyncio.ensure_future(function.invoke({}))
        second = asyncio.ensure_future(function.invoke({}))
        await asyncio.sleep(0.05)
        # WHEN the first is cancelled (its contact hung up) in the moment the container is handed
        # to it: the notify that wakes it, then the cancel, before it runs again
        condition = function._changed  # white-box: the moment cannot be reached from outside
        real_notify = condition.notify

        def notify_then_cancel(n: int = 1) -> None:
            real_notify(n)
            first.cancel()

        condition.notify = notify_then_cancel  # type: ignore[method-assign]
        await busy
        # THEN the second still gets the container, and is answered
        return await asyncio.wait_for(second, 5)

    answered = run(LocalFunction(spec(tmp_path), containers=1, max_containers=1), body)
    assert answered.ok


def test_stopping_the_function_mid_invocation_answers_it_as_a_failure(tmp_path: Path) -> None:
    async def body(function: LocalFunction) -> Any:
        running = asyncio.ensure_future(function.invoke({"action": "sleep", "seconds": 5}))
        await asyncio.sleep(0.2)
        await function.close()
        return await asyncio.wait_for(running, 5)

    # WHEN the runtime stops while an event runs; THEN the caller gets a failed invocation, never
    # an exception (the flow takes its error branch), as when a container dies
    stopped = run(LocalFunction(spec(tmp_path), containers=1), body)
    assert stopped.error_type == "Runtime.ExitError" and "stopping" in (stopped.error_message or "")
