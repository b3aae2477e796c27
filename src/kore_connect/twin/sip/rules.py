"""Which requests a user agent server will not act on, and what it answers instead (RFC 3261 §8.2,
§18.3; pure).

`parse` has already refused what cannot be read at all. What is left here: a request whose Via,
CSeq, From or To does not read, or that repeats a header that takes one value, is malformed (400,
with the fault as the reason phrase). A well-formed request is still refused when it asks for what
we do not do: another SIP version (505), a Request-URI scheme other than sip, sips and tel (416), an
extension we lack (420), an INVITE body other than SDP (415), an INVITE that accepts no SDP (406).
A request refused here changes nothing: no call, no dialog.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from kore_connect.twin.sip.fields import Address, CSeq, FieldError, Via
from kore_connect.twin.sip.message import SIP_2_0, Headers, Request, Response

_NUMBER = re.compile(r"\s*[0-9]{1,10}\s*")  # ASCII digits only: "²".isdigit() is True
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")  # RFC 3261 §25.1: scheme ":" and the rest
_SDP_LINE = re.compile(r"[a-z]=.*")
_SDP_MEDIA = re.compile(r"m=[a-z]+ [0-9]+(/[0-9]+)? [^ ]+( [^ ]+)+")
URI_SCHEMES = ("sip:", "sips:", "tel:")
SINGLE_VALUED = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Type")
SDP = "application/sdp"


@dataclass(frozen=True, slots=True)
class Refusal:
    """The final answer to a request that is not acted on."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()  # what the answer must carry besides (RFC 3261 §21.4)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def refusal(request: Request, option_tags: frozenset[str] = frozenset()) -> Refusal | None:
    """What a UAS answers `request` instead of acting on it, or None to act on it. `option_tags`
    are the extensions it implements (for Require, §8.2.2.3)."""
    if request.version != SIP_2_0:
        return Refusal(505, "Version Not Supported")
    if _ABSOLUTE_URI.fullmatch(request.uri) and not request.uri.lower().startswith(URI_SCHEMES):
        return Refusal(416, "Unsupported URI Scheme")  # well formed, but no scheme we serve (§8.2.2.1)
    reason = problem(request)
    if reason is not None:
        return Refusal(400, reason)
    if request.method in ("ACK", "CANCEL"):
        return None  # §8.2.2.3: a Require in either is ignored
    required = dict.fromkeys(tag.lower() for tag in request.headers.values("Require"))
    unknown = [tag for tag in required if tag not in option_tags]
    if unknown:  # §8.2.2.3; Proxy-Require is for proxies, and a UAS ignores it
        return Refusal(420, "Bad Extension", (("Unsupported", ", ".join(unknown)),))
    return _offer_refusal(request) if request.method == "INVITE" else None


def _offer_refusal(invite: Request) -> Refusal | None:
    """SDP is all we read of an INVITE's body (§8.2.3: 415) and all we answer it with (§21.4.7: 406)."""
    if invite.body and media_type(invite.headers.get("Content-Type")) not in ("", SDP):
        return Refusal(415, "Unsupported Media Type", (("Accept", SDP),))
    accepted = {media_type(value) for value in invite.headers.values("Accept")}
    if accepted and not accepted & {SDP, "application/*", "*/*"}:
        return Refusal(406, "Not Acceptable")
    return None


