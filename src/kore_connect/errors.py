"""The root of kore-connect's exceptions; each package defines its own next to the code that raises it."""

from __future__ import annotations


class KoreConnectError(Exception):
    """Base class for every error kore-connect raises on purpose."""


class ConfigError(KoreConnectError):
    """A setting is missing or invalid. The message names the variable and says what is expected."""
