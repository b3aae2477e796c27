"""A dialog (RFC 3261 §12) as data: who the two ends are, where in-dialog requests go, and their
CSeq numbers; with the requests it builds and the ones it accepts (pure).

A dialog is made from an INVITE and its 2xx: by the UAS (`SipDialog.as_uas`, §12.1.1) or by the UAC
(`SipDialog.as_uac`, §12.1.2). Its route set comes from Record-Route (in the request's order for the
UAS, reversed for the UAC), its remote target from the peer's Contact. A request it builds
(`request`, `ack`) follows the route set, loose routing (`;lr`) or strict (§12.2.1.1).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

from kore_connect.twin.sip.fields import Address, FieldError, uri_host_port
from kore_connect.twin.sip.message import Headers, Request, Response
from kore_connect.twin.sip.transactions import MAGIC_COOKIE

MAX_FORWARDS = "70"


class DialogError(ValueError):
    """A message that cannot make or belong to a dialog. `status` is the answer to a request."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def new_branch() -> str:
    """A Via branch for a new transaction (§8.1.1.7: the magic cookie, then unique)."""
    return f"{MAGIC_COOKIE}-{secrets.token_hex(8)}"


@dataclass
class SipDialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From (as UAC) or To (as UAS), without its tag: `<sip:...>`
    remote_uri: str
    remote_target: str  # the peer's Contact URI: where in-dialog requests go
    route_set: tuple[str, ...] = ()  # Route values, in the order our requests carry them
    local_seq: int = 0
    remote_seq: int | None = None
    invite_seq: int = 0  # the CSeq number of the INVITE that made it (its ACK carries it)

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str) -> SipDialog:
        """The dialog an INVITE makes on the answering side, once we send a 2xx with `local_tag`."""
        try:
            sender = Address.parse(invite.headers.get("From") or "", "From")
            us = Address.parse(invite.headers.get("To") or "", "To")
            # RFC 2543 made Contact optional: then requests went to the From address
            target = _contact_uri(invite) if invite.headers.get("Contact") else sender.uri
        except FieldError as error:
            raise DialogError(error.reason) from error
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=sender.tag or "",
            local_uri=f"<{us.uri}>",
            remote_uri=f"<{sender.uri}>",
            remote_target=target,
            route_set=invite.headers.values("Record-Route"),
            local_seq=0,
            remote_seq=invite.cseq_number,
            invite_seq=invite.cseq_number or 0,
        )

    @classmethod
    def as_uac(cls, invite: Request, answer: Response) -> SipDialog:
        """The dialog a 2xx to our INVITE makes on the calling side."""
        try:
            us = Address.parse(invite.headers.get("From") or "", "From")
            peer = Address.parse(answer.headers.get("To") or "", "To")
            target = _contact_uri(answer)
        except FieldError as error:
            raise DialogError(error.reason) from error
        return cls(
            call_id=invite.call_id,
            local_tag=us.tag or "",
            remote_tag=peer.tag or "",
            local_uri=f"<{us.uri}>",
            remote_uri=f"<{peer.uri}>",
            remote_target=target,
            route_set=tuple(reversed(answer.headers.values("Record-Route"))),
            local_seq=invite.cseq_number or 0,
            invite_seq=invite.cseq_number or 0,
        )

    @property
    def id(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    def matches(self, request: Request) -> bool:
        """Does `request` belong to this dialog (Call-ID, and its tags the other way round)?"""
        try:
            to_tag = Address.parse(request.headers.get("To") or "").tag
            from_tag = Address.parse(request.headers.get("From") or "").tag
        except FieldError:
            return False
        # an RFC 2543 caller may send no From tag: then the remote tag is empty, and so is its From's
        return (
            request.call_id == self.call_id
            and to_tag == self.local_tag
            and (from_tag or "") == self.remote_tag
        )

    def receive(self, request: Request) -> None:
        """Take an in-dialog request from the peer (§12.2.2): its CSeq must not go back (500);
        a re-INVITE with a Contact refreshes the remote target."""
        number = request.cseq_number
        if request.method not in ("ACK", "CANCEL") and number is not None:
            if self.remote_seq is not None and number < self.remote_seq:
                raise DialogError("CSeq Out Of Order", 500)
            self.remote_seq = number
        if request.method == "INVITE" and request.headers.get("Contact"):
            with contextlib.suppress(DialogError):  # a target refresh that does not read changes nothing
                self.remote_target = _contact_uri(request)

    def request(
        self, method: str, via: str, headers: tuple[tuple[str, str], ...] = (), body: bytes = b""
    ) -> Request:
        """A new in-dialog request (§12.2.1.1), with the next CSeq. `via` is our sent-by with its
        transport (`SIP/2.0/UDP host:port`); a new branch is added."""
        self.local_seq += 1
        return self._build(method, self.local_seq, f"{via};branch={new_branch()};rport", headers, body)

    def ack(self, via: str, headers: tuple[tuple[str, str], ...] = ()) -> Request:
        """The ACK of the 2xx that made the dialog: the INVITE's CSeq number, a branch of its own
        (§13.2.2.4)."""
        return self._build("ACK", self.invite_seq, f"{via};branch={new_branch()};rport", headers, b"")

    def next_hop(self) -> tuple[str, int | None]:
        """Host and port our in-dialog requests are sent to: the first route, or the target."""
        first = self.route_set[0] if self.route_set else f"<{self.remote_target}>"
        try:
            return uri_host_port(Address.parse(first).uri)
        except FieldError as error:
            raise DialogError(error.reason) from error

    def _build(
        self, method: str, number: int, via: str, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> Request:
        uri, routes = self.remote_target, list(self.route_set)
        if routes and not _loose(routes[0]):  # strict routing: the first route is the Request-URI
            uri, routes = Address.parse(routes[0]).uri, [*routes[1:], f"<{self.remote_target}>"]
        fields = [
            ("Via", via),
            ("Max-Forwards", MAX_FORWARDS),
            ("From", f"{self.local_uri};tag={self.local_tag}"),
            ("To", f"{self.remote_uri};tag={self.remote_tag}" if self.remote_tag else self.remote_uri),
            ("Call-ID", self.call_id),
            ("CSeq", f"{number} {method}"),
            *(("Route", route) for route in routes),
            *headers,
        ]
        return Request(method=method, uri=uri, headers=Headers(tuple(fields)), body=body)


def _loose(route: str) -> bool:
    try:
        uri = Address.parse(route).uri
    except FieldError:
        return True
    return any(part.strip().lower() in ("lr", "lr=on", "lr=true") for part in uri.split(";")[1:])


def _contact_uri(message: Request | Response) -> str:
    contacts = message.headers.values("Contact")
    if not contacts:
        raise DialogError("No Contact")
    try:
        return Address.parse(contacts[0], "Contact").uri
    except FieldError as error:
        raise DialogError(error.reason) from error
