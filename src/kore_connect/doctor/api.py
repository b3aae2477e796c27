"""The metadata API, probed the way the Kore bot's Service node calls it (REFERENCE.md §1 step 3, §3).

Three POSTs of the same synthetic metadata for the same synthetic contact: without the
`authorizationToken` header, with a made-up token, then with the bot's real token. The first two
must be refused: the koreClientAuth authorizer makes API Gateway answer 401; a Deny policy (or a
path API Gateway does not know) answers 403, which is reported as such. The third must answer 200
with a JSON body naming the contact.

Only status codes and API Gateway's own `message` are ever reported, with any token masked: never
the token itself, never metadata a body may echo.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from kore_connect.doctor.report import Check, CheckResult
from kore_connect.stack import (
    AUTHORIZER_FUNCTION,
    AUTHORIZER_NAME,
    RESOURCE_PATH,
    STORE_FUNCTION,
    TOKEN_HEADER,
)

HTTP_TIMEOUT_SECONDS = 10.0
_MESSAGE_LIMIT = 160


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = field(repr=False)  # the parsed JSON body, None when it is not JSON; never printed whole


def post_metadata(
    http: httpx.Client, url: str, contact_id: str, metadata: bytes, *, token: str | None
) -> Answer:
    """POST `metadata` for `contact_id` as the bot does. Raises httpx.HTTPError or httpx.InvalidURL."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    response = http.post(
        url,
        params={"contactId": contact_id},
        headers=headers,
        content=metadata,
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, body)


def wrong_token() -> str:
    """A token nobody configured: long enough that the authorizer compares it rather than ignoring it."""
    return "kore-connect-doctor-not-the-token-" + secrets.token_hex(16)


def check_refused(
    http: httpx.Client, url: str, contact_id: str, metadata: bytes, *, token: str | None, stack_name: str
) -> CheckResult:
    """POST without a token (`token` None) or with a wrong one; the API must refuse it."""
    name = Check.API_WITHOUT_TOKEN if token is None else Check.API_WRONG_TOKEN
    try:
        answer = post_metadata(http, url, contact_id, metadata, token=token)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return unreachable_result(name, url, exc)
    return refusal_result(answer, without_token=token is None, stack_name=stack_name, hide=[token])


def refusal_result(
    answer: Answer, *, without_token: bool, stack_name: str, hide: Iterable[str | None] = ()
) -> CheckResult:
    """Judge the answer to a request that must be refused."""
    name = Check.API_WITHOUT_TOKEN if without_token else Check.API_WRONG_TOKEN
    said = f"HTTP {answer.status}{_message(answer, hide)}"
    if answer.status == 401:
        return CheckResult.passed(name, said)
    if answer.status == 403:
        # Refused, but not by our authorizer, which answers 401: the request never reached it.
        return CheckResult.failed(
            name,
            f"refused, but not by {AUTHORIZER_NAME}: {said}",
            cause=(
                f"{AUTHORIZER_NAME} answers 401; a 403 means the URL is not the API's POST {RESOURCE_PATH} "
                "(API Gateway's 'Missing Authentication Token'), or something else (a WAF, a resource "
                "policy) refused the request"
            ),
            fix=(
                "check that the stack's MetadataEndpointUrl is the URL the doctor called, "
                f"and that the stage is deployed (`sam deploy --stack-name {stack_name}`)"
            ),
        )
    if 200 <= answer.status < 300:
        if without_token:
            cause = (
                "SECURITY: the API stored data sent without any token: POST "
                f"{RESOURCE_PATH} has no authorizer, so anyone can write metadata that agents will see"
            )
        else:
            cause = (
                "SECURITY: the API accepted a made-up token: POST "
                f"{RESOURCE_PATH} has no authorizer, or one that allows tokens it should refuse"
            )
        return CheckResult.failed(
            name,
            f"accepted: {said}",
            cause=cause,
            fix=(
                f"deploy the current template.yaml (`sam deploy --stack-name {stack_name}`), which puts the "
                f"{AUTHORIZER_FUNCTION} TOKEN authorizer on POST {RESOURCE_PATH}; then rotate the token "
                "and review the table's items, since anyone may have written to it"
            ),
        )
    if answer.status >= 500:
        return CheckResult.failed(
            name,
            f"failed: {said}",
            cause=(
                "the authorizer failed instead of refusing: it has no valid token or cannot read its secret"
            ),
            fix=_logs_fix(stack_name, AUTHORIZER_FUNCTION),
        )
    return CheckResult.failed(
        name,
        f"unexpected answer: {said}",
        cause=f"expected 401 from the {AUTHORIZER_FUNCTION} authorizer, got HTTP {answer.status}",
        fix=f"check that the stack's MetadataEndpointUrl is the API's POST {RESOURCE_PATH} URL and try again",
    )


