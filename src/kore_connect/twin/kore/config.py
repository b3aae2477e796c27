"""The local voice gateway's configuration: one YAML file, validated, with clear errors.

    listen: {host: 127.0.0.1, port: 5080, transports: [udp, tcp]}
    allow: [127.0.0.1, 10.0.0.0/8]          # source IPs/CIDRs; any other source gets 403
    dids:                                    # the Request-URI user; a trailing * is a wildcard,
      - {number: "+12065551118", flow: billing}   # the longest match wins
      - {number: "*", flow: default}             # default: the reference dialog
    flows:                                   # the bot's dialogs (see dialog_config.py)
      billing: {nodes: [{message: Hello}, {script: {snippet: agent_transfer_script}},
                        {service: {}}, {transfer: {}}]}
    metadata:
      url: http://127.0.0.1:3000/prod/kore-metadata
      token_env: KORE_CONNECT_API_TOKEN      # where the token is: a KORE_ environment variable,
      token_file: .kore-connect/api-token    # else this file (yours, mode 0600); never in this YAML
    ring_seconds: 0                          # how long it rings before answering
    interactions: .kore-connect/interactions.db

Every key is optional; without a file the gateway answers any DID from loopback with the
reference dialog, posting to the local API (`kore-connect serve api`) with its token.

The token is sent to `metadata.url`, which the YAML names too: so that a YAML from elsewhere cannot
send another secret there, `token_env` must name a `KORE_` variable (not AWS_SECRET_ACCESS_KEY), and
`token_file` must be a regular file of the user's with mode 0600: not a link, not another user's,
not one others may read (a 0644 ~/.aws/credentials).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kore_connect import config
from kore_connect.errors import ConfigError
from kore_connect.korebot.service_node import DEFAULT_TOKEN_VARIABLE, KoreConfigError, validate_api_url
from kore_connect.private_files import TRUSTED, UnsafePathError, read_private
from kore_connect.twin.kore.dialog import Dialog, default_dialog
from kore_connect.twin.kore.dialog_config import DEFAULT_FLOW, parse_flows

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_KNOWN = {"listen", "allow", "dids", "flows", "metadata", "ring_seconds", "interactions"}
TOKEN_ENV_NAME = re.compile(r"KORE_[A-Za-z0-9_]+")  # what metadata.token_env may name


@dataclass(frozen=True, slots=True)
class DidRoute:
    pattern: str  # "+12065551118", or "+1206*"
    flow: str

    def matches(self, number: str) -> bool:
        if self.pattern.endswith("*"):
            return number.startswith(self.pattern[:-1])
        return number == self.pattern


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 5080
    transports: tuple[str, ...] = ("udp", "tcp")
    allow: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.1/32"),)
    dids: tuple[DidRoute, ...] = (DidRoute("*", DEFAULT_FLOW),)
    flows: Mapping[str, Dialog] = field(default_factory=dict)  # besides the reference `default`
    metadata_url: str = "http://127.0.0.1:3000/prod/kore-metadata"
    token: str = field(default="", repr=False)
    ring_seconds: float = 0.0
    interactions: Path = Path(".kore-connect") / "interactions.db"

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allow)

    def route(self, number: str) -> DidRoute | None:
        """The DID route for `number`: the longest pattern that matches it."""
        matching = [d for d in self.dids if d.matches(number)]
        return max(
            matching,
            key=lambda d: len(d.pattern.rstrip("*")) + (0 if d.pattern.endswith("*") else 0.5),
            default=None,
        )

    def dialog(self, flow: str) -> Dialog:
        if flow in self.flows:
            return self.flows[flow]
        if flow == DEFAULT_FLOW:
            return default_dialog(self.metadata_url)
        raise KeyError(f"no flow named {flow!r}")

    @property
    def environment(self) -> dict[str, str]:
        """The bot's environment variables: the token the Service node sends."""
        return {DEFAULT_TOKEN_VARIABLE: self.token}

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Read and validate `path` (None: the defaults); raises ConfigError naming the bad key."""
        env = os.environ if env is None else env
        document: Any = {}
        if path is not None:
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
        where = str(path) if path else "the defaults"
        if not isinstance(document, dict):
            raise ConfigError(f"{where}: the configuration must be a mapping of keys")
        unknown = set(document) - _KNOWN
        if unknown:
            names, known = ", ".join(sorted(map(str, unknown))), ", ".join(sorted(_KNOWN))
            raise ConfigError(f"{where}: unknown key(s) {names} (known: {known})")
        listen = _mapping(document.get("listen", {}), "listen", where)
        metadata = _mapping(document.get("metadata", {}), "metadata", where)
        if "token" in metadata:
            raise ConfigError(
                f"{where}: metadata.token: never put the token in the file; use token_env or token_file"
            )
        try:
            url = validate_api_url(str(metadata.get("url", cls.metadata_url)))
        except KoreConfigError as exc:
            raise ConfigError(f"{where}: metadata.url: {exc}") from None
        flows = parse_flows(
            document.get("flows"),
            metadata_url=url,
            base=path.parent if path is not None else Path.cwd(),
            where=where,
        )
        dids = _dids(document.get("dids", [{"number": "*", "flow": DEFAULT_FLOW}]), where)
        for index, route in enumerate(dids):
            if route.flow != DEFAULT_FLOW and route.flow not in flows:
                known = ", ".join(sorted({DEFAULT_FLOW, *flows}))
                raise ConfigError(f"{where}: dids[{index}]: no flow named {route.flow!r} (known: {known})")
        return cls(
            host=str(listen.get("host", cls.host)),
            port=_port(listen.get("port", cls.port), where),
            transports=_transports(listen.get("transports", list(cls.transports)), where),
            allow=_networks(document.get("allow", ["127.0.0.1"]), where),
            dids=dids,
            flows=flows,
            metadata_url=url,
            token=_token(metadata, env, where),
            ring_seconds=_seconds(document.get("ring_seconds", 0), "ring_seconds", where),
            interactions=Path(str(document.get("interactions", cls.interactions))),
        )


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping")
    return value


def _port(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 65536:
        raise ConfigError(f"{where}: listen.port must be a port number (0-65535), found {value!r}")
    return value


def _transports(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(t not in ("udp", "tcp") for t in value):
        raise ConfigError(f"{where}: listen.transports must list udp and/or tcp, found {value!r}")
    return tuple(dict.fromkeys(value))


def _networks(value: Any, where: str) -> tuple[Network, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: allow must list IP addresses or CIDRs")
    networks = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ConfigError(f"{where}: allow: {item!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _dids(value: Any, where: str) -> tuple[DidRoute, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: dids must list {{number, flow}} entries")
    routes = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("number"), str) or not item["number"]:
            raise ConfigError(f"{where}: dids[{index}] needs a number (a trailing * is a wildcard)")
        if "*" in item["number"][:-1]:
            raise ConfigError(f"{where}: dids[{index}]: a wildcard may only end a number")
        flow = item.get("flow", DEFAULT_FLOW)
        if not isinstance(flow, str) or not flow:
            raise ConfigError(f"{where}: dids[{index}].flow must name a flow")
        routes.append(DidRoute(item["number"], flow))
    return tuple(routes)


def _seconds(value: Any, key: str, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 600:
        raise ConfigError(f"{where}: {key} must be a number of seconds from 0 to 600")
    return float(value)


def _token(metadata: Mapping[str, Any], env: Mapping[str, str], where: str) -> str:
    variable = metadata.get("token_env", config.LOCAL_API_TOKEN)
    if not isinstance(variable, str) or not TOKEN_ENV_NAME.fullmatch(variable):
        raise ConfigError(
            f"{where}: metadata.token_env: {variable!r} is not a KORE_ variable: the token is sent to "
            f"metadata.url, so token_env must name a variable whose name starts with KORE_ (letters, "
            f"digits, _), such as {config.LOCAL_API_TOKEN}"
        )
    if env.get(variable):
        return env[variable]
    path = Path(str(metadata.get("token_file", config.DEFAULT_LOCAL_TOKEN_FILE)))
    try:
        token = read_private(path).decode("utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: no token: set {variable} or create {path} (kore-connect serve api makes one)"
        ) from None
    except UnsafePathError as exc:
        raise ConfigError(
            f"{where}: metadata.token_file: {exc}: the token is sent to metadata.url, so the token file "
            f"must be {TRUSTED}"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name, or not UTF-8
        raise ConfigError(f"{where}: metadata.token_file: cannot read {path}: {exc}") from None
    if not token:
        raise ConfigError(f"{where}: {path} is empty")
    return token
