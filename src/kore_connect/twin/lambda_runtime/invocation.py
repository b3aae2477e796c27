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
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_type is None
