"""After the whole test suite, every file the session wrote is swept for the tokens it used (issue 8).

How it works:

1. From the session's start, every log record the pytest process emits reaches a handler on the
   root logger that writes it, formatted, to `<basetemp>/secret-sweep-session.log`; records of the
   functions' Powertools logger are formatted as in CloudWatch. The handler filters nothing, and
   our own package's logger (`kore_connect`) is set to DEBUG for the session, so that the twin's
   in-process INFO and DEBUG records are made and swept too (other libraries' levels stay).
   Subprocesses (the API, the gateway, `kore-connect up`) already log into the tests' tmp dirs.
2. At the session's end (tests ran, not an xdist worker), every regular file under this session's
   basetemp (not older pytest-N dirs) is read bytes-wise, in chunks with an overlap, and searched
   for every known secret: logs, SQLite databases with their -wal/-journal files, anything.
3. Logs only (the session log and files named `*.log`) are also searched for metadata values.
4. A finding fails the session (exit status 1) with a report naming the secret, the file and the
   byte offset, never the secret's value; the terminal summary gets one line with the measures.

Known secrets (the valid tokens the session configured), read from the source of every module
imported from the directories the session collected tests from (test modules, conftest, helpers
such as tests/doctor_lab.py), so that names imported from src (`TOKEN_HEADER`) are not taken:
- each module-level string literal assigned to a name holding `TOKEN`: `TOKEN = "..."`,
  `SECRET_TOKEN`, `NEXT_TOKEN`, `BOT_TOKEN`, `GENERATED_TOKEN`. Names holding `WRONG` are left out:
  hostile tests send those on purpose and the API refuses them;
- each string literal given to a variable the code reads a token from (`AUTH_TOKEN`,
  `AUTH_TOKEN_PREVIOUS`, `KORE_CONNECT_API_TOKEN`): a dict entry (`env={"AUTH_TOKEN": "..."}`), a
  keyword argument, or `monkeypatch.setenv("AUTH_TOKEN", "...")`; stripped, as the code reads it;
- each token kept in a token file, `.kore-connect/api-token` (written by `kore-connect up` and
  `serve api`, read by the gateway), so tokens generated during the run count too.
All only from 12 characters: shorter strings would match by chance and are not usable tokens.
Tokens made at run time and passed only in the environment (test_cli_serve's `env-token-<uuid>`)
and tokens held in local variables (test_apigw_policy) are not known to the sweep.

Metadata values (logs only): every string value of the store request body in tests/events
(apigw-store-request.json), and the fixed text of each value of the Service node's body template
(`Hello from Kore for contact {{...}}`), which the twin's bot sends; from 12 characters.

Not swept, each a secret store by design:
- token files (`.kore-connect/api-token`): they hold the token so the twin can serve with it.
Not reported, shown by design:
- a generated token (one from a token file) right after `; shown this once): `: the line on which
  `kore-connect up` and `serve api` show the token they have just generated, once, on their own
  output (the tests keep `up`'s in `up.out`). Anywhere else in that output it is reported.
No test writes a known token into a configuration file or uses one as attack input: the gateway's
YAML refuses `metadata.token` and takes the token from the environment or the token file.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kore_connect import config
from kore_connect.bridge.observability import logger as function_logger
from kore_connect.korebot.service_node import BODY_TEMPLATE
from kore_connect.twin.local.api_token import DEFAULT_TOKEN_FILE, TOKEN_VARIABLE

SESSION_LOG = "secret-sweep-session.log"
OWN_LOGGER = logging.getLogger("kore_connect")
MIN_LENGTH = 12  # shorter strings match by chance
CHUNK_BYTES = 8 * 1024 * 1024
# The environment variables the code reads a valid token from.
TOKEN_VARIABLES = {config.AUTH_TOKEN, config.AUTH_TOKEN_PREVIOUS, TOKEN_VARIABLE}
# What precedes the token on the one line that shows a generated token (cli/up.py, cli/serve.py).
SHOWN_ONCE = b"; shown this once): "
REPORTED_AT_MOST = 50  # findings printed; the rest are counted
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
# A LogRecord's own attributes; anything else on a record came from `extra=` and is written too.
_RECORD_FIELDS = {*vars(logging.LogRecord("", 0, "", 0, "", None, None)), "message", "asctime"}


@dataclass(frozen=True)
class Secret:
    name: str  # safe to print
    value: bytes
    generated: bool = False  # made by `up` or `serve api`, which show it once by design


@dataclass(frozen=True)
class Finding:
    secret: str  # the secret's name, never its value
    path: Path
    offset: int


@dataclass(frozen=True)
class Sweep:
    files: int
    size: int  # bytes
    findings: tuple[Finding, ...]
    seconds: float


# Known secrets


def tokens_in_source(source: str, module: str) -> list[Secret]:
    """The tokens a test module's source defines or configures (the rule in this module's docstring)."""
    tree = ast.parse(source)
    found = [Secret(f"{module}.{name}", value) for name, value in _token_constants(tree)]
    for node in ast.walk(tree):
        for variable, value in _token_settings(node):
            found.append(Secret(f"{module}: {variable} at line {getattr(node, 'lineno', 0)}", value))
    return [secret for secret in found if len(secret.value) >= MIN_LENGTH]


def _token_constants(tree: ast.Module) -> Iterator[tuple[str, bytes]]:
    """`NAME = "literal"` at module level, NAME holding TOKEN and not WRONG."""
    for node in tree.body:
        targets, value = _assignment(node)
        for target in targets:
            name = target.id if isinstance(target, ast.Name) else ""
            if "TOKEN" in name and "WRONG" not in name and (text := _text(value)) is not None:
                yield name, text


def _assignment(node: ast.stmt) -> tuple[list[ast.expr], ast.expr | None]:
    if isinstance(node, ast.Assign):
        return node.targets, node.value
    if isinstance(node, ast.AnnAssign):
        return [node.target], node.value
    return [], None


def _token_settings(node: ast.AST) -> Iterator[tuple[str, bytes]]:
    """A literal given to a token variable: `{"AUTH_TOKEN": "..."}`, `AUTH_TOKEN="..."`, `setenv(...)`."""
    pairs: list[tuple[str | None, ast.expr | None]] = []
    if isinstance(node, ast.Dict):
        pairs += [(_name(key), value) for key, value in zip(node.keys, node.values, strict=True)]
    if isinstance(node, ast.Call):
        pairs += [(keyword.arg, keyword.value) for keyword in node.keywords]
        called = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if called == "setenv" and len(node.args) >= 2:
            pairs.append((_name(node.args[0]), node.args[1]))
    for variable, value in pairs:
        if variable in TOKEN_VARIABLES and (text := _text(value)) is not None:
            yield variable, text.strip()  # as the code reads it


def _name(node: ast.expr | None) -> str | None:
    text = _text(node)
    return None if text is None else text.decode()


def _text(node: ast.expr | None) -> bytes | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.encode()
    return None


def tokens_of_modules(folders: Iterable[Path]) -> list[Secret]:
    """The tokens defined in every module whose source lies in one of `folders` (read from the
    files: under pytest-xdist the session that sweeps imported none of the tests)."""
    found = []
    for folder in {folder.resolve() for folder in folders}:
        for path in sorted(folder.rglob("*.py")):
            found += tokens_in_source(path.read_text(encoding="utf-8"), _module_name(path))
    return found


def _module_name(path: Path) -> str:
    """The name Python imports `path` by: its packages (folders with __init__.py), then its stem."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def is_token_file(path: Path) -> bool:
    return path.parts[-len(DEFAULT_TOKEN_FILE.parts) :] == DEFAULT_TOKEN_FILE.parts


