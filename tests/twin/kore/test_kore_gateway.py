"""The local Kore voice gateway over real SIP: SIPp plays Amazon Connect's connector, the bot posts
to the real served API, and the metadata the flow reads back is what the Service node sent."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kore_connect import config
from kore_connect.aws_events import contact_flow_event
from kore_connect.bridge import container
from kore_connect.bridge.retrieve import lambda_handler as retrieve
from kore_connect.errors import ConfigError
from kore_connect.twin.kore import call as call_module
from kore_connect.twin.kore.config import DidRoute, GatewayConfig
from kore_connect.twin.kore.gateway import KoreGateway
from kore_connect.twin.kore.interactions import Interaction
from tests.conftest import REPO, context
from tests.peers import peer
from tests.servers import serving, serving_metadata_api

SCENARIOS = REPO / "tests" / "sipp"
TOKEN = "gateway-test-token-0123456789"
DID = "+12065551118"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    database = tmp_path_factory.mktemp("gateway") / "sessions.db"
    with serving_metadata_api(database, TOKEN) as base:
        yield f"{base}/prod/kore-metadata", database


def gateway_config(tmp_path: Path, url: str, **changes: Any) -> GatewayConfig:
    values: dict[str, Any] = {
        "port": 0,
        "transports": ("udp", "tcp"),
        "dids": (DidRoute(DID, "default"), DidRoute("+1206*", "default")),
        "metadata_url": url,
        "token": TOKEN,
        "interactions": tmp_path / "interactions.db",
    }
    values.update(changes)
    return GatewayConfig(**values)


def call(
    settings: GatewayConfig,
    scenario: str,
    *,
    did: str = DID,
    contact_id: str | None = None,
    transport: str = "udp",
    source: str = "127.0.0.1",
    scenario_path: Path | None = None,
    sipp_options: tuple[str, ...] = (),
) -> tuple[int, str, list[Interaction]]:
    """One SIPp call to a gateway started for it; SIPp's exit code and stderr, and the interactions."""
    sipp = peer("sipp")

    async def scenario_run() -> tuple[int, str, list[Interaction]]:
        gateway = KoreGateway(settings)
        await gateway.start()
        try:
            port = gateway.addresses[transport][1]
            command = [sipp, f"127.0.0.1:{port}", "-sf", str(scenario_path or SCENARIOS / f"{scenario}.xml")]
            command += ["-s", did, "-key", "contact", contact_id or str(uuid.uuid4()), "-m", "1"]
            command += [
                "-i",
                source,
                "-t",
                "u1" if transport == "udp" else "t1",
                "-nostdin",
                "-timeout",
                "20s",
                *sipp_options,
            ]
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
            try:
                _, err = await asyncio.wait_for(process.communicate(), 60)
            except TimeoutError:
                process.kill()
                pytest.fail("SIPp still ran after 60 s")
            await asyncio.sleep(0.1)  # the gateway records the end of the call
            assert_nothing_left(gateway)
            return process.returncode or 0, err.decode(errors="replace"), gateway.interactions.all()
        finally:
            await gateway.stop()

    return asyncio.run(scenario_run())


def assert_nothing_left(gateway: KoreGateway) -> None:
    """Once its calls are over, the gateway holds no call, no unsaved interaction, and resends nothing."""
    assert gateway.held() == []


