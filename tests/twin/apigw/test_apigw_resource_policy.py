"""The API's resource policy (template parameter AllowedSourceAddresses) as the local API Gateway
reads it from template.yaml: an address outside the list gets API Gateway's explicit-deny 403
before the authorizer runs; with the parameter empty every address reaches the authorizer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from kore_connect.aws_events import LOCAL_ACCOUNT
from kore_connect.twin.apigw.gateway import Gateway, IncomingRequest
from kore_connect.twin.lambda_runtime.invocation import Invocation
from kore_connect.twin.template import ApiDescription, TemplateError, describe_api, load_template

ALLOW = {
    "principalId": "kore-bot",
    "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
}
TOKEN = "a-token-of-twenty-chars"


class Functions:
    def __init__(self) -> None:
        self.called: list[str] = []

    async def __call__(self, function: str, event: dict[str, Any]) -> Invocation:
        self.called.append(function)
        if event.get("type") == "TOKEN":
            return Invocation(result=ALLOW)
        return Invocation(result={"statusCode": 200, "body": "{}"})


def post_from(api: ApiDescription, source_ip: str) -> tuple[int, dict[str, Any], list[str], list[str]]:
    functions = Functions()
    request = IncomingRequest(
        "POST",
        f"/{api.stage}/kore-metadata",
        [("contactId", "9f5b5a1e-8f5e-4c5e-9f0e-2b6c1d1e7a10")],
        [("authorizationToken", TOKEN)],
        b"{}",
        source_ip,
        "localhost",
    )
    outcome = asyncio.run(Gateway(api, functions).handle(request))
    headers = [value for name, value in outcome.response.headers if name == "x-amzn-ErrorType"]
    return outcome.response.status, json.loads(outcome.response.body), functions.called, headers


def test_without_the_parameter_every_address_reaches_the_authorizer() -> None:
    api = describe_api(load_template())
    assert api.source_denies == ()
    for source in ("127.0.0.1", "203.0.113.9", "2001:db8::1"):
        status, _, called, _ = post_from(api, source)
        assert status == 200 and called[0] == "AuthenticateBeforeStoringInDynamoDB"


def test_with_the_parameter_only_the_listed_addresses_get_past_the_policy() -> None:
    api = describe_api(load_template(), {"AllowedSourceAddresses": "198.51.100.7,10.0.0.0/8,2001:db8::/32"})
    for admitted in ("198.51.100.7", "10.200.3.4", "2001:db8:0:1::5"):
        status, _, called, _ = post_from(api, admitted)
        assert status == 200, admitted
        assert called == ["AuthenticateBeforeStoringInDynamoDB", "KoreStoreSessionMetadata"]
    for refused in ("198.51.100.8", "11.0.0.1", "127.0.0.1", "2001:db9::1", "::ffff:198.51.100.8"):
        status, body, called, error_type = post_from(api, refused)
        # API Gateway's explicit-deny answer, and the authorizer (a paid invocation) never ran
        assert status == 403, refused
        assert error_type == ["AccessDeniedException"]
        assert body["message"].startswith("User: anonymous is not authorized to perform: execute-api:Invoke")
        assert body["message"].endswith("/prod/POST/kore-metadata with an explicit deny")
        # the account masked but for its last four digits, as API Gateway shows it
        assert f":********{LOCAL_ACCOUNT[-4:]}:" in body["message"] and LOCAL_ACCOUNT not in body["message"]
        assert called == []


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"AllowedSourceAddresses": "198.51.100.7, 10.0.0.0/8"}, "without spaces"),
        ({"AllowedSourceAddresses": "kore.ai"}, "IPv4/IPv6 addresses or CIDR ranges"),
        ({"AllowedSourceAddresses": "300.1.1.1"}, "'300.1.1.1' is not an IP address or CIDR range"),
        ({"AllowedSourcesAddresses": "10.0.0.0/8"}, "no parameter 'AllowedSourcesAddresses'"),
        ({"FunctionNames": "mine"}, "is not one of generated, reference"),
        ({"AuthorizerCacheTtlSeconds": "7200"}, "must be between 0 and 3600"),
        ({"AuthorizerCacheTtlSeconds": "soon"}, "must be a number"),
        ({"AuthorizerCacheTtlSeconds": "nan"}, "must be a number"),
        ({"AuthorizerCacheTtlSeconds": "1.5"}, "ReauthorizeEvery must be a whole number"),
    ],
)
def test_a_parameter_cloudformation_would_refuse_is_refused_in_one_line(
    parameters: dict[str, str], expected: str
) -> None:
    with pytest.raises(TemplateError) as raised:
        describe_api(load_template(), parameters)
    message = str(raised.value)
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Principal": {"AWS": "123456789012"}, "Action": "execute-api:Invoke"},
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:ManageConnections"},
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/a"},
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
         "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
    ],
)  # fmt: skip
def test_a_resource_policy_deny_the_twin_cannot_serve_is_refused_at_start(statement: dict[str, Any]) -> None:
    template = load_template()
    template["Resources"]["KoreMetadataApi"]["Properties"]["Auth"]["ResourcePolicy"] = {
        "CustomStatements": [{"Resource": "execute-api:/*", **statement}]
    }
    with pytest.raises(TemplateError, match="the twin serves"):
        describe_api(template)
