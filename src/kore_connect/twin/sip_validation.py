"""Which requests are too malformed to act on, and why (RFC 3261 §8.2 and §18.3; pure).

aiosipua parses leniently and checks only that the mandatory headers are present; a request whose
CSeq, Via, From or To does not parse, or whose body is cut short, would otherwise fail deep in a
handler with no answer at all. A request named here is answered 400 with the reason, and nothing
else happens (no call, no dialog). `refusal` adds what a UAS answers a well-formed request it will
not act on: another SIP version (505), a Request-URI scheme it does not serve (416), an extension it
lacks (420), an INVITE body other than SDP (415), an INVITE that accepts no SDP in answer (406).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiosipua.message import SipRequest, SipResponse
from aiosipua.utils import generate_tag

_NAME = r"[A-Za-z0-9.!%*_+`'~-]+"  # RFC 3261 §25.1 token: an extension method, a parameter's name
_CSEQ = re.compile(rf"\s*([0-9]{{1,10}})\s+({_NAME})\s*")
_NUMBER = re.compile(r"\s*[0-9]{1,10}\s*")  # ASCII digits only: "²".isdigit() is True
_VIA = re.compile(r"\s*SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+[^\s;,]+.*", re.IGNORECASE)  # one we can answer to
_QUOTED = r'"(?:[^"\\]|\\.)*"'  # RFC 3261 §25.1 quoted-string: \" and \\ inside are quoted-pairs
# ;name or ;name=value, any number of them: no empty one, no stray separator (§25.1 generic-param)
_PARAMETERS = rf"(\s*;\s*{_NAME}(\s*=\s*([^\s;,\"<>]+|{_QUOTED}))?)*\s*"
_VIA_VALUE = re.compile(  # §20.42: protocol, sent-by (host or [IPv6], port), parameters
    rf"\s*SIP\s*/\s*2\.0\s*/\s*{_NAME}\s+(\[[0-9A-Fa-f:.]+\]|[^\s;,:\[\]]+)(\s*:\s*[0-9]+)?{_PARAMETERS}",
    re.IGNORECASE,
)
# name-addr (<uri>, optionally after a display name) or addr-spec, with a sip/sips/tel URI; parameters.
# Matched against the stripped value: a leading \s* next to the display name's [^<"]* makes leading
# spaces quadratic to reject (60 KB of them: a minute of CPU). aiosipua strips header values today.
_ADDRESS = re.compile(
    rf"(({_QUOTED}\s*|[^<\"]*)<\s*(sips?|tel):[^>\s]+>|(sips?|tel):[^\s<>;]+){_PARAMETERS}", re.IGNORECASE
)
_SDP_LINE = re.compile(r"[a-z]=.*")
_SDP_MEDIA = re.compile(r"m=[a-z]+ [0-9]+(/[0-9]+)? [^ ]+( [^ ]+)+")
_URI_SCHEMES = ("sip:", "sips:", "tel:")
_SINGLE_VALUED = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")  # RFC 3261 §25.1: scheme ":" and the rest
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5
SDP = "application/sdp"
OPTION_TAGS: frozenset[str] = frozenset()  # the SIP extensions we implement (100rel, timer...): none


@dataclass(frozen=True, slots=True)
class Refusal:
    """The final answer to a request that is not acted on."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()  # what the answer must carry besides (RFC 3261 §21.4)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def refusal(request: SipRequest, request_line: str) -> Refusal | None:
    """What a UAS answers `request` instead of acting on it, or None to act on it. `request_line` is
    its first line as it came: aiosipua keeps neither its SIP version nor its spacing."""
    line = _request_line_refusal(request_line)
    if line is not None:
        return line
    if _ABSOLUTE_URI.fullmatch(request.uri) and not request.uri.lower().startswith(_URI_SCHEMES):
        return Refusal(416, "Unsupported URI Scheme")  # well formed, but no scheme we serve (§8.2.2.1)
    reason = problem(request)
    if reason is not None:
        return Refusal(400, reason)
    if request.method in ("ACK", "CANCEL"):
        return None  # §8.2.2.3: a Require in either is ignored
    unknown = [tag for tag in dict.fromkeys(request.headers.get("require")) if tag not in OPTION_TAGS]
    if unknown:  # §8.2.2.3; Proxy-Require is for proxies, and a UAS ignores it
        return Refusal(420, "Bad Extension", (("Unsupported", ", ".join(unknown)),))
    return _offer_refusal(request) if request.method == "INVITE" else None


