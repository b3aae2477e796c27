"""The twin's typed records and their one JSON form: what `call --json` prints, `up` answers and the
databases keep reads back into the same record."""

from __future__ import annotations

import json

from kore_connect.twin.connect.contact import Contact, ContactState, Step
from kore_connect.twin.kore.interactions import Interaction, MediaCount, NodeResult
from kore_connect.twin.local.report import CallReport, Handback, call_report
from kore_connect.twin.sip.trace import TracedMessage

METADATA = {"x_metadata": "Hello from Kore", "kore-instanceSessionId": "6744a1f2c0ffee0011223344"}


def a_contact() -> Contact:
    contact = Contact.inbound(customer="+14155550123", system="+18005550100", instance_arn="arn:local")
    contact.attributes = {"customData": json.dumps(METADATA)}
    contact.queue_arn = "arn:local/queue/q"
    contact.heard = ["Transferring you to our assistant"]
    contact.state = ContactState.QUEUED
    invite = TracedMessage("sent", "INVITE sip:+12065551118@127.0.0.1 SIP/2.0", 0.0, "INVITE ...\r\n\r\n")
    ok = TracedMessage("received", "SIP/2.0 200 OK", 0.0123, "SIP/2.0 200 OK\r\n\r\n")
    contact.trace = [
        Step("t", "TransferParticipantToThirdParty", "Success", "bye", (invite, ok), at=10.0),
        Step("u", "UpdateContactAttributes", "Success", "set", at=10.25),
    ]
    return contact


def an_interaction(contact_id: str) -> Interaction:
    return Interaction(
        call_id="call-1",
        contact_id=contact_id,
        did="+12065551118",
        source="127.0.0.1:5061",
        started_at=1_700_000_000.5,
        sip=[TracedMessage("received", "INVITE sip:+12065551118@127.0.0.1 SIP/2.0", 1_700_000_000.5)],
        nodes=[
            NodeResult("Start", "script", "ok", "ran"),
            NodeResult(
                "Store", "service", "ok", "stored", http_status=200, attempts=1, request="POST http://x"
            ),
        ],
        service_status=200,
        instance_session_id=METADATA["kore-instanceSessionId"],
        rtp=MediaCount(port=40000, packets=50, octets=8000, other=1, source="127.0.0.1:7078"),
        ended="agent transfer (SIP BYE, answered 200)",
        ended_at=1_700_000_003.0,
    )


def test_a_call_report_reads_back_from_its_json_as_the_same_record() -> None:
    contact = a_contact()
    report = call_report(
        contact,
        did="+12065551118",
        interaction=an_interaction(contact.contact_id),
        stored=METADATA,
        started=9.5,
    )
    # through text, as the call log, `up`'s answer and `call --json` carry it
    again = CallReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == report
    assert again.metadata.handed_back and again.contact.ended is ContactState.QUEUED
    assert (
        again.timings.setup_ms == 12.3
        and again.timings.handoff_ms == 250.0
        and again.timings.total_ms == 750.0
    )


def test_the_json_form_keeps_the_names_call_json_has_always_printed() -> None:
    contact = a_contact()
    document = call_report(contact, did="+1", interaction=None, stored=None, started=9.5).to_json()
    assert list(document) == [
        "contactId", "initialContactId", "customer", "ended", "queue", "attributes", "heard",
        "actions", "sip",
        # added with the whole flow language: how it ended, its clock, flow attributes, what the
        # caller gave, recorded settings, and what the local world lacked
        "endedBecause", "seconds", "flowAttributes", "inputs", "settings", "warnings",
        "did", "kore", "metadata", "timings",
    ]  # fmt: skip
    assert document["actions"][0] == {
        "identifier": "t",
        "type": "TransferParticipantToThirdParty",
        "branch": "Success",
        "reason": "bye",
        "clock": 0.0,
    }
    assert document["sip"][0][1] == {
        "direction": "received",
        "firstLine": "SIP/2.0 200 OK",
        "at": 0.0123,
        "message": "SIP/2.0 200 OK\r\n\r\n",
    }
    assert document["metadata"] == {"stored": None, "customData": METADATA}
    assert document["timings"] == {"setupMs": 12.3, "handoffMs": 250.0, "totalMs": 750.0}
    kore = an_interaction("c").to_json()
    assert kore["rtp"] == {"port": 40000, "packets": 50, "octets": 8000, "other": 1, "from": "127.0.0.1:7078"}
    assert kore["nodes"][1]["httpStatus"] == 200 and kore["serviceStatus"] == 200


def test_a_failing_store_is_said_in_the_report_and_its_json() -> None:
    report = CallReport.from_json(
        {
            **call_report(a_contact(), did="+1", interaction=None, stored=None, started=0.0).to_json(),
            "metadata": {"stored": None, "customData": None, "storeError": "throttled"},
        }
    )
    assert report.metadata == Handback(None, None, "throttled")
    assert report.to_json()["metadata"]["storeError"] == "throttled"


# A call log row as kore-connect wrote it before the typed records (2026-12-02): a `kore-connect up`
# home keeps its calls.db from one version to the next, and the dashboard must still show them.
EARLIER_REPORT = {
    "contactId": "c-1",
    "initialContactId": "c-1",
    "customer": "+14155550123",
    "ended": "queued",
    "queue": "arn:local/queue/q",
    "attributes": {"customData": "{}"},
    "heard": [],
    "actions": [
        {"identifier": "t", "type": "TransferParticipantToThirdParty", "branch": "Success", "reason": "r"}
    ],
    "sip": [[{"direction": "sent", "firstLine": "INVITE sip:+1@h SIP/2.0", "at": 0.0, "message": "INVITE"}]],
    "did": "+12065551118",
    "kore": {
        "callId": "call-1",
        "did": "+12065551118",
        "source": "127.0.0.1:5061",
        "nodes": [
            {
                "node": "Store",
                "kind": "service",
                "status": "ok",
                "detail": "d",
                "httpStatus": 200,
                "request": None,
            }
        ],
        "serviceStatus": 200,
        "instanceSessionId": "6744a1f2c0ffee0011223344",
        "ended": "agent transfer (SIP BYE, answered 200)",
        "sip": [{"direction": "received", "firstLine": "INVITE sip:+1@h SIP/2.0", "at": 1.0}],
        "rtp": {"port": 40000, "packets": 0, "octets": 0, "other": 0, "from": None},
    },
    "metadata": {"stored": {}, "customData": {}},
    "timings": {"setupMs": None, "handoffMs": None, "totalMs": 1.0},
}


def test_a_report_written_before_the_typed_records_still_reads() -> None:
    report = CallReport.from_json(EARLIER_REPORT)
    assert report.kore is not None and report.kore.started_at is None and report.kore.contact_id is None
    assert report.kore.nodes[0].http_status == 200 and report.kore.nodes[0].attempts == 0
    assert report.contact.transfers[0][0].text == "INVITE"


def test_a_transfer_that_sent_nothing_still_counts_as_the_contacts_transfer() -> None:
    contact = a_contact()
    contact.trace.insert(
        0, Step("x", "TransferParticipantToThirdParty", "CallFailed", "no gateway", (), at=9.9)
    )
    report = call_report(contact, did="+1", interaction=None, stored=None, started=9.5)
    assert report.to_json()["sip"][0] == []  # as before: one list per transfer, empty or not
    assert report.timings.setup_ms is None  # the first transfer is the one that sent nothing
