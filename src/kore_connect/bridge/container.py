"""What a Lambda container builds once and reuses for every invocation it serves.

Nothing is built at import time: a setting that is wrong fails the invocation with a clear
log line instead of the whole container, and is read again on the next one. Tests and the local
twin call `reset()` to start from a fresh container.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from kore_connect.bridge.observability import logger
from kore_connect.config import Settings
from kore_connect.sessions import SessionStore, open_session_store

if TYPE_CHECKING:
    from kore_connect.bridge.tokens import TokenVerifier
    from kore_connect.sessions.reference import ReferenceTable


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def session_store() -> SessionStore:
    return open_session_store(settings())


@functools.cache
def reference_table() -> ReferenceTable | None:
    """The reference setup's table, when the retrieve function is told to read it (a switch)."""
    name = settings().reference_table_name
    if name is None:
        return None
    from kore_connect.sessions.reference import ReferenceTable

    return ReferenceTable(name)


@functools.cache
def token_verifier() -> TokenVerifier:
    # Imported here: only the authorizer needs it, and the retrieve function's cold start counts.
    from kore_connect.bridge.tokens import TokenVerifier, token_source

    return TokenVerifier(token_source(settings()), log=logger)


def reset() -> None:
    """Forget everything built so far, as a new container would."""
    if session_store.cache_info().currsize:
        session_store().close()
    if reference_table.cache_info().currsize and (table := reference_table()) is not None:
        table.close()
    for cached in (settings, session_store, reference_table, token_verifier):
        cached.cache_clear()
