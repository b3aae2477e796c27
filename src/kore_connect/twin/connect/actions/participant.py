"""Participant actions: what the caller hears, presses and says, and where the call goes."""

from __future__ import annotations

import json
import time
from typing import Any

from kore_connect.contactflow.language import PROMPT_KEYS, ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.branch import Branch, by_condition, error, hung_up, result, success
from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest
from kore_connect.twin.connect.contact import ContactState
from kore_connect.twin.connect.contact_run import ContactRun
from kore_connect.twin.connect.lex import understand
from kore_connect.twin.connect.phone import as_e164, is_e164
from kore_connect.twin.connect.speech import RECORDED_PROMPT_SECONDS, render_ssml, speaking_seconds

KEY_SECONDS = 0.5  # a caller's key press, on the contact's clock
BUSY_SECONDS = 2.0  # a busy number answers that at once
ANSWER_SECONDS = 5.0  # a number that answers, and talks, before the flow resumes
LEX_TIMEOUT_SECONDS = 5.0


def prompt_of(parameters: Any) -> tuple[str, Any] | None:
    """The prompt the parameters hold (the flow was validated: at most one), as (key, value)."""
    return next(((key, parameters[key]) for key in PROMPT_KEYS if key in parameters), None)


def play(run: ContactRun, key: str, raw: Any) -> str | None:
    """The caller hears the prompt (as text) while the clock runs; None when it resolves to nothing.
    A caller who hangs up part-way heard part of it (`run.caller_gone`)."""
    if key == "Media":
        heard, seconds = f"[audio {json.dumps(raw)}]", RECORDED_PROMPT_SECONDS
    else:
        value = run.resolve(raw)
        if not value:
            return None
        if key == "SSML":
            heard, pauses = render_ssml(value)
            seconds = speaking_seconds(heard, pauses)
        elif key == "PromptId":
            heard, seconds = f"[prompt {value}]", RECORDED_PROMPT_SECONDS
        else:
            heard, seconds = value, speaking_seconds(value)
    if not run.advance(seconds):
        heard += " [the caller hung up during this]"
    run.contact.heard.append(heard)
    return heard


def _play_optional(run: ContactRun, action: Action) -> Branch | None:
    """An input block's prompt, if it has one: a Branch when the action cannot go on after it."""
    prompt = prompt_of(action.parameters)
    if prompt is not None and play(run, *prompt) is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, f"the prompt {prompt[0]} resolves to nothing")
    if run.caller_gone:
        return hung_up("the caller hung up during the prompt")
    return None


async def message(run: ContactRun, action: Action) -> Branch:
    prompt = prompt_of(action.parameters)
    if prompt is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "nothing to play")
    heard = play(run, *prompt)
    if heard is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, f"the prompt {prompt[0]} resolves to nothing")
    return success(action, f"played: {heard}")


async def message_iteratively(run: ContactRun, action: Action) -> Branch:
    """The messages in turn, over and over: until `InterruptFrequencySeconds` passes (the
    MessagesInterrupted result) or the caller hangs up. Every prompt takes time, so one of the two
    comes."""
    messages = [prompt_of(m) for m in action.parameters.get("Messages", [])]
    interval = action.parameters.get("InterruptFrequencySeconds")
    interrupted_at = run.contact.clock + int(interval) if interval is not None else None
    played = 0
    while not run.caller_gone:
        for index, prompt in enumerate(messages):
            if prompt is None or play(run, *prompt) is None:
                return error(action, ErrorType.NO_MATCHING_ERROR, f"Messages[{index}] resolves to nothing")
            played += 1
            if run.caller_gone:
                break
        if interrupted_at is not None and run.contact.clock >= interrupted_at and not run.caller_gone:
            return result(
                action, "MessagesInterrupted", f"interrupted after {interval} s ({played} messages played)"
            )
    return hung_up(f"the caller hung up while messages played ({played})")


