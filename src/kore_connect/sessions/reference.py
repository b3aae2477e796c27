"""The reference setup's table, read by the retrieve function while a contact centre switches to
kore-connect (docs/migration.md), so that no caller's metadata is lost on the way.

The reference store function wrote one item per contact: `contactId` and `kore_session_data`, the
request body parsed into a DynamoDB map (its numbers as DynamoDB numbers), or the raw text when the
body was not JSON. Nothing expires. Its retrieve function answered `json.dumps(kore_session_data)`,
and failed on any number (`Decimal` is not JSON serialisable). This module reads such an item into
the JSON text kore-connect keeps, numbers written exactly as DynamoDB holds them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kore_connect.sessions.base import SessionStoreError
from kore_connect.sessions.dynamodb import dynamodb_client, translated_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REFERENCE_ATTRIBUTE = "kore_session_data"
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class ReferenceTable:
    """Read-only access to the reference setup's items."""

    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client if client is not None else dynamodb_client()

    def close(self) -> None:
        self._client.close()

    def get(self, contact_id: str) -> str | None:
        """The metadata the reference store kept for `contact_id`, as JSON text; None when it has none."""
        with translated_errors("reading the reference table for"):
            response = self._client.get_item(
                TableName=self.table_name,
                Key={"contactId": {"S": contact_id}},
                ConsistentRead=True,
                ProjectionExpression=REFERENCE_ATTRIBUTE,
            )
        item = response.get("Item")
        if item is None or REFERENCE_ATTRIBUTE not in item:
            return None
        try:
            return json_text(item[REFERENCE_ATTRIBUTE])
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionStoreError(f"the reference item is malformed ({type(exc).__name__})") from exc


def json_text(value: Mapping[str, Any]) -> str:
    """A DynamoDB attribute value as compact JSON text, numbers verbatim. The same JSON value the
    reference's retrieve would have answered, not the same bytes: DynamoDB keeps no order of a map's
    keys, and the text is compact."""
    ((kind, content),) = value.items()
    if kind == "S":
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    if kind == "N":
        if not _JSON_NUMBER.fullmatch(content):
            raise ValueError("a number DynamoDB should not hold")
        return str(content)
    if kind == "BOOL":
        return "true" if content else "false"
    if kind == "NULL":
        return "null"
    if kind == "M":
        members = (f"{json.dumps(key, ensure_ascii=False)}:{json_text(v)}" for key, v in content.items())
        return "{" + ",".join(members) + "}"
    if kind == "L":
        return "[" + ",".join(json_text(item) for item in content) + "]"
    raise ValueError(f"the attribute type {kind}, which the reference store never wrote")
