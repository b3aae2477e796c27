"""The sweep after the whole suite (tests/secret_sweep.py) finds a planted token wherever it lies,
reports where without its value, spares the token files, and fails a session that logged a token.

The planted tokens are made at run time, so the sweep of this very session does not know them, and
each tree holding a plant is removed after its test: a token file makes its token known, and a
metadata value in a log is a finding, on purpose."""

from __future__ import annotations

import secrets
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.secret_sweep import (
    SESSION_LOG,
    Secret,
    Sweep,
    files_under,
    merged,
    metadata_values,
    report,
    scan,
    sweep,
    tokens_in_source,
    tokens_in_token_files,
)

pytest_plugins = ["pytester"]

METADATA = [Secret("metadata x_metadata", b"Hello from Kore")]


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A folder for planted secrets, removed afterwards so the session's own sweep does not see them."""
    folder = tmp_path / "planted"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder)


def planted() -> Secret:
    return Secret("tests.test_planted.TOKEN", f"planted-{secrets.token_hex(16)}".encode())


def swept(root: Path, token: Secret) -> tuple[Sweep, str]:
    files = list(files_under(root))
    tokens = merged([token, *tokens_in_token_files(files, root)])
    result = sweep(files, tokens, METADATA)
    return result, "\n".join(report(result, root))


def test_a_token_in_a_file_is_reported_by_name_file_and_offset_never_by_value(tree: Path) -> None:
    token = planted()
    (tree / "calls").mkdir()
    (tree / "calls" / "up.out").write_bytes(b"x" * 100 + token.value + b"\n")
    result, text = swept(tree, token)
    assert [(f.secret, f.path.name, f.offset) for f in result.findings] == [(token.name, "up.out", 100)]
    assert f"{token.name} in calls/up.out at byte 100" in text
    assert token.value.decode() not in text and "1 findings" in text


def test_a_token_in_a_sqlite_wal_file_is_found(tree: Path) -> None:
    token = planted()
    page = bytearray(4096)
    page[4000 : 4000 + len(token.value)] = token.value
    (tree / "sessions.db").write_bytes(bytes(4096))
    (tree / "sessions.db-wal").write_bytes(bytes(page))
    result, _ = swept(tree, token)
    assert [(f.path.name, f.offset) for f in result.findings] == [("sessions.db-wal", 4000)]


def test_a_token_across_a_chunk_boundary_is_found_once_at_its_offset(tree: Path) -> None:
    token = planted()
    short = Secret("short", b"0123456789ab")
    path = tree / "big.bin"
    # the token straddles the first boundary (64); the short secret lies wholly in the overlap
    path.write_bytes(b"." * 50 + token.value + b"." * 3 + short.value + b"." * 200)
    found = [(f.secret, f.offset) for f in scan(path, [token, short], chunk_bytes=64)]
    assert sorted(found) == [("short", 50 + len(token.value) + 3), (token.name, 50)]


def test_metadata_is_looked_for_in_logs_only(tree: Path) -> None:
    line = b'{"level":"INFO","message":"Metadata stored","x_metadata":"Hello from Kore for contact c-1"}\n'
    (tree / "api.log").write_bytes(line)
    (tree / SESSION_LOG).write_bytes(line)
    (tree / "sessions.db").write_bytes(line)  # a store holds metadata by design
    result, text = swept(tree, planted())
    assert sorted(f.path.name for f in result.findings) == ["api.log", SESSION_LOG]
    assert f"metadata x_metadata in api.log at byte {line.index(b'Hello')}" in text


def test_the_token_file_is_not_reported_but_its_token_is_known_elsewhere(tree: Path) -> None:
    generated = secrets.token_urlsafe(36).encode()
    (tree / ".kore-connect").mkdir()
    (tree / ".kore-connect" / "api-token").write_bytes(generated + b"\n")
    (tree / ".kore-connect" / "api.log").write_bytes(b"served with " + generated)
    result, text = swept(tree, planted())
    assert [(f.path.name, f.offset) for f in result.findings] == [("api.log", 12)]
    assert "the token in .kore-connect/api-token in .kore-connect/api.log at byte 12" in text


def test_a_generated_token_is_not_reported_where_up_shows_it_once_and_is_anywhere_else(tree: Path) -> None:
    generated = secrets.token_urlsafe(36).encode()
    (tree / ".kore-connect").mkdir()
    (tree / ".kore-connect" / "api-token").write_bytes(generated + b"\n")
    shown = b"Token (generated, saved in .kore-connect/api-token; shown this once): " + generated + b"\n"
    (tree / "up.out").write_bytes(shown + b"Calling with " + generated + b"\n")
    result, _ = swept(tree, planted())
    assert [(f.path.name, f.offset) for f in result.findings] == [("up.out", len(shown) + 13)]


