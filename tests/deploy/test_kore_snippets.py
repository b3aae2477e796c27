"""The shipped Kore snippets, run unchanged in V8 with Kore's objects faked, on Connect's real INVITE."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from kore_connect.korebot import snippets
from kore_connect.korebot.snippets import Snippet
from tests.conftest import CONTACT_ID, EVENTS, REPO
from tests.kore_fakes import FakeKoreSession, SipHeaders, header_value, sip_headers

SNIPPETS_DIR = REPO / "src" / "kore_connect" / "korebot" / "snippets"
START_FLOW = snippets.load(Snippet.START_FLOW)
AGENT_TRANSFER = snippets.load(Snippet.AGENT_TRANSFER_SCRIPT)
CONTACT_ID_HEADER = "X-Amzn-ConnectContactId"


@pytest.fixture
def invite_headers() -> SipHeaders:
    return sip_headers((EVENTS / "connect-invite.sip").read_text(encoding="utf-8"))


def without_contact_id(headers: SipHeaders) -> SipHeaders:
    return [h for h in headers if h["name"] != CONTACT_ID_HEADER]


def with_contact_id(headers: SipHeaders, name: str, value: str) -> SipHeaders:
    return [*without_contact_id(headers), {"name": name, "value": value}]


def test_the_contact_id_of_connects_invite_reaches_bot_user_session(invite_headers: SipHeaders) -> None:
    # GIVEN a call whose INVITE is Amazon Connect's
    session = FakeKoreSession.for_invite(invite_headers)

    # WHEN the Start Flow script runs, then the Agent Transfer dialog's Script node
    session.run(START_FLOW)
    session.run(AGENT_TRANSFER)

    # THEN the bot holds the INVITE's contact ID, ready for the Service node's URL
    assert header_value(invite_headers, CONTACT_ID_HEADER) == CONTACT_ID
    assert session.bot_user_session["ContactId"] == CONTACT_ID
    assert session.bot_user_session["ContactIdStatus"] == "found"


def test_the_start_flow_keeps_every_sip_header_in_the_call_flow_and_the_user_session(
    invite_headers: SipHeaders,
) -> None:
    # GIVEN Connect's INVITE
    session = FakeKoreSession.for_invite(invite_headers)

    # WHEN the Start Flow script runs
    session.run(START_FLOW)

    # THEN the headers are kept as they came, where the bot reads them back
    assert session.user_session["sipHeaders"] == invite_headers
    assert session.call_flow_variables["sipHeaders"] == invite_headers
    assert session.debug_log == [f"kore-connect start flow: kept {len(invite_headers)} SIP headers"]


def test_the_start_flow_without_sip_headers_logs_and_lets_the_call_go_on() -> None:
    # GIVEN a call whose channel carries no SIP headers (not a SIP call, or a gateway change)
    session = FakeKoreSession({"callId": "8b1d4e2a"})

    # WHEN the Start Flow script runs, then the Agent Transfer Script node
    session.run(START_FLOW)
    session.run(AGENT_TRANSFER)

    # THEN nothing threw, nothing was kept, and the dialog is told why it has no contact ID
    assert "sipHeaders" not in session.user_session
    assert session.bot_user_session == {"ContactId": "", "ContactIdStatus": "no_sip_headers"}
    assert "no SIP headers" in session.debug_log[0]


def test_a_call_without_any_channel_does_not_break_the_start_flow() -> None:
    # GIVEN a session whose BotUserSession has no channels at all
    session = FakeKoreSession()

    # WHEN the Start Flow script runs
    session.run(START_FLOW)

    # THEN it only logs
    assert session.user_session == {}
    assert len(session.debug_log) == 1


def test_a_missing_contact_id_header_is_reported_for_the_dialogs_error_path(
    invite_headers: SipHeaders,
) -> None:
    # GIVEN an INVITE without X-Amzn-ConnectContactId (a call that did not come from Connect)
    session = FakeKoreSession()
    session.put_in_user_session("sipHeaders", without_contact_id(invite_headers))

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN the status says so, ContactId is empty, and the log shows it
    assert session.bot_user_session == {"ContactId": "", "ContactIdStatus": "missing"}
    assert session.debug_log == [
        "kore-connect agent transfer: ContactIdStatus=missing: "
        f"no X-Amzn-ConnectContactId among {len(invite_headers) - 1} SIP headers"
    ]


def test_a_contact_id_left_from_earlier_in_the_session_is_cleared_when_the_header_is_missing(
    invite_headers: SipHeaders,
) -> None:
    # GIVEN a session that already holds a ContactId, and headers without one
    session = FakeKoreSession()
    session.put_in_bot_user_session("ContactId", "0b8a4e0c-0000-4000-8000-000000000001")
    session.put_in_user_session("sipHeaders", without_contact_id(invite_headers))

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN the stale ID cannot send this caller's metadata to another contact
    assert session.bot_user_session["ContactId"] == ""


@pytest.mark.parametrize(
    "name", ["x-amzn-connectcontactid", "X-AMZN-CONNECTCONTACTID", " X-Amzn-ConnectContactId "]
)
def test_the_header_name_is_matched_case_insensitively(invite_headers: SipHeaders, name: str) -> None:
    # GIVEN a gateway that hands over the header name in another case (SIP names are case-insensitive)
    session = FakeKoreSession()
    session.put_in_user_session("sipHeaders", with_contact_id(invite_headers, name, CONTACT_ID))

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN the contact ID is found all the same
    assert session.bot_user_session == {"ContactId": CONTACT_ID, "ContactIdStatus": "found"}


def test_an_upper_case_contact_id_is_stored_in_the_stores_lower_case_form(invite_headers: SipHeaders) -> None:
    # GIVEN the contact ID in upper case, with stray whitespace
    session = FakeKoreSession()
    headers = with_contact_id(invite_headers, CONTACT_ID_HEADER, f" {CONTACT_ID.upper()} ")
    session.put_in_user_session("sipHeaders", headers)

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN ContactId is the canonical form the metadata store keys records by
    assert session.bot_user_session["ContactId"] == CONTACT_ID


@pytest.mark.parametrize(
    "value",
    ["not-a-uuid", "", f"{CONTACT_ID}0", CONTACT_ID.replace("-", ""), f"{CONTACT_ID};tag=1", "Ada Lovelace"],
)
def test_a_value_that_is_not_a_uuid_is_refused_and_not_logged(invite_headers: SipHeaders, value: str) -> None:
    # GIVEN an X-Amzn-ConnectContactId that is not a UUID
    session = FakeKoreSession()
    session.put_in_user_session("sipHeaders", with_contact_id(invite_headers, CONTACT_ID_HEADER, value))

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN it is refused, and the log gives its length, never the value
    assert session.bot_user_session == {"ContactId": "", "ContactIdStatus": "invalid"}
    assert session.debug_log == [
        "kore-connect agent transfer: ContactIdStatus=invalid: "
        f"X-Amzn-ConnectContactId is not a UUID ({len(value.strip())} characters)"
    ]
    if value:
        assert value not in session.debug_log[0]


def test_malformed_header_entries_are_skipped(invite_headers: SipHeaders) -> None:
    # GIVEN headers mixed with entries that are not {name, value} objects
    session = FakeKoreSession()
    session.put_in_user_session("sipHeaders", [None, 42, {"value": "x"}, {"name": 7}, *invite_headers])

    # WHEN the Agent Transfer Script node runs
    session.run(AGENT_TRANSFER)

    # THEN the contact ID is still found
    assert session.bot_user_session["ContactIdStatus"] == "found"


def test_the_logs_of_a_whole_call_hold_no_other_header_value(invite_headers: SipHeaders) -> None:
    # GIVEN Connect's INVITE, whose headers hold the caller's number and the account's ARNs
    session = FakeKoreSession.for_invite(invite_headers)

    # WHEN both snippets run
    session.run(START_FLOW)
    session.run(AGENT_TRANSFER)

    # THEN the only header value in the logs is the contact ID, a correlation key
    logs = "\n".join(session.debug_log)
    for header in invite_headers:
        if header["value"] != CONTACT_ID:
            assert header["value"] not in logs, header["name"]
    assert f"ContactId {CONTACT_ID}" in logs


def _code_only(source: str) -> str:
    """The source without comments and string literals, where ES2015+ syntax would show."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    source = re.sub(r"//[^\n]*", "", source)
    return re.sub(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", "''", source)


@pytest.mark.parametrize("snippet", list(Snippet))
def test_each_snippet_is_a_plain_es5_script(snippet: Snippet) -> None:
    # GIVEN a snippet's code, comments and strings aside
    code = _code_only(snippets.load(snippet))

    # THEN it uses nothing newer than ES5 and is not a module (Kore's script nodes run plain scripts)
    newer = [
        r"=>", r"`", r"\blet\b", r"\bconst\b", r"\bclass\b", r"\bimport\b", r"\bexport\b", r"\.\.\.",
        r"\basync\b", r"\bawait\b", r"\bof\b", r"\.find\(", r"\.findIndex\(", r"\.includes\(",
        r"\.startsWith\(", r"\.endsWith\(", r"\brequire\(",
    ]  # fmt: skip
    found = [pattern for pattern in newer if re.search(pattern, code)]
    assert found == []
    # and it does its work inside a function, so no top-level `return` and no global left behind
    assert code.lstrip().startswith("(function () {") and code.rstrip().endswith("})();")


def test_load_gives_the_shipped_file_byte_for_byte() -> None:
    for snippet in Snippet:
        assert snippets.load(snippet).encode("utf-8") == (SNIPPETS_DIR / f"{snippet.value}.js").read_bytes()
    assert snippets.load("start_flow") == START_FLOW


def test_load_of_an_unknown_snippet_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="agent_transfer_script") as raised:
        snippets.load("start-flow")
    assert "start-flow" in str(raised.value)


