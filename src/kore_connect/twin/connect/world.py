"""The local world a contact runs in: what an Amazon Connect instance and its account hold that a
flow names (hours of operation, queues and their metrics, Lambda functions, Lex bots, other flows,
the phone numbers a flow dials) and the clock's time. One YAML file (`connect run --world`);
every key is checked, and a mistake is one line naming it (`WorldError`).

    clock: 2026-12-07T10:30:00-05:00      # when the contact arrives (default: now)
    hours:
      Office:                             # looked up by this name, by `id`, or by an ARN ending in it
        id: 6f0f1c0e-...                  # optional
        timezone: America/New_York
        open: {Monday: ["09:00-17:00"], Saturday: ["10:00-12:30", "13:00-15:00"]}
    queues:
      Support:
        id: arn:aws:connect:...:queue/...  # optional, as for hours
        hours: Office
        capacity: 100
        agents: {online: 3, available: 1, staffed: 3}
        contacts: 4                       # contacts in queue
        oldest_contact_age: 95            # seconds
    agents: [jdoe, arn:aws:connect:...:agent/...]
    lambdas:
      arn:aws:lambda:us-east-1:111122223333:function:lookup:
        response: {status: gold}          # a canned answer; or
        # function: KoreRetrieveSessionMetadata   (a function of the template), or
        # python: my_module:handler              (a callable given (event, context); the module
        #                                         beside this file, or installed), or
        # error: "the text of an exception"
    lex_bots:
      arn:aws:lex:us-east-1:111122223333:bot-alias/BOT/ALIAS:
        intents:
          BookAppointment:
            utterances: ["book an appointment", "book one for {Day}"]
        slots: {Day: [monday, tuesday]}   # optional: the values a slot accepts
    flows: flows/                         # a folder of exports (by file name, id, ARN, or its name)
    phone_numbers: {"+15551230000": busy, default: answers}   # answers | busy | no-answer | not-dialable
    branches: {ShowView: Next, "my-action-id": NoMatchingError}   # recorded actions' branches

Without a world file, the world is the default one: it knows no hours, Lex bots or flows, and any
queue a flow names exists (with no hours of its own: always open, and no agents).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from kore_connect.contactflow.model import Flow, FlowError
from kore_connect.contactflow.placeholders import fill
from kore_connect.contactflow.placeholders import placeholders as placeholder_names
from kore_connect.errors import KoreConnectError

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SPAN = re.compile(r"(?P<from>[0-2][0-9]:[0-5][0-9])-(?P<to>[0-2][0-9]:[0-5][0-9])")
# The agent figures of a queue, as the world names them ($.Metrics.Agents.<CamelCase>.Count).
AGENT_STATES = ("online", "available", "staffed", "after_contact_work", "busy", "missed", "non_productive")
PHONE_OUTCOMES = ("answers", "busy", "no-answer", "not-dialable")


class WorldError(KoreConnectError):
    """A local world file that cannot be used: one line naming the key."""


@dataclass(frozen=True, slots=True)
class Hours:
    name: str
    timezone: ZoneInfo
    open: Mapping[str, tuple[tuple[dt.time, dt.time], ...]]  # by day name

    def is_open(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.timezone)
        spans = self.open.get(DAYS[local.weekday()], ())
        return any(start <= local.time() < end for start, end in spans)


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    arn: str
    hours: str | None = None
    capacity: int | None = None  # None: the local queues' own (100)
    agents: Mapping[str, int] = field(default_factory=dict)  # online, available, staffed...
    contacts: int = 0
    oldest_contact_age: int = 0


@dataclass(frozen=True, slots=True)
class LambdaFunction:
    """How the world answers for a function: a canned response, a template function, a callable or
    an error."""

    response: Any = None
    function: str | None = None
    python: Callable[[dict[str, Any], Any], Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    utterances: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LexBot:
    name: str
    intents: tuple[Intent, ...]
    slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class World:
    clock: dt.datetime | None = None  # None: now
    hours: dict[str, Hours] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    agents: tuple[str, ...] = ()
    lambdas: dict[str, LambdaFunction] = field(default_factory=dict)
    lex_bots: dict[str, LexBot] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    phone_numbers: dict[str, str] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    given: bool = False  # read from a file: what it does not define does not exist
    placeholders_used: set[str] = field(default_factory=set)  # the `${NAME}`s its flows hold

    def start_time(self) -> dt.datetime:
        return self.clock or dt.datetime.now(dt.UTC)

    def find_hours(self, wanted: str) -> Hours | None:
        return _find(self.hours, wanted)

    def find_queue(self, wanted: str) -> Queue | None:
        """The queue a flow names (by ARN, ID or name); in the default world any queue exists."""
        found = _find(self.queues, wanted)
        if found is None and not self.given and wanted:
            return Queue(name=wanted.rpartition("/")[2], arn=wanted)
        return found

    def find_agent(self, wanted: str) -> str | None:
        if not self.given:
            return wanted or None
        return next((a for a in self.agents if a == wanted or a.rpartition("/")[2] == wanted), None)

    def find_lex_bot(self, wanted: str) -> LexBot | None:
        return _find(self.lex_bots, wanted)

    def find_flow(self, wanted: str) -> Flow | None:
        return _find(self.flows, wanted)

    def phone_outcome(self, number: str) -> str:
        return self.phone_numbers.get(number, self.phone_numbers.get("default", "answers"))


_T = TypeVar("_T")


def _find(table: Mapping[str, _T], wanted: str) -> _T | None:
    """By its key exactly; or, when one side is a bare name or ID, by the other's last part (a flow
    names `arn:...:queue/<id>` where the world says `<id>`, or the reverse). Two ARNs must be
    equal: Lex aliases share their last part (`TSTALIASID`) across bots."""
    if not wanted:
        return None
    if wanted in table:
        return table[wanted]
    for key, value in table.items():
        if _bare(wanted) and key.rpartition("/")[2] == wanted:
            return value
        if _bare(key) and wanted.rpartition("/")[2] == key:
            return value
    return None


def _bare(name: str) -> bool:
    return "/" not in name and ":" not in name


def load_world(path: Path, placeholders: Mapping[str, str] | None = None) -> World:
    """The world in the YAML file `path`; raises WorldError naming the first bad key.
    `placeholders` fill the `${NAME}`s of the flows in its library, as `--set` fills the flow's."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorldError(f"cannot read {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WorldError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    empty = document is None  # an empty file is the empty world; `0` or `false` is a mistake
    return parse_world({} if empty else document, base=path.parent, name=str(path), placeholders=placeholders)


