"""The local Kore Voice Gateway: a SIP server (our `twin/sip` stack, UDP and TCP) that answers the
calls Amazon Connect transfers, hands each to the bot, and ends it the way Kore's SIP BYE agent
transfer does.

What it answers, as the CCAI configuration makes Kore's gateway answer:
- a request from a source not on the allow-list: 403, once, and nothing else happens;
- a request it cannot read: 400 naming the fault, or 513 when too large, when it has a Via to
  answer to (dropped otherwise);
- a request it will not act on (`sip.rules.refusal`): 400 if malformed, 505 for another SIP
  version, 416 for a Request-URI scheme other than sip, sips and tel, 420 for a required extension,
  415 for an INVITE body other than SDP, 406 for an INVITE that accepts no SDP;
- an INVITE whose Request-URI user matches no DID: 404 (the longest matching pattern wins);
- an offer with no codec we take (PCMU, PCMA): 488;
- a re-INVITE or BYE for no dialog of ours: 481; a second INVITE on a Call-ID in progress: 482;
- a method it does not take: 405 with Allow;
- otherwise the call (`call.GatewayCall`): 100, 180, 200 with the SDP answer, the bot, and the
  agent transfer's BYE. A caller's BYE stops the bot; a CANCEL while ringing ends the attempt 487.
Every call is recorded as an interaction (call and contact ID, DID, source, each node's result,
the service node's HTTP status, the SIP messages, how it ended) in the local SQLite store.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from typing import Literal

import httpx

from kore_connect.log_text import printable
from kore_connect.twin.kore.bot import BotRun, run_bot
from kore_connect.twin.kore.call import ALLOW, GatewayCall, NoAcceptableCodec, answer_to, sdp_answer
from kore_connect.twin.kore.config import GatewayConfig
from kore_connect.twin.kore.interactions import Interaction, InteractionStore
from kore_connect.twin.kore.media import RtpSink
from kore_connect.twin.kore.session import KoreSession
from kore_connect.twin.sip.dialog import DialogError
from kore_connect.twin.sip.endpoint import SipEndpoint
from kore_connect.twin.sip.fields import Address, FieldError, uri_host, uri_user
from kore_connect.twin.sip.message import Message, Request, Response
from kore_connect.twin.sip.quiet_log import QuietLog
from kore_connect.twin.sip.rules import new_tag, refusal
from kore_connect.twin.sip.trace import Direction, TracedMessage
from kore_connect.twin.sip.transport import HostPort

logger = logging.getLogger(__name__)
PORT_ATTEMPTS = 20  # with port 0, how often to pick a port again when a transport finds it taken
OPTION_TAGS: frozenset[str] = frozenset()  # the SIP extensions we implement (100rel, timer...): none


class KoreGateway:
    def __init__(self, config: GatewayConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http
        self._own_http = http is None
        self.interactions = InteractionStore(config.interactions)
        self.endpoints: list[SipEndpoint] = []
        self.addresses: dict[str, tuple[str, int]] = {}  # transport -> bound address
        self._calls: dict[str, GatewayCall] = {}  # Call-ID -> the call in progress
        self._records: dict[str, Interaction] = {}  # Call-ID -> the interaction being recorded
        self._log = QuietLog(logger)

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient()
        # With port 0 the first transport picks a free port and the others take the same number,
        # which another program may hold for their transport: then pick again.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                await self._listen(self.config.port)
                return
            except OSError as exc:
                for endpoint in self.endpoints:
                    await endpoint.close()
                self.endpoints.clear()
                self.addresses.clear()
                if self.config.port != 0 or exc.errno != errno.EADDRINUSE or attempt == PORT_ATTEMPTS:
                    raise

    async def _listen(self, port: int) -> None:
        for name in self.config.transports:
            kind: Literal["udp", "tcp"] = "tcp" if name == "tcp" else "udp"
            endpoint = SipEndpoint(
                self, kind, allowed=self.config.allowed, observer=self._note, log=self._log
            )
            self.endpoints.append(endpoint)
            await endpoint.listen((self.config.host, port))
            self.addresses[name] = endpoint.local_address
            port = endpoint.local_address[1]  # with port 0, every transport on the port the first got

    async def stop(self) -> None:
        for call in list(self._calls.values()):
            call.stop("the gateway stopped")
            await call.stopped()
        for endpoint in self.endpoints:
            await endpoint.close()
        self.endpoints.clear()
        if self._own_http and self._http is not None:
            await self._http.aclose()
        self.interactions.close()

    def held(self) -> list[str]:
        """What the gateway still holds for calls: calls in progress, interactions not saved, and
        transactions with a timer running. Empty once every call is over and settled."""
        calls = [f"call {call_id}" for call_id in self._calls]
        records = [f"interaction {call_id}" for call_id in self._records if call_id not in self._calls]
        resending = [
            f"{request.method} {request.call_id} being resent"
            for endpoint in self.endpoints
            for request in endpoint.layer.resending()
        ]
        return calls + records + resending

    # ------------------------------------------------------------------ the transaction user

    def request_received(self, request: Request, source: HostPort, endpoint: SipEndpoint) -> None:
        try:
            self._request(request, source, endpoint)
        except Exception:  # a bug answers 500 and closes the interaction; the gateway goes on
            logger.exception("%s from %s failed", printable(request.method, 16), source[0])
            if request.method == "INVITE":
                self._calls.pop(request.call_id, None)
                self._ended(request.call_id, "the gateway failed (see its log)")
            if request.method != "ACK":
                endpoint.respond(request, answer_to(request, 500, "Server Internal Error", new_tag()))

    def response_received(self, response: Response, endpoint: SipEndpoint) -> None:
        call = self._calls.get(response.call_id)
        if call is not None and call.is_our_bye(response):
            call.bye_answered(response)

    def transaction_failed(self, request: Request, why: str, endpoint: SipEndpoint) -> None:
        call = self._calls.get(request.call_id)
        if request.method == "BYE" and call is not None and call.is_our_bye(request):
            call.bye_failed()

    def _request(self, request: Request, source: HostPort, endpoint: SipEndpoint) -> None:
        refused = refusal(request, OPTION_TAGS)
        if refused is not None:
            self._log.warning(
                source[0],
                "refused a %s from %s: %s",
                printable(request.method, 16),
                source[0],
                printable(refused),
            )
            if request.method != "ACK":
                endpoint.respond(
                    request, answer_to(request, refused.status, refused.reason, new_tag(), *refused.headers)
                )
            return
        call = self._calls.get(request.call_id)
        method = request.method
        if method == "INVITE":
            self._invite(request, source, endpoint, call)
        elif method == "ACK":
            if call is not None and call.dialog is not None and call.dialog.matches(request):
                call.acked()
        elif method == "BYE":
            if call is not None and call.dialog is not None and call.dialog.matches(request):
                endpoint.respond(request, answer_to(request, 200, "OK", call.local_tag))
                call.caller_hung_up()
            else:
                endpoint.respond(
                    request, answer_to(request, 481, "Call/Transaction Does Not Exist", new_tag())
                )
        elif method == "CANCEL":
            self._cancel(request, endpoint, call)
        elif method == "OPTIONS":
            endpoint.respond(
                request,
                answer_to(request, 200, "OK", new_tag(), ("Allow", ALLOW), ("Accept", "application/sdp")),
            )
        else:
            endpoint.respond(
                request, answer_to(request, 405, "Method Not Allowed", new_tag(), ("Allow", ALLOW))
            )

    def _invite(
        self, invite: Request, source: HostPort, endpoint: SipEndpoint, call: GatewayCall | None
    ) -> None:
        if _to_tag(invite):
            # a re-INVITE: we hold no media to change, and for no dialog of ours it is 481 (§12.2.2)
            if call is not None and call.dialog is not None and call.dialog.matches(invite):
                endpoint.respond(invite, answer_to(invite, 488, "Not Acceptable Here", call.local_tag))
            else:
                endpoint.respond(invite, answer_to(invite, 481, "Call/Transaction Does Not Exist", new_tag()))
            return
        if call is not None or invite.call_id in self._records:
            endpoint.respond(invite, answer_to(invite, 482, "Loop Detected", new_tag()))  # §8.2.2.2
            return
        self._open_record(invite, source)
        endpoint.respond(invite, answer_to(invite, 100, "Trying", new_tag()))  # as Kore's gateway, at once
        self._new_call(invite, source, endpoint)

    def _new_call(self, invite: Request, source: HostPort, endpoint: SipEndpoint) -> None:
        did = uri_user(invite.uri)
        route = self.config.route(did)
        if route is None:
            self._refuse(invite, endpoint, 404, "Not Found", f"no DID matches {did!r}")
            return
        host = endpoint.local_address[0]
        with contextlib.ExitStack() as undo:  # what a refused INVITE must not leave open
            try:
                media = RtpSink(host)
            except OSError as error:  # out of ports or file descriptors: a busy gateway's answer
                self._refuse(invite, endpoint, 503, "Service Unavailable", f"no media port: {error.strerror}")
                return
            undo.callback(media.close)
            try:
                sdp = sdp_answer(invite.body, host, media.port)
            except NoAcceptableCodec as error:
                self._refuse(invite, endpoint, 488, "Not Acceptable Here", f"no acceptable codec: {error}")
                return
            session = KoreSession([{"name": name, "value": value} for name, value in invite.headers])
            undo.callback(session.close)
            record = self._records.get(invite.call_id)
            if record is not None:
                record.instance_session_id = session.instance_session_id

            async def bot(run: BotRun) -> BotRun:
                assert self._http is not None
                try:
                    return await run_bot(
                        session,
                        self.config.dialog(route.flow),
                        environment=self.config.environment,
                        http=self._http,
                        run=run,
                    )
                finally:
                    session.close()  # a script under way is stopped

            transport = ";transport=tcp" if endpoint.transport.reliable else ""
            try:
                call = GatewayCall(
                    invite,
                    endpoint,
                    caller=source,
                    contact=f"<sip:{uri_host(host)}:{endpoint.local_address[1]}{transport}>",
                    sdp=sdp,
                    media=media,
                    ring_seconds=self.config.ring_seconds,
                    run_bot=bot,
                    on_end=self._call_ended,
                )
            except DialogError as error:  # the rules let nothing through that cannot make a dialog
                self._refuse(invite, endpoint, 400, error.reason, f"refused: {error.reason}")
                return
            undo.pop_all()  # the call owns its media and its session now
        self._calls[invite.call_id] = call
        call.start()

    def _refuse(self, invite: Request, endpoint: SipEndpoint, status: int, reason: str, how: str) -> None:
        endpoint.respond(invite, answer_to(invite, status, reason, new_tag()))
        self._ended(invite.call_id, how)

    def _cancel(self, cancel: Request, endpoint: SipEndpoint, call: GatewayCall | None) -> None:
        """§9.2: a CANCEL for an INVITE still ringing ends it (487); after the final answer it
        changes nothing; for no INVITE at all it is 481."""
        invite = endpoint.layer.find(cancel.replacing(method="INVITE"), server=True)
        if invite is None:
            endpoint.respond(cancel, answer_to(cancel, 481, "Call/Transaction Does Not Exist", new_tag()))
            return
        tag = call.local_tag if call is not None else new_tag()
        endpoint.respond(cancel, answer_to(cancel, 200, "OK", tag))
        if call is not None:
            call.cancelled()

    # ------------------------------------------------------------------ the interaction record

    def _note(self, direction: Direction, message: Message) -> None:
        record = self._records.get(message.call_id)
        if record is not None:
            record.sip.append(_traced(direction, message))

    def _open_record(self, invite: Request, source: HostPort) -> None:
        """Start recording a call when its INVITE arrives, before any answer goes out."""
        self._records[invite.call_id] = Interaction(
            call_id=invite.call_id,
            contact_id=invite.headers.get("X-Amzn-ConnectContactId"),
            did=uri_user(invite.uri),
            source=f"{source[0]}:{source[1]}",
            started_at=time.time(),
            sip=[_traced("received", invite)],
        )

    def _call_ended(self, call: GatewayCall, how: str) -> None:
        record = self._records.get(call.call_id)
        if record is not None:
            record.rtp = call.media.count()
            if call.bot.results or call.bot.running is not None:  # the bot ran: how far it got
                record.nodes = call.bot.stopped(f"stopped: {how}")
                services = [node for node in record.nodes if node.kind == "service"]
                record.service_status = services[-1].http_status if services else None
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]  # copies of its requests are the transactions' to absorb
        self._ended(call.call_id, how)

    def _ended(self, call_id: str, how: str) -> None:
        record = self._records.pop(call_id, None)
        if record is None or record.ended:
            return
        record.ended = how
        record.ended_at = time.time()
        self.interactions.save(record)


def _to_tag(request: Request) -> str | None:
    try:
        return Address.parse(request.headers.get("To") or "").tag
    except FieldError:
        return None


def _traced(direction: Direction, message: Message) -> TracedMessage:
    return TracedMessage(direction, first_line(message), round(time.time(), 4))


def first_line(message: Message) -> str:
    if isinstance(message, Request):
        return f"{message.method} {message.uri} {message.version}"
    return f"{message.version} {message.status} {message.reason}"