def test_the_snippet_files_are_all_known() -> None:
    assert sorted(p.stem for p in Path(SNIPPETS_DIR).glob("*.js")) == sorted(s.value for s in Snippet)


# ---------------------------------------------------------------- the caller-value example


@pytest.mark.parametrize(
    "note",
    [
        'hi","isVip":"true","agentNote":"caller is verified - skip ID&V',
        'back\\slash and "quotes" and\nnew lines \u2028 é',
        "../../admin/delete?all=1&x=#y",
    ],
)
def test_the_caller_value_example_makes_a_note_safe_even_where_kore_pastes_it_raw(
    invite_headers: SipHeaders, note: str
) -> None:
    from kore_connect.twin.kore import templates

    # GIVEN a caller whose SIP header is written to break out of where it is pasted
    session = FakeKoreSession.for_invite([*invite_headers, {"name": "X-Caller-Note", "value": note}])
    session.run("BotUserSession.put('accountNumber', '12345678\\\"}');")
    session.run(START_FLOW)
    # WHEN the example script has run
    session.run(snippets.load(Snippet.CALLER_VALUE_SCRIPT))
    values = templates.lookup(lambda path: session.bot_user_session[path.rsplit(".", 1)[1]], {})
    # THEN the body, pasted raw as Kore pastes it, holds exactly its keys and the note as written
    body = '{"note": "{{context.session.BotUserSession.callerNoteJson}}", "k": "v"}'
    raw = templates.render_body(body, values, "text/plain").text
    assert json.loads(raw) == {"note": note, "k": "v"}
    # AND the URL keeps its path and has no query but its own
    url = "https://crm.example/notes/{{context.session.BotUserSession.callerNoteUrl}}?v=1"
    raw_url = templates.render_body(url, values, "text/plain").text
    parts = urlsplit(raw_url)
    assert parts.path.count("/") == 2 and parts.query == "v=1" and parts.fragment == ""
    assert unquote(parts.path.rsplit("/", 1)[1]) == note
    # AND an identifier that is not one is dropped
    assert session.bot_user_session["accountNumber"] == ""
