"""Phone numbers as Connect reads them: E.164 (`+` and the country code), or a local number of a
given country made E.164. `phonenumbers` (Google's libphonenumber) knows each country's lengths;
a number is accepted when it is a possible one there, so that the 555 numbers of tests pass."""

from __future__ import annotations

import phonenumbers


def is_e164(text: str) -> bool:
    """Whether `text` is a number written in E.164, exactly (`+14155550123`)."""
    return as_e164(text) == text


def as_e164(text: str, country: str | None = None) -> str | None:
    """`text` as E.164: already in it (`+...`), or a local number of `country` (ISO 3166 alpha-2,
    e.g. `US`, `NZ`); None when it cannot be a phone number there."""
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
