"""The OpenAPI 3 description of the served metadata API: what the Kore Service node may send and
every answer it may get, from the store function and from API Gateway itself."""

from __future__ import annotations

from typing import Any

from kore_connect.stack import STORE_FUNCTION
from kore_connect.twin.template import ApiDescription

_MESSAGE = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": ["string", "null"]}},
}
_STORE_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
_STORED = {
    "type": "object",
    "required": ["message", "contactId", "storedAt", "expiresAt"],
    "properties": {
        "message": {"type": "string"},
        "contactId": {"type": "string", "format": "uuid"},
        "storedAt": {"type": "string"},
        "expiresAt": {"type": "integer"},
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(api: ApiDescription, server_url: str) -> dict[str, Any]:
    """The OpenAPI document for `api`, served at `server_url` (which ends with the stage)."""
    paths: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    for route in api.routes:
        operation: dict[str, Any] = {
            "operationId": f"{route.method.lower()}{route.path.replace('/', '_').replace('-', '_')}",
            "responses": {
                "403": _json("API Gateway: no such route, or the authorizer's policy denies it", _MESSAGE),
                "413": _json("API Gateway: the request is over 10 MB", _MESSAGE),
                "502": _json("API Gateway: the function failed", _MESSAGE),
                "504": _json("API Gateway: the function took longer than the integration timeout", _MESSAGE),
            },
        }
        if route.authorizer is not None:
            schemes[route.authorizer.name] = {
                "type": "apiKey",
                "in": "header",
                "name": route.authorizer.header,
            }
            operation["security"] = [{route.authorizer.name: []}]
            operation["responses"]["401"] = _json(
                "API Gateway: no token, or the authorizer refused it", _MESSAGE
            )
            operation["responses"]["500"] = _json("API Gateway: the authorizer failed", _MESSAGE)
        if route.function == STORE_FUNCTION:
            operation.update(_store_contract())
            operation["responses"].update(_store_responses())
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "kore-connect metadata API (local twin)", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"securitySchemes": schemes},
    }


def _store_contract() -> dict[str, Any]:
    return {
        "summary": "Store the Kore bot's metadata for an Amazon Connect contact",
        "parameters": [
            {
                "name": "contactId",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    }


def _store_responses() -> dict[str, Any]:
    return {
        "200": _json("Stored", _STORED),
        "400": _json("The contact ID or the body is invalid", _STORE_ERROR),
        "405": _json("Not a POST", _STORE_ERROR),
        "413": _json(
            "The body is over the metadata limit, or over 10 MB", {"oneOf": [_STORE_ERROR, _MESSAGE]}
        ),
        "503": _json("The store is unavailable: nothing was stored, try again (Retry-After)", _STORE_ERROR),
    }
