"""Participant actions: what the caller hears, presses and says, and where the call goes."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from kore_connect.contactflow.language import ErrorType
from kore_connect.contactflow.model import Action
from kore_connect.twin.connect.branch import Branch, by_condition, condition_target, error, success
from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest
from kore_connect.twin.connect.contact import ContactState
from kore_connect.twin.connect.contact_run import ContactRun
from kore_connect.twin.connect.speech import RECORDED_PROMPT_SECONDS, render_ssml, speaking_seconds

PROMPT_KEYS = ("Text", "SSML", "PromptId", "Media")
KEY_SECONDS = 0.5  # a caller's key press, on the contact's clock
PHONE_RING_SECONDS = 20.0  # how long a PSTN number that does not answer is let ring (within the limit)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def play(run: ContactRun, parameters: dict[str, Any] | Any) -> str | None:
    """Play the prompt the parameters hold (if any): the caller hears it and the clock advances.
    What was played, as text; None when the prompt resolves to nothing."""
    for key in PROMPT_KEYS:
        if key not in parameters:
            continue
        raw = parameters[key]
        if key == "Media" or not isinstance(raw, str):
            heard, seconds = f"[audio {json.dumps(raw)}]", RECORDED_PROMPT_SECONDS
        else:
            value = run.resolve(raw)
            if value is None or value == "":
                return None
            if key == "SSML":
                heard, pauses = render_ssml(value)
                seconds = speaking_seconds(heard, pauses)
            elif key == "PromptId":
                heard, seconds = f"[prompt {value}]", RECORDED_PROMPT_SECONDS
            else:
                heard, seconds = value, speaking_seconds(value)
        run.contact.heard.append(heard)
        run.advance(seconds)
        return heard
    return ""


async def message(run: ContactRun, action: Action) -> Branch:
    heard = play(run, action.parameters)
    if heard is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "the prompt resolves to nothing")
    if heard == "":
        return error(action, ErrorType.NO_MATCHING_ERROR, "nothing to play")
    return success(action, f"played: {heard}")


async def message_iteratively(run: ContactRun, action: Action) -> Branch:
    """The messages in turn, over and over: until `InterruptFrequencySeconds` passes (the
    MessagesInterrupted result) or the caller hangs up."""
    messages = [m for m in action.parameters.get("Messages", []) if isinstance(m, dict)]
    interrupt = action.parameters.get("InterruptFrequencySeconds")
    interrupted_at = target = None
    if interrupt is not None and str(interrupt).isdigit():
        target = condition_target(action, "MessagesInterrupted")
        interrupted_at = run.contact.clock + int(str(interrupt))
    played = 0
    while True:
        for index, message_ in enumerate(messages):
            if play(run, message_) is None:
                return error(action, ErrorType.NO_MATCHING_ERROR, f"Messages[{index}] resolves to nothing")
            played += 1
        if played == 0:
            return error(action, ErrorType.NO_MATCHING_ERROR, "no message to play")
        if interrupted_at is not None and run.contact.clock >= interrupted_at:
            reason = f"interrupted after {interrupt} s ({played} messages played)"
            return Branch("Condition: Equals MessagesInterrupted", reason, target or action.next_action)
        if run.contact.clock >= run.caller.hang_up_after:
            return Branch("CallerHungUp", f"the caller hung up while messages played ({played})", None)


async def get_input(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    if play(run, parameters) is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "the prompt resolves to nothing")
    limit = _seconds(run, parameters.get("InputTimeLimitSeconds", "5"), 5)
    entry = run.caller.press()
    run.given(action.identifier, "dtmf", entry)
    if entry is None:
        run.advance(limit)
        return error(action, ErrorType.INPUT_TIME_LIMIT_EXCEEDED, f"no key within {limit:g} s")
    if parameters.get("StoreInput") == "True":
        return _store_input(run, action, entry)
    run.advance(KEY_SECONDS)
    return by_condition(action, entry[0], f"the caller pressed {entry[0]}", run.resolve)


def _store_input(run: ContactRun, action: Action, entry: str) -> Branch:
    """Digits up to the termination sequence or the maximum length, into $.StoredCustomerInput."""
    parameters = action.parameters
    dtmf = (
        parameters.get("DTMFConfiguration", {})
        if isinstance(parameters.get("DTMFConfiguration"), dict)
        else {}
    )
    validation = (
        parameters.get("InputValidation", {}) if isinstance(parameters.get("InputValidation"), dict) else {}
    )
    terminator = str(dtmf.get("InputTerminationSequence", "#"))
    digits = entry.split(terminator, 1)[0] if terminator and terminator in entry else entry
    custom = validation.get("CustomValidation", {})
    maximum = str(custom.get("MaximumLength", "")) if isinstance(custom, dict) else ""
    if maximum.isdigit():
        digits = digits[: int(maximum)]
    run.advance(KEY_SECONDS * len(entry))
    phone = validation.get("PhoneNumberValidation")
    if isinstance(phone, dict):
        number = (
            digits if phone.get("NumberFormat") == "E164" else _local_number(digits, phone.get("CountryCode"))
        )
        if not _E164.fullmatch(number):
            return error(action, ErrorType.INVALID_PHONE_NUMBER, f"{digits!r} is not a valid phone number")
        digits = number
    run.contact.system["StoredCustomerInput"] = digits
    return success(action, f"stored the caller's input ({len(digits)} digits)")


def _local_number(digits: str, country: Any) -> str:
    """A local number as E.164, for the countries whose calling code is known here."""
    codes = {"US": "1", "CA": "1", "GB": "44", "AU": "61", "DE": "49", "FR": "33", "IN": "91", "JP": "81"}
    code = codes.get(str(country), "")
    return f"+{code}{digits.lstrip('0')}" if code else digits


async def lex_bot(run: ContactRun, action: Action) -> Branch:
    parameters = action.parameters
    bot_name = _bot_name(run, parameters)
    bot = run.world.find_lex_bot(bot_name)
    if bot is None:
        run.warn(f"the Lex bot {bot_name or '(none named)'} is not in the local world")
        return error(action, ErrorType.NO_MATCHING_ERROR, f"no Lex bot {bot_name!r} in the local world")
    if play(run, parameters) is None:
        return error(action, ErrorType.NO_MATCHING_ERROR, "the prompt resolves to nothing")
    utterance = run.caller.say()
    run.given(action.identifier, "speech", utterance)
    session = {
        key: run.resolve(value) or ""
        for key, value in (parameters.get("LexSessionAttributes") or {}).items()
        if isinstance(value, str)
    }
    run.contact.keyed["Lex.SessionAttributes"] = session
    if utterance is None:
        limit = _lex_timeout(parameters)
        run.advance(limit)
        return error(
            action, ErrorType.INPUT_TIME_LIMIT_EXCEEDED, f"the caller said nothing within {limit:g} s"
        )
    run.advance(speaking_seconds(utterance))
    intent, slots, score = _understand(bot, utterance)
    run.contact.system["Lex.IntentName"] = intent
    run.contact.system["Lex.IntentConfidence.Score"] = f"{score:.2f}"
    run.contact.keyed["Lex.Slots"] = slots
    return by_condition(action, intent, f"{bot.name} heard {utterance!r} as {intent}", run.resolve)


def _bot_name(run: ContactRun, parameters: Any) -> str:
    v2 = parameters.get("LexV2Bot")
    if isinstance(v2, dict):
        return run.resolve(str(v2.get("AliasArn", ""))) or ""
    v1 = parameters.get("LexBot")
    if isinstance(v1, dict):
        return run.resolve(str(v1.get("Name", ""))) or ""
    return ""


def _lex_timeout(parameters: Any) -> float:
    timeout = parameters.get("LexTimeoutSeconds")
    text = timeout.get("Text") if isinstance(timeout, dict) else timeout
    return float(text) if isinstance(text, str) and text.isdigit() else 5.0


def _understand(bot: Any, utterance: str) -> tuple[str, dict[str, str], float]:
    """The intent whose sample utterance is nearest to what the caller said (words in common), its
    slots filled from `{Slot}` placeholders; FallbackIntent when no word matches."""
    said = _words(utterance)
    best, best_score = "FallbackIntent", 0.0
    for intent in bot.intents:
        for sample in intent.utterances:
            slots = _slots(sample, utterance, bot.slots)
            if slots is not None:
                return intent.name, slots, 1.0
            words = _words(re.sub(r"\{[^}]+\}", " ", sample))
            score = len(said & words) / len(said | words) if said | words else 0.0
            if score > best_score:
                best, best_score = intent.name, score
    return best, {}, best_score


def _slots(sample: str, utterance: str, allowed: Any) -> dict[str, str] | None:
    """The slot values when `utterance` is `sample` with its `{Slot}`s filled, else None."""
    names = re.findall(r"\{([^}]+)\}", sample)
    pattern = re.escape(" ".join(sample.lower().split()))
    for name in names:
        pattern = pattern.replace(re.escape("{" + name.lower() + "}"), f"(?P<{_group(name)}>.+?)")
    found = re.fullmatch(pattern, " ".join(utterance.lower().strip(" .!?").split()))
    if not found:
        return None
    slots = {name: found[_group(name)] for name in names}
    for name, value in slots.items():
        if allowed.get(name) and value not in [v.lower() for v in allowed[name]]:
            return None
    return slots


def _group(name: str) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


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
    limit = _seconds(run, parameters.get("ThirdPartyConnectionTimeLimitSeconds", "30"), 30)
    resumes = parameters.get("ContinueFlowExecution", "True") == "True"
    if not _E164.fullmatch(number):
        return error(action, ErrorType.CALL_FAILED, f"{number!r} is not a phone number in E.164 form")
    outcome = run.world.phone_outcome(number)
    if outcome == "busy":
        run.advance(2.0)
        return error(action, ErrorType.CALL_FAILED, f"{number} is busy")
    if outcome == "no-answer":
        run.advance(limit)
        return error(
            action, ErrorType.CONNECTION_TIME_LIMIT_EXCEEDED, f"{number} did not answer within {limit:g} s"
        )
    run.advance(5.0)
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
    run.advance(time.monotonic() - started)  # a real leg: the time it really took
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


def _seconds(run: ContactRun, raw: Any, default: float) -> float:
    value = run.resolve(str(raw)) if isinstance(raw, str) else raw
    try:
        return max(0.0, float(value)) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