def refused_scenario(tmp_path: Path, code: str, *, sdp_codecs: str | None = None) -> Path:
    text = (SCENARIOS / "connect_refused.xml").read_text().replace('response="403"', f'response="{code}"')
    if sdp_codecs is not None:
        text = text.replace(
            "m=audio [media_port] RTP/AVP 0 8 101", f"m=audio [media_port] RTP/AVP {sdp_codecs}"
        )
        text = text.replace("a=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n", "a=rtpmap:18 G729/8000\n")
    path = tmp_path / f"connect_refused_{code}.xml"
    path.write_text(text)
    return path


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_connects_call_ends_with_the_bots_bye_and_its_metadata_in_the_store(
    tmp_path: Path, api: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    url, database = api
    contact_id = str(uuid.uuid4())
    # WHEN Connect's connector (SIPp) calls the gateway's DID with the contact ID in its INVITE
    code, err, interactions = call(
        gateway_config(tmp_path, url), "connect_to_kore", contact_id=contact_id, transport=transport
    )
    # THEN the call went INVITE -> 200 -> ACK -> the gateway's BYE -> 200
    assert code == 0, err
    (interaction,) = interactions
    assert interaction.contact_id == contact_id and interaction.did == DID
    assert interaction.ended == "agent transfer (SIP BYE, answered 200)" and interaction.service_status == 200
    assert [n.status for n in interaction.nodes] == ["ok"] * 5
    # AND the metadata for that contact is in the store, exactly as the Service node sent it
    monkeypatch.setenv(config.SESSION_BACKEND, "sqlite")
    monkeypatch.setenv(config.SQLITE_PATH, str(database))
    container.reset()
    answer = retrieve(contact_flow_event(contact_id), context("retrieve"))
    assert answer["statusCode"] == 200
    metadata = json.loads(answer["body"])
    assert metadata["x_metadata"] == f"Hello from Kore for contact {contact_id}"
    # the instance session ID of this call's own Kore session, which the interaction records
    assert metadata["kore-instanceSessionId"] == interaction.instance_session_id
    assert len(interaction.instance_session_id) == 24


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_source_not_allow_listed_gets_403_and_nothing_happens(
    tmp_path: Path, api: tuple[str, Path], transport: str
) -> None:
    url, _ = api
    code, err, interactions = call(
        gateway_config(tmp_path, url),
        "",
        source="127.0.0.2",
        scenario_path=refused_scenario(tmp_path, "403"),
        transport=transport,
    )
    assert code == 0, err
    assert interactions == []  # no call was set up, nothing recorded


@pytest.mark.sipp
def test_an_unknown_did_gets_404(tmp_path: Path, api: tuple[str, Path]) -> None:
    url, _ = api
    code, err, interactions = call(
        gateway_config(tmp_path, url), "", did="+19995550100", scenario_path=refused_scenario(tmp_path, "404")
    )
    assert code == 0, err
    (interaction,) = interactions
    assert interaction.ended.startswith("no DID matches")


@pytest.mark.sipp
def test_no_acceptable_codec_gets_488(tmp_path: Path, api: tuple[str, Path]) -> None:
    url, _ = api
    scenario = refused_scenario(tmp_path, "488", sdp_codecs="18")
    code, err, interactions = call(gateway_config(tmp_path, url), "", scenario_path=scenario)
    assert code == 0, err
    assert interactions[0].ended.startswith("no acceptable codec")


def test_the_longest_did_pattern_wins() -> None:
    settings = GatewayConfig(
        dids=(DidRoute("+1*", "default"), DidRoute("+1206*", "default"), DidRoute(DID, "default"))
    )
    assert settings.route(DID) == DidRoute(DID, "default")
    assert settings.route("+12065550000") == DidRoute("+1206*", "default")
    assert settings.route("+13105550000") == DidRoute("+1*", "default")
    assert settings.route("+44") is None


def test_the_configuration_file_is_validated_with_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    env = {"KORE_CONNECT_API_TOKEN": TOKEN}
    path.write_text("listen: {port: 5099}\nallow: [127.0.0.1, 10.0.0.0/8]\ndids: [{number: '+1206*'}]\n")
    loaded = GatewayConfig.load(path, env)
    assert loaded.port == 5099 and loaded.allowed("10.1.2.3") and not loaded.allowed("192.168.0.1")
    assert loaded.token == TOKEN and "token" not in repr(loaded).lower().replace("token=", "")
    for text, message in [
        ("listen: {port: 70000}", "listen.port"),
        ("allow: [not-an-ip]", "not an IP address or CIDR"),
        ("dids: [{number: '+1*2'}]", "a wildcard may only end a number"),
        ("metadata: {token: secret-in-the-file}", "never put the token in the file"),
        ("metadata: {url: 'http://example.com/prod/kore-metadata'}", "metadata.url"),
        ("colour: blue", "unknown key(s) colour"),
        ("listen: [1, 2]", "listen must be a mapping"),
        ("ring_seconds: -1", "ring_seconds"),
        (": : :", "not valid YAML"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            GatewayConfig.load(path, env)
        assert message in str(raised.value), text


def test_the_token_comes_only_from_a_kore_variable_or_a_private_token_file(tmp_path: Path) -> None:
    # GIVEN a gateway YAML from elsewhere: it names the URL the token is sent to, and where the
    # token is; the user's environment and home hold other secrets
    path = tmp_path / "gateway.yaml"
    env = {"AWS_SECRET_ACCESS_KEY": "aws-secret-that-must-stay-here", "KORE_BOT_TOKEN": TOKEN}
    private = tmp_path / ".kore-connect" / "api-token"
    private.parent.mkdir()
    private.write_text(TOKEN + "\n")
    private.chmod(0o600)
    credentials = tmp_path / "credentials"  # as ~/.aws/credentials often is
    credentials.write_text("[default]\naws_secret_access_key = aws-secret-that-must-stay-here\n")
    (tmp_path / "link").symlink_to(private)
    # THEN a KORE_ variable or the user's own 0600 file is taken
    for metadata in ("{token_env: KORE_BOT_TOKEN}", f"{{token_env: KORE_UNSET, token_file: '{private}'}}"):
        path.write_text(f"metadata: {metadata}\n")
        assert GatewayConfig.load(path, env).token == TOKEN
    # AND anything else is a configuration error naming the key and the rule
    for metadata, message in [
        (
            "{token_env: AWS_SECRET_ACCESS_KEY}",
            "metadata.token_env: 'AWS_SECRET_ACCESS_KEY' is not a KORE_ variable: the token is sent to "
            "metadata.url, so token_env must name a variable whose name starts with KORE_",
        ),
        ("{token_env: [KORE_BOT_TOKEN]}", "metadata.token_env: ['KORE_BOT_TOKEN'] is not a KORE_ variable"),
        (
            f"{{token_env: KORE_UNSET, token_file: '{credentials}'}}",
            f"metadata.token_file: {credentials}: others may read or write it (mode 0644): the token is "
            "sent to metadata.url, so the token file must be a regular file of yours with mode 0600",
        ),
        (
            f"{{token_env: KORE_UNSET, token_file: '{tmp_path / 'link'}'}}",
            f"metadata.token_file: {tmp_path / 'link'}: a symbolic link",
        ),
        (
            f"{{token_env: KORE_UNSET, token_file: '{tmp_path}'}}",
            f"metadata.token_file: {tmp_path}: not a regular file",
        ),
    ]:
        path.write_text(f"metadata: {metadata}\n")
        with pytest.raises(ConfigError) as raised:
            GatewayConfig.load(path, env)
        assert str(raised.value).startswith(f"{path}: {message}"), str(raised.value)
        assert "aws-secret" not in str(raised.value)


def test_without_a_token_anywhere_the_gateway_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .kore-connect/api-token here
    with pytest.raises(ConfigError, match="no token: set KORE_CONNECT_API_TOKEN or create"):
        GatewayConfig.load(None, {})


@pytest.mark.sipp
def test_serve_gateway_answers_connects_call_and_stops_on_ctrl_c(
    tmp_path: Path, api: tuple[str, Path]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.peers import free_port

    url, _ = api
    port = free_port()
    (tmp_path / "gateway.yaml").write_text(
        f"listen: {{port: {port}, transports: [udp]}}\nmetadata: {{url: '{url}'}}\n"
        f"interactions: {tmp_path / 'interactions.db'}\n"
    )
    command = [
        str(Path(sys.executable).parent / "kore-connect"),
        "serve",
        "gateway",
        "--config",
        "gateway.yaml",
    ]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "KORE_CONNECT_API_TOKEN": TOKEN},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        assert "Kore voice gateway: sip:127.0.0.1" in server.stderr.readline()
        sipp = peer("sipp")
        result = subprocess.run(
            [
                sipp,
                f"127.0.0.1:{port}",
                "-sf",
                str(SCENARIOS / "connect_to_kore.xml"),
                "-s",
                DID,
                "-key",
                "contact",
                str(uuid.uuid4()),
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-nostdin",
                "-timeout",
                "20s",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert server.returncode == 0


def test_serve_gateway_refuses_a_bad_configuration_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text("allow: [nowhere]\n")
    command = [str(Path(sys.executable).parent / "kore-connect"), "serve", "gateway", "--config", "bad.yaml"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "not an IP address or CIDR" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.sipp
def test_a_cancel_while_ringing_ends_the_call_before_the_bot_runs(
    tmp_path: Path, api: tuple[str, Path]
) -> None:
    url, _ = api
    settings = gateway_config(tmp_path, url, ring_seconds=2.0)
    code, err, interactions = call(settings, "connect_cancels")
    assert code == 0, err  # SIPp got 200 for its CANCEL and 487 for its INVITE
    (interaction,) = interactions
    assert interaction.ended == "cancelled by the caller"
    assert interaction.nodes == []  # the bot never ran
    sent = [m.first_line for m in interaction.sip if m.direction == "sent"]
    assert "SIP/2.0 200 OK" not in sent[:1]  # no answer went out before the CANCEL


@pytest.mark.sipp
@pytest.mark.parametrize(
    ("scenario", "options"), [("connect_hangs_up", ()), ("caller_bye_retransmitted", ("-nr",))]
)
def test_a_caller_who_hangs_up_mid_dialog_stops_the_bot(
    tmp_path: Path, scenario: str, options: tuple[str, ...]
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def slow_store(request: Any) -> JSONResponse:  # the metadata endpoint, taking its time
        await asyncio.sleep(3)
        return JSONResponse({"message": "Metadata stored"})

    slow = Starlette(routes=[Route("/prod/kore-metadata", slow_store, methods=["POST"])])
    with serving(slow) as base:
        code, err, interactions = call(
            gateway_config(tmp_path, f"{base}/prod/kore-metadata"), scenario, sipp_options=options
        )
    assert code == 0, err  # the gateway answered the caller's BYE with 200 (each copy of it too)
    (interaction,) = interactions
    assert interaction.ended == "the caller hung up"
    # the bot was stopped mid-dialog, in its service call, and the gateway sent no BYE of its own
    assert [(n.node, n.status) for n in interaction.nodes] == [
        ("Start Flow script", "ok"),
        ("greeting", "ok"),
        ("find the contact ID", "ok"),
        ("send the metadata", "stopped"),
    ]
    assert interaction.nodes[-1].detail == "stopped: the caller hung up"
    assert interaction.service_status is None  # it never answered
    assert not any(m.direction == "sent" and m.first_line.startswith("BYE") for m in interaction.sip)


@pytest.mark.sipp
def test_an_options_ping_is_answered(tmp_path: Path, api: tuple[str, Path]) -> None:
    url, _ = api
    code, err, interactions = call(gateway_config(tmp_path, url), "options_ping")
    assert code == 0, err
    assert interactions == []


def sent_lines(interaction: Interaction, start: str) -> list[str]:
    sent = [m.first_line for m in interaction.sip if m.direction == "sent"]
    return [line for line in sent if line.startswith(start)]


@pytest.mark.sipp
def test_udp_retransmissions_are_absorbed_and_made_as_rfc_3261_says(
    tmp_path: Path, api: tuple[str, Path]
) -> None:
    url, _ = api
    # WHEN the connector sends its INVITE twice, ACKs the 200 late and answers the BYE late
    code, err, interactions = call(
        gateway_config(tmp_path, url, ring_seconds=1.0), "retransmissions", sipp_options=("-nr",)
    )
    assert code == 0, err
    # THEN the copy of the INVITE started no second call: one interaction, the bot ran once
    (interaction,) = interactions
    assert interaction.ended == "agent transfer (SIP BYE, answered 200)" and interaction.service_status == 200
    assert len(interaction.nodes) == 5
    received = [m.first_line for m in interaction.sip if m.direction == "received"]
    assert sum(line.startswith("INVITE") for line in received) == 2
    # AND the copy was answered with the last response sent before it (the 180), not a new 100
    assert sent_lines(interaction, "SIP/2.0 180") == ["SIP/2.0 180 Ringing"] * 2, interaction.sip
    assert len(sent_lines(interaction, "SIP/2.0 100")) == 1
    # AND the 200 went out again until the late ACK, and the BYE again until its late 200
    assert len(sent_lines(interaction, "SIP/2.0 200")) >= 2
    assert len(sent_lines(interaction, "BYE ")) >= 2


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_malformed_requests_get_400_or_are_dropped_and_the_gateway_goes_on(
    tmp_path: Path, api: tuple[str, Path], transport: str
) -> None:
    url, _ = api
    contact_id = str(uuid.uuid4())
    code, err, interactions = call(
        gateway_config(tmp_path, url), "malformed", contact_id=contact_id, transport=transport
    )
    assert code == 0, err  # SIPp checked each 400's reason phrase, then a sound call went through
    (interaction,) = interactions  # none of the malformed requests opened a call
    assert interaction.contact_id == contact_id
    assert interaction.ended == "agent transfer (SIP BYE, answered 200)"


@pytest.mark.sipp
def test_a_flow_from_the_yaml_answers_its_did_and_its_bye_carries_the_transfer_headers(
    tmp_path: Path, api: tuple[str, Path]
) -> None:
    url, _ = api
    (tmp_path / "gateway.yaml").write_text(
        f"metadata: {{url: '{url}'}}\n"
        "dids: [{number: '+1206555*', flow: billing}]\n"
        "flows:\n"
        "  billing:\n"
        "    nodes:\n"
        "      - message: Billing here.\n"
        "      - script: {snippet: agent_transfer_script}\n"
        "      - service: {}\n"
        "      - transfer: {bye_headers: {X-Kore-Reason: billing}}\n"
    )
    settings = dataclasses.replace(
        GatewayConfig.load(tmp_path / "gateway.yaml", {"KORE_CONNECT_API_TOKEN": TOKEN}),
        port=0,
        interactions=tmp_path / "interactions.db",
    )
    # SIPp checks the header on the gateway's BYE (check_it: the call fails without it)
    check = (
        '<recv request="BYE"><action><ereg regexp="^ *billing$" search_in="hdr" header="X-Kore-Reason:" '
        'check_it="true" assign_to="reason" /></action></recv>\n  <Reference variables="reason" />'
    )
    scenario = (SCENARIOS / "connect_to_kore.xml").read_text().replace('<recv request="BYE" />', check)
    (tmp_path / "bye_header.xml").write_text(scenario)
    code, err, interactions = call(settings, "", scenario_path=tmp_path / "bye_header.xml")
    assert code == 0, err
    (interaction,) = interactions
    assert [n.node for n in interaction.nodes] == [
        "script 1",
        "message 1",
        "script 2",
        "service 3",
        "agent transfer (SIP BYE)",
    ]
    assert interaction.service_status == 200


@pytest.mark.sipp
def test_without_an_ack_the_gateway_still_hangs_up_after_64_t1(
    tmp_path: Path, api: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = api
    monkeypatch.setattr(call_module, "LIFETIME", 1.0)  # 64*T1, shortened for the test
    code, err, interactions = call(gateway_config(tmp_path, url), "no_ack", transport="tcp")
    assert code == 0, err  # SIPp got the BYE without ever sending its ACK
    (interaction,) = interactions
    assert interaction.ended == "agent transfer (SIP BYE, answered 200)"
    assert not any(m.first_line.startswith("ACK") for m in interaction.sip)


def test_with_port_0_a_port_taken_for_the_second_transport_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # UDP gets a free port; TCP on the same number may be another program's (seen under load)
    import errno

    from kore_connect.twin.sip.transport import TcpTransport

    real_listen = TcpTransport.listen
    refused = []

    async def listen(self: TcpTransport, local: tuple[str, int]) -> None:
        if not refused:
            refused.append(local)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        await real_listen(self, local)

    monkeypatch.setattr(TcpTransport, "listen", listen)

    async def scenario() -> dict[str, Any]:
        gateway = KoreGateway(gateway_config(tmp_path, "http://127.0.0.1:9/prod/kore-metadata"))
        await gateway.start()
        try:
            return dict(gateway.addresses)
        finally:
            await gateway.stop()

    addresses = asyncio.run(scenario())
    assert len(refused) == 1
    assert set(addresses) == {"udp", "tcp"} and addresses["udp"][1] == addresses["tcp"][1] != 0


def test_a_configured_port_taken_is_not_picked_again(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = KoreGateway(
            gateway_config(tmp_path, "http://127.0.0.1:9/prod/kore-metadata", port=port, transports=("tcp",))
        )
        with pytest.raises(OSError):
            asyncio.run(gateway.start())
