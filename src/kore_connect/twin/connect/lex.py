"""What a local Lex bot understands: the intent whose sample utterance a caller's words fit, its
slots filled from the sample's `{Slot}` placeholders (pure). No language model: a tester writes
the utterances their bot was trained on and gets the same intent every run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kore_connect.twin.connect.world import LexBot

FALLBACK_INTENT = "FallbackIntent"
_PLACEHOLDER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Understood:
    intent: str
    slots: dict[str, str]
    confidence: float  # 1.0 for a fit with a sample; the share of words in common otherwise


def understand(bot: LexBot, utterance: str) -> Understood:
    """A sample the utterance fits exactly (its slots filled) wins; else the intent sharing the
    most words with a sample; FallbackIntent when no word is shared."""
    said = _words(utterance)
    best = Understood(FALLBACK_INTENT, {}, 0.0)
    for intent in bot.intents:
        for sample in intent.utterances:
            slots = _fit(sample, utterance, bot.slots)
            if slots is not None:
                return Understood(intent.name, slots, 1.0)
            words = _words(_PLACEHOLDER.sub(" ", sample))
            score = len(said & words) / len(said | words) if said | words else 0.0
            if score > best.confidence:
                best = Understood(intent.name, {}, score)
    return best


def _fit(sample: str, utterance: str, allowed: Mapping[str, tuple[str, ...]]) -> dict[str, str] | None:
    """The slot values when `utterance` is `sample` with its `{Slot}`s filled, else None."""
    names = list(dict.fromkeys(_PLACEHOLDER.findall(sample)))  # a slot named twice is one slot
    pattern = re.escape(" ".join(sample.lower().split()))
    for index, name in enumerate(names):
        placeholder = re.escape("{" + name.lower() + "}")
        pattern = pattern.replace(placeholder, f"(?P<s{index}>.+?)", 1).replace(placeholder, f"(?P=s{index})")
    found = re.fullmatch(pattern, " ".join(utterance.lower().strip(" .!?").split()))
    if not found:
        return None
    slots = {name: found[f"s{index}"] for index, name in enumerate(names)}
    for name, value in slots.items():
        if allowed.get(name) and value not in [v.lower() for v in allowed[name]]:
            return None
    return slots


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))
