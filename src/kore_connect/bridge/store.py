"""koreStoreSessionMetadata: stores the Kore bot's metadata for a contact (API Gateway proxy integration).

`POST /kore-metadata?contactId=<Connect contact ID>` with a JSON object as the body. Answers:
- 200 `{"message", "contactId", "storedAt", "expiresAt"}` once the metadata is durably stored;
- 400 / 413 with `{"message", "error"}` saying what is wrong with the request;
- 503 with `Retry-After` when the store cannot take it now: never a 200 for data not stored.
See https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from kore_connect.bridge import container
from kore_connect.bridge.contact_id import canonical_contact_id
from kore_connect.bridge.observability import Metric, count, logger, metrics
from kore_connect.bridge.payload import MetadataError, metadata_from_body
from kore_connect.config import Settings
from kore_connect.errors import ConfigError
from kore_connect.sessions import SessionStore, SessionStoreError

RETRY_AFTER_SECONDS = 2


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        settings, store = container.settings(), container.session_store()
    except (ConfigError, SessionStoreError) as exc:
        logger.error("The store function is misconfigured", extra={"problem": str(exc)})
        count(Metric.FAILED)
        return _error(500, "Misconfigured", "the metadata store is misconfigured; see the function's logs")
    return store_metadata(APIGatewayProxyEvent(event), store=store, settings=settings)


def store_metadata(event: APIGatewayProxyEvent, *, store: SessionStore, settings: Settings) -> dict[str, Any]:
    """Validate the request, store its metadata, and answer as the proxy integration expects."""
    if event.http_method != "POST":
        return _rejected(405, "MethodNotAllowed", "use POST to store metadata", headers={"Allow": "POST"})
    try:
        contact_id = _contact_id(event)
    except _BadContactId as problem:
        return _rejected(400, "InvalidContactId", str(problem))
    logger.append_keys(contact_id=contact_id)

    try:
        metadata = metadata_from_body(
            event.body, is_base64_encoded=bool(event.is_base64_encoded), max_bytes=settings.max_metadata_bytes
        )
    except MetadataError as exc:
        error = "PayloadTooLarge" if exc.status == 413 else "InvalidBody"
        return _rejected(exc.status, error, exc.message)

    try:
        record = store.put(contact_id, metadata, ttl_seconds=settings.session_ttl_seconds)
    except SessionStoreError as exc:
        logger.error("Could not store the metadata", extra={"problem": str(exc)})
        count(Metric.FAILED)
        return _error(
            503,
            "StoreUnavailable",
            "the metadata could not be stored; nothing was saved, try again",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    logger.info("Metadata stored", extra={"metadata_bytes": len(metadata), "expires_at": record.expires_at})
    count(Metric.STORED)
    stored_at = datetime.fromtimestamp(record.stored_at, UTC).isoformat(timespec="milliseconds")
    return _json(
        200,
        {
            "message": "Metadata stored",
            "contactId": contact_id,
            "storedAt": stored_at,
            "expiresAt": record.expires_at,
        },
    )


class _BadContactId(ValueError):
    """Why the query string holds no usable contact ID (the 400's message)."""


def _contact_id(event: APIGatewayProxyEvent) -> str:
    """The canonical contact ID from the query string, or _BadContactId saying why not."""
    values = (event.multi_value_query_string_parameters or {}).get("contactId")
    if not values:
        single = (event.query_string_parameters or {}).get("contactId")
        values = [single] if single is not None else []
    if not values or values == [""]:
        raise _BadContactId("the query parameter contactId is required (the Amazon Connect contact ID)")
    if len(set(values)) > 1:
        raise _BadContactId("the query parameter contactId is given more than once with different values")
    contact_id = canonical_contact_id(values[0])
    if contact_id is None:
        raise _BadContactId(
            "the query parameter contactId must be a UUID such as 5f0c6a53-2f3e-4e8b-9a43-6d2b1c7e9f10"
        )
    return contact_id


def _rejected(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    logger.warning("Request rejected", extra={"status": status, "error": error})
    count(Metric.REJECTED)
    return _error(status, error, message, headers)


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return _json(status, {"message": message, "error": error}, headers)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
