"""`$.` references resolved as Amazon Connect resolves them at run time (pure).

A value that is not a reference is itself. `$.External.<key>` reads the latest Lambda response;
Connect exposes its values as text, so numbers and booleans come back as their JSON text (200 ->
"200", true -> "true"); an object or an array cannot be referenced from a flow. A reference to
something that is not there resolves to None: the action decides what that means.
"""

from __future__ import annotations

import json
from typing import Any

from kore_connect.contactflow.language import is_reference, parse_reference
from kore_connect.twin.connect.contact import Contact


def resolve(value: str, contact: Contact) -> str | None:
    if not is_reference(value):
        return value
    reference = parse_reference(value)  # the flow was validated: references are well formed
    if reference.namespace == "Attributes":
        return contact.attributes.get(reference.name)
    if reference.namespace == "External":
        return _as_text(contact.external.get(reference.name))
    return _system(reference.name, contact)


def _system(name: str, contact: Contact) -> str | None:
    values = {
        "ContactId": contact.contact_id,
        "InitialContactId": contact.initial_contact_id,
        "PreviousContactId": contact.contact_id,
        "Channel": contact.channel,
        "InstanceARN": contact.instance_arn,
        "InitiationMethod": "INBOUND",
        "LanguageCode": "en-US",
        "CustomerEndpoint.Address": contact.customer_address,
        "CustomerEndpoint.Type": "TELEPHONE_NUMBER",
        "SystemEndpoint.Address": contact.system_address,
        "SystemEndpoint.Type": "TELEPHONE_NUMBER",
        "Queue.ARN": contact.queue_arn,
        "Queue.Name": contact.queue_arn.rpartition("/")[2] if contact.queue_arn else None,
    }
    return values.get(name)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)