def tokens_in_token_files(files: Iterable[Path], root: Path) -> list[Secret]:
    """The usable tokens kept in the token files among `files` (under `root`)."""
    found = []
    for path in filter(is_token_file, files):
        try:
            token = path.read_bytes().strip()
        except FileNotFoundError:  # removed by a lingering process
            continue
        if len(token) >= MIN_LENGTH and not any(c.isspace() for c in token.decode(errors="replace")):
            found.append(Secret(f"the token in {path.relative_to(root)}", token, generated=True))
    return found


def metadata_values(store_request: Path) -> list[Secret]:
    """The metadata values known to be sent: the fixture's body and the bot's body template."""
    body = json.loads(json.loads(store_request.read_text(encoding="utf-8"))["body"])
    found = [Secret(f"metadata {key} of {store_request.name}", str(v).encode()) for key, v in body.items()]
    for key, template in json.loads(BODY_TEMPLATE).items():
        for text in _PLACEHOLDER.split(template):
            found.append(Secret(f"metadata {key} of the bot's Service node", text.strip().encode()))
    found = [secret for secret in found if len(secret.value) >= MIN_LENGTH]
    # "Hello from Kore for contact" holds "Hello from Kore": one finding per place is enough.
    return [s for s in found if not any(o.value in s.value and o.value != s.value for o in found)]


def merged(secrets: Iterable[Secret]) -> list[Secret]:
    """One secret per value, named after every place that defines it."""
    names: dict[bytes, list[str]] = {}
    generated: set[bytes] = set()
    for secret in secrets:
        if secret.name not in names.setdefault(secret.value, []):
            names[secret.value].append(secret.name)
        if secret.generated:
            generated.add(secret.value)
    return [Secret(" = ".join(each), value, value in generated) for value, each in names.items()]


# The sweep


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file under `root`; links are not followed and FIFOs or sockets never opened."""
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    yield path
            except FileNotFoundError:  # gone since the walk listed it
                continue


def scan(path: Path, secrets: list[Secret], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Finding]:
    """Every occurrence of every secret in the file, read in chunks that overlap by a secret's length."""
    overlap = max(len(secret.value) for secret in secrets) - 1
    tail = b""
    start = 0  # the offset in the file of the buffer's first byte
    with path.open("rb") as file:
        while chunk := file.read(chunk_bytes):
            buffer = tail + chunk
            for secret in secrets:
                at = buffer.find(secret.value)
                while at != -1:
                    # One lying wholly in the overlap was found in the previous buffer.
                    if at + len(secret.value) > len(tail):
                        yield Finding(secret.name, path, start + at)
                    at = buffer.find(secret.value, at + 1)
            keep = min(overlap, len(buffer))
            tail = buffer[len(buffer) - keep :] if keep else b""
            start += len(buffer) - len(tail)


