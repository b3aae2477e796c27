"""The whole call path on one machine, in one event loop: the local API (API Gateway, the TOKEN
authorizer and the store function on the session store: SQLite, or DynamoDB on a local server),
the Kore voice gateway with the default bot, and Amazon Connect running the default flow
(`kore-connect flow`'s output) whose connector points at that gateway. `call` places one call
through all of it and reports what each part did.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kore_connect.aws_events import LOCAL_ACCOUNT, LOCAL_INSTANCE_ARN, LOCAL_REGION
from kore_connect.contactflow.model import Flow
from kore_connect.contactflow.render import FlowOptions, flow_json, render_flow
from kore_connect.private_files import private_folder, write_private
from kore_connect.sessions.base import SessionStore
from kore_connect.stack import RESOURCE_PATH, RETRIEVE_FUNCTION
from kore_connect.twin.connect.connector import Gateway
from kore_connect.twin.connect.lambdas import LocalLambdas
from kore_connect.twin.connect.local import (
    LocalContactSettings,
    invoked_functions,
    run_contact,
    template_functions,
)
from kore_connect.twin.kore.interactions import InteractionStore
from kore_connect.twin.local.api_token import TOKEN_VARIABLE
from kore_connect.twin.local.call_log import CallLog
from kore_connect.twin.local.parts import LISTENING, Part, free_port
from kore_connect.twin.local.report import CallReport, report_contact
from kore_connect.twin.local.store import LocalStore

DEFAULT_DID = "+12065551118"  # the Kore DID the default flow transfers to
DEFAULT_CALLER = "+14155550123"
PHONE_NUMBER = re.compile(r"\+?[0-9]{3,15}")  # what a caller or a DID may be here (E.164, the + optional)
CONNECTOR_ARN = f"arn:aws:chime:{LOCAL_REGION}:{LOCAL_ACCOUNT}:vc/korelocal"
QUEUE_ARN = f"{LOCAL_INSTANCE_ARN}/queue/00000000-0000-4000-8000-00000000b10c"
RETRIEVE_ARN = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{RETRIEVE_FUNCTION}"
_READY = {  # the log line that says a part is ready
    "metadata API": re.compile(re.escape(LISTENING)),
    "Kore gateway": re.compile(r"sip:([0-9.]+):([0-9]+);transport=tcp"),  # the last transport it opens
}
GATEWAY_TRANSPORTS = ["udp", "tcp"]  # on one port, as `serve gateway` listens by default
# Each function's containers, all started before the twin says it is ready: a burst of calls then
# never waits for a cold start of ours (seconds here, a fraction of one in AWS; the flow's limit
# does not count it, but the caller would wait). Four: more workers than two cores only add contention.
WARM_CONTAINERS = 4
# A transferred call the gateway never ends (it died mid-call: over UDP nothing says so) is hung up
# by Connect's side after this long; Connect itself would notice the media stop, which we have none of.
MAX_CALL_SECONDS = 300.0  # longer than a BYE's transaction (64*T1): it is saved then at the latest


@dataclass(frozen=True)
class TwinPaths:
    """Where the twin keeps its state: the session store, the Kore interactions, the functions' log."""

    home: Path

    @property
    def store(self) -> Path:
        return self.home / "sessions.db"

    @property
    def interactions(self) -> Path:
        return self.home / "interactions.db"

    @property
    def log(self) -> Path:
        return self.home / "functions.log"

    @property
    def calls(self) -> Path:
        return self.home / "calls.db"


def default_flow(did: str = DEFAULT_DID) -> Flow:
    """The flow `kore-connect flow` renders, transferring to `did` on the local connector."""
    options = FlowOptions(
        connector_arn=CONNECTOR_ARN, to_user=did, retrieve_function_arn=RETRIEVE_ARN, queue_arn=QUEUE_ARN
    )
    return Flow.loads(flow_json(render_flow(options)).encode("utf-8"))