def parse_world(
    document: Any, *, base: Path, name: str = "the world", placeholders: Mapping[str, str] | None = None
) -> World:
    reader = _Reader(name)
    top = reader.mapping(document, "")
    reader.only(
        top,
        "",
        {"clock", "hours", "queues", "agents", "lambdas", "lex_bots", "flows", "phone_numbers", "branches"},
    )
    world = World(given=True)
    if "clock" in top:
        world.clock = reader.moment(top["clock"], "clock")
    for key, raw in reader.mapping(top.get("hours", {}), "hours").items():
        hours = _hours(reader, key, raw)
        world.hours[key] = hours
        if "id" in raw:
            world.hours[reader.text(raw["id"], f"hours.{key}.id")] = hours
    for key, raw in reader.mapping(top.get("queues", {}), "queues").items():
        queue = _queue(reader, key, raw)
        if queue.hours is not None and world.find_hours(queue.hours) is None:
            raise WorldError(f"{name}: queues.{key}.hours: no hours named {queue.hours!r} under hours")
        world.queues[key] = queue
        if queue.arn != key:
            world.queues[queue.arn] = queue
    world.agents = tuple(
        reader.text(a, f"agents[{i}]") for i, a in enumerate(reader.list(top.get("agents", []), "agents"))
    )
    for key, raw in reader.mapping(top.get("lambdas", {}), "lambdas").items():
        world.lambdas[key] = _lambda(reader, key, raw, base)
    for key, raw in reader.mapping(top.get("lex_bots", {}), "lex_bots").items():
        world.lex_bots[key] = _lex_bot(reader, key, raw)
    if "flows" in top:
        world.flows = _flows(reader, top["flows"], base, placeholders or {}, world.placeholders_used)
    for number, outcome in reader.mapping(top.get("phone_numbers", {}), "phone_numbers").items():
        if outcome not in PHONE_OUTCOMES:
            raise WorldError(
                f"{name}: phone_numbers.{number}: {outcome!r} is not one of {', '.join(PHONE_OUTCOMES)}"
            )
        world.phone_numbers[str(number)] = outcome
    for key, branch in reader.mapping(top.get("branches", {}), "branches").items():
        world.branches[key] = reader.text(branch, f"branches.{key}")
    return world


