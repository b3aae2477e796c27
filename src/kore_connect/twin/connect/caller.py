"""The caller on a local contact: what they press, say, and when they hang up.

A scripted caller gives its entries in order: each action that collects keys (`GetParticipantInput`)
takes the next DTMF entry (`"1"`, `"12#"`), each Lex bot the next utterance; with none left the
caller is silent, and the action's time limit runs out. The caller hangs up when the contact's clock
reaches `hang_up_after` seconds, or when the flow reaches the action `hang_up_at_action`; the
default caller presses nothing, says nothing, and hangs up after `PATIENCE_SECONDS`.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

PATIENCE_SECONDS = 600.0  # the default caller's: ten minutes
DTMF_ENTRY = re.compile(r"[0-9*#]+")


class BadScript(ValueError):
    """An entry a caller cannot give (keys other than 0-9, * and #)."""


@dataclass
class ScriptedCaller:
    keys: deque[str] = field(default_factory=deque)
    utterances: deque[str] = field(default_factory=deque)
    hang_up_after: float = PATIENCE_SECONDS
    hang_up_at_action: str | None = None

    @classmethod
    def of(
        cls,
        keys: list[str] | None = None,
        utterances: list[str] | None = None,
        *,
        hang_up_after: float | None = None,
        hang_up_at_action: str | None = None,
    ) -> ScriptedCaller:
        for entry in keys or []:
            if not DTMF_ENTRY.fullmatch(entry):
                raise BadScript(f"{entry!r}: a DTMF entry holds only 0-9, * and # (e.g. 1 or 12#)")
        for utterance in utterances or []:
            if not utterance.strip():
                raise BadScript("an utterance cannot be empty (a silent turn is the absence of one)")
        return cls(
            deque(keys or []),
            deque(utterances or []),
            PATIENCE_SECONDS if hang_up_after is None else hang_up_after,
            hang_up_at_action,
        )

    def press(self) -> str | None:
        """The next DTMF entry, or None: the caller presses nothing."""
        return self.keys.popleft() if self.keys else None

    def say(self) -> str | None:
        """The next utterance, or None: the caller says nothing."""
        return self.utterances.popleft() if self.utterances else None

    def hangs_up_before(self, action_id: str, clock: float) -> str | None:
        """Why the caller hangs up before the action `action_id` runs at `clock`, or None."""
        if action_id == self.hang_up_at_action:
            return f"the caller hung up on reaching action {action_id}"
        if clock >= self.hang_up_after:
            return f"the caller hung up after {self.hang_up_after:g} s"
        return None
