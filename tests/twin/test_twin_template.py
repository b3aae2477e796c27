"""The twin reads the API from template.yaml, so that the twin and AWS cannot drift apart."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kore_connect import stack
from kore_connect.twin.template import TemplateError, describe_api, load_template, locate_template
from tests.conftest import REPO


def test_the_repositorys_template_is_the_one_read() -> None:
    assert locate_template() == REPO / "template.yaml"


def test_the_api_is_the_one_the_template_deploys() -> None:
    template = load_template()
    api = describe_api(template)
    assert api.stage == template["Parameters"]["StageName"]["Default"]
    (route,) = api.routes
    assert (route.method, route.path, route.function) == ("POST", stack.RESOURCE_PATH, stack.STORE_FUNCTION)
    assert route.authorizer is not None
    assert route.authorizer.name == stack.AUTHORIZER_NAME and route.authorizer.header == stack.TOKEN_HEADER
    assert route.authorizer.function == stack.AUTHORIZER_FUNCTION
    assert (
        route.authorizer.cache_ttl_seconds == template["Parameters"]["AuthorizerCacheTtlSeconds"]["Default"]
    )
    # the local API Gateway refuses, as AWS does, a token that cannot be the bot's
    pattern = route.authorizer.validation_expression
    assert pattern is not None
    assert pattern.fullmatch("a-token-of-sixteen") and not pattern.fullmatch("fifteen-letters")
    assert not pattern.fullmatch("a token with a space") and not pattern.fullmatch("x" * 4097)


def test_each_function_gets_the_environment_a_default_deployment_gives_it() -> None:
    functions = describe_api(load_template()).functions
    store = functions[stack.STORE_FUNCTION]
    assert store.handler == "kore_connect.bridge.store.lambda_handler" and store.timeout_seconds == 10
    assert store.environment["TABLE_NAME"] == "koreCcSessions"  # !Ref SessionsTable -> its TableName default
    assert store.environment["KORE_SESSION_TTL_SECONDS"] == "86400"
    assert store.environment["POWERTOOLS_SERVICE_NAME"] == "kore-connect-store"
    # Only a real deployment knows the secret's ARN; the twin gives the authorizer a local token instead.
    assert "AUTH_TOKEN_SECRET_ARN" not in functions[stack.AUTHORIZER_FUNCTION].environment


def test_short_form_tags_are_read_as_their_long_form() -> None:
    template = load_template()
    assert template["Outputs"]["RetrieveFunctionArn"]["Value"] == {
        "Fn::GetAtt": [stack.RETRIEVE_FUNCTION, "Arn"]
    }
    assert template["Conditions"]["HasConnectInstance"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ConnectInstanceArn"}, ""]}]
    }


def broken(change: Any) -> dict[str, Any]:
    template = copy.deepcopy(load_template())
    change(template)
    return template


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["Resources"].pop("KoreMetadataApi"), "expected one AWS::Serverless::Api"),
        (
            lambda t: t["Resources"]["KoreMetadataApi"]["Properties"]["Auth"]["Authorizers"][
                "koreClientAuth"
            ].update(FunctionPayloadType="REQUEST"),
            "not a TOKEN authorizer",
        ),
        (
            lambda t: t["Resources"]["KoreMetadataApi"]["Properties"]["Auth"].update(
                DefaultAuthorizer="other"
            ),
            "the authorizer 'other' is not defined",
        ),
        (lambda t: t["Resources"].pop(stack.AUTHORIZER_FUNCTION), "names no function"),
        (
            lambda t: t["Resources"]["KoreMetadataApi"]["Properties"]["Auth"]["Authorizers"][
                "koreClientAuth"
            ]["Identity"].update(ValidationExpression="[unclosed"),
            "ValidationExpression is not a valid regex",
        ),
    ],
)
def test_a_template_the_twin_cannot_serve_is_refused_clearly(change: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        describe_api(broken(change))


def test_a_missing_or_broken_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("Resources: [unclosed")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("Description: nothing\n")
    with pytest.raises(TemplateError, match="has no Resources"):
        load_template(tmp_path / "empty.yaml")