def _hours(reader: _Reader, key: str, raw: Any) -> Hours:
    where = f"hours.{key}"
    raw = reader.mapping(raw, where)
    reader.only(raw, where, {"id", "timezone", "open"})
    zone_name = reader.text(raw.get("timezone", "UTC"), f"{where}.timezone")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorldError(
            f"{reader.name}: {where}.timezone: {zone_name!r} is not a time zone (e.g. Europe/London)"
        ) from None
    spans: dict[str, tuple[tuple[dt.time, dt.time], ...]] = {}
    for day, day_spans in reader.mapping(raw.get("open", {}), f"{where}.open").items():
        if day not in DAYS:
            raise WorldError(f"{reader.name}: {where}.open.{day}: a day is one of {', '.join(DAYS)}")
        parsed = []
        for index, span in enumerate(reader.list(day_spans, f"{where}.open.{day}")):
            found = _SPAN.fullmatch(str(span))
            at = f"{where}.open.{day}[{index}]"
            if not found:
                raise WorldError(f"{reader.name}: {at}: {span!r} is not a span such as 09:00-17:00")
            try:
                start = dt.time.fromisoformat(found["from"])
                end = dt.time.max if found["to"] == "24:00" else dt.time.fromisoformat(found["to"])
            except ValueError:
                raise WorldError(f"{reader.name}: {at}: {span!r} is not a span such as 09:00-17:00") from None
            if end <= start:
                raise WorldError(f"{reader.name}: {at}: {span!r} ends before it starts")
            parsed.append((start, end))
        spans[day] = tuple(parsed)
    return Hours(key, zone, spans)


def _queue(reader: _Reader, key: str, raw: Any) -> Queue:
    where = f"queues.{key}"
    raw = reader.mapping(raw or {}, where)
    reader.only(raw, where, {"id", "hours", "capacity", "agents", "contacts", "oldest_contact_age"})
    agents = reader.mapping(raw.get("agents", {}), f"{where}.agents")
    reader.only(agents, f"{where}.agents", set(AGENT_STATES))
    return Queue(
        name=key,
        arn=reader.text(raw.get("id", key), f"{where}.id"),
        hours=reader.text(raw["hours"], f"{where}.hours") if "hours" in raw else None,
        capacity=reader.count(raw["capacity"], f"{where}.capacity") if "capacity" in raw else None,
        agents={state: reader.count(n, f"{where}.agents.{state}") for state, n in agents.items()},
        contacts=reader.count(raw.get("contacts", 0), f"{where}.contacts"),
        oldest_contact_age=reader.count(raw.get("oldest_contact_age", 0), f"{where}.oldest_contact_age"),
    )


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder.resolve()))
    try:
        yield
    finally:
        sys.path.remove(str(folder.resolve()))