def is_shown_once(finding: Finding, secret: Secret) -> bool:
    """The one line where `up` or `serve api` shows the token it has just generated, by design."""
    if not secret.generated or finding.offset < len(SHOWN_ONCE):
        return False
    with finding.path.open("rb") as file:
        file.seek(finding.offset - len(SHOWN_ONCE))
        return file.read(len(SHOWN_ONCE)) == SHOWN_ONCE


def is_log(path: Path) -> bool:
    return path.name == SESSION_LOG or path.name.endswith(".log")


def sweep(files: Iterable[Path], tokens: list[Secret], metadata: list[Secret]) -> Sweep:
    """Tokens in every file (token files excepted), metadata values in the logs too."""
    began = time.perf_counter()
    swept = size = 0
    findings: list[Finding] = []
    for path in files:
        if is_token_file(path):
            continue
        wanted = tokens + metadata if is_log(path) else tokens
        try:
            size += path.stat().st_size
            if wanted:
                by_name = {secret.name: secret for secret in wanted}
                findings += [f for f in scan(path, wanted) if not is_shown_once(f, by_name[f.secret])]
        except FileNotFoundError:  # a file a lingering process removed
            continue
        swept += 1
    return Sweep(swept, size, tuple(findings), time.perf_counter() - began)


def report(result: Sweep, root: Path) -> list[str]:
    """The terminal lines for a sweep: the measures, then each finding (names, never values)."""
    lines = [
        f"secret sweep: {result.files:,} files, {result.size / 1e6:,.0f} MB, "
        f"{len(result.findings)} findings, {result.seconds:.1f} s"
    ]
    for finding in result.findings[:REPORTED_AT_MOST]:
        where = finding.path.relative_to(root) if finding.path.is_relative_to(root) else finding.path
        lines.append(f"  {finding.secret} in {where} at byte {finding.offset:,}")
    if len(result.findings) > REPORTED_AT_MOST:
        lines.append(f"  ... and {len(result.findings) - REPORTED_AT_MOST} more")
    return lines


# The plugin


class _RecordFormatter(logging.Formatter):
    """One line per record, with what `extra=` added; the functions' records as in CloudWatch."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == function_logger.name:
            return str(function_logger.registered_formatter.format(record))
        line = super().format(record)
        extra = {key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS}
        return f"{line} {extra!r}" if extra else line


class SecretSweepPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.handler: logging.Handler | None = None
        self.own_level = logging.NOTSET
        self.ran = 0
        self.result: Sweep | None = None

    @property
    def root(self) -> Path:
        return Path(self.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        handler = logging.FileHandler(self.root / SESSION_LOG, encoding="utf-8", errors="backslashreplace")
        handler.setFormatter(_RecordFormatter())
        logging.getLogger().addHandler(handler)
        if not _functions_logger().propagate:  # its records would not reach the root logger
            _functions_logger().addHandler(handler)
        self.handler = handler
        # Our own code's records at every level, or its INFO lines (the twin's, in-process) would
        # never be made under the root logger's WARNING, and never be swept.
        self.own_level = OWN_LOGGER.level
        OWN_LOGGER.setLevel(logging.DEBUG)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.ran += 1

    @pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down and quiet
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._close_log()
        if not self.ran or hasattr(self.config, "workerinput"):  # (each xdist worker would see a part)
            return
        files = list(files_under(self.root))
        # The configured test folders (with their helpers and conftest), and any test run from
        # elsewhere; under pytest-xdist this session collected no item.
        root = Path(str(self.config.rootpath))
        configured = [root / path for path in self.config.getini("testpaths")] or [root]
        folders = {item.path.parent for item in session.items} | set(configured)
        tokens = merged(tokens_of_modules(folders) + tokens_in_token_files(files, self.root))
        self.result = sweep(files, tokens, merged(metadata_values(_store_request())))
        if self.result.findings and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _close_log(self) -> None:
        if self.handler is None:
            return
        logging.getLogger().removeHandler(self.handler)
        _functions_logger().removeHandler(self.handler)
        OWN_LOGGER.setLevel(self.own_level)
        self.handler.close()
        self.handler = None

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.result is None:
            return
        lines = report(self.result, self.root)
        if self.result.findings:
            terminalreporter.write_sep("=", "secret sweep: known secrets found", red=True)
            lines[1:1] = ["(each names the secret, the file under the session's basetemp and the offset)"]
        for line in lines:
            terminalreporter.write_line(line, red=bool(self.result.findings))


def _functions_logger() -> logging.Logger:
    return logging.getLogger(function_logger.name)  # the stdlib logger under Powertools'


def _store_request() -> Path:
    from tests.conftest import EVENTS  # the one place that finds the fixtures

    return EVENTS / "apigw-store-request.json"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SecretSweepPlugin(config), "secret-sweep")
