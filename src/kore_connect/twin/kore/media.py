"""A call's media at the gateway: a UDP port of its own, announced in the SDP answer, that takes the
caller's RTP (RFC 3550) and counts it.

The twin plays no prompts and records no audio; but a softphone's stream must land on a port that
is open, as Kore's is: a closed one answers with ICMP errors, which some phones take for the call
failing. The counts go into the call's interaction record, as proof that media flowed.
"""

from __future__ import annotations

import asyncio
import socket

from kore_connect.twin.kore.interactions import MediaCount

RTP_VERSION = 2
MAX_PACKET_BYTES = 2048  # RTP over Ethernet: far less; a larger datagram is cut and counted as not RTP


class RtpSink:
    """Reads whatever arrives on its port without blocking the event loop, and counts it."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._socket.setblocking(False)
            self._socket.bind((host, 0))
        except BaseException:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self.packets = 0  # RTP version 2 packets
        self.octets = 0  # their payload's bytes
        self.other = 0  # datagrams that are not RTP (STUN, garbage): ignored
        self.source: str | None = None  # where the first RTP packet came from
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._socket.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data, address = self._socket.recvfrom(MAX_PACKET_BYTES)
            except OSError:  # nothing more to read now (BlockingIOError), or the socket is closed
                return
            if len(data) >= 12 and data[0] >> 6 == RTP_VERSION:  # 12: the fixed header
                self.packets += 1
                self.octets += len(data) - 12
                if self.source is None:
                    self.source = f"{address[0]}:{address[1]}"
            else:
                self.other += 1

    def count(self) -> MediaCount:
        return MediaCount(self.port, self.packets, self.octets, self.other, self.source)

    def close(self) -> None:
        if self._socket.fileno() >= 0:
            self._loop.remove_reader(self._socket.fileno())
            self._socket.close()
