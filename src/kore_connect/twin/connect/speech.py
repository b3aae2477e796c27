"""What a caller hears from a prompt, as text, and how long saying it takes on the contact's clock.

SSML is rendered as the words it speaks (tags dropped, `<break time="2s"/>` kept as a pause); a
prompt from the instance's library (`PromptId`) or S3 (`Media`) is named, since its audio is not
here."""

from __future__ import annotations

import html
import re

WORDS_PER_SECOND = 2.5  # text-to-speech at about 150 words a minute
RECORDED_PROMPT_SECONDS = 5.0  # a library prompt or an S3 file: its length is not known here
_BREAK = re.compile(r"<break\b[^>]*?time=\"(?P<amount>[0-9.]+)(?P<unit>ms|s)\"[^>]*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def render_ssml(ssml: str) -> tuple[str, float]:
    """The text an SSML document speaks, and the seconds of its explicit pauses."""
    pauses = sum(
        float(found["amount"]) / (1000 if found["unit"].lower() == "ms" else 1)
        for found in _BREAK.finditer(ssml)
    )
    text = html.unescape(_TAG.sub(" ", ssml))
    return " ".join(text.split()), pauses


def speaking_seconds(text: str, pauses: float = 0.0) -> float:
    return max(0.5, len(text.split()) / WORDS_PER_SECOND) + pauses