def _offer_refusal(invite: SipRequest) -> Refusal | None:
    """SDP is all we read of an INVITE's body (§8.2.3: 415) and all we answer it with (§21.4.7: 406)."""
    if invite.body and _media_type(invite.content_type) not in ("", SDP):
        return Refusal(415, "Unsupported Media Type", (("Accept", SDP),))
    accepted = {_media_type(value) for value in invite.headers.get("accept")}
    if accepted and not accepted & {SDP, "application/*", "*/*"}:
        return Refusal(406, "Not Acceptable")
    return None


def _media_type(content_type: str | None) -> str:
    """type/subtype of a Content-Type or Accept value, without its parameters, in lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _request_line_refusal(line: str) -> Refusal | None:
    """RFC 3261 §7.1: Method SP Request-URI SP SIP-Version. Runs of SP and a trailing SP are taken
    (RFC 4475 §3.1.2.9-10 allow either); a space inside the Request-URI makes four parts."""
    parts = line.split()
    if len(parts) != 3 or not _VERSION.fullmatch(parts[2]):
        return Refusal(400, "Bad Request-Line")
    if parts[2].upper() != "SIP/2.0":
        return Refusal(505, "Version Not Supported")
    return None


def answerable(request: SipRequest) -> bool:
    """Has `request` a top Via we can send an answer to? Without one, it is dropped unanswered."""
    return _VIA.fullmatch(request.headers.get_first("via") or "") is not None


def problem(request: SipRequest) -> str | None:
    """Why `request` cannot be acted on (a reason phrase for the 400), or None when it can."""
    if not answerable(request):
        return "Bad Via"  # first: without a Via there is nowhere to send any answer
    if not all(_VIA_VALUE.fullmatch(via) for via in request.headers.get("via")):
        return "Malformed Via"  # an empty parameter, a stray comma: answerable, but not well formed
    for name in _SINGLE_VALUED:  # §7.3.1: only list-valued headers may come more than once
        if len(request.headers.get(name)) > 1:
            return f"More Than One {name}"
    if not request.uri.lower().startswith(_URI_SCHEMES):
        return "Bad Request-URI"
    cseq = _CSEQ.fullmatch(request.headers.get_first("cseq") or "")
    if cseq is None or int(cseq.group(1)) > MAX_CSEQ:
        return "Bad CSeq"
    if cseq.group(2) != request.method:
        return "CSeq Method Does Not Match"
    for name in ("from", "to"):
        if not _ADDRESS.fullmatch((request.headers.get_first(name) or "").strip()):
            return f"Bad {name.title()}"
    forwards = request.headers.get_first("max-forwards")
    if forwards is not None and not (_NUMBER.fullmatch(forwards) and int(forwards) <= 255):
        return "Bad Max-Forwards"
    declared = request.headers.get_first("content-length")
    if declared is not None:
        if not _NUMBER.fullmatch(declared):
            return "Bad Content-Length"
        if len(request.body) < int(declared):
            return "Body Shorter Than Content-Length"
    sdp = request.method == "INVITE" and request.body and _media_type(request.content_type) == SDP
    if sdp and not _sdp_is_well_formed(request.body):
        return "Bad SDP"
    return None


def response_problem(response: SipResponse) -> str | None:
    """Why a response cannot be matched to a request (RFC 3261 §18.1.2: the client drops it), or None."""
    if not 100 <= response.status_code <= 699:
        return "Bad Status Code"
    cseq = _CSEQ.fullmatch(response.headers.get_first("cseq") or "")
    if cseq is None or int(cseq.group(1)) > MAX_CSEQ:  # no request of ours had such a number
        return "Bad CSeq"
    if not response.call_id or not _VIA.fullmatch(response.headers.get_first("via") or ""):
        return "Bad Call-ID or Via"
    if len(response.headers.get("via")) > 1:  # §8.1.3.3: we sent one; the others were never ours
        return "More Than One Via"
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


def bare_response(request: SipRequest, status: int, reason: str) -> SipResponse:
    """The least a response must hold (RFC 3261 §8.2.6.2): the request's Via, From, Call-ID and
    CSeq, its To with a tag. No User-Agent, no Allow: what a stranger is told, and nothing more."""
    response = SipResponse(status_code=status, reason_phrase=reason)
    for via in request.headers.get("via"):
        response.headers.append("Via", via)
    for name in ("From", "Call-ID", "CSeq"):
        value = request.headers.get_first(name.lower())
        if value:
            response.headers.set_single(name, value)
    to = request.headers.get_first("to")
    if to:
        response.headers.set_single("To", to if ";tag=" in to else f"{to};tag={generate_tag()}")
    response.headers.set_single("Content-Length", "0")
    return response
