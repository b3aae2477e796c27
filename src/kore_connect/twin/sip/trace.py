"""One SIP message as a call's trace keeps it (pure): both ends of the twin record the messages of
each call so, Connect's connector with the whole text, the Kore gateway with the first line only.
Its JSON form, used in every report and database of the twin, is defined here once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["sent", "received"]


@dataclass(frozen=True, slots=True)
class TracedMessage:
    direction: Direction  # as seen from the end that recorded it
    first_line: str
    at: float  # the connector: seconds since its transfer began; the gateway: the wall clock
    text: str | None = field(default=None, repr=False)  # the whole message, where it is kept

    def __str__(self) -> str:
        arrow = "->" if self.direction == "sent" else "<-"
        return f"{arrow} {self.first_line}"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"direction": self.direction, "firstLine": self.first_line, "at": self.at}
        if self.text is not None:
            document["message"] = self.text
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> TracedMessage:
        direction: Direction = "sent" if document["direction"] == "sent" else "received"
        return cls(direction, document["firstLine"], float(document["at"]), document.get("message"))
