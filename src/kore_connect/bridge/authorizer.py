"""AuthenticateBeforeStoringInDynamoDB: the TOKEN authorizer (`koreClientAuth`) of the metadata API.

API Gateway passes the `authorizationToken` header and the `methodArn` of the request. A valid
token gets an Allow policy for every method of this API's stage (API Gateway caches the policy
per token and reuses it for the other methods, so it must cover them), never `"*"`. Anything
else raises `Unauthorized`, which API Gateway answers with 401.
See https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from kore_connect.bridge import container
from kore_connect.bridge.observability import Metric, count, logger, metrics
from kore_connect.bridge.tokens import TokenSourceUnavailable, TokenVerifier
from kore_connect.errors import ConfigError

PRINCIPAL_ID = "kore-bot"

# arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<verb>/<resource path>
_METHOD_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):execute-api:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<api_id>[A-Za-z0-9]+)/(?P<stage>[A-Za-z0-9_-]+)/[A-Z]+/.*"
)


class Unauthorized(Exception):
    """API Gateway answers 401 when the authorizer fails with exactly this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class AuthorizerUnavailable(Exception):
    """Any other failure: API Gateway answers 500 and does not cache it."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        verifier = container.token_verifier()
    except ConfigError as exc:
        logger.error("The authorizer is misconfigured", extra={"problem": str(exc)})
        count(Metric.FAILED)
        raise AuthorizerUnavailable("the authorizer is misconfigured; see its logs") from None
    return authorize(APIGatewayAuthorizerTokenEvent(event), verifier)


def authorize(event: APIGatewayAuthorizerTokenEvent, verifier: TokenVerifier) -> dict[str, Any]:
    """The Allow policy for a valid token; raises Unauthorized otherwise."""
    method_arn = _METHOD_ARN.fullmatch(str(event.get("methodArn") or ""))
    if method_arn is None:
        logger.error("Request denied: the methodArn is not an API Gateway method ARN")
        count(Metric.DENIED)
        raise Unauthorized()

    presented = event.get("authorizationToken")
    try:
        slot = verifier.match(presented if isinstance(presented, str) else None)
    except TokenSourceUnavailable as exc:
        logger.error("Cannot check the token", extra={"problem": str(exc)})
        count(Metric.FAILED)
        raise AuthorizerUnavailable("the authorizer cannot read its token; see its logs") from None
    if slot is None:
        reason = "no token" if not presented else "token does not match"
        logger.info("Request denied", extra={"reason": reason})
        count(Metric.DENIED)
        raise Unauthorized()

    response = APIGatewayAuthorizerResponse(
        principal_id=PRINCIPAL_ID,
        region=method_arn["region"],
        aws_account_id=method_arn["account"],
        api_id=method_arn["api_id"],
        stage=method_arn["stage"],
        context={"tokenSlot": slot},
        partition=method_arn["partition"],
    )
    response.allow_all_routes()
    logger.info("Request allowed", extra={"token_slot": slot, "api_id": method_arn["api_id"]})
    count(Metric.ALLOWED)
    return response.asdict()
