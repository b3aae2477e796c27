"""koreRetrieveSessionMetadata: gives the Amazon Connect flow the metadata the bot stored.

Invoked from the flow's "Invoke AWS Lambda function" block with `contactId = $.ContactId`
(falling back to the contact's own ID). Answers, compatible with the reference flow's
`customData = $.External.body`:
- `{"statusCode": 200, "body": "<the metadata JSON>", <key>: "<value>", ...}` (see `attributes`);
- `{"statusCode": 404, "body": "\\"Data not found\\""}` when nothing is stored or it has expired;
- `{"statusCode": 400, "body": "\\"Invalid contactId\\""}` when the contact ID is not a UUID;
- `{"statusCode": 413, "body": "\\"Data too large\\""}` when the metadata cannot fit in Connect's 32 KB.
A storage failure raises, so Connect retries and then takes the block's Error branch.
During a switch from the reference setup (`KORE_REFERENCE_TABLE_NAME` set), a contact without an item
of ours is looked up in the reference table too (sessions/reference.py, docs/migration.md).
See https://docs.aws.amazon.com/connect/latest/adminguide/connect-lambda-functions.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kore_connect.bridge import container
from kore_connect.bridge.attributes import INVALID_CONTACT_ID, NOT_FOUND, found_response
from kore_connect.bridge.contact_id import canonical_contact_id
from kore_connect.bridge.observability import Metric, count, logger, metrics
from kore_connect.errors import ConfigError
from kore_connect.sessions import SessionStore, SessionStoreError

if TYPE_CHECKING:
    from kore_connect.sessions.reference import ReferenceTable


@logger.inject_lambda_context(correlation_id_path="Details.ContactData.ContactId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        store = container.session_store()
        reference = container.reference_table()
    except (ConfigError, SessionStoreError) as exc:
        logger.error("The retrieve function is misconfigured", extra={"problem": str(exc)})
        count(Metric.FAILED)
        raise
    return retrieve_metadata(event, store=store, reference=reference)


def retrieve_metadata(
    event: dict[str, Any], *, store: SessionStore, reference: ReferenceTable | None = None
) -> dict[str, Any]:
    contact_id = canonical_contact_id(_requested_contact_id(event))
    if contact_id is None:
        logger.warning("Invalid contactId in the flow's parameters")
        count(Metric.REJECTED)
        return dict(INVALID_CONTACT_ID)
    logger.append_keys(contact_id=contact_id)

    source = "kore-connect"
    try:
        record = store.get(contact_id)
        metadata = record.metadata if record is not None else None
        if metadata is None and reference is not None:
            metadata, source = reference.get(contact_id), "reference"
    except SessionStoreError as exc:
        logger.error("Could not read the metadata", extra={"problem": str(exc)})
        count(Metric.FAILED)
        raise

    if metadata is None:
        logger.info("No metadata for this contact")
        count(Metric.NOT_FOUND)
        return dict(NOT_FOUND)
    response = found_response(metadata)
    if response.too_large:
        logger.warning(
            "Metadata too large for Connect's 32 KB response", extra={"metadata_bytes": len(metadata)}
        )
        count(Metric.TOO_LARGE)
        return response.payload
    if response.omitted_keys:
        logger.warning(
            "Flat attributes left out to stay under 32 KB", extra={"omitted": response.omitted_keys}
        )
    logger.info("Metadata retrieved", extra={"metadata_bytes": len(metadata), "table": source})
    count(Metric.RETRIEVED)
    return response.payload


def _requested_contact_id(event: dict[str, Any]) -> object:
    """`Details.Parameters.contactId`, else `Details.ContactData.ContactId`; None when neither is there.

    Read from the dict directly rather than through Powertools' ConnectContactFlowEvent: importing
    that view loads every event class Powertools has (about 20 ms of cold start) to read two keys.
    """
    details = event.get("Details")
    if not isinstance(details, dict):
        return None
    parameters = details.get("Parameters")
    if isinstance(parameters, dict) and parameters.get("contactId"):
        return parameters["contactId"]
    contact_data = details.get("ContactData")
    return contact_data.get("ContactId") if isinstance(contact_data, dict) else None
