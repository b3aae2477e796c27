"""A SIP ladder diagram's layout (pure): two lanes, Connect's connector and the Kore gateway, and
one arrow per message, top to bottom. The template draws it as SVG."""

from __future__ import annotations

from dataclasses import dataclass

from kore_connect.twin.sip.trace import TracedMessage

WIDTH = 640
LEFT, RIGHT = 120, 520  # the two lanes' x
TOP, STEP = 56, 34  # the first arrow's y, and the room for each


@dataclass(frozen=True, slots=True)
class Arrow:
    y: int
    x1: int
    x2: int
    label: str
    at_ms: str
    direction: str  # "to Kore" or "to Connect", for the text alternative


def ladder(messages: list[TracedMessage]) -> tuple[list[Arrow], int]:
    """The arrows for the connector's `messages` (sent = Connect -> Kore), and the diagram's height."""
    arrows = []
    for index, message in enumerate(messages):
        outgoing = message.direction == "sent"
        first = message.first_line
        label = first.removeprefix("SIP/2.0 ") if first.startswith("SIP/2.0 ") else first.split(" ")[0]
        arrows.append(
            Arrow(
                y=TOP + index * STEP,
                x1=LEFT if outgoing else RIGHT,
                x2=RIGHT if outgoing else LEFT,
                label=label,
                at_ms=f"{message.at * 1000:.1f} ms",
                direction="to Kore" if outgoing else "to Connect",
            )
        )
    return arrows, TOP + len(arrows) * STEP
