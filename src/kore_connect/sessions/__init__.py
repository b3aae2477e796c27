"""Session stores and the factory that picks one from settings.

The backends are imported only when chosen, so a Lambda function on DynamoDB never loads
sqlite3, and a local run never needs boto3's DynamoDB client.
"""

from __future__ import annotations

from kore_connect.config import Backend, Settings
from kore_connect.sessions.base import (
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SessionStoreUnavailable,
)

__all__ = [
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "SessionStoreUnavailable",
    "open_session_store",
]


def open_session_store(settings: Settings) -> SessionStore:
    """The store `settings` ask for."""
    if settings.backend is Backend.DYNAMODB:
        from kore_connect.sessions.dynamodb import DynamoDBSessionStore

        return DynamoDBSessionStore(settings.table_name)
    from kore_connect.sessions.sqlite import SQLiteSessionStore

    return SQLiteSessionStore(settings.sqlite_path)
