"""Placeholders that deployment templates leave in exported flows (`${QueueArn}`,
`arn:aws:lambda:${REGION}:${ACCT_ID}:function:...`): CloudFormation's Fn::Sub, Terraform's
templatefile and CDK fill them before the flow reaches Connect. Found here in every string of the
flow (keys included), and filled from `NAME=VALUE` pairs; one left unfilled stays as it is (the
command that loads the flow names it in a warning).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")


class BadAssignment(ValueError):
    """A `NAME=VALUE` pair that cannot fill a placeholder."""


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """`["QueueArn=arn:...", ...]` as a mapping; raises BadAssignment naming the first bad pair."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not _NAME.fullmatch(name):
            raise BadAssignment(f"{pair!r}: expected NAME=VALUE, NAME as in the flow's ${{NAME}}")
        if "${" in value:
            raise BadAssignment(f"{pair!r}: a value cannot hold a placeholder itself")
        values[name] = value
    return values


def placeholders(document: Any) -> set[str]:
    """The names of every `${NAME}` in the document's strings and keys."""
    return {name for text in _strings(document) for name in PLACEHOLDER.findall(text)}


def fill(document: Any, values: Mapping[str, str]) -> Any:
    """A copy of the document with each `${NAME}` of `values` replaced; others left as they are."""

    def text(value: str) -> str:
        return PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), value)

    if isinstance(document, str):
        return text(document)
    if isinstance(document, dict):
        return {
            text(key) if isinstance(key, str) else key: fill(value, values) for key, value in document.items()
        }
    if isinstance(document, list):
        return [fill(value, values) for value in document]
    return document


def _strings(document: Any) -> Iterable[str]:
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            if isinstance(key, str):
                yield key
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)
