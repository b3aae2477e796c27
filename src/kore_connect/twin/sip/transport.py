"""The thin asyncio layer under our SIP stack: UDP and TCP transports that isolate every message.

What comes in is parsed here (`message.parse`, or a `StreamFramer` first over TCP) and handed to
one callback, as a message or as the `ParseError` saying why it could not be read. What goes out is
written with `send`, which never raises: a reply that cannot be sent (a port past 65535, a host
that is not an address, a datagram too large, a connection gone) is one line in the log and
changes nothing else. Sending over UDP goes to the socket directly, not through asyncio's datagram
transport, which takes any exception but OSError from `sendto` as fatal and closes the socket: one
peer's Via would silence the gateway for everyone (PROTOS c07-sip, `sip-via-hostport`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from kore_connect.log_text import printable
from kore_connect.twin.sip.framing import PONG, FramingError, Keepalive, StreamFramer, head_as_request
from kore_connect.twin.sip.message import MAX_MESSAGE_BYTES, Message, ParseError, parse
from kore_connect.twin.sip.quiet_log import QuietLog

logger = logging.getLogger(__name__)
HostPort = tuple[str, int]  # (host, port)
Received = Callable[[Message | ParseError, HostPort], None]
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # Linux caps it at net.core.rmem_max
MAX_DATAGRAM = 65_535
CONNECT_SECONDS = 5.0


def sendable(address: HostPort) -> str | None:
    """Why nothing can be sent to `address` (a reason for the log), or None when it can."""
    host, port = address
    if not isinstance(port, int) or not 0 < port <= 65535:
        return f"port {printable(str(port), 16)} is out of range"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"{printable(host, 64)} is not an IP address"
    return None


class _Transport:
    name: Literal["udp", "tcp"]
    reliable: bool

    def __init__(self, received: Received, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._received = received
        self._max_bytes = max_bytes
        self.local_address: HostPort = ("", 0)
        self.log = QuietLog(logger)

    def _deliver(self, data: bytes, source: HostPort) -> None:
        """Parse and hand on one message; nothing a peer sent escapes from here."""
        try:
            item: Message | ParseError = parse(data, max_bytes=self._max_bytes)
        except ParseError as error:
            item = error
        try:
            self._received(item, source)
        except Exception:  # our bug, not the peer's: logged in full, and the transport goes on
            logger.exception("handling a message from %s failed", source[0])

    def _unsent(self, address: HostPort, why: str) -> bool:
        self.log.warning(
            address[0], "could not send to %s:%s over %s: %s", address[0], address[1], self.name, why
        )
        return False


class UdpTransport(_Transport):
    """A UDP socket: a server's (`open(local)`) or a client's (`open(local, remote)`)."""

    name: Literal["udp", "tcp"] = "udp"
    reliable = False

    def __init__(
        self,
        received: Received,
        *,
        on_icmp_error: Callable[[OSError], None] | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(received, max_bytes=max_bytes)
        self._on_icmp_error = on_icmp_error
        self._socket: socket.socket | None = None
        self._asyncio_transport: asyncio.DatagramTransport | None = None

    async def open(self, local: HostPort, remote: HostPort | None = None) -> None:
        """Bind to `local` (port 0: any free port). A client names its `remote`: an empty local host
        becomes the source address the kernel routes there from. The socket is not connected, so
        that in-dialog requests from any peer (a gateway not behind the proxy) still arrive; ICMP
        errors, which only connected sockets see by default, are asked for (IP_RECVERR), so that a
        peer where nothing listens is still reported at once."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in (remote or local)[0] else socket.AF_INET
        if remote is not None and not local[0]:
            local = (_source_address(family, remote), local[1])
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            if remote is not None:
                level, option = _RECVERR[family]
                sock.setsockopt(level, option, 1)
            sock.bind(local)
            transport, _ = await loop.create_datagram_endpoint(lambda: _DatagramProtocol(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._asyncio_transport = transport
        self.local_address = sock.getsockname()[:2]

    def send(self, message: Message, address: HostPort) -> bool:
        if self._socket is None:
            return self._unsent(address, "the transport is closed")
        why = sendable(address)
        if why is not None:
            return self._unsent(address, why)
        data = bytes(message)
        if len(data) > MAX_DATAGRAM:
            return self._unsent(address, f"{len(data)} bytes do not fit in a datagram")
        try:
            self._socket.sendto(data, address)
        except BlockingIOError:
            return self._unsent(address, "the socket's send buffer is full (dropped; a resend may follow)")
        except OSError as exc:
            return self._unsent(address, exc.strerror or type(exc).__name__)
        return True

    def _icmp_error(self, exc: OSError) -> None:
        if self._on_icmp_error is not None:
            self._on_icmp_error(exc)
        else:
            self.log.warning("icmp", "an ICMP error came back: %s", exc.strerror or type(exc).__name__)

    async def close(self) -> None:
        if self._asyncio_transport is not None:
            self._asyncio_transport.close()
        self._asyncio_transport = None
        self._socket = None


# IP_RECVERR and IPV6_RECVERR (Linux, <linux/in.h> and <linux/in6.h>; not in Python's socket module)
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}


def _source_address(family: int, remote: HostPort) -> str:
    """The address the kernel sends from to reach `remote` (a connected UDP socket sends nothing)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(remote)
        return str(probe.getsockname()[0])


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a keepalive (RFC 5626 §4.4.1): nothing to answer over UDP
        self._owner._deliver(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._owner._icmp_error(exc)


class TcpTransport(_Transport):
    """TCP: a server listening (`listen`), a client connected (`connect`), or both. Messages to an
    address with a connection go on it; to one without, a connection is opened first."""

    name: Literal["udp", "tcp"] = "tcp"
    reliable = True

    def __init__(
        self,
        received: Received,
        *,
        on_closed: Callable[[HostPort], None] | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(received, max_bytes=max_bytes)
        self._on_closed = on_closed
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[HostPort, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def listen(self, local: HostPort) -> None:
        self._server = await asyncio.start_server(self._accepted, local[0], local[1])
        self.local_address = self._server.sockets[0].getsockname()[:2]

    async def connect(self, remote: HostPort, local_host: str | None = None) -> HostPort:
        """Open a connection to `remote`; returns our end's address."""
        local = (local_host, 0) if local_host else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(remote[0], remote[1], local_addr=local), CONNECT_SECONDS
        )
        self._adopt(reader, writer, remote)
        sockname = writer.get_extra_info("sockname")
        ours: HostPort = (str(sockname[0]), int(sockname[1]))
        if self._server is None:
            self.local_address = ours
        return ours

    def send(self, message: Message, address: HostPort) -> bool:
        if self._closing:
            return self._unsent(address, "the transport is closed")
        why = sendable(address)
        if why is not None:
            return self._unsent(address, why)
        writer = self._connections.get(address)
        if writer is None:  # no connection to it yet: open one, then send
            self._spawn(self._connect_and_send(bytes(message), address))
            return True
        return self._write(writer, bytes(message), address)

    def _write(self, writer: asyncio.StreamWriter, data: bytes, address: HostPort) -> bool:
        if writer.is_closing():
            return self._unsent(address, "the connection is closed")
        try:
            writer.write(data)
        except (OSError, RuntimeError) as exc:
            return self._unsent(address, str(exc) or type(exc).__name__)
        return True

    async def _connect_and_send(self, data: bytes, address: HostPort) -> None:
        try:
            await self.connect(address)
        except (OSError, TimeoutError) as exc:
            self._unsent(address, f"cannot connect: {getattr(exc, 'strerror', None) or type(exc).__name__}")
            return
        writer = self._connections.get(address)
        if writer is not None:
            self._write(writer, data, address)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self._adopt(reader, writer, (peer[0], peer[1]))

    def _adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: HostPort) -> None:
        self._connections[peer] = writer
        self._spawn(self._read(reader, writer, peer))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: HostPort) -> None:
        framer = StreamFramer(self._max_bytes)
        try:
            while not self._closing:
                data = await reader.read(65_536)
                if not data:
                    return
                framer.feed(data)
                while (item := framer.next_message()) is not None:
                    if isinstance(item, Keepalive):
                        self._write(writer, PONG, peer)
                    else:
                        self._deliver(item, peer)
        except FramingError as error:
            # nothing after it can be trusted: answer it if it can be, then close the connection
            self.log.warning(peer[0], "closed the TCP connection from %s: %s", peer[0], error.reason)
            self._deliver_unframed(error, peer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the peer went away
        finally:
            if self._connections.get(peer) is writer:
                del self._connections[peer]
            writer.close()
            if self._on_closed is not None and not self._closing:
                self._on_closed(peer)

    def _deliver_unframed(self, error: FramingError, peer: HostPort) -> None:
        request = head_as_request(error.head, self._max_bytes)
        try:
            self._received(ParseError(error.reason, status=error.status, request=request), peer)
        except Exception:  # our bug, not the peer's
            logger.exception("handling a message from %s failed", peer[0])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._connections.clear()
