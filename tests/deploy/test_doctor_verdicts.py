"""The doctor's verdicts on what AWS and the API answered: pure functions, tested with plain data."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from kore_connect.doctor.api import Answer, refusal_result, stored_result
from kore_connect.doctor.checks import DoctorError, stack_result, validate_region, validate_stack_name
from kore_connect.doctor.report import Check, CheckResult, CheckStatus
from kore_connect.doctor.resources import clean_up, connect_result, read_token, retrieve_result, table_result
from kore_connect.stack import REQUIRED_OUTPUTS

CONTACT = "0b7e4f7c-3d1a-4a52-9f0e-2c8d6b1a9e33"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kore-connect/token-AbCdEf"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:retrieve"
EXPECTED = {"doctor": True, "checkedAt": "2026-05-04T09:30:00+00:00", "n": 1.5}


@pytest.mark.parametrize("name", ["kore-connect", "K", "a" * 128, "prod-2-kore"])
def test_cloudformation_stack_names_are_accepted(name: str) -> None:
    assert validate_stack_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "bad name!", "-kore", "2kore", "kore_connect", "a" * 129, "kore.connect"]
)
def test_malformed_stack_names_are_refused(name: str) -> None:
    with pytest.raises(DoctorError, match="is not a CloudFormation stack name"):
        validate_stack_name(name)


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-northwest-1", "ap-southeast-5"]
)
def test_region_codes_are_accepted(region: str) -> None:
    assert validate_region(region) == region


@pytest.mark.parametrize(
    "region", ["useast1", "US-EAST-1", "us-east", "us-east-1 ", "Frankfurt", "us-east-1a"]
)
def test_things_that_are_not_regions_are_refused(region: str) -> None:
    with pytest.raises(DoctorError, match="is not an AWS region"):
        validate_region(region)


def stack(status: str, outputs: tuple[str, ...] = REQUIRED_OUTPUTS) -> dict[str, Any]:
    return {
        "StackName": "kore-connect",
        "StackStatus": status,
        "Outputs": [{"OutputKey": key, "OutputValue": f"value-of-{key}"} for key in outputs],
    }


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"])
def test_a_complete_stack_with_its_outputs_passes(status: str) -> None:
    result, outputs = stack_result(stack(status))
    assert result.status is CheckStatus.PASSED
    assert set(outputs) == set(REQUIRED_OUTPUTS)


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        ("ROLLBACK_COMPLETE", "nothing of it is deployed"),
        ("UPDATE_ROLLBACK_COMPLETE", "runs its previous version"),
        ("CREATE_IN_PROGRESS", "being changed right now"),
        ("UPDATE_ROLLBACK_FAILED", "last change of the stack failed"),
        ("CREATE_FAILED", "last change of the stack failed"),
    ],
)
def test_a_stack_not_cleanly_complete_fails(status: str, cause: str) -> None:
    result, _ = stack_result(stack(status))
    assert result.status is CheckStatus.FAILED
    assert status in result.detail and cause in result.cause


def test_an_empty_output_counts_as_missing() -> None:
    # GIVEN a stack whose table output is present but empty
    entry = stack("CREATE_COMPLETE")
    entry["Outputs"][0]["OutputValue"] = ""
    # THEN it is reported as missing
    result, _ = stack_result(entry)
    assert result.status is CheckStatus.FAILED
    assert REQUIRED_OUTPUTS[0] in result.detail


def table(**overrides: Any) -> dict[str, Any]:
    description: dict[str, Any] = {
        "TableName": "koreCcSessions",
        "TableStatus": "ACTIVE",
        "AttributeDefinitions": [{"AttributeName": "contactId", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "contactId", "KeyType": "HASH"}],
    }
    return description | overrides


TTL_ON = {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}


def test_the_template_s_table_passes() -> None:
    assert table_result(table(), TTL_ON).status is CheckStatus.PASSED


def test_a_table_keyed_otherwise_fails() -> None:
    result = table_result(
        table(
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        ),
        TTL_ON,
    )
    assert result.status is CheckStatus.FAILED
    assert result.detail == "koreCcSessions is keyed by id (N) HASH"
    assert "contactId (S) HASH" in result.cause


def test_ttl_on_another_attribute_fails_naming_both() -> None:
    result = table_result(table(), {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"})
    assert result.status is CheckStatus.FAILED
    assert "on ttl, not expiresAt" in result.detail


def test_a_table_still_being_created_fails() -> None:
    result = table_result(table(TableStatus="CREATING"), TTL_ON)
    assert result.status is CheckStatus.FAILED and "CREATING" in result.detail


@pytest.mark.parametrize(
    ("status", "passed"), [(401, True), (403, False), (200, False), (500, False), (429, False)]
)
def test_a_refusal_must_be_the_authorizers_401(status: int, passed: bool) -> None:
    result = refusal_result(Answer(status, {"message": "x"}), without_token=True, stack_name="kore-connect")
    assert (result.status is CheckStatus.PASSED) is passed
    assert f"HTTP {status}" in result.detail


def test_a_403_fails_as_not_the_authorizers_refusal() -> None:
    # GIVEN API Gateway's answer for a path the API does not have
    answer = Answer(403, {"message": "Missing Authentication Token"})
    result = refusal_result(answer, without_token=False, stack_name="kore-connect")
    # THEN the check fails: the request never reached koreClientAuth, which answers 401
    assert result.status is CheckStatus.FAILED
    assert "HTTP 403" in result.detail and "Missing Authentication Token" in result.detail
    assert "MetadataEndpointUrl" in result.fix


def test_a_message_echoing_the_token_is_masked() -> None:
    token = "kore-connect-doctor-not-the-token-0123456789abcdef"
    answer = Answer(400, {"message": f"bad token {token}"})
    result = refusal_result(answer, without_token=False, stack_name="s", hide=[token])
    assert token not in result.detail and "***" in result.detail


def test_a_200_must_name_the_contact() -> None:
    named = stored_result(Answer(200, {"contactId": CONTACT}), CONTACT, secret_arn=SECRET_ARN, stack_name="s")
    unnamed = stored_result(Answer(200, {"ok": True}), CONTACT, secret_arn=SECRET_ARN, stack_name="s")
    assert named.status is CheckStatus.PASSED
    assert unnamed.status is CheckStatus.FAILED


def test_a_503_from_the_store_points_at_its_logs() -> None:
    result = stored_result(Answer(503, {"message": "m"}), CONTACT, secret_arn=SECRET_ARN, stack_name="kc")
    assert result.status is CheckStatus.FAILED
    assert "sam logs --stack-name kc -n KoreStoreSessionMetadata" in result.fix


def retrieved(metadata: object, status: int = 200) -> bytes:
    return json.dumps({"statusCode": status, "body": json.dumps(metadata)}).encode()


def test_the_same_json_passes() -> None:
    assert retrieve_result(retrieved(EXPECTED), None, EXPECTED, stack_name="s").status is CheckStatus.PASSED


@pytest.mark.parametrize(
    ("changed", "difference"),
    [
        ({"n": 1}, "n sent as float, came back as int"),
        ({"doctor": 1}, "doctor sent as bool, came back as int"),
        ({"n": 2.5}, "n changed"),
        ({"extra": "x"}, "extra added"),
    ],
)
def test_json_that_differs_even_only_in_type_fails(changed: dict[str, Any], difference: str) -> None:
    result = retrieve_result(retrieved(EXPECTED | changed), None, EXPECTED, stack_name="s")
    assert result.status is CheckStatus.FAILED
    assert result.detail.endswith(difference)


def test_a_404_points_at_the_functions_tables() -> None:
    payload = json.dumps({"statusCode": 404, "body": '"Data not found"'}).encode()
    result = retrieve_result(payload, None, EXPECTED, stack_name="s")
    assert result.status is CheckStatus.FAILED and "TABLE_NAME" in result.cause


def test_a_function_error_without_a_json_payload_is_still_reported() -> None:
    result = retrieve_result(b"Task timed out", "Unhandled", EXPECTED, stack_name="s")
    assert result.status is CheckStatus.FAILED
    assert result.detail == "the function failed: Unhandled"


def test_an_answer_that_is_not_an_object_fails() -> None:
    result = retrieve_result(b'"Data not found"', None, EXPECTED, stack_name="s")
    assert result.status is CheckStatus.FAILED


def test_an_association_with_a_qualifier_counts() -> None:
    result = connect_result([FUNCTION_ARN + ":live"], "i-1", FUNCTION_ARN)
    assert result.status is CheckStatus.PASSED


def test_a_similarly_named_function_does_not_count() -> None:
    result = connect_result([FUNCTION_ARN + "-old"], "i-1", FUNCTION_ARN)
    assert result.status is CheckStatus.FAILED


def secrets_answering(**response: Any) -> tuple[Any, Stubber]:
    client = boto3.client("secretsmanager")
    stub = Stubber(client)
    if "error" in response:
        stub.add_client_error("get_secret_value", service_error_code=response["error"])
    else:
        stub.add_response("get_secret_value", {"ARN": SECRET_ARN, "Name": "t", **response})
    return client, stub


def test_a_short_token_in_the_secret_fails_before_any_request() -> None:
    client, stub = secrets_answering(SecretString="short")
    with stub:
        result = read_token(client, SECRET_ARN)
    assert isinstance(result, CheckResult) and result.name == Check.API_STORES
    assert "shorter than 16 characters" in result.cause


def test_a_secret_you_may_not_read_says_so() -> None:
    client, stub = secrets_answering(error="AccessDeniedException")
    with stub:
        result = read_token(client, SECRET_ARN)
    assert isinstance(result, CheckResult)
    assert result.detail == f"access denied: secretsmanager:GetSecretValue on {SECRET_ARN}"


def test_the_token_is_read_without_surrounding_whitespace() -> None:
    client, stub = secrets_answering(SecretString="  a-token-of-twenty-chars \n")
    with stub:
        assert read_token(client, SECRET_ARN) == "a-token-of-twenty-chars"


def test_a_clean_up_that_fails_says_how_to_delete_by_hand() -> None:
    client = boto3.client("dynamodb")
    stub = Stubber(client)
    stub.add_client_error("delete_item", service_error_code="AccessDeniedException")
    with stub:
        result = clean_up(client, "koreCcSessions", CONTACT)
    assert result.status is CheckStatus.FAILED
    key = json.dumps({"contactId": {"S": CONTACT}})
    assert f"aws dynamodb delete-item --table-name koreCcSessions --key '{key}'" in result.fix
