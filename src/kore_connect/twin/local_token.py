"""The bot's token for the local twin: from the environment, else from a local file, else generated
on first run (and shown to the user once). There is never a built-in default."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kore_connect.errors import ConfigError

TOKEN_VARIABLE = "KORE_CONNECT_API_TOKEN"  # noqa: S105 (the name of a variable)
DEFAULT_TOKEN_FILE = Path(".kore-connect") / "api-token"
MIN_LENGTH = 16  # as the authorizer requires


@dataclass(frozen=True)
class LocalToken:
    value: str
    source: str  # where it came from, safe to print
    generated: bool  # True only on the run that created it: the one time it is shown


def resolve_token(path: Path = DEFAULT_TOKEN_FILE, env: Mapping[str, str] | None = None) -> LocalToken:
    """The token to serve with; raises ConfigError naming the variable or file when it is unusable."""
    env = os.environ if env is None else env
    if env.get(TOKEN_VARIABLE):
        return LocalToken(_checked(env[TOKEN_VARIABLE], TOKEN_VARIABLE), TOKEN_VARIABLE, generated=False)
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc}") from None
        return LocalToken(_checked(text, str(path)), str(path), generated=False)
    token = secrets.token_urlsafe(36)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created readable by its owner only, and never overwritten.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another run created it meanwhile, or a dangling link is in the way.
        raise ConfigError(
            f"{path} appeared while creating it (a dangling link?): remove it and retry"
        ) from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return LocalToken(token, str(path), generated=True)


def _checked(token: str, source: str) -> str:
    if len(token) < MIN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(
            f"the token in {source} must be at least {MIN_LENGTH} printable characters without spaces "
            f"(delete the file to have one generated)"
        )
    return token
