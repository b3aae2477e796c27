"""A peer's bytes in a log line are escaped: no forged lines, no terminal escape sequences (issue 19)."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kore_connect.log_text import EscapingFormatter, printable
from tests.peers import free_port

ESCAPES = "\x1b[2J\x1b]0;pwned\x07"


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest() -> None:
    assert printable(f"a{ESCAPES}\r\nb\u202ec") == "a\\x1b[2J\\x1b]0;pwned\\x07\\r\\nb\\u202ec"
    assert printable("Zoë \\x41 'quoted'") == "Zoë \\x41 'quoted'"
    assert printable(printable("\x1b")) == "\\x1b"  # escaping twice changes nothing
    assert printable("x" * 500) == "x" * 200 + "..."


def test_the_formatter_escapes_messages_and_tracebacks_from_any_library() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(EscapingFormatter("%(message)s"))
    logger = logging.getLogger("test-log-text")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError(f"Malformed request line: garbage{ESCAPES}\nforged")
    except ValueError:
        logger.exception("Failed to parse %s", f"from{ESCAPES}")
    finally:
        logger.removeHandler(handler)
    text = buffer.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "Failed to parse from\\x1b[2J" in text
    assert "ValueError: Malformed request line: garbage\\x1b[2J\\x1b]0;pwned\\x07\\nforged" in text


def test_serve_gateways_log_holds_no_control_character_a_peer_sent(tmp_path: Path) -> None:
    # GIVEN the gateway as `up` runs it, its stderr being its log
    port = free_port()
    (tmp_path / "gateway.yaml").write_text(
        f"listen: {{port: {port}, transports: [udp]}}\n"
        "metadata: {url: 'http://127.0.0.1:9/prod/kore-metadata'}\n"
        f"interactions: {tmp_path / 'interactions.db'}\n"
    )
    log = tmp_path / "gateway.log"
    command = [
        str(Path(sys.executable).parent / "kore-connect"),
        "serve",
        "gateway",
        "--config",
        "gateway.yaml",
    ]
    env = {**os.environ, "KORE_CONNECT_API_TOKEN": "t" * 20}
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=output)
    try:
        _wait_for(log, b"Ctrl-C stops it")
        # WHEN peers send messages whose method, Call-ID, headers, body and request line carry escapes
        via = "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK"
        tail = "From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nMax-Forwards: 70\r\n"
        hostile = [
            f"INV{ESCAPES}ITE sip:+1@127.0.0.1 SIP/2.0\r\n{via}1\r\n{tail}Call-ID: a{ESCAPES}\r\n"
            "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            f"OPTIONS sip:+1@127.0.0.1 SIP/2.0\r\n{via}2\r\n{tail}Call-ID: b\r\nCSeq: 1 OPTIONS\r\n"
            f"Max-Forwards: x{ESCAPES}\r\nContent-Length: 0\r\n\r\n",
            f"OPTIONS sip:+1@127.0.0.1 SIP/2.0\r\nVia: garbage{ESCAPES}\r\nCall-ID: c\r\n\r\n",
            f"garbage {ESCAPES}\nrefused a FORGED line\r\n\r\n",
        ]
        marker = (  # a well-formed request the rules refuse, whose method the log names
            f"ENDMARKER sip:+1@127.0.0.1 SIP/2.0\r\n{via}3\r\n{tail}Call-ID: d\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            for message in hostile:
                peer.sendto(message.encode(), ("127.0.0.1", port))
            time.sleep(1.5)  # the log's budget for this source refills (a few lines a second)
            peer.sendto(marker.encode(), ("127.0.0.1", port))
        _wait_for(log, b"refused a ENDMARKER")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    # THEN its log holds no control character but line ends, and no line a peer wrote
    written = log.read_bytes()
    assert not {byte for byte in written if byte < 0x20 and byte != 0x0A}
    assert b"\x7f" not in written and b"\x1b" not in written
    # each hostile message is a line of its own, naming the fault and not echoing the peer's bytes
    assert b"Bad Request-Line" in written and b"Bad Character In Header" in written
    assert b"[2J" not in written and b"pwned" not in written
    assert not any(line.startswith(b"refused a FORGED") for line in written.splitlines())


def _wait_for(log: Path, marker: bytes, seconds: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while marker not in log.read_bytes():
        assert time.monotonic() < deadline, log.read_bytes().decode(errors="replace")
        time.sleep(0.05)