async def get_input(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    stopped = _play_optional(run, action)
    if stopped is not None:
        return stopped
    limit = run.seconds(parameters.get("InputTimeLimitSeconds", "5"), 5.0)
    if limit is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "InputTimeLimitSeconds is not a number of seconds")
    entry = run.caller.press()
    run.given(action.identifier, "dtmf", entry)
    if entry is None:
        if not run.advance(limit):
            return hung_up("the caller hung up waiting to press a key")
        return error(action, ErrorType.INPUT_TIME_LIMIT_EXCEEDED, f"no key within {limit:g} s")
    if parameters.get("StoreInput") == "True":
        return _store_input(run, action, entry)
    run.advance(KEY_SECONDS)
    return by_condition(action, entry[0], f"the caller pressed {entry[0]}", run.resolve)


def _store_input(run: ContactRun, action: Action, entry: str) -> Branch:
    """Digits up to the termination sequence or the maximum length, into $.StoredCustomerInput."""
    parameters = action.parameters
    dtmf = parameters.get("DTMFConfiguration", {})
    validation = parameters.get("InputValidation", {})
    terminator = str(dtmf.get("InputTerminationSequence", "#"))
    digits = entry.split(terminator, 1)[0] if terminator and terminator in entry else entry
    maximum = validation.get("CustomValidation", {}).get("MaximumLength")
    if maximum is not None:
        digits = digits[: int(maximum)]
    run.advance(KEY_SECONDS * len(entry))
    if not digits:
        return error(
            action, ErrorType.INPUT_TIME_LIMIT_EXCEEDED, "the caller ended the entry before any digit"
        )
    phone = validation.get("PhoneNumberValidation")
    if isinstance(phone, dict):
        local = phone.get("NumberFormat") == "Local"
        number = as_e164(digits, str(phone.get("CountryCode", ""))) if local else as_e164("+" + digits)
        if number is None:
            where = f" in {phone.get('CountryCode')}" if local else " (E.164: the country code first)"
            return error(action, ErrorType.INVALID_PHONE_NUMBER, f"{digits!r} is not a phone number{where}")
        digits = number
    run.contact.system["StoredCustomerInput"] = digits
    return success(action, f"stored the caller's input ({len(digits)} characters)")


