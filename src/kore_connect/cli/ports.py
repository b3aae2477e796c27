"""Ports the commands listen on, checked or bound by us before a server starts, so that a port in
use is one line naming the port, the part and the option that changes it, not a server's own
`[Errno 98]` after a banner that said it was listening."""

from __future__ import annotations

import errno
import socket

from kore_connect.errors import KoreConnectError


class PortUnavailable(KoreConnectError):
    """A part of the twin cannot listen on its port."""


def unavailable(
    part: str, host: str, port: int, option: str, transport: str, exc: OSError
) -> PortUnavailable:
    """The one-line error for `exc`, raised binding `part` to `host:port`."""
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need root)"
    else:
        why = exc.strerror or str(exc)
    return PortUnavailable(
        f"{part} cannot listen on {host}:{port} ({transport.upper()}): {why}; "
        f"choose another port with {option}"
    )


def bind_tcp(host: str, port: int, *, part: str, option: str) -> socket.socket:
    """A TCP socket bound to `host:port` (0: any free port), for a server to take over. Not yet
    listening: until the server listens, a client is refused at once rather than left waiting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # As servers do: a port left in TIME_WAIT by the last run is free; one with a listener is not.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise unavailable(part, host, port, option, "tcp", exc) from None
    return listener


def check_free(host: str, port: int, *, part: str, option: str, transports: tuple[str, ...]) -> None:
    """Raise PortUnavailable unless `part` could listen on `host:port` over each of `transports`
    now. For a part that another process will bind: it fails early, with a line of ours."""
    if port == 0:
        return  # any free port: the part picks one
    for transport in transports:
        if transport == "tcp":
            bind_tcp(host, port, part=part, option=option).close()
            continue
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise unavailable(part, host, port, option, transport, exc) from None
        finally:
            probe.close()
