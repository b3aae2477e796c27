"""Amazon Connect's external voice connector, as a SIP client (our `twin/sip` stack, through
`sip_call.TransferCall`): what `TransferParticipantToThirdParty` does on the wire.

How it works. Each transfer places one call from a fresh local port: an INVITE to the voice
gateway configured for the flow's connector ARN, with the Request-URI and To user from `ToUser`,
the From user from `FromUser`, the X-Amzn-* headers Connect sends (and `User-to-User` as
`<hex>;encoding=hex` when the flow sets it), and an SDP offer of PCMU, PCMA and telephone-event.
Then, as Connect does (REFERENCE.md §2):
- answered, and later a BYE from the far end: 200 OK, and the flow may resume;
- a 4xx/5xx/6xx final answer, or a transport failure: CallFailed;
- no answer within the time limit: CANCEL, and ConnectionTimeLimitExceeded;
- the caller hangs up while transferred (simulated after `caller_hangs_up_after` seconds): BYE to
  the far end, and the contact ends.
Every SIP message sent and received is kept, in order, for the contact's trace.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from kore_connect.aws_events import LOCAL_ACCOUNT
from kore_connect.twin.connect.collaborators import TransferOutcome, TransferRequest, TransferResult
from kore_connect.twin.connect.contact import Contact
from kore_connect.twin.connect.sip_call import TransferCall

LONGEST_CALL_SECONDS = 3600.0  # a transferred call the far end never ends is dropped after this


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where a connector's calls go: the voice gateway's address and transport."""

    host: str
    port: int
    transport: Literal["udp", "tcp"] = "udp"


class SipConnector:
    """A `ThirdPartyTransfer` for the interpreter: places the transfer as a real SIP call."""

    def __init__(
        self,
        gateways: Mapping[str, Gateway] | Gateway,
        *,
        local_host: str | None = None,
        account_id: str = LOCAL_ACCOUNT,
        caller_hangs_up_after: float | None = None,
        max_call_seconds: float = LONGEST_CALL_SECONDS,
    ) -> None:
        self.gateways = gateways
        self.local_host = local_host  # None: the address the system routes to the gateway from
        self.account_id = account_id
        self.caller_hangs_up_after = caller_hangs_up_after
        self.max_call_seconds = max_call_seconds

    def gateway_for(self, connector_arn: str) -> Gateway | None:
        if isinstance(self.gateways, Gateway):
            return self.gateways
        return self.gateways.get(connector_arn)

    async def __call__(self, contact: Contact, request: TransferRequest) -> TransferResult:
        gateway = self.gateway_for(request.connector_arn)
        if gateway is None:
            return TransferResult(
                TransferOutcome.FAILED, f"no voice gateway is configured for {request.connector_arn}"
            )
        call = TransferCall(self, contact, request, gateway)
        try:
            return await call.place()
        finally:
            await call.close()

    def headers(self, contact: Contact, request: TransferRequest) -> dict[str, str]:
        """The headers Connect adds to its INVITE (observed in practice; REFERENCE.md §2)."""
        headers = {
            "X-Amzn-ConnectContactId": contact.contact_id,
            "X-Amzn-ConnectInitialContactId": contact.initial_contact_id,
            "X-Amzn-SourceAccount": self.account_id,
            "X-Amzn-SourceArn": contact.instance_arn,
            "X-Amzn-TargetArn": request.connector_arn,
        }
        if request.user_to_user is not None:
            encoded = binascii.hexlify(request.user_to_user.encode("utf-8")).decode("ascii")
            headers["User-to-User"] = f"{encoded};encoding=hex"
        return headers
