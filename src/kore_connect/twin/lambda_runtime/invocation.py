"""What one invocation of a function came to (pure: the API Gateway core and the flow interpreter
import it without the runtime's processes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Invocation:
    """The outcome of one invocation: a result, or an error as Lambda reports one."""

    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0  # how long the function ran (waiting for a free worker not counted)
    # The caller stopped waiting at its time limit; the function itself runs on, as in Lambda.
    unanswered: bool = False

    @classmethod
    def no_answer_within(cls, seconds: float) -> Invocation:
        return cls(
            error_type="Unanswered",
            error_message=f"no answer within {seconds:g} s",
            duration_ms=seconds * 1000,
            unanswered=True,
        )

    @property
    def ok(self) -> bool:
        return self.error_type is None
