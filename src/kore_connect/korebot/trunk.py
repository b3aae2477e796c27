"""The Kore side of the SIP trunk from Amazon Connect's external voice transfer connector: what
Kore's CCAI (Contact Center AI) SIP configuration must hold for Connect's INVITEs to be accepted
(`kore-connect kore-config --did ... --connector-address ...`).

Kore accepts an INVITE only from an allow-listed address and for a configured DID attached to a
Start Flow; a missing allow-list entry makes Kore refuse every INVITE, the likeliest first-call
failure. Kore's guide asks for "the IP address provided by Amazon Connect": the addresses the
connector calls from (docs/setup.md says where to find them). With encryption disabled, as Kore's
integration guide asks, the connector speaks SIP over UDP or TCP on port 5060.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from kore_connect.contactflow.model import Flow
from kore_connect.contactflow.render import sip_user_problem
from kore_connect.errors import KoreConnectError

SIP_PORT = 5060  # the connector's, with encryption disabled (TLS, when enabled, is 5061)
AGENT_TRANSFER = {"type": "SIP Transfer", "method": "SIP BYE"}
_HOST_PORT = re.compile(r"(?P<host>[^\[\]]+?|\[[0-9a-fA-F:.]+\])(?::(?P<port>[0-9]{1,5}))?")


class TrunkError(KoreConnectError):
    """A trunk setting that cannot be right; `option` names the flag."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SipTrunk:
    did: str | None  # None: not given yet
    addresses: tuple[str, ...]  # where the connector calls from (IP, IP:port, or a CIDR range)
    transport: str = "UDP"

    @classmethod
    def of(cls, did: str | None, addresses: list[str], transport: str) -> SipTrunk:
        problem = sip_user_problem(did) if did is not None else None
        if problem is not None:
            raise TrunkError("--did", problem)
        if transport.upper() not in ("UDP", "TCP"):
            raise TrunkError(
                "--transport", f"{transport!r}: the connector speaks UDP or TCP with encryption off"
            )
        return cls(did, tuple(check_address(a) for a in addresses), transport.upper())

    def to_json(self) -> dict[str, Any]:
        return {
            "allowList": list(self.addresses),
            "did": self.did,
            "transport": self.transport,
            "port": SIP_PORT,
            "didAttachedTo": "the Start Flow (section 1)",
            "agentTransfer": dict(AGENT_TRANSFER),
        }


def check_address(text: str) -> str:
    """An address Connect's connector calls from: an IP address (with a port or not) or a CIDR range."""
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError:
            raise TrunkError(
                "--connector-address", f"{text!r} is not a CIDR range (such as 3.80.16.0/23)"
            ) from None
    found = _HOST_PORT.fullmatch(text.strip())
    host = found["host"].strip("[]") if found else ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise TrunkError(
            "--connector-address",
            f"{text!r} is not an IP address (with :PORT or not) or a CIDR range",
        ) from None
    if found and found["port"] is not None and not 0 < int(found["port"]) < 65536:
        raise TrunkError("--connector-address", f"{text!r}: the port must be 1 to 65535")
    return text.strip()


def flow_dids(flow: Flow) -> list[str]:
    """The users a flow's external voice transfers call (their ToUser), in the flow's order."""
    dids = []
    for action in flow.actions.values():
        connector = action.parameters.get("VoiceConnector")
        if str(action.type) == "TransferParticipantToThirdParty" and isinstance(connector, dict):
            to_user = connector.get("ToUser")
            if isinstance(to_user, str) and to_user not in dids:
                dids.append(to_user)
    return dids
