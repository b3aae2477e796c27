"""The DynamoDB session store (what runs in AWS).

One item per contact: `contactId` (partition key), `metadata` (the JSON text, a string so that
numbers stay exact), `storedAt` (ISO 8601, UTC) and `expiresAt` (epoch seconds, the table's TTL
attribute). Reads are strongly consistent: the flow reads the item seconds after the bot wrote it.
The endpoint follows boto3's own `AWS_ENDPOINT_URL_DYNAMODB`, which is how tests reach dynalite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kore_connect import aws
from kore_connect.sessions.base import (
    Clock,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SessionStoreUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Connect gives a flow's Lambda call 8 s in all, and retries it itself: fail fast, retry once.
# (botocore's `max_attempts` counts retries only; `total_max_attempts` counts the first try too.)
CLIENT_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2}
)

# Error codes that say "try again later" rather than "this request is wrong".
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",  # a table being created or restored
        "ResourceInUseException",
    }
)

_PROJECTION = "contactId, metadata, storedAt, expiresAt"


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """A low-level client with our timeouts. Raises ConfigError when no region is configured."""
    dynamodb: DynamoDBClient = aws.client("dynamodb", config=CLIENT_CONFIG, endpoint_url=endpoint_url)
    return dynamodb


class DynamoDBSessionStore(SessionStore):
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None, clock: Clock | None = None):
        super().__init__(clock=clock)
        self.table_name = table_name
        self._client = client if client is not None else dynamodb_client()

    def close(self) -> None:
        self._client.close()

    def _write(self, record: SessionRecord) -> None:
        item = {
            "contactId": {"S": record.contact_id},
            "metadata": {"S": record.metadata},
            "storedAt": {"S": _iso(record.stored_at)},
            "expiresAt": {"N": str(record.expires_at)},
        }
        with translated_errors("storing"):
            self._client.put_item(TableName=self.table_name, Item=item)

    def _read(self, contact_id: str) -> SessionRecord | None:
        with translated_errors("reading"):
            response = self._client.get_item(
                TableName=self.table_name,
                Key={"contactId": {"S": contact_id}},
                ConsistentRead=True,
                ProjectionExpression=_PROJECTION,
            )
        item = response.get("Item")
        return None if item is None else _record(item)


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")


def _record(item: dict[str, Any]) -> SessionRecord:
    try:
        return SessionRecord(
            contact_id=item["contactId"]["S"],
            metadata=item["metadata"]["S"],
            stored_at=datetime.fromisoformat(item["storedAt"]["S"]).timestamp(),
            expires_at=int(item["expiresAt"]["N"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        # Not written by kore-connect (or edited by hand): refuse rather than guess.
        raise SessionStoreError(f"the session item is malformed ({type(exc).__name__}: {exc})") from exc


@contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    """Turn boto3's errors into SessionStoreError (a wrong request) or SessionStoreUnavailable (try later)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        error = SessionStoreUnavailable if code in TRANSIENT_ERROR_CODES else SessionStoreError
        raise error(f"DynamoDB refused {doing} the session: {code}") from exc
    except BotoCoreError as exc:
        # Connection refused, timeouts and the like.
        raise SessionStoreUnavailable(f"DynamoDB unreachable while {doing} the session: {exc}") from exc


def ensure_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the sessions table as the SAM template does, for local runs and tests, and return once
    it is ACTIVE; no-op if it is. Safe when another process ensures it at the same time."""
    with translated_errors("creating the table for"):
        try:
            status = client.describe_table(TableName=table_name)["Table"].get("TableStatus")
        except client.exceptions.ResourceNotFoundException:
            status = None
        if status == "ACTIVE":
            return
        if status is None:
            # Another process may create it meanwhile: then we wait for theirs as for ours.
            with suppress(client.exceptions.ResourceInUseException):
                client.create_table(
                    TableName=table_name,
                    AttributeDefinitions=[{"AttributeName": "contactId", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "contactId", "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
        client.get_waiter("table_exists").wait(  # until ACTIVE: a CREATING table refuses items
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        try:
            client.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            # dynalite has no TTL (expiry is enforced on read either way); a second enable is refused
            # with "already enabled" when another process got there first.
            already = error.get("Code") == "ValidationException" and "already enabled" in error.get(
                "Message", ""
            )
            if error.get("Code") != "UnknownOperationException" and not already:
                raise