async def lex_bot(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    for name in ("Lex.IntentName", "Lex.IntentConfidence.Score"):  # this bot's answer, not a previous one's
        run.contact.system.pop(name, None)
    run.contact.keyed["Lex.Slots"] = {}
    bot_name = _bot_name(run, parameters)
    bot = run.world.find_lex_bot(bot_name)
    if bot is None:
        run.warn(f"the Lex bot {bot_name or '(none named)'} is not in the local world")
        return error(action, ErrorType.NO_MATCHING_ERROR, f"no Lex bot {bot_name!r} in the local world")
    stopped = _play_optional(run, action)
    if stopped is not None:
        return stopped
    utterance = run.caller.say()
    run.given(action.identifier, "speech", utterance)
    attributes = parameters.get("LexSessionAttributes", {})
    run.contact.keyed["Lex.SessionAttributes"] = {
        key: run.resolve(value) or "" for key, value in attributes.items()
    }
    if utterance is None:
        timeout = parameters.get("LexTimeoutSeconds", {})
        limit = run.seconds(timeout.get("Text"), LEX_TIMEOUT_SECONDS) or LEX_TIMEOUT_SECONDS
        if not run.advance(limit):
            return hung_up("the caller hung up without a word")
        return error(
            action, ErrorType.INPUT_TIME_LIMIT_EXCEEDED, f"the caller said nothing within {limit:g} s"
        )
    run.advance(speaking_seconds(utterance))
    understood = understand(bot, utterance)
    run.contact.system["Lex.IntentName"] = understood.intent
    run.contact.system["Lex.IntentConfidence.Score"] = f"{understood.confidence:.2f}"
    run.contact.keyed["Lex.Slots"] = understood.slots
    reason = f"{bot.name} heard {utterance!r} as {understood.intent}"
    return by_condition(action, understood.intent, reason, run.resolve)


def _bot_name(run: ContactRun, parameters: Any) -> str:
    if "LexV2Bot" in parameters:
        return run.resolve(str(parameters["LexV2Bot"].get("AliasArn", ""))) or ""
    if "LexBot" in parameters:
        return run.resolve(str(parameters["LexBot"].get("Name", ""))) or ""
    return ""


async def disconnect(run: ContactRun, action: Action) -> Branch:
    run.contact.state = ContactState.DISCONNECTED
    return Branch("Success", "disconnected", None)


async def third_party(run: ContactRun, action: Action) -> Branch:
    if "VoiceConnector" in action.parameters:
        return await _to_connector(run, action)
    return _to_phone_number(run, action)


def _to_phone_number(run: ContactRun, action: Action) -> Branch:
    """A PSTN leg: it answers, is busy or does not answer, as the local world says."""
    parameters = action.parameters
    number = run.resolve(str(parameters.get("ThirdPartyPhoneNumber", ""))) or ""
    limit = run.seconds(parameters.get("ThirdPartyConnectionTimeLimitSeconds", "30"), 30.0) or 30.0
    resumes = parameters.get("ContinueFlowExecution", "True") == "True"
    if not is_e164(number):
        return error(action, ErrorType.CALL_FAILED, f"{number!r} is not a phone number in E.164 form")
    outcome = run.world.phone_outcome(number)
    if outcome == "busy":
        run.advance(BUSY_SECONDS)
        return error(action, ErrorType.CALL_FAILED, f"{number} is busy")
    if outcome == "no-answer":
        if not run.advance(limit):
            return hung_up(f"the caller hung up while {number} rang")
        return error(
            action, ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED, f"{number} did not answer within {limit:g} s"
        )
    if outcome == "not-dialable":
        return error(action, ErrorType.CALL_FAILED, f"{number} cannot be dialled")
    if not run.advance(ANSWER_SECONDS):
        return hung_up(f"the caller hung up while talking to {number}")
    if resumes:
        return success(action, f"{number} answered and hung up; the flow resumes")
    run.contact.state = ContactState.TRANSFERRED
    return Branch("Success", f"{number} answered: the caller is joined to it, the flow ends", None)


async def _to_connector(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    connector = parameters.get("VoiceConnector", {})
    limit = parameters.get(
        "ThirdPartyConnectionTimeLimitSeconds", parameters.get("ThirdPartyConnectionTimeoutSeconds")
    )
    if run.transfer is None:
        run.warn("no external voice connector is configured (connect run --gateway)")
        return error(action, ErrorType.NO_MATCHING_ERROR, "no external voice connector is configured")
    to_user = run.resolve(connector.get("ToUser", ""))
    if not to_user:
        return error(
            action, ErrorType.NO_MATCHING_ERROR, f"ToUser {connector.get('ToUser')!r} resolves to nothing"
        )
    request = TransferRequest(
        connector_arn=run.resolve(connector.get("VoiceConnectorArn", "")) or "",
        to_user=to_user,
        from_user=run.resolve(connector.get("FromUser", "")) or "anonymous",
        time_limit_seconds=int(str(limit)),
        user_to_user=run.resolve(connector["UserToUserInformation"])
        if "UserToUserInformation" in connector
        else None,
    )
    started = time.monotonic()
    result = await run.transfer(run.contact, request)
    # A real leg: the time it really took. The caller was talking to the third party meanwhile; a
    # hang-up then is the connector's to report (CALLER_HUNG_UP), not the caller's patience.
    run.contact.clock += time.monotonic() - started
    sip = result.messages  # the transfer's trace, whichever branch it takes
    if result.outcome is TransferOutcome.FAR_END_HUNG_UP:
        if parameters.get("ContinueFlowExecution") == "True":
            return success(action, f"{result.reason}; the flow resumes", sip)
        run.contact.state = ContactState.DISCONNECTED
        return Branch("Success", f"{result.reason}; the flow does not resume", None, sip)
    if result.outcome is TransferOutcome.CALLER_HUNG_UP:
        run.contact.state = ContactState.CALLER_HUNG_UP
        return Branch("CallerHungUp", result.reason, None, sip)
    kind = (
        ErrorType.CALL_FAILED
        if result.outcome is TransferOutcome.FAILED
        else ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED
    )
    return error(action, kind, result.reason, sip)
