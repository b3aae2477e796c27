"""Actions on the contact's data: attributes, the contact's own settings, and the Lambda functions
whose answers feed them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kore_connect.aws_events import connect_lambda_event
from kore_connect.contactflow.language import ATTRIBUTE_KEY, ATTRIBUTES_LIMIT_BYTES, ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.branch import Branch, error, success
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.contact_run import ContactRun
from kore_connect.twin.connect.lambdas import function_name
from kore_connect.twin.lambda_runtime.invocation import Invocation

LAMBDA_RESPONSE_LIMIT_BYTES = 32 * 1024
LAMBDA_RETRIES = 3  # Connect retries a failed synchronous invocation up to 3 times within its limit


async def attributes(run: ContactRun, action: Action) -> Branch:
    updated = dict(run.contact.attributes)
    for raw_key, value in action.parameters.get("Attributes", {}).items():
        key = run.resolve(raw_key) or ""  # a key may be a reference, or hold one (a dynamic key)
        if not ATTRIBUTE_KEY.fullmatch(key):
            return error(
                action, ErrorType.NO_MATCHING_ERROR, f"{raw_key!r} = {key!r} is not a valid attribute key"
            )
        resolved = run.resolve(value)
        if resolved is None:
            return error(action, ErrorType.NO_MATCHING_ERROR, f"{key}: {value} resolves to nothing")
        updated[key] = resolved
    size = sum(len(k.encode()) + len(v.encode()) for k, v in updated.items())
    if size > ATTRIBUTES_LIMIT_BYTES:
        return error(
            action,
            ErrorType.NO_MATCHING_ERROR,
            f"the attributes would total {size} bytes (limit {ATTRIBUTES_LIMIT_BYTES})",
        )
    run.contact.attributes = updated
    return success(action, "set " + ", ".join(action.parameters.get("Attributes", {})))


async def contact_data(run: ContactRun, action: Action) -> Branch:
    """UpdateContactData: the language ($.LanguageCode) and customer ID are the contact's; the rest
    (Voice ID, Wisdom) are kept as settings."""
    resolved = {
        key: run.resolve(value) if isinstance(value, str) else value
        for key, value in action.parameters.items()
    }
    for key in ("LanguageCode", "CustomerId", "Name"):
        value = resolved.get(key)
        if isinstance(value, str):
            run.contact.system[key] = value
    run.contact.settings.setdefault(str(action.type), {}).update(resolved)
    return success(
        action, "updated " + ", ".join(action.parameters) if action.parameters else "nothing to update"
    )


async def invoke_lambda(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    arn = run.resolve(str(parameters.get("LambdaFunctionARN", ""))) or ""
    if not arn:
        run.warn(f"{action.label} names no Lambda function")
        return error(action, ErrorType.NO_MATCHING_ERROR, "LambdaFunctionARN names no function")
    invocation_parameters = {}
    for key, value in parameters.get("LambdaInvocationAttributes", {}).items():
        resolved = run.resolve(value)
        invocation_parameters[key] = "" if resolved is None else resolved
    event = flow_lambda_event(run.contact, invocation_parameters)
    if parameters.get("InvocationType") == "ASYNCHRONOUS":
        task = asyncio.ensure_future(run.invoke_lambda(arn, event))  # the flow does not wait
        run.asynchronous.add(task)
        task.add_done_callback(run.asynchronous.discard)
        run.contact.external = {}
        return success(action, "invoked asynchronously")
    limit = float(parameters["InvocationTimeLimitSeconds"])
    response_type = parameters.get("ResponseValidation", {}).get("ResponseType", "STRING_MAP")
    budget = limit  # Connect's limit covers all attempts: what each ran is taken from it
    problems = []
    for attempt in range(1 + LAMBDA_RETRIES):
        if budget <= 0:
            break
        invocation = await run.invoke_lambda(arn, event, budget)
        budget -= invocation.duration_ms / 1000
        run.advance(invocation.duration_ms / 1000)  # a real leg: the time it really took
        if invocation.error_type == "ResourceNotFoundException":
            run.warn(f"the Lambda function {function_name(arn)} is not in the local world")
        if invocation.unanswered:
            problems.append(f"attempt {attempt + 1}: no answer within {limit:g} s")
            break
        problem = _invalid_response(invocation, response_type)
        if problem is None:
            run.contact.external = dict(invocation.result)
            return success(action, f"{function_name(arn)} answered (attempt {attempt + 1})")
        problems.append(f"attempt {attempt + 1}: {problem}")
        if invocation.ok or invocation.error_type == "ResourceNotFoundException":
            break  # an answer Connect cannot use is not retried, nor a function that is not there
    run.contact.external = {}  # $.External is the latest response only: there is none now
    return error(action, ErrorType.NO_MATCHING_ERROR, f"{function_name(arn)} failed: " + "; ".join(problems))


def flow_lambda_event(contact: Contact, parameters: dict[str, str]) -> dict[str, Any]:
    """The event Connect sends a Lambda function from the Invoke AWS Lambda function block."""
    return connect_lambda_event(
        contact_id=contact.contact_id,
        initial_contact_id=contact.initial_contact_id,
        customer=contact.customer_address,
        system=contact.system_address,
        instance_arn=contact.instance_arn,
        attributes=dict(contact.attributes),
        channel=contact.channel,
        queue_arn=contact.queue_arn,
        parameters=parameters,
    )


def _invalid_response(invocation: Invocation, response_type: str) -> str | None:
    """Why Connect would refuse this invocation's answer, or None when it takes it."""
    if not invocation.ok:
        return f"{invocation.error_type}: {invocation.error_message}"
    result = invocation.result
    if not isinstance(result, dict):
        return "the response is not a JSON object"
    if response_type == "STRING_MAP" and not all(isinstance(v, str) for v in result.values()):
        return "the response is not a flat map of strings (STRING_MAP)"
    size = len(json.dumps(result).encode())
    if size > LAMBDA_RESPONSE_LIMIT_BYTES:
        return f"the response is {size} bytes (limit {LAMBDA_RESPONSE_LIMIT_BYTES})"
    return None
