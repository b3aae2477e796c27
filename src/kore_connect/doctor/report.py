"""What `kore-connect doctor` found: one `CheckResult` per checklist line, gathered in a `Report`."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Check(enum.StrEnum):
    """The checklist, in the order the doctor runs it; each value is the line's title."""

    STACK = "Stack deployed"
    TABLE = "Sessions table"
    REFERENCE_TABLE = "Reference setup's table (only while switching)"
    API_WITHOUT_TOKEN = "API refuses a request without a token"  # noqa: S105 (a title, not a token)
    API_WRONG_TOKEN = "API refuses a wrong token"  # noqa: S105 (a title)
    API_STORES = "API stores metadata with the bot's token"
    RETRIEVE = "Retrieve function returns the metadata"
    CONNECT = "Connect may invoke the retrieve function"
    FLOW_LOGS = "Connect instance writes flow logs"
    FLOW = "A published flow invokes the retrieve function"
    CONNECTOR = "The flow's voice connector exists"
    CLEANUP = "Synthetic item deleted"


class CheckStatus(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # an earlier check failed, or the deployment has nothing to check here


@dataclass(frozen=True)
class CheckResult:
    """One checklist line. A failure says what came back (`detail`), why (`cause`) and what to do (`fix`).

    No field ever holds the bot's token or a response body's metadata.
    """

    name: str
    status: CheckStatus
    detail: str = ""
    cause: str = ""
    fix: str = ""

    @classmethod
    def passed(cls, name: str, detail: str) -> CheckResult:
        return cls(name, CheckStatus.PASSED, detail)

    @classmethod
    def failed(cls, name: str, detail: str, *, cause: str, fix: str) -> CheckResult:
        return cls(name, CheckStatus.FAILED, detail, cause=cause, fix=fix)

    @classmethod
    def skipped(cls, name: str, detail: str) -> CheckResult:
        return cls(name, CheckStatus.SKIPPED, detail)

    @property
    def ok(self) -> bool:
        return self.status is not CheckStatus.FAILED


@dataclass(frozen=True)
class Report:
    stack_name: str
    contact_id: str  # the synthetic contact the doctor stored, read back and deleted
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (a check skipped for lack of a Connect instance is not a failure)."""
        return all(result.ok for result in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if result.status is CheckStatus.FAILED)

    def result(self, name: str) -> CheckResult:
        """The result of the check called `name`; KeyError when it did not run."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)
