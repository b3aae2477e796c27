"""Fuzzed flow JSON and gateway YAML: every bad file is refused with our own error (one line from the
CLI), never another exception. Inputs start from an exported flow (ours, and Kore's reference export
when ../shared is there) and a sound config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_connect.contactflow.model import Flow
from kore_connect.errors import KoreConnectError
from kore_connect.twin.kore.config import GatewayConfig
from tests.conftest import EXPORTS, load_flow

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: the keys and indexes leading to it."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def mutated(document: Any, where: tuple[Any, ...], value: Any, delete: bool) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for step in where[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return changed


@pytest.mark.parametrize("export_path", EXPORTS)  # not the fixture: Hypothesis reruns the body
@settings(max_examples=400, deadline=None)
@given(data=st.data(), value=JSON_VALUES, delete=st.booleans())
def test_a_mutated_exported_flow_parses_or_is_refused_with_our_error(
    export_path: Path, data: st.DataObject, value: Any, delete: bool
) -> None:
    document = load_flow(export_path)
    where = data.draw(st.sampled_from(paths(document)[1:]), label="where")
    try:
        Flow.parse(mutated(document, where, value, delete))
    except KoreConnectError as exc:
        assert str(exc)  # a message that says what is wrong


@settings(max_examples=200, deadline=None)
@given(document=JSON_VALUES)
def test_any_json_document_parses_or_is_refused_with_our_error(document: Any) -> None:
    try:
        Flow.parse(document)
    except KoreConnectError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_flow_file_are_refused_with_our_error(data: bytes) -> None:
    try:
        Flow.loads(data)
    except KoreConnectError as exc:
        assert str(exc)


SOUND_CONFIG = {
    "listen": {"host": "127.0.0.1", "port": 5080, "transports": ["udp", "tcp"]},
    "allow": ["127.0.0.1", "10.0.0.0/8"],
    "dids": [{"number": "+12065551118", "flow": "billing"}, {"number": "+1206*"}],
    "metadata": {"url": "http://127.0.0.1:3000/prod/kore-metadata", "token_env": "KORE_CONNECT_API_TOKEN"},
    "flows": {
        "billing": {
            "on_error": "transfer",
            "nodes": [
                {"message": "Hello"},
                {"script": {"snippet": "agent_transfer_script"}},
                {"service": {"retries": 1}},
                {"transfer": {"bye_headers": {"X-Reason": "billing"}}},
            ],
        }
    },
    "ring_seconds": 0,
}
CONFIG_PATHS = paths(SOUND_CONFIG)[1:]
ENV = {"KORE_CONNECT_API_TOKEN": "fuzz-token-0123456789"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(CONFIG_PATHS), value=JSON_VALUES, delete=st.booleans())
def test_a_mutated_gateway_config_loads_or_is_refused_with_our_error(
    tmp_path: Path, where: tuple[Any, ...], value: Any, delete: bool
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(mutated(SOUND_CONFIG, where, value, delete)))
    try:
        GatewayConfig.load(path, ENV)
    except KoreConnectError as exc:
        assert str(exc).startswith(str(path))  # the message names the file


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_as_a_gateway_config_is_refused_with_our_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    try:
        GatewayConfig.load(path, ENV)
    except KoreConnectError as exc:
        assert str(path) in str(exc)


def test_digits_that_are_not_ascii_are_refused_not_raised(export: dict[str, Any]) -> None:
    limits = {
        "InvokeLambdaFunction": "InvocationTimeLimitSeconds",
        "TransferParticipantToThirdParty": "ThirdPartyConnectionTimeLimitSeconds",
    }
    for index, action in enumerate(export["Actions"]):
        parameter = limits.get(action["Type"])
        if parameter is None:
            continue
        where = ("Actions", index, "Parameters", parameter)
        for number in ("\u00b2", "\u0663"):  # superscript two, Arabic-Indic three: isdigit() says yes
            try:
                Flow.parse(mutated(export, where, number, delete=False))
            except KoreConnectError as exc:
                assert parameter in str(exc)
            else:
                raise AssertionError(f"{number!r} was taken as {parameter}")
