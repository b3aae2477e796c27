"""The UDP transport piece the local twin's SIP code shares (connector and gateway).

aiosipua's UDP protocol asserts that its transport is an `asyncio.DatagramTransport`; on CPython
3.11 the selector event loop's datagram transport does not subclass it yet (it does from 3.12),
although it is one in all but name. We take the transport without the check here, in our code,
rather than running with `-O`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosipua.headers import parse_via, stringify_via
from aiosipua.message import SipRequest
from aiosipua.transport import UdpSipTransport, _UdpProtocol


class DatagramProtocol311(_UdpProtocol):
    """aiosipua's UDP protocol without the 3.12-only assertion; ICMP errors reported to `on_error`."""

    def __init__(self, owner: UdpSipTransport, on_error: Callable[[Exception], None] | None = None) -> None:
        super().__init__(owner)
        self._on_error = on_error

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        super().error_received(exc)
        if self._on_error is not None:
            self._on_error(exc)


RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # Linux caps it at net.core.rmem_max


@dataclass
class ServerUdpTransport(UdpSipTransport):
    """A UDP transport that listens on `local_addr` (port 0: any free port, read back after start).

    Its receive buffer is raised from Linux's 208 KB default (about 300 SIP messages): under a burst
    of calls the kernel otherwise drops datagrams, and a lost 200 to our BYE is a BYE resent to a
    caller that may have forgotten the call."""

    on_error: Callable[[Exception], None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: DatagramProtocol311(self, self.on_error), local_addr=self.local_addr
        )
        self._udp_transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self.local_addr = transport.get_extra_info("sockname")[:2]


def answer_on_connection(request: SipRequest, addr: tuple[str, int]) -> None:
    """Over TCP, stamp the top Via with the connection's address (`received`, `rport`), so that
    every answer goes back on the caller's connection (RFC 3261 §18.2.2), not to the port its
    Via names, where nothing listens."""
    vias = request.headers.get("via")
    if not vias:
        return
    top = parse_via(vias[0])
    top.params["received"], top.params["rport"] = addr[0], str(addr[1])
    request.headers.remove("Via")
    for value in (stringify_via(top), *vias[1:]):
        request.headers.append("Via", value)
