"""`$.` references resolved as Amazon Connect resolves them at run time (pure).

A value that is one reference as a whole (`$.Attributes.name`) is that reference's value, or None
when there is nothing there: the action decides what that means. A value with references inside
text (`"Hello $.Attributes.name, welcome"`) is the text with each reference replaced by its value
(by nothing when it has none). Any other value is itself.

Values come as Connect exposes them to a flow: as text. A Lambda's numbers and booleans come back
as their JSON text (200 -> "200", true -> "true"); an object or an array cannot be referenced.
"""

from __future__ import annotations

import json
from typing import Any

from kore_connect.contactflow.language import (
    REFERENCE_TEXT,
    BadReference,
    is_whole_reference,
    parse_reference,
)
from kore_connect.twin.connect.contact import Contact


def resolve(value: str, contact: Contact) -> str | None:
    if is_whole_reference(value):
        return lookup(value, contact)
    if "$." not in value:
        return value
    return REFERENCE_TEXT.sub(lambda found: lookup(found.group(0), contact) or "", value)


def lookup(reference: str, contact: Contact) -> str | None:
    """The value of one reference on `contact`, or None (a reference to nothing Connect knows too)."""
    try:
        parsed = parse_reference(reference)
    except BadReference:
        return None
    if parsed.namespace == "System":
        return _system(parsed.name, contact)
    if parsed.namespace == "Attributes":
        return contact.attributes.get(parsed.name)
    if parsed.namespace == "FlowAttributes":
        return contact.flow_attributes.get(parsed.name)
    if parsed.namespace in ("External", "Views.ViewResultData"):
        source = (
            contact.external if parsed.namespace == "External" else contact.keyed.get(parsed.namespace, {})
        )
        return _as_text(_path(source, parsed.name))
    return _as_text(contact.keyed.get(parsed.namespace, {}).get(parsed.name))


def _system(name: str, contact: Contact) -> str | None:
    if name in contact.system:  # what actions set: $.StoredCustomerInput, $.Lex.IntentName, $.Metrics...
        return contact.system[name]
    values = {
        "ContactId": contact.contact_id,
        "InitialContactId": contact.initial_contact_id,
        "PreviousContactId": contact.contact_id,  # as Connect's own sample event has it
        "Channel": contact.channel,
        "InstanceARN": contact.instance_arn,
        "InitiationMethod": "INBOUND",
        "LanguageCode": "en-US",
        "AwsRegion": contact.instance_arn.split(":")[3] if contact.instance_arn.count(":") > 3 else None,
        "CustomerEndpoint.Address": contact.customer_address,
        "CustomerEndpoint.Type": "TELEPHONE_NUMBER",
        "SystemEndpoint.Address": contact.system_address,
        "SystemEndpoint.Type": "TELEPHONE_NUMBER",
        "Queue.ARN": contact.queue_arn,
        "Queue.Name": contact.queue_arn.rpartition("/")[2] if contact.queue_arn else None,
    }
    return values.get(name)


def _path(document: Any, path: str) -> Any:
    """`a.b.0` in a JSON document (a list index is a number)."""
    for part in path.split("."):
        if isinstance(document, dict):
            document = document.get(part)
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)
