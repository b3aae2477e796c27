"""API Gateway's own answers, with the body and headers it sends (REST API default gateway responses).
https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    status: int
    message: str | None  # the body is {"message": <this>}; API Gateway sends null for some
    error_type: str  # the x-amzn-ErrorType header

    def body(self) -> bytes:
        return json.dumps({"message": self.message}).encode()


MISSING_AUTHENTICATION_TOKEN = GatewayResponse(
    403, "Missing Authentication Token", "MissingAuthenticationTokenException"
)
UNAUTHORIZED = GatewayResponse(401, "Unauthorized", "UnauthorizedException")
EXPLICIT_DENY = GatewayResponse(
    403, "User is not authorized to access this resource with an explicit deny", "AccessDeniedException"
)
NOT_AUTHORIZED = GatewayResponse(
    403, "User is not authorized to access this resource", "AccessDeniedException"
)
AUTHORIZER_FAILURE = GatewayResponse(500, None, "AuthorizerConfigurationException")
REQUEST_TOO_LARGE = GatewayResponse(413, "Request Too Long", "RequestTooLargeException")
INTEGRATION_FAILURE = GatewayResponse(502, "Internal server error", "InternalServerErrorException")
INTEGRATION_TIMEOUT = GatewayResponse(504, "Endpoint request timed out", "InternalServerErrorException")


def denied_by_resource_policy(method_arn: str) -> GatewayResponse:
    """The resource policy's explicit Deny: API Gateway names the anonymous caller and the method, the
    account masked but for its last four digits."""
    parts = method_arn.split(":")
    if len(parts) > 4:
        parts[4] = "*" * max(len(parts[4]) - 4, 0) + parts[4][-4:]
    return GatewayResponse(
        403,
        f"User: anonymous is not authorized to perform: execute-api:Invoke on resource: {':'.join(parts)} "
        "with an explicit deny",
        "AccessDeniedException",
    )
