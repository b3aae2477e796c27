"""Messages cut from a TCP stream (`twin/sip/framing.py`) and the log a peer cannot flood
(`twin/sip/quiet_log.py`)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_connect.twin.sip.framing import FramingError, Keepalive, StreamFramer
from kore_connect.twin.sip.quiet_log import QuietLog

ONE = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-1\r\nContent-Length: 5\r\n\r\nhello"
TWO = b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n"


def messages(framer: StreamFramer) -> list[bytes | Keepalive]:
    out: list[bytes | Keepalive] = []
    while (item := framer.next_message()) is not None:
        out.append(item)
    return out


def test_messages_are_cut_where_their_content_length_says() -> None:
    framer = StreamFramer()
    framer.feed(ONE + TWO)
    assert messages(framer) == [ONE, TWO]
    assert framer.pending == 0


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_however_the_bytes_arrive_the_same_messages_come_out(cuts: list[int]) -> None:
    stream, framer, out, at = b"\r\n\r\n" + ONE + TWO + ONE, StreamFramer(), [], 0
    for size in [*cuts, len(stream)]:
        framer.feed(stream[at : at + size])
        at += size
        out.extend(messages(framer))
    assert out == [Keepalive(), ONE, TWO, ONE]


def test_content_length_is_read_wherever_it_stands_among_the_headers() -> None:
    framer = StreamFramer()
    first = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\nVia: SIP/2.0/TCP h\r\n\r\nabc"
    framer.feed(first + TWO)
    assert messages(framer) == [first, TWO]


def test_a_ping_between_messages_is_a_keepalive_and_stray_crlfs_are_skipped() -> None:
    framer = StreamFramer()
    framer.feed(ONE + b"\r\n\r\n" + b"\r\n" + TWO)
    assert messages(framer) == [ONE, Keepalive(), TWO]


def test_a_message_without_content_length_has_no_body_and_the_stream_stays_in_step() -> None:
    framer = StreamFramer()
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n" + TWO)
    assert messages(framer) == [b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n", TWO]


def test_content_lengths_that_disagree_cannot_be_framed() -> None:
    framer = StreamFramer()
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab")
    with pytest.raises(FramingError) as error:
        framer.next_message()
    assert (error.value.status, error.value.reason) == (400, "Content-Lengths Disagree")
    assert error.value.head.startswith(b"OPTIONS")


def test_a_head_that_never_ends_is_too_large_once_past_the_limit() -> None:
    framer = StreamFramer(max_bytes=100)
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nSubject: " + b"x" * 50)
    assert framer.next_message() is None  # still under the limit: wait
    framer.feed(b"x" * 60)
    with pytest.raises(FramingError) as error:
        framer.next_message()
    assert error.value.status == 513


def test_a_body_that_would_pass_the_limit_is_refused_before_it_arrives() -> None:
    framer = StreamFramer(max_bytes=100)
    framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000000\r\n\r\n")
    with pytest.raises(FramingError) as error:
        framer.next_message()
    assert error.value.status == 513


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_from_one_source_is_cut_to_a_few_lines_and_the_rest_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = QuietLog(logging.getLogger("test.quiet"), per_second=2.0, burst=5, clock=clock)
    with caplog.at_level(logging.WARNING, "test.quiet"):
        written = [log.warning("127.0.0.1", "dropped a message from %s", "127.0.0.1") for _ in range(1000)]
        assert sum(written) == 5
        log.warning("192.0.2.9", "dropped a message from %s", "192.0.2.9")  # another source has its own
        clock.now = 1.0  # two lines' worth later
        log.warning("127.0.0.1", "dropped a message from %s", "127.0.0.1")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 7
    assert lines[-1] == "dropped a message from 127.0.0.1 (and 995 more from 127.0.0.1 left out of the log)"
    assert lines[5] == "dropped a message from 192.0.2.9"