def test_a_clean_tree_gives_no_findings(tree: Path) -> None:
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "gateway.log").write_text("call c-1 answered; token refused\n")
    (tree / "a" / "b" / "calls.db").write_bytes(bytes(8192))
    result, text = swept(tree, planted())
    assert result.findings == () and result.files == 2 and result.size > 8192
    assert text.startswith("secret sweep: 2 files, 0 MB, 0 findings, ")


def test_the_known_tokens_are_the_constants_and_the_token_variables_the_tests_set() -> None:
    source = textwrap.dedent(
        """
        from kore_connect.stack import TOKEN_HEADER
        TOKEN = "a-token-of-the-tests-0001"
        NEXT_TOKEN: str = "a-token-of-the-tests-0002"
        WRONG_TOKEN = "a-wrong-token-sent-on-purpose"
        SHORT_TOKEN = "abc123"
        def test(monkeypatch):
            monkeypatch.setenv("AUTH_TOKEN", " a-token-of-the-tests-0003 ")
            up(env={"KORE_CONNECT_API_TOKEN": "a-token-of-the-tests-0004"})
            run(AUTH_TOKEN_PREVIOUS="a-token-of-the-tests-0005", headers={"authorizationToken": "x" * 20})
        """
    )
    found = {secret.value.decode(): secret.name for secret in tokens_in_source(source, "m")}
    assert found == {
        "a-token-of-the-tests-0001": "m.TOKEN",
        "a-token-of-the-tests-0002": "m.NEXT_TOKEN",
        "a-token-of-the-tests-0003": "m: AUTH_TOKEN at line 8",
        "a-token-of-the-tests-0004": "m: KORE_CONNECT_API_TOKEN at line 9",
        "a-token-of-the-tests-0005": "m: AUTH_TOKEN_PREVIOUS at line 10",
    }


def test_the_metadata_values_are_the_fixtures_and_the_bots_fixed_text() -> None:
    from tests.conftest import EVENTS

    values = {secret.value for secret in metadata_values(EVENTS / "apigw-store-request.json")}
    # "Hello from Kore for contact" holds the fixture's "Hello from Kore": one is enough
    assert values == {b"Hello from Kore", b"33372d510ea365548d26fa92"}


LEAKY_TEST = """
import logging

TOKEN = "{token}"


def test_logs_the_token():
    logging.getLogger("leaky").warning("calling with %s", {what})
"""


def test_a_session_that_logs_a_configured_token_fails_with_the_report(pytester: pytest.Pytester) -> None:
    token = f"e2e-{secrets.token_hex(16)}"
    pytester.makepyfile(test_leaky=LEAKY_TEST.format(token=token, what="TOKEN"))
    result = pytester.runpytest("-p", "tests.secret_sweep", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*secret sweep: known secrets found*",
            "secret sweep: * files, * MB, 1 findings, * s",
            f"  test_leaky.TOKEN in {SESSION_LOG} at byte *",
            "*1 passed*",
        ]
    )
    assert token not in result.stdout.str() + result.stderr.str()


def test_our_own_code_logging_a_token_at_info_is_found_too(pytester: pytest.Pytester) -> None:
    # The root logger stays at WARNING; the twin's in-process records are INFO and DEBUG.
    token = f"e2e-{secrets.token_hex(16)}"
    leaky = LEAKY_TEST.format(token=token, what="TOKEN").replace(
        'logging.getLogger("leaky").warning', 'logging.getLogger("kore_connect.twin.kore.gateway").info'
    )
    pytester.makepyfile(test_leaky=leaky)
    result = pytester.runpytest("-p", "tests.secret_sweep", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"  test_leaky.TOKEN in {SESSION_LOG} at byte *"])


def test_a_clean_session_passes_with_the_measures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_clean=LEAKY_TEST.format(token=f"e2e-{secrets.token_hex(16)}", what="'c-1'"))
    result = pytester.runpytest("-p", "tests.secret_sweep", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["secret sweep: * files, * MB, 0 findings, * s", "*1 passed*"])


def test_under_xdist_the_sweep_still_knows_the_tests_tokens(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the leaky test run by two workers (./dev test runs pytest -n auto): the session that
    # sweeps imported no test module, so it reads the tokens from the tests' files
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    token = f"e2e-{secrets.token_hex(16)}"
    pytester.makepyfile(test_leaky=LEAKY_TEST.format(token=token, what="TOKEN"))
    result = pytester.runpytest_subprocess("-p", "tests.secret_sweep", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"  test_leaky.TOKEN in popen-gw*/{SESSION_LOG} at byte *"])
