"""Where the local twin's functions keep sessions: the embedded SQLite file (the default), or a
DynamoDB table on a DynamoDB-compatible server on this machine (DynamoDB Local, dynalite), so that
the code path that runs in AWS runs here too. Either way the functions learn it as in Lambda: from
their environment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3

from kore_connect import config
from kore_connect.aws_events import LOCAL_REGION
from kore_connect.errors import ConfigError
from kore_connect.sessions.base import SessionStore
from kore_connect.sessions.dynamodb import CLIENT_CONFIG, DynamoDBSessionStore, ensure_table
from kore_connect.sessions.sqlite import SQLiteSessionStore

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"  # boto3's own: how the functions reach the server
# A local server takes any keys; fixed ones keep the user's real AWS keys out of the twin.
LOCAL_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True)
class LocalStore:
    """The SQLite file at `sqlite_path`, or, with `dynamodb_endpoint`, the `table` there."""

    sqlite_path: Path
    dynamodb_endpoint: str | None = None
    table: str = config.DEFAULT_TABLE_NAME

    def __post_init__(self) -> None:
        if self.dynamodb_endpoint is not None:
            _check_local_endpoint(self.dynamodb_endpoint)
            if not config.TABLE_NAME_PATTERN.fullmatch(self.table):
                raise ConfigError(
                    f"table name {self.table!r}: 3 to 255 letters, digits, '_', '-' or '.' (DynamoDB's rule)"
                )

    @property
    def on_dynamodb(self) -> bool:
        return self.dynamodb_endpoint is not None

    def environment(self) -> dict[str, str]:
        """The functions' variables that choose this store."""
        if self.dynamodb_endpoint is None:
            return {
                config.SESSION_BACKEND: config.Backend.SQLITE.value,
                config.SQLITE_PATH: str(self.sqlite_path.resolve()),
            }
        return {
            config.SESSION_BACKEND: config.Backend.DYNAMODB.value,
            config.TABLE_NAME: self.table,
            ENDPOINT_VARIABLE: self.dynamodb_endpoint,
            **LOCAL_KEYS,
        }

    def open(self) -> SessionStore:
        """The store, for reading calls back; on DynamoDB the table is created if it is missing, as
        the SAM template creates it in AWS."""
        if self.dynamodb_endpoint is None:
            return SQLiteSessionStore(self.sqlite_path)
        try:
            client = boto3.client(
                "dynamodb",
                endpoint_url=self.dynamodb_endpoint,
                region_name=LOCAL_REGION,
                aws_access_key_id=LOCAL_KEYS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_KEYS["AWS_SECRET_ACCESS_KEY"],
                config=CLIENT_CONFIG,
            )
        except ValueError as exc:  # botocore's own check of the URL
            raise ConfigError(f"DynamoDB endpoint {self.dynamodb_endpoint!r}: {exc}") from exc
        ensure_table(client, self.table)
        return DynamoDBSessionStore(self.table, client=client)

    def describe(self) -> str:
        if self.dynamodb_endpoint is None:
            return f"SQLite {self.sqlite_path.resolve()}"
        return f"DynamoDB table {self.table} at {self.dynamodb_endpoint}"

    def command_line(self) -> list[str]:
        """The `kore-connect serve api` options that choose this store."""
        if self.dynamodb_endpoint is None:
            return ["--db", str(self.sqlite_path)]
        return ["--dynamodb-endpoint", self.dynamodb_endpoint, "--table", self.table]


def _check_local_endpoint(endpoint: str) -> None:
    """The twin talks to this machine only: an AWS endpoint here would mean dummy keys against AWS."""
    if any(character.isspace() or not character.isprintable() for character in endpoint):
        # urlsplit drops tabs and newlines: what it checked would not be what botocore gets
        raise ConfigError(f"DynamoDB endpoint {endpoint!r}: no spaces or control characters")
    parts = urlsplit(endpoint)
    try:
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number in range
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"DynamoDB endpoint {endpoint!r}: expected a URL such as http://127.0.0.1:8000")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"DynamoDB endpoint {endpoint!r}: the local twin uses a server on this machine "
                "(127.0.0.1, ::1 or localhost) only"
            )
