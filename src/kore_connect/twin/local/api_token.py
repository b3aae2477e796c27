"""The bot's token for the local twin: from the environment, else from a local file, else generated
on first run (and shown to the user once). There is never a built-in default.

The file is trusted only when it is a regular file of the user's with mode 0600 (no group or other
bits): a token file anyone else could read is no secret, and one a checkout brought (0644) is a
token someone else chose."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kore_connect import config
from kore_connect.errors import ConfigError
from kore_connect.private_files import FOLDER_MODE, TRUSTED, UnsafePathError, open_private, read_private

TOKEN_VARIABLE = config.LOCAL_API_TOKEN
DEFAULT_TOKEN_FILE = config.DEFAULT_LOCAL_TOKEN_FILE
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
    try:
        text = read_private(path).decode("utf-8").strip()
    except FileNotFoundError:
        pass  # none yet: generated below
    except UnsafePathError as exc:
        raise ConfigError(f"the token file {exc}: it must be {TRUSTED}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    else:
        return LocalToken(_checked(text, str(path)), str(path), generated=False)
    token = secrets.token_urlsafe(36)
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    # Created readable by its owner only, and never overwritten.
    try:
        with open_private(path, "x") as file:
            file.write(f"{token}\n".encode())
    except FileExistsError:
        raise ConfigError(f"{path} appeared while creating it: retry") from None
    return LocalToken(token, str(path), generated=True)


def _checked(token: str, source: str) -> str:
    if len(token) < MIN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(
            f"the token in {source} must be at least {MIN_LENGTH} printable characters without spaces "
            f"(delete the file to have one generated)"
        )
    return token