class LocalTwin:
    """Start with `async with LocalTwin(...)`; then `await twin.call()` as often as wanted.

    The metadata API and the Kore gateway run in processes of their own (`kore-connect serve api`,
    `kore-connect serve gateway`), as the real systems are apart; Connect's side (the flow, its
    connector and the retrieve function's workers) runs in ours."""

    def __init__(
        self,
        home: Path,
        *,
        token: str,
        did: str = DEFAULT_DID,
        api_port: int = 0,
        sip_port: int = 0,
        max_call_seconds: float = MAX_CALL_SECONDS,
        store: LocalStore | None = None,
    ) -> None:
        self.paths = TwinPaths(home)
        self.store = store or LocalStore(self.paths.store)  # default: SQLite, in home
        self.max_call_seconds = max_call_seconds
        self.did = did
        self._token = token
        self._api_port = api_port
        self._sip_port = sip_port
        self._flows: dict[str, Flow] = {did: default_flow(did)}
        self._parts: list[Part] = []
        self._arguments: dict[str, list[str]] = {}  # each part's command line, to restart it
        self._lambdas: LocalLambdas | None = None
        self._store: SessionStore | None = None
        self._interactions: InteractionStore | None = None
        self.calls: CallLog | None = None
        self.api_url = ""
        self.sip_address: tuple[str, int] = ("127.0.0.1", 0)

    async def __aenter__(self) -> LocalTwin:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        home = self.paths.home
        # Its folder and files first, before any process starts: a link among them is refused
        # (UnsafePathError); the parts' logs are checked likewise as they are opened.
        private_folder(home)
        secret = {TOKEN_VARIABLE: self._token}  # in the environment: never on a command line
        self._store = await asyncio.to_thread(self.store.open)  # first: it creates a DynamoDB table
        api_port = self._api_port or free_port()
        self.api_url = f"http://127.0.0.1:{api_port}/prod{RESOURCE_PATH}"
        gateway_config = {
            "listen": {"host": "127.0.0.1", "port": self._sip_port, "transports": GATEWAY_TRANSPORTS},
            "dids": [{"number": self.did, "flow": "default"}],
            "metadata": {"url": self.api_url, "token_env": TOKEN_VARIABLE},
            "interactions": str(self.paths.interactions),
        }
        write_private(home / "gateway.yaml", json.dumps(gateway_config).encode())
        self._interactions = InteractionStore(self.paths.interactions)
        self.calls = CallLog(self.paths.calls)
        api_arguments = [
            "serve",
            "api",
            "--port",
            str(api_port),
            *self.store.command_line(),
            "--containers",
            str(WARM_CONTAINERS),
            "--max-containers",
            str(WARM_CONTAINERS),
        ]
        api = Part("metadata API", api_arguments, home / "api.log", secret)
        self._parts.append(api)
        gateway_arguments = ["serve", "gateway", "--config", str(home / "gateway.yaml")]
        gateway = Part("Kore gateway", gateway_arguments, home / "gateway.log", secret)
        self._parts.append(gateway)
        self._lambdas = LocalLambdas(
            template_functions(self.store, log_path=self.paths.log),
            containers=WARM_CONTAINERS,
            max_containers=WARM_CONTAINERS,
        )
        self._arguments = {api.name: api_arguments, gateway.name: list(gateway_arguments)}
        # Connect's functions start here while the API and the gateway start in theirs.
        warming = asyncio.ensure_future(self._lambdas.warm(invoked_functions(self._flows.values())))
        try:
            await api.ready(_READY[api.name])
            found = await gateway.ready(_READY[gateway.name])
        finally:
            await warming
        self.sip_address = (found.group(1), int(found.group(2)))
        # a restarted gateway comes back on the same port, where Connect's flow sends its calls
        self._arguments[gateway.name] += ["--port", str(self.sip_address[1])]

    def pid(self, name: str) -> int:
        """The process ID of the part `name` ("metadata API", "Kore gateway"), for measurements."""
        return next(part.process.pid for part in self._parts if part.name == name)

    async def restart(self, name: str) -> None:
        """Start the part `name` ("metadata API", "Kore gateway") again, as after a crash."""
        part = next(part for part in self._parts if part.name == name)
        part.restart(self._arguments[name])
        await part.ready(_READY[name])

    async def stop(self) -> None:
        if self._lambdas is not None:
            await self._lambdas.close()
        await asyncio.gather(*(part.stop() for part in self._parts))
        for closable in (self._store, self._interactions, self.calls):
            if closable is not None:
                closable.close()

    async def call(
        self,
        caller: str = DEFAULT_CALLER,
        did: str | None = None,
        flow: Flow | None = None,
        *,
        through: Gateway | None = None,
        caller_hangs_up_after: float | None = None,
    ) -> CallReport:
        """One call through the whole path; the report of what each part did. `flow`: an
        exported flow to run instead of the default one (its transfers go to the local gateway).
        `through`: where Connect's connector sends the call instead of the gateway itself (a proxy
        in front of it, as an SBC is); `caller_hangs_up_after`: seconds after the transfer is
        answered at which the caller hangs up (None: the bot ends the call)."""
        assert self._lambdas is not None and self._store is not None and self.calls is not None, "not started"
        did = did or self.did
        if flow is None:
            flow = self._flows.get(did) or self._flows.setdefault(did, default_flow(did))
        contact_id = str(uuid.uuid4())
        settings = LocalContactSettings(
            gateway=through or Gateway(*self.sip_address, "udp"),
            caller=caller,
            caller_hangs_up_after=caller_hangs_up_after,
            store=self.store,
            contact_id=contact_id,
            local_host="127.0.0.1",
            max_call_seconds=self.max_call_seconds,
        )
        started = time.monotonic()
        contact = await run_contact(flow, settings, self._lambdas)
        assert self._interactions is not None
        report = await report_contact(
            contact, did=did, store=self._store, interactions=self._interactions, started=started
        )
        self.calls.add(report)
        return report