def media_type(content_type: str | None) -> str:
    """type/subtype of a Content-Type or Accept value, without its parameters, in lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def reply_via(request: Request) -> Via | None:
    """The top Via, read well enough to send an answer to (its parameters may still be malformed),
    or None: then there is nowhere to answer, and the request is dropped."""
    top = request.top_via
    if top is None:
        return None
    try:
        return Via.parse(top, strict=False)
    except FieldError:
        return None


def problem(request: Request) -> str | None:
    """Why `request` cannot be acted on (a reason phrase for the 400), or None when it can."""
    if reply_via(request) is None:
        return "Bad Via"  # first: without a Via there is nowhere to send any answer
    try:
        for via in request.headers.values("Via"):
            Via.parse(via)
    except FieldError:
        return "Malformed Via"  # an empty parameter, a stray comma: answerable, but not well formed
    if any(not value.strip() for value in _list_elements(request.headers, "Via")):
        return "Malformed Via"
    for name in ("Call-ID", "CSeq", "From", "To"):  # §8.1.1: what every request must carry
        if not (request.headers.get(name) or "").strip():
            return f"Missing {name}"
    for name in SINGLE_VALUED:  # §7.3.1: only list-valued headers may come more than once
        if request.headers.count(name) > 1:
            return f"More Than One {name}"
    if not request.uri.lower().startswith(URI_SCHEMES):
        return "Bad Request-URI"
    try:
        cseq = CSeq.parse(request.headers.get("CSeq") or "")
    except FieldError as error:
        return error.reason
    if cseq.method != request.method:
        return "CSeq Method Does Not Match"
    for name in ("From", "To"):
        try:
            Address.parse(request.headers.get(name) or "", name)
        except FieldError as error:
            return error.reason
    if request.method == "INVITE":  # §8.1.1.8: one Contact, where the dialog's requests will go
        contacts = request.headers.values("Contact")
        if len(contacts) > 1:
            return "More Than One Contact"
        try:
            for contact in contacts:
                Address.parse(contact, "Contact")
        except FieldError as error:
            return error.reason
    forwards = request.headers.get("Max-Forwards")
    if forwards is not None and not (_NUMBER.fullmatch(forwards) and int(forwards) <= 255):
        return "Bad Max-Forwards"
    sdp = (
        request.method == "INVITE" and request.body and media_type(request.headers.get("Content-Type")) == SDP
    )
    if sdp and not _sdp_is_well_formed(request.body):
        return "Bad SDP"
    return None


def _list_elements(headers: Headers, name: str) -> list[str]:
    """Every element of a list header, empty ones included (`a,,b` has an empty one)."""
    return [element for value in headers.get_all(name) for element in value.split(",")]


def response_problem(response: Response) -> str | None:
    """Why a response cannot be matched to a request (RFC 3261 §18.1.2: the client drops it), or None."""
    if not 100 <= response.status <= 699:
        return "Bad Status Code"
    try:
        CSeq.parse(response.headers.get("CSeq") or "")  # past 2**31: no request of ours had it
    except FieldError as error:
        return error.reason
    vias = response.headers.values("Via")
    if not response.call_id or not vias:
        return "Bad Call-ID or Via"
    if len(vias) > 1:  # §8.1.3.3: we sent one; the others were never ours
        return "More Than One Via"
    try:
        Via.parse(vias[0], strict=False)
    except FieldError:
        return "Bad Call-ID or Via"
    return None


def _sdp_is_well_formed(body: bytes) -> bool:
    """RFC 8866 §5: `v=0` first, every line `<letter>=<value>`, at least one complete m= line."""
    try:
        lines = body.decode("utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")
    except UnicodeDecodeError:
        return False
    return (
        lines[0] == "v=0"
        and all(_SDP_LINE.fullmatch(line) for line in lines)
        and any(_SDP_MEDIA.fullmatch(line) for line in lines)
    )


def new_tag() -> str:
    """A To or From tag (RFC 3261 §19.3: at least 32 bits of randomness)."""
    return secrets.token_hex(8)


def bare_response(
    request: Request, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """The least a response must hold (RFC 3261 §8.2.6.2): the request's Vias, From, Call-ID and
    CSeq, its To with a tag, and `headers`. No User-Agent, no Allow: what a stranger is told, and
    nothing more."""
    fields = [("Via", via) for via in request.headers.get_all("Via")]
    for name in ("From", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value:
            fields.append((name, value))
    to = request.headers.get("To")
    if to:
        try:
            tagged = to if Address.parse(to).tag else f"{to};tag={new_tag()}"
        except FieldError:
            tagged = to  # a To that does not read is echoed as it came: the answer is a 400 anyway
        fields.append(("To", tagged))
    fields.extend(headers)
    return Response(status=status, reason=reason, headers=Headers(tuple(fields)))
