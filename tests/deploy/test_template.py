"""template.yaml: it lints clean, the SAM transform succeeds offline, it grants exactly the
permissions each function needs, and it names what `kore-connect doctor` and the docs expect."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

from kore_connect import stack
from tests.conftest import REPO

TEMPLATE = REPO / "template.yaml"
ARTIFACT_URI = "s3://kore-connect-artifacts/package.zip"  # what `sam package` puts in place of CodeUri


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for SAM `Policies`; we use none."""

    def load(self) -> dict[str, str]:
        return {}


def sam_template() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    assert template is not None
    return dict(template)


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-2")  # the translator needs a region for ARNs
        return _transform(sam_template())


def _transform(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    template = copy.deepcopy(template)
    template["Globals"]["Function"]["CodeUri"] = ARTIFACT_URI
    return transform(template, parameters or {}, _NoManagedPolicies())  # type: ignore[arg-type]


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def statements(role: dict[str, Any], conditions: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The role's statements as deployed with `conditions` true and every other condition false."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            condition, when_true, when_false = policy["Fn::If"]
            policy = when_true if condition in conditions else when_false
            if policy == {"Ref": "AWS::NoValue"}:
                continue
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


def grants(role: dict[str, Any], conditions: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """(action, resource) pairs a role allows, resources rendered as compact JSON."""
    pairs = set()
    for statement in statements(role, conditions):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                pairs.add((action, json.dumps(resource, sort_keys=True)))
    return pairs


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref(name: str) -> str:
    return json.dumps({"Ref": name})


def arn_of(name: str) -> str:
    return json.dumps({"Fn::GetAtt": [name, "Arn"]})


CONNECT_INSTANCE = "arn:aws:connect:eu-west-2:123456789012:instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
TOKEN_SECRET = json.dumps(
    {"Fn::If": ["GenerateToken", {"Ref": "TokenSecret"}, {"Ref": "ExistingTokenSecretArn"}]}, sort_keys=True
)


# ---------------------------------------------------------------- lint and transform


def test_cfn_lint_finds_nothing() -> None:
    # WHEN cfn-lint checks the template, with every rule it has on, informational ones too
    matches = lint_file(TEMPLATE, ManualArgs(include_checks=["I"]))
    # THEN it has nothing to say
    assert [str(m) for m in matches] == []


def test_no_cfn_lint_rule_is_silenced() -> None:
    # A silenced rule would need a written reason; there is none, so none may be silenced.
    text = TEMPLATE.read_text()
    assert "cfn-lint" not in text and "ignore_checks" not in text
    assert not (REPO / ".cfnlintrc").exists() and not (REPO / ".cfnlintrc.yaml").exists()


def test_the_sam_transform_succeeds_offline(transformed: dict[str, Any]) -> None:
    assert "Transform" not in transformed
    functions = resources_of_type(transformed, "AWS::Lambda::Function")
    assert set(functions) == {stack.STORE_FUNCTION, stack.AUTHORIZER_FUNCTION, stack.RETRIEVE_FUNCTION}
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.13"
        assert function["Properties"]["Architectures"] == ["arm64"]
        code = function["Properties"]["Code"]
        assert code == {"S3Bucket": "kore-connect-artifacts", "S3Key": "package.zip"}


def test_the_transform_succeeds_with_a_connect_instance_and_a_supplied_secret() -> None:
    parameters = {
        "ConnectInstanceArn": CONNECT_INSTANCE,
        "ExistingTokenSecretArn": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:kore-token-AbCdEf",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        result = _transform(sam_template(), parameters)
    assert "RetrieveConnectAssociation" in result["Resources"]


# ---------------------------------------------------------------- what the issue asks the template for


def test_the_table_is_keyed_by_contact_id_with_ttl_encryption_and_recovery(
    transformed: dict[str, Any],
) -> None:
    table = transformed["Resources"]["SessionsTable"]["Properties"]
    assert table["TableName"] == {"Ref": "TableName"}
    assert sam_template()["Parameters"]["TableName"]["Default"] == "koreCcSessions"
    assert table["KeySchema"] == [{"AttributeName": "contactId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "contactId", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_api_posts_kore_metadata_through_the_token_authorizer(transformed: dict[str, Any]) -> None:
    api = transformed["Resources"]["KoreMetadataApi"]["Properties"]["Body"]
    operation = api["paths"][stack.RESOURCE_PATH]["post"]
    assert operation["security"] == [{stack.AUTHORIZER_NAME: []}]
    assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert stack.STORE_FUNCTION in json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
    authorizer = api["components"]["securitySchemes"][stack.AUTHORIZER_NAME]
    assert authorizer["name"] == stack.TOKEN_HEADER and authorizer["in"] == "header"
    details = authorizer["x-amazon-apigateway-authorizer"]
    assert details["type"] == "token"
    assert details["authorizerResultTtlInSeconds"] == 300  # the parameter's default


def test_api_gateway_refuses_a_junk_token_with_the_authorizers_own_pattern(
    transformed: dict[str, Any],
) -> None:
    # A token the authorizer would never accept must not invoke it (nor count against its concurrency).
    from kore_connect.bridge.tokens import TOKEN_PATTERN

    api = transformed["Resources"]["KoreMetadataApi"]["Properties"]["Body"]
    details = api["components"]["securitySchemes"][stack.AUTHORIZER_NAME]["x-amazon-apigateway-authorizer"]
    assert details["identityValidationExpression"] == TOKEN_PATTERN


def test_the_rotation_window_reaches_the_authorizer(transformed: dict[str, Any]) -> None:
    function = transformed["Resources"][stack.AUTHORIZER_FUNCTION]["Properties"]
    assert function["Environment"]["Variables"]["KORE_TOKEN_ROTATION_WINDOW_SECONDS"] == {
        "Ref": "TokenRotationWindowSeconds"
    }


def test_the_authorizer_cache_ttl_follows_its_parameter() -> None:
    # SAM resolves this parameter during the transform, which CloudFormation runs with the real values.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        result = _transform(sam_template(), {"AuthorizerCacheTtlSeconds": 0})
    api = result["Resources"]["KoreMetadataApi"]["Properties"]["Body"]
    details = api["components"]["securitySchemes"][stack.AUTHORIZER_NAME]["x-amazon-apigateway-authorizer"]
    assert details["authorizerResultTtlInSeconds"] == 0
    assert stack.AUTHORIZER_FUNCTION in json.dumps(details["authorizerUri"])
    assert list(api["paths"]) == [stack.RESOURCE_PATH]  # nothing else is exposed


def test_the_stage_is_throttled_and_access_logged_without_headers_or_bodies(
    transformed: dict[str, Any],
) -> None:
    (stage,) = resources_of_type(transformed, "AWS::ApiGateway::Stage").values()
    settings = stage["Properties"]["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}
    access = stage["Properties"]["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    fields = json.loads(access["Format"])
    assert "requestId" in fields and "status" in fields
    assert not any("header" in value.lower() or "body" in value.lower() for value in fields.values())


def test_there_is_one_stage_and_it_is_the_throttled_logged_one(transformed: dict[str, Any]) -> None:
    # Without OpenApiVersion, SAM's deployment would also create an unthrottled stage named "Stage".
    (deployment,) = resources_of_type(transformed, "AWS::ApiGateway::Deployment").values()
    assert "StageName" not in deployment["Properties"]
    (stage,) = resources_of_type(transformed, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == {"Ref": "StageName"}


def test_the_api_waits_for_the_account_logging_role_which_waits_for_iam(transformed: dict[str, Any]) -> None:
    # Access logging fails until the account's CloudWatch role is set; setting it fails until IAM
    # has propagated the new role. So: role -> (slow resources) -> account setting -> API -> stage.
    resources = transformed["Resources"]
    assert resources["KoreMetadataApi"]["DependsOn"] == "ApiGatewayLoggingReady"
    ready = resources["ApiGatewayLoggingReady"]["Metadata"]["AccountSetting"]["Fn::If"]
    assert ready[:2] == ["SetApiGatewayLoggingRole", {"Ref": "ApiGatewayAccount"}]
    account = resources["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLoggingRole", "Arn"]}
    assert "SessionsTable" in account["DependsOn"]
    assert account["DeletionPolicy"] == "Retain"  # an account-wide setting other APIs may rely on


def test_the_token_is_generated_at_deploy_time_and_never_a_default(transformed: dict[str, Any]) -> None:
    template = sam_template()
    secret = transformed["Resources"]["TokenSecret"]
    assert secret["Condition"] == "GenerateToken"
    assert "GenerateSecretString" in secret["Properties"]
    assert "SecretString" not in secret["Properties"]
    assert template["Parameters"]["ExistingTokenSecretArn"]["Default"] == ""
    authorizer = transformed["Resources"][stack.AUTHORIZER_FUNCTION]["Properties"]
    environment = authorizer["Environment"]["Variables"]
    assert "AUTH_TOKEN" not in environment
    assert json.dumps(environment["AUTH_TOKEN_SECRET_ARN"], sort_keys=True) == TOKEN_SECRET


def test_connect_gets_an_association_and_an_invoke_permission_from_its_instance_only(
    transformed: dict[str, Any],
) -> None:
    association = transformed["Resources"]["RetrieveConnectAssociation"]
    assert association["Condition"] == "HasConnectInstance"
    assert association["Properties"] == {
        "InstanceId": {"Ref": "ConnectInstanceArn"},
        "IntegrationType": "LAMBDA_FUNCTION",
        "IntegrationArn": {"Fn::GetAtt": [stack.RETRIEVE_FUNCTION, "Arn"]},
    }
    permission = transformed["Resources"]["RetrieveConnectPermission"]
    assert permission["Condition"] == "HasConnectInstance"
    assert permission["Properties"]["Principal"] == "connect.amazonaws.com"
    assert permission["Properties"]["SourceArn"] == {"Ref": "ConnectInstanceArn"}
    assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_alarms_watch_each_functions_errors_and_throttles_and_the_api_5xx(
    transformed: dict[str, Any],
) -> None:
    watched = set()
    for alarm in resources_of_type(transformed, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        metrics = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        for metric in metrics or [properties]:
            dimension = metric["Dimensions"][0]["Value"]
            watched.add((metric["Namespace"], metric["MetricName"], json.dumps(dimension)))
    for function in (stack.STORE_FUNCTION, stack.AUTHORIZER_FUNCTION, stack.RETRIEVE_FUNCTION):
        assert ("AWS/Lambda", "Errors", ref(function)) in watched
        assert ("AWS/Lambda", "Throttles", ref(function)) in watched
    api_name = transformed["Resources"]["KoreMetadataApi"]["Properties"]["Name"]
    assert ("AWS/ApiGateway", "5XXError", json.dumps(api_name)) in watched


def test_refused_tokens_do_not_set_off_the_authorizer_alarm(transformed: dict[str, Any]) -> None:
    # Refusing a token is the authorizer raising Unauthorized, a Lambda error; the alarm subtracts
    # the refusals the function counts itself (metric Denied, under the authorizer's own service name).
    alarm = transformed["Resources"]["AuthorizerErrorsAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["failures"]["Expression"] == "errors - FILL(denied, 0)"
    assert metrics["failures"]["ReturnData"] is True
    denied = metrics["denied"]["MetricStat"]["Metric"]
    authorizer = transformed["Resources"][stack.AUTHORIZER_FUNCTION]["Properties"]
    service = authorizer["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert denied == {
        "Namespace": "KoreConnect",
        "MetricName": "Denied",
        "Dimensions": [{"Name": "service", "Value": service}],
    }


def test_each_function_has_its_own_service_name_for_its_logs_and_metrics(transformed: dict[str, Any]) -> None:
    names = {
        f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for f in resources_of_type(transformed, "AWS::Lambda::Function").values()
    }
    assert names == {"kore-connect-authorizer", "kore-connect-store", "kore-connect-retrieve"}


def test_the_outputs_are_the_ones_doctor_and_the_docs_name(transformed: dict[str, Any]) -> None:
    outputs = transformed["Outputs"]
    assert set(stack.REQUIRED_OUTPUTS) <= set(outputs)
    assert outputs[stack.OUTPUT_CONNECT_INSTANCE_ARN]["Condition"] == "HasConnectInstance"
    url = outputs[stack.OUTPUT_METADATA_URL]["Value"]["Fn::Sub"]
    assert url.startswith("https://${KoreMetadataApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")
    assert url.endswith("/${StageName}" + stack.RESOURCE_PATH)
    retrieve_arn = outputs[stack.OUTPUT_RETRIEVE_FUNCTION_ARN]["Value"]
    assert retrieve_arn == {"Fn::GetAtt": [stack.RETRIEVE_FUNCTION, "Arn"]}
    assert json.dumps(outputs[stack.OUTPUT_TOKEN_SECRET_ARN]["Value"], sort_keys=True) == TOKEN_SECRET


# ---------------------------------------------------------------- least privilege


def test_each_function_may_do_exactly_its_one_thing_beyond_writing_its_logs(
    transformed: dict[str, Any],
) -> None:
    roles = resources_of_type(transformed, "AWS::IAM::Role")
    functions = resources_of_type(transformed, "AWS::Lambda::Function")
    expected = {
        stack.STORE_FUNCTION: ("StoreLogs", {("dynamodb:PutItem", arn_of("SessionsTable"))}),
        stack.RETRIEVE_FUNCTION: ("RetrieveLogs", {("dynamodb:GetItem", arn_of("SessionsTable"))}),
        stack.AUTHORIZER_FUNCTION: ("AuthorizerLogs", {("secretsmanager:GetSecretValue", TOKEN_SECRET)}),
    }
    for function_name, (log_group, own_grant) in expected.items():
        role_name = functions[function_name]["Properties"]["Role"]["Fn::GetAtt"][0]
        role = roles[role_name]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
        assert "ManagedPolicyArns" not in role  # not even AWSLambdaBasicExecutionRole's logs:* on "*"
        logs = {("logs:CreateLogStream", arn_of(log_group)), ("logs:PutLogEvents", arn_of(log_group))}
        assert grants(roles[role_name]) == logs | own_grant, function_name
        assert functions[function_name]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": log_group}


def test_no_other_role_or_policy_grants_anything(transformed: dict[str, Any]) -> None:
    roles = resources_of_type(transformed, "AWS::IAM::Role")
    function_roles = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in resources_of_type(transformed, "AWS::Lambda::Function").values()
    }
    others = set(roles) - function_roles
    assert others == {"ApiGatewayLoggingRole"}
    logging_role = roles["ApiGatewayLoggingRole"]["Properties"]
    assert logging_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    push_to_logs = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    assert logging_role["ManagedPolicyArns"] == [{"Fn::Sub": push_to_logs}]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        assert resources_of_type(transformed, kind) == {}


def test_every_invoke_permission_names_who_may_invoke_and_from_where(transformed: dict[str, Any]) -> None:
    permissions = resources_of_type(transformed, "AWS::Lambda::Permission")
    invokers = {}
    for name, permission in permissions.items():
        properties = permission["Properties"]
        assert properties["Action"] == "lambda:InvokeFunction"
        assert "SourceArn" in properties, name
        invokers[name] = (properties["Principal"], json.dumps(properties["FunctionName"]))
    assert sorted(invokers.values()) == sorted(
        [
            ("apigateway.amazonaws.com", ref(stack.STORE_FUNCTION)),
            ("apigateway.amazonaws.com", arn_of(stack.AUTHORIZER_FUNCTION)),
            ("connect.amazonaws.com", arn_of(stack.RETRIEVE_FUNCTION)),
        ]
    )


# ---------------------------------------------------------------- names the code relies on


def test_the_handlers_named_in_the_template_exist() -> None:
    import importlib

    for name, function in resources_of_type(sam_template(), "AWS::Serverless::Function").items():
        module_name, _, attribute = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module_name), attribute)), name


def test_the_environment_variables_set_are_ones_the_settings_read() -> None:
    from kore_connect import config

    known = {value for name, value in vars(config).items() if name.isupper() and isinstance(value, str)}
    template = sam_template()
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in resources_of_type(template, "AWS::Serverless::Function").values():
        variables |= set(function["Properties"].get("Environment", {}).get("Variables", {}))
    ours = {v for v in variables if not v.startswith("POWERTOOLS_")}
    assert ours <= known, ours - known


def test_the_lambda_dependencies_pin_the_powertools_the_tests_run() -> None:
    lock = (REPO / "requirements.lock").read_text()
    deployed = (REPO / "src" / "lambda-requirements.txt").read_text()
    pins = [line.split()[0] for line in deployed.splitlines() if line.startswith("aws-lambda-powertools==")]
    assert len(pins) == 1
    pin = pins[0]
    assert pin in lock


def test_the_template_points_at_the_sources(tmp_path: Path) -> None:
    assert sam_template()["Globals"]["Function"]["CodeUri"] == "src/"
    assert (REPO / "src" / "Makefile").is_file()


def test_sam_deploy_defaults_allow_the_roles_the_stack_creates() -> None:
    import tomllib

    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"  # the roles have no custom names
    assert config["default"]["global"]["parameters"]["stack_name"] == "kore-connect"
    for role in resources_of_type(sam_template(), "AWS::IAM::Role").values():
        assert "RoleName" not in role["Properties"]  # a named role would need CAPABILITY_NAMED_IAM


def test_the_functions_take_the_reference_names_only_when_asked() -> None:
    reference = {
        stack.AUTHORIZER_FUNCTION: "AuthenticateBeforeStoringInDynamoDB",
        stack.STORE_FUNCTION: "koreStoreSessionMetadata",
        stack.RETRIEVE_FUNCTION: "koreRetrieveSessionMetadata",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        result = _transform(sam_template(), {"FunctionNames": "reference"})
    functions = resources_of_type(result, "AWS::Lambda::Function")
    for logical, name in reference.items():
        assert functions[logical]["Properties"]["FunctionName"] == {
            "Fn::If": ["ReferenceFunctionNames", name, {"Ref": "AWS::NoValue"}]
        }
    assert result["Conditions"]["ReferenceFunctionNames"] == {
        "Fn::Equals": [{"Ref": "FunctionNames"}, "reference"]
    }
    parameter = sam_template()["Parameters"]["FunctionNames"]
    assert parameter["Default"] == "generated" and parameter["AllowedValues"] == ["generated", "reference"]


def _api_policy_and_deployment(parameters: dict[str, str]) -> tuple[dict[str, Any], str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
        result = _transform(sam_template(), parameters)
    body = result["Resources"]["KoreMetadataApi"]["Properties"]["Body"]
    (deployment,) = resources_of_type(result, "AWS::ApiGateway::Deployment")
    return body["x-amazon-apigateway-policy"], deployment


def test_the_resource_policy_denies_every_address_outside_the_given_list() -> None:
    listed = "198.51.100.7,10.0.0.0/8"
    policy, _ = _api_policy_and_deployment({"AllowedSourceAddresses": listed})
    allow, conditional = policy["Statement"]
    # an Allow for all (as having no policy would), and the explicit Deny API Gateway checks before
    # it invokes the authorizer, present only when addresses are given
    assert allow == {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }
    condition, deny, otherwise = conditional["Fn::If"]
    assert condition == "RestrictSourceAddresses" and otherwise == {"Ref": "AWS::NoValue"}
    assert deny["Effect"] == "Deny" and deny["Resource"] == "execute-api:/*"
    assert deny["Condition"] == {"NotIpAddress": {"aws:SourceIp": {"Fn::Split": [",", listed]}}}
    assert sam_template()["Conditions"]["RestrictSourceAddresses"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedSourceAddresses"}, ""]}]
    }
    assert sam_template()["Parameters"]["AllowedSourceAddresses"]["Default"] == ""


def test_a_changed_address_list_makes_a_new_deployment_so_that_it_takes_effect() -> None:
    # API Gateway applies a changed resource policy only once the API is deployed again
    _, unrestricted = _api_policy_and_deployment({})
    _, one = _api_policy_and_deployment({"AllowedSourceAddresses": "198.51.100.7"})
    _, two = _api_policy_and_deployment({"AllowedSourceAddresses": "198.51.100.7,10.0.0.0/8"})
    assert len({unrestricted, one, two}) == 3


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("198.51.100.7", True),
        ("198.51.100.0/24,2001:db8::/32", True),
        ("198.51.100.7, 10.0.0.0/8", False),
        ("kore.example.com", False),
        ("198.51.100.7,", False),
    ],
)
def test_the_address_parameter_refuses_what_is_not_a_list_of_addresses(value: str, accepted: bool) -> None:
    pattern = sam_template()["Parameters"]["AllowedSourceAddresses"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_the_retrieve_function_may_read_the_reference_table_only_when_one_is_named(
    transformed: dict[str, Any],
) -> None:
    # GIVEN the retrieve function's role, deployed with ReferenceTableName (docs/migration.md)
    functions = resources_of_type(transformed, "AWS::Lambda::Function")
    role_name = functions[stack.RETRIEVE_FUNCTION]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources_of_type(transformed, "AWS::IAM::Role")[role_name]
    table_arn = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ReferenceTableName}"
    reference = json.dumps({"Fn::Sub": table_arn})
    # THEN it may get items from that one table, and only then
    added = grants(role, frozenset({"ReadReferenceTable"})) - grants(role)
    assert added == {("dynamodb:GetItem", reference)}
    assert sam_template()["Conditions"]["ReadReferenceTable"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReferenceTableName"}, ""]}]
    }
    variables = functions[stack.RETRIEVE_FUNCTION]["Properties"]["Environment"]["Variables"]
    assert variables["KORE_REFERENCE_TABLE_NAME"] == {"Ref": "ReferenceTableName"}