def check_stored(
    http: httpx.Client,
    url: str,
    contact_id: str,
    metadata: bytes,
    *,
    token: str,
    secret_arn: str,
    stack_name: str,
) -> CheckResult:
    """POST with the bot's real token; the API must store the metadata and answer 200 naming the contact."""
    try:
        answer = post_metadata(http, url, contact_id, metadata, token=token)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return unreachable_result(Check.API_STORES, url, exc)
    return stored_result(answer, contact_id, secret_arn=secret_arn, stack_name=stack_name, hide=[token])


def stored_result(
    answer: Answer, contact_id: str, *, secret_arn: str, stack_name: str, hide: Iterable[str | None] = ()
) -> CheckResult:
    """Judge the answer to the POST with the real token."""
    name = Check.API_STORES
    said = f"HTTP {answer.status}{_message(answer, hide)}"
    if answer.status == 200:
        if isinstance(answer.body, dict) and answer.body.get("contactId") == contact_id:
            return CheckResult.passed(name, f"HTTP 200, stored for the synthetic contact {contact_id}")
        return CheckResult.failed(
            name,
            "HTTP 200, but the body does not name the contact",
            cause=f"the function behind POST {RESOURCE_PATH} is not kore-connect's {STORE_FUNCTION}",
            fix=f"deploy the current template.yaml (`sam deploy --stack-name {stack_name}`)",
        )
    if answer.status in (401, 403):
        return CheckResult.failed(
            name,
            f"refused: {said}",
            cause=(
                f"the API refused the token in the secret {secret_arn}: the authorizer checks another "
                "token, the secret was changed less than the authorizer's cache time ago, or the URL is "
                "not the API's"
            ),
            fix=(
                f"redeploy (`sam deploy --stack-name {stack_name}`) so that {AUTHORIZER_FUNCTION}'s "
                "AUTH_TOKEN_SECRET_ARN is the stack's TokenSecretArn; after changing the secret, wait for "
                "the AuthorizerCacheTtlSeconds parameter (300 s by default)"
            ),
        )
    if answer.status in (400, 413):
        return CheckResult.failed(
            name,
            f"refused: {said}",
            cause=f"{STORE_FUNCTION} refused the doctor's small JSON object: it is not kore-connect's",
            fix=f"deploy the current template.yaml (`sam deploy --stack-name {stack_name}`)",
        )
    if answer.status >= 500:
        return CheckResult.failed(
            name,
            f"failed: {said}",
            cause=f"{STORE_FUNCTION} could not store the metadata (a 503 means DynamoDB refused the write)",
            fix=_logs_fix(stack_name, STORE_FUNCTION),
        )
    return CheckResult.failed(
        name,
        f"unexpected answer: {said}",
        cause=f"expected HTTP 200 from {STORE_FUNCTION}, got HTTP {answer.status}",
        fix=f"check that the stack's MetadataEndpointUrl is the API's POST {RESOURCE_PATH} URL and try again",
    )


def unreachable_result(name: str, url: str, exc: Exception) -> CheckResult:
    """The request never got an answer: a DNS, TLS, connection or timeout problem, or a malformed URL."""
    host = httpx.URL(url).host if not isinstance(exc, httpx.InvalidURL) else url
    return CheckResult.failed(
        name,
        f"no answer from {host}: {type(exc).__name__}",
        cause=f"the request did not complete ({_describe(exc)})",
        fix="check your network (proxy, VPN) and the stack's MetadataEndpointUrl, then run the doctor again",
    )


def _message(answer: Answer, hide: Iterable[str | None]) -> str:
    """API Gateway's (or our store's) `message`, short, tokens masked; empty for any other body."""
    if not isinstance(answer.body, dict) or not isinstance(answer.body.get("message"), str):
        return ""
    text: str = answer.body["message"][:_MESSAGE_LIMIT]
    for token in hide:
        if token:
            text = text.replace(token, "***")
    return f' "{text}"'


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _logs_fix(stack_name: str, function: str) -> str:
    return f"read its logs: `sam logs --stack-name {stack_name} -n {function} --start-time '10min ago'`"