def _lambda(reader: _Reader, key: str, raw: Any, base: Path) -> LambdaFunction:
    where = f"lambdas.{key}"
    raw = reader.mapping(raw, where)
    reader.only(raw, where, {"response", "function", "python", "error"})
    if len(raw) != 1:
        raise WorldError(f"{reader.name}: {where}: give exactly one of response, function, python, error")
    if "response" in raw:
        return LambdaFunction(response=raw["response"])
    if "function" in raw:
        return LambdaFunction(function=reader.text(raw["function"], f"{where}.function"))
    if "error" in raw:
        return LambdaFunction(error=reader.text(raw["error"], f"{where}.error"))
    target = reader.text(raw["python"], f"{where}.python")
    module_name, _, attribute = target.partition(":")
    try:
        with _importable_from(base):  # a module beside the world file, or installed
            handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # the user's module may raise anything as it loads: one line, not a traceback
        raise WorldError(f"{reader.name}: {where}.python: cannot import {target!r}: {exc}") from None
    if not callable(handler):
        raise WorldError(f"{reader.name}: {where}.python: {target!r} is not callable")
    return LambdaFunction(python=handler)


def _lex_bot(reader: _Reader, key: str, raw: Any) -> LexBot:
    where = f"lex_bots.{key}"
    raw = reader.mapping(raw, where)
    reader.only(raw, where, {"intents", "slots"})
    intents = []
    for name, intent in reader.mapping(raw.get("intents", {}), f"{where}.intents").items():
        intent = reader.mapping(intent or {}, f"{where}.intents.{name}")
        reader.only(intent, f"{where}.intents.{name}", {"utterances"})
        utterances = reader.list(intent.get("utterances", []), f"{where}.intents.{name}.utterances")
        intents.append(
            Intent(name, tuple(reader.text(u, f"{where}.intents.{name}.utterances") for u in utterances))
        )
    slots = {
        slot: tuple(
            reader.text(v, f"{where}.slots.{slot}") for v in reader.list(values, f"{where}.slots.{slot}")
        )
        for slot, values in reader.mapping(raw.get("slots", {}), f"{where}.slots").items()
    }
    return LexBot(key, tuple(intents), slots)


def _flows(
    reader: _Reader, raw: Any, base: Path, placeholders: Mapping[str, str], used: set[str]
) -> dict[str, Flow]:
    folder = base / reader.text(raw, "flows")
    if not folder.is_dir():
        raise WorldError(f"{reader.name}: flows: {folder} is not a folder of exported flows")
    flows: dict[str, Flow] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_bytes())
            used.update(placeholder_names(document))
            flow = Flow.parse(fill(document, placeholders))
        except OSError as exc:
            raise WorldError(f"{reader.name}: flows: cannot read {path.name}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorldError(f"{reader.name}: flows: {path.name}: not valid JSON: {exc}") from None
        except FlowError as exc:
            raise WorldError(f"{reader.name}: flows: {path.name}: {'; '.join(exc.problems)}") from None
        flows[path.stem] = flow
        if flow.name:
            flows.setdefault(flow.name, flow)
    return flows


class _Reader:
    """Typed reads of the YAML document, each failure one line naming the key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, what: str) -> WorldError:
        return WorldError(f"{self.name}: {where or 'the document'}: {what}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, found {json.dumps(value, default=str)[:40]}")
        return {str(key): item for key, item in value.items()}

    def list(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "must be a list")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise self.fail(where, "must be a non-empty text")
        return str(value)

    def count(self, value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(where, f"must be a whole number >= 0, found {value!r}")
        return value

    def moment(self, value: Any, where: str) -> dt.datetime:
        if isinstance(value, dt.datetime):
            moment = value
        else:
            try:
                moment = dt.datetime.fromisoformat(str(value))
            except ValueError:
                raise self.fail(where, f"{value!r} is not a time such as 2026-12-07T10:30:00-05:00") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    def only(self, value: dict[str, Any], where: str, known: set[str]) -> None:
        unknown = sorted(set(value) - known)
        if unknown:
            at = f"{where}.{unknown[0]}" if where else unknown[0]
            raise self.fail(at, f"unknown key (known: {', '.join(sorted(known))})")
