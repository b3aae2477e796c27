"""Amazon Connect contact IDs are UUIDs; both sides of the bridge key the store by their canonical form."""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def canonical_contact_id(value: object) -> str | None:
    """`value` as a lower-case UUID string, or None when it is not a UUID in 8-4-4-4-12 form.

    Lower-casing matters: Connect sends lower case, and a bot that upper-cases the ID it read
    from the SIP header must still reach the same record.
    """
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value.lower()
    return None
