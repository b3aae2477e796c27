"""What API Gateway does with an authorizer's answer, as plain data (no functions, no sockets)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerTokenEvent,
)

from kore_connect.bridge.authorizer import PRINCIPAL_ID, authorize
from kore_connect.bridge.tokens import EnvironmentTokens, TokenVerifier
from kore_connect.config import Settings
from kore_connect.twin.apigw.policy import (
    Decision,
    MalformedAuthorizerResponse,
    method_arn,
    parse_authorizer_response,
)

ARN = "arn:aws:execute-api:eu-west-2:123456789012:abc123/prod/POST/kore-metadata"


def answer(*statements: tuple[str, Any], action: Any = "execute-api:Invoke", **extra: Any) -> dict[str, Any]:
    return {
        "principalId": "kore-bot",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": action, "Effect": e, "Resource": r} for e, r in statements],
        },
        **extra,
    }


def test_the_method_arn_is_built_as_api_gateway_builds_it() -> None:
    built = method_arn(
        region="eu-west-2",
        account="123456789012",
        api_id="abc123",
        stage="prod",
        verb="post",
        path="/kore-metadata",
    )
    assert built == ARN


@pytest.mark.parametrize(
    ("resource", "decision"),
    [
        (ARN, Decision.ALLOW),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/prod/*/*", Decision.ALLOW),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/*", Decision.ALLOW),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/prod/GET/*", Decision.NOT_COVERED),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/dev/*/*", Decision.NOT_COVERED),
        ("arn:aws:execute-api:eu-west-2:123456789012:other/prod/*/*", Decision.NOT_COVERED),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/prod/P?ST/kore-metadata", Decision.ALLOW),
        ("arn:aws:execute-api:eu-west-2:123456789012:abc123/prod/[P]OST/kore-metadata", Decision.NOT_COVERED),
        ("*", Decision.ALLOW),
    ],
)
def test_an_allow_counts_only_when_its_resource_covers_the_method(resource: str, decision: Decision) -> None:
    assert parse_authorizer_response(answer(("Allow", resource))).decide(ARN) is decision


def test_an_explicit_deny_wins_over_an_allow() -> None:
    result = parse_authorizer_response(answer(("Allow", "*"), ("Deny", ARN)))
    assert result.decide(ARN) is Decision.EXPLICIT_DENY
    other = ARN.replace("/POST/", "/GET/")
    assert result.decide(other) is Decision.ALLOW


def test_statements_about_other_actions_allow_nothing() -> None:
    result = parse_authorizer_response(answer(("Allow", "*"), action="s3:GetObject"))
    assert result.decide(ARN) is Decision.NOT_COVERED
    assert (
        parse_authorizer_response(answer(("Allow", ARN), action=["execute-api:*"])).decide(ARN)
        is Decision.ALLOW
    )


def test_the_bridge_authorizers_own_policy_covers_every_method_of_its_stage() -> None:
    token = "a-token-long-enough-to-count"
    settings = Settings.from_env({"AUTH_TOKEN": token})
    verifier = TokenVerifier(EnvironmentTokens(settings), log=logging.getLogger("test"))
    response = authorize(
        APIGatewayAuthorizerTokenEvent({"type": "TOKEN", "authorizationToken": token, "methodArn": ARN}),
        verifier,
    )
    result = parse_authorizer_response(response)
    assert result.principal_id == PRINCIPAL_ID
    assert result.decide(ARN) is Decision.ALLOW
    assert result.decide(ARN.replace("/POST/", "/GET/")) is Decision.ALLOW  # reused from the cache
    assert result.decide(ARN.replace("/prod/", "/dev/")) is Decision.NOT_COVERED
    assert result.decide(ARN.replace("abc123", "zzz999")) is Decision.NOT_COVERED


@pytest.mark.parametrize(
    "response",
    [
        None,
        [],
        {"policyDocument": {"Statement": []}},
        {"principalId": "", "policyDocument": {"Statement": []}},
        {"principalId": "p"},
        {
            "principalId": "p",
            "policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]},
        },
        {"principalId": "p", "policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "*"}]}},
        {
            "principalId": "p",
            "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": []}]},
        },
        answer(("Allow", "*"), context={"nested": {"no": 1}}),
        answer(("Allow", "*"), context={"list": [1]}),
    ],
)
def test_an_answer_api_gateway_cannot_use_is_malformed(response: Any) -> None:
    with pytest.raises(MalformedAuthorizerResponse):
        parse_authorizer_response(response)


def test_a_single_statement_object_and_scalar_context_values_are_accepted() -> None:
    document = answer(("Allow", ARN), context={"s": "x", "n": 1, "f": 1.5, "b": False})
    document["policyDocument"]["Statement"] = document["policyDocument"]["Statement"][0]
    result = parse_authorizer_response(document)
    assert result.decide(ARN) is Decision.ALLOW
    assert dict(result.context) == {"s": "x", "n": 1, "f": 1.5, "b": False}
