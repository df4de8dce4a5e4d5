"""Hostile input across the whole public API.

The contract (README, *Errors*): every call either succeeds or raises a subclass of
``AgentStateError``, and a failed call leaves the database exactly as it was, with no transaction
left open (and, here, no connection left open either).

``CASES`` is the table: one line per (object, method) with, for each parameter, ordinary values
and hostile ones (wrong types, huge ints, odd floats, values JSON cannot hold, lone surrogates,
NUL bytes, SQL-looking text, very long text, unknown ids, forged rows and claims...). Three tests
use it:

- a hypothesis test draws a line and its arguments, some of them hostile;
- a sweep calls every line once per listed value (the others at their first ordinary value) and
  reports every call that broke the contract, so one run lists them all;
- introspection fails when a public method, constructor, module function or parameter has no
  line, so nothing new can skip the fuzz.

Each call runs on a seeded database restored before every call (planners, routers, a link,
conversations, tasks in every status, a live claim and a stale one, messages in all three
streams, three of them at fixed times for ``MessageLog.between``).
"""

from __future__ import annotations

import dataclasses
import enum
import graphlib
import inspect
import math
import os
import re
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import apsw
import postgres_server as servers
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentstate
from agentstate import errors
from agentstate.agents import Agents, Conversation, Planner, Router
from agentstate.messages import STREAMS, MessageLog, NewMessage
from agentstate.postgres.handle import PostgresConnection
from agentstate.sqlite.wal_checkpoints import is_background
from agentstate.tasks import STATUSES, Claim, Task, TaskManager
from agentstate.values import parse_time
from tests import engines
from tests.dbdump import digest, dump, postgres_tables
from tests.engines import rows

# --- the seeded database ------------------------------------------------------------------------

PLANNER, PLANNER_2 = "planner-1", "planner-2"
ROUTER, ROUTER_2 = "router-1", "router-2"
CONV, CONV_2 = "conv-1", "conv-2"
OWNER = "executor-1"
W_PENDING, W_PENDING_2, W_OTHER = "w-pending", "w-pending-2", "w-other-planner"
W_CLAIMED, W_COMPLETED, W_RECORDED = "w-claimed", "w-completed", "w-recorded"
W_FAILED, W_FINAL = "w-failed", "w-failed-final"
UNKNOWN = "no-such-id"
WORKERS = (W_PENDING, W_CLAIMED, W_COMPLETED, W_FAILED, W_FINAL, W_RECORDED, W_OTHER, UNKNOWN)
PAST = "2000-01-01T00:00:00.000000Z"
DAY = 86400.0
# conv-1's three messages, at fixed times, for MessageLog.between.
CONV_TIMES = ("2024-01-05T09:00:00.000000Z", "2024-01-05T10:00:00.000000Z", "2024-01-05T11:00:00.000000Z")


@dataclass(frozen=True)
class Seeded:
    """The rows of the seed that arguments refer to as Python objects."""

    claim: Claim  # W_CLAIMED, held by OWNER for a day
    stale_claim: Claim  # W_CLAIMED's previous claim: its token is one behind
    pending: Task
    planner: Planner
    router: Router
    conversation: Conversation


def seed(conn: Any) -> Seeded:
    agents = Agents(conn)
    planner = agents.create_planner(PLANNER, metadata={"model": "small"})
    agents.create_planner(PLANNER_2, status="paused")
    router = agents.create_router(ROUTER)
    agents.create_router(ROUTER_2)
    agents.link(ROUTER, PLANNER)
    conversation = agents.create_conversation(CONV, metadata={"user": "ada"})
    agents.create_conversation(CONV_2, status="closed")

    tm = TaskManager(conn, PLANNER)

    def claimed(worker_id: str, max_attempts: int = 3) -> Claim:
        tm.create_task(f"task {worker_id}", worker_id=worker_id, max_attempts=max_attempts)
        claim = tm.claim(OWNER, lease_seconds=DAY)
        assert claim is not None and claim.worker_id == worker_id
        return claim

    tm.record(tm.complete(claimed(W_RECORDED), result={"ok": True}).worker_id)
    rows(conn, "UPDATE workers SET updated_at = ? WHERE worker_id = ?", (PAST, W_RECORDED))
    tm.complete(claimed(W_COMPLETED), result={"summary": "done"})
    tm.fail_validation(claimed(W_FAILED), reason="too long")
    tm.fail_validation(claimed(W_FINAL, max_attempts=1), reason="wrong")
    stale = claimed(W_CLAIMED)
    rows(conn, "UPDATE workers SET lease_expires_at = ? WHERE worker_id = ?", (PAST, W_CLAIMED))
    claim = tm.claim(OWNER, lease_seconds=DAY)
    assert claim is not None and claim.worker_id == W_CLAIMED and claim.token == stale.token + 1
    pending = tm.create_task("waiting", worker_id=W_PENDING, metadata={"priority": "high"})
    tm.create_task("waiting too", worker_id=W_PENDING_2)
    TaskManager(conn, PLANNER_2).create_task("elsewhere", worker_id=W_OTHER)

    log = MessageLog(conn)
    log.append_many(
        "router",
        CONV,
        [
            NewMessage("user", "first", {"n": 1}, "key-1"),
            NewMessage("assistant", "second"),
            NewMessage("user", "third"),
        ],
    )
    for position, at in enumerate(CONV_TIMES, 1):
        rows(
            conn,
            "UPDATE router_messages SET created_at = ? WHERE conversation_id = ? AND position = ?",
            (at, CONV, position),
        )
    log.append("planner", PLANNER, role="user", content="plan it", idempotency_key="key-1")
    log.append("planner", PLANNER, role="assistant", content="planned")
    log.append("worker", W_PENDING, role="user", content="do it", idempotency_key="key-1")
    log.append("worker", W_PENDING, role="tool", content='{"hits": 3}', metadata={"latency_ms": 41})
    log.append("worker", W_RECORDED, role="user", content="old")
    return Seeded(claim, stale, pending, planner, router, conversation)


class World:
    """The connection under test and what the tables' lazy values refer to."""

    engine = ""

    def __init__(
        self, conn: Any, baseline: Any, closed: Any, seeded: Seeded, tmp: Path, seeded_file: Path, junk_file: Path
    ) -> None:
        self.conn = conn
        self.baseline = baseline  # the seed's dump
        self.closed = closed
        self.seeded = seeded
        self.tmp = tmp  # also the working directory, so relative paths given to connect() land here
        self.seeded_file = seeded_file
        self.junk_file = junk_file
        self.closers: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"World({self.engine})"

    def restore(self) -> None:
        """Bring back the seed, whatever the last call did."""
        raise NotImplementedError

    def fresh(self, case: Case) -> Any:
        """Restore the seed for a call (checking that it worked); return the call's ``before``."""
        self.restore()
        assert dump(self.conn) == self.baseline, "restoring the seed failed"
        return case.state(self)

    def changed(self, case: Case, before: Any, failed: bool) -> bool:
        """Whether a failed call changed its state."""
        return failed and case.state(self) != before

    def in_transaction(self) -> bool:
        raise NotImplementedError

    def read_only(self) -> Any:
        raise NotImplementedError


class SqliteWorld(World):
    """An in-memory database, copied from a seeded template before every call."""

    engine = "sqlite"

    def __init__(self, conn: apsw.Connection, template: apsw.Connection, closed: apsw.Connection, *rest: Any) -> None:
        self.template = template  # the seeded database, copied into conn before every call
        super().__init__(conn, dump(template), closed, *rest)

    def restore(self) -> None:
        if not self.conn.get_autocommit():
            self.conn.execute("ROLLBACK")
        with self.conn.backup("main", self.template, "main") as backup:
            backup.step()

    def in_transaction(self) -> bool:
        return not self.conn.get_autocommit()

    def read_only(self) -> apsw.Connection:
        conn = agentstate.connect(self.seeded_file, readonly=True)
        self.closers.append(conn.close)
        return conn


# The PostgreSQL seed is kept in a schema of its own, next to the tables (in ``public``).
SEED_SCHEMA = "hostile_seed"
# Tables the schema's triggers write when rows are inserted elsewhere (task events, stream heads):
# a restore fills them last, after clearing what the other tables' inserts made them write.
TRIGGER_FILLED = ("task_events", "message_heads")


class PostgresWorld(World):
    """A database of the test's own on the session's server. Copying a database per call costs
    ~0.1 s, so the seed is restored (every table emptied and refilled from a copy, in one
    transaction) only after a call that changed it: the digest taken after each call tells."""

    engine = "postgres"

    def __init__(self, conn: PostgresConnection, url: str, *rest: Any) -> None:
        super().__init__(conn, digest(conn), *rest)
        self.url = url
        self.dirty = False
        with conn.borrowed() as pg:
            tables = postgres_tables(pg)
            links = pg.execute(
                "SELECT child.relname, parent.relname FROM pg_constraint c"
                " JOIN pg_class child ON child.oid = c.conrelid JOIN pg_class parent ON parent.oid = c.confrelid"
                " JOIN pg_namespace n ON n.oid = child.relnamespace"
                " WHERE c.contype = 'f' AND n.nspname = current_schema()"
            ).fetchall()
            graph: dict[str, set[str]] = {t: set() for t in tables}
            for child, parent in links:
                if child != parent:
                    graph[child].add(parent)
            parents_first = list(graphlib.TopologicalSorter(graph).static_order())
            pg.execute(f"CREATE SCHEMA {SEED_SCHEMA}")
            for table in tables:
                pg.execute(f'CREATE TABLE {SEED_SCHEMA}."{table}" AS TABLE "{table}"')
        assert set(TRIGGER_FILLED) <= set(tables)
        self.restore_sql = "; ".join(
            [
                "BEGIN",
                *(f'DELETE FROM "{t}"' for t in reversed(parents_first)),
                *(f'INSERT INTO "{t}" OVERRIDING SYSTEM VALUE TABLE {SEED_SCHEMA}."{t}"' for t in parents_first if t not in TRIGGER_FILLED),
                *(f'DELETE FROM "{t}"; INSERT INTO "{t}" OVERRIDING SYSTEM VALUE TABLE {SEED_SCHEMA}."{t}"' for t in TRIGGER_FILLED),
                "COMMIT",
            ]
        )

    def restore(self) -> None:
        conn = self.conn.current
        if conn is not None:  # a call left this thread's transaction open (run() reports it)
            conn.execute("ROLLBACK")
            self.conn._local.conn = None  # unpin it, as the end of the block would have
        with self.conn.borrowed() as pg:
            pg.execute(self.restore_sql)
        self.dirty = False

    def fresh(self, case: Case) -> Any:
        if self.dirty or self.conn.current is not None:
            self.restore()
            assert digest(self.conn) == self.baseline, "restoring the seed failed"
        return self.baseline if case.state is db_state else case.state(self)

    def changed(self, case: Case, before: Any, failed: bool) -> bool:
        after = case.state(self)  # after every call: it tells whether the next one needs a restore
        self.dirty = after != self.baseline if case.state is db_state else True
        return failed and after != before

    def in_transaction(self) -> bool:
        return self.conn.in_transaction()

    def read_only(self) -> PostgresConnection:
        conn = agentstate.connect(self.url, readonly=True, pool_size=1)
        self.closers.append(conn.close)
        return conn


# Every PostgreSQL handle made while a test runs, to find those a failed call left open.
HANDLES: weakref.WeakSet[PostgresConnection] = weakref.WeakSet()


def open_handles() -> list[PostgresConnection]:
    return [h for h in HANDLES if not h.pool.closed]


@pytest.fixture
def track_handles(monkeypatch: pytest.MonkeyPatch) -> None:
    made = PostgresConnection.__init__

    def tracked(self: PostgresConnection, *args: Any, **kwargs: Any) -> None:
        HANDLES.add(self)
        made(self, *args, **kwargs)

    monkeypatch.setattr(PostgresConnection, "__init__", tracked)


def sqlite_world(tmp_path: Path) -> Iterator[World]:
    template = agentstate.connect(":memory:")
    conn = agentstate.connect(":memory:")
    closed = agentstate.connect(":memory:")
    closed.close()
    try:
        seeded = seed(template)
        yield SqliteWorld(conn, template, closed, seeded, tmp_path, *files(tmp_path))
    finally:
        conn.close()
        template.close()


def postgres_world(tmp_path: Path, server: servers.Server, template: str) -> Iterator[World]:
    name, _ = engines.fresh_database(server, template)
    url = server.url(name)
    conn = agentstate.connect(url, pool_size=2)
    closed = agentstate.connect(url, pool_size=1)
    closed.close()
    try:
        seeded = seed(conn)
        yield PostgresWorld(conn, url, closed, seeded, tmp_path, *files(tmp_path))
    finally:
        conn.close()
        server.drop_database(name)


def files(tmp_path: Path) -> tuple[Path, Path]:
    """An SQLite file holding the seed and a file that is not a database (for connect, backup)."""
    seeded_file = tmp_path / "seeded.db"
    on_disk = agentstate.connect(seeded_file)
    try:
        seed(on_disk)
    finally:
        on_disk.close()
    junk_file = tmp_path / "junk.db"
    junk_file.write_bytes(b"this is not an SQLite database\n" * 200)
    return seeded_file, junk_file


@pytest.fixture(params=engines.ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, track_handles: None
) -> Iterator[World]:
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        yield from sqlite_world(tmp_path)
    else:
        yield from postgres_world(
            tmp_path, request.getfixturevalue("pg_server"), request.getfixturevalue("pg_template")
        )


# --- hostile values -----------------------------------------------------------------------------


class _Omit(enum.Enum):
    OMIT = "omitted"


OMIT = _Omit.OMIT  # the argument is not passed at all


@dataclass(frozen=True)
class Lazy:
    """A value built from the seeded world at call time (a live claim, a row, a connection)."""

    label: str
    make: Callable[[World], Any]

    def __repr__(self) -> str:
        return self.label


def short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


class TenToThe5000(int):
    """An int too long to format as text (Python refuses int -> str past 4300 digits)."""

    def __repr__(self) -> str:
        return "10**5000"


class BadFspath:
    """A path-like object whose __fspath__ returns neither str nor bytes."""

    def __fspath__(self) -> Any:
        return 5

    def __repr__(self) -> str:
        return "BadFspath()"


def _cyclic_list() -> list[Any]:
    cycle: list[Any] = []
    cycle.append(cycle)
    return cycle


def _cyclic_dict() -> dict[str, Any]:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    return cycle


class Nested(list[Any]):
    """A list nested ``depth`` deep (its repr would overflow the stack)."""

    def __init__(self, depth: int) -> None:
        value: list[Any] = []
        for _ in range(depth - 1):
            value = [value]
        super().__init__([value])
        self.depth = depth

    def __repr__(self) -> str:
        return f"Nested({self.depth})"


def unique(*pools: tuple[Any, ...]) -> tuple[Any, ...]:
    """The values of several pools, each once (by type and repr)."""
    return tuple({(type(v), short(v)): v for pool in pools for v in pool}.values())


NAN, INF = math.nan, math.inf
HUGE = TenToThe5000(10**5000)
SQL = "'); DROP TABLE workers; --"
LONG = "x" * 100_000
CYCLIC = _cyclic_list()
CYCLIC_DICT = _cyclic_dict()
DEEP_1001, DEEP_5000 = Nested(1001), Nested(5000)

WRONG_TYPES: tuple[Any, ...] = (
    None, 0, -1, True, 2**63, 2**70, -(2**70), 1.5, NAN, INF, -0.0, 1e12,
    b"bytes", bytearray(b"bytes"), ["list"], {"dict": 1}, {"set"}, object(), CYCLIC,
)  # fmt: skip
# Every str argument (ids, role, status, owner, description, content, keys) gets all of these.
TEXT: tuple[Any, ...] = (
    "", " ", "\ud800", "a\udfffb", "\udc80" * 3, "\x00", "id\x00tail", SQL, "%s ? :id", "x" * 129, LONG,
    "\u202e\u0301\U0001f642", *WRONG_TYPES,
)  # fmt: skip
INTS: tuple[Any, ...] = (
    0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**70, -(2**70), HUGE, True, False,
    1.0, 2.5, NAN, INF, -INF, -0.0, 1e12, "1", "", "\ud800", None, b"1", [1], {"n": 1}, object(),
    Decimal(1), Fraction(1), complex(1),
)  # fmt: skip
SECONDS: tuple[Any, ...] = (
    0, -1, -0.0, 5e-324, NAN, INF, -INF, 1e12, -1e12, 1e300, 2**63, 2**70, -(2**70), HUGE, True,
    "60", "", "\ud800", None, b"60", [60], object(), Decimal(60), Fraction(60), complex(60),
)  # fmt: skip
JSON_OK: tuple[Any, ...] = (OMIT, None, {"k": "v"}, [1, "two"], "text", 0, True, {"nested": {"list": [1.5, None]}})
JSON_BAD: tuple[Any, ...] = (
    NAN, INF, -INF, {"k": NAN}, [INF], {"set"}, frozenset(), object(), {"k": object()}, b"bytes",
    bytearray(b"x"), {"k": b"x"}, CYCLIC, CYCLIC_DICT, {(1, 2): "tuple key"}, {1: "int key"},
    {None: "null key"}, {"\ud800": "surrogate key"}, {"k": "\ud800"}, ["\ud800"], "\ud800", "a\x00b",
    {"k": "a\x00b"}, {"a\x00b": "NUL in a key"}, ["\x00"], "\\u0000", {"k": LONG},  # PostgreSQL's jsonb has no NUL
    2**63, -(2**63) - 1, 2**70, -(2**70), HUGE, 1e308, 5e-324, -0.0, DEEP_1001, DEEP_5000,
    datetime(2024, 1, 1), Decimal("1.5"), complex(1, 2), range(3), LONG,
)  # fmt: skip
TIMESTAMPS_OK: tuple[Any, ...] = (
    OMIT, None, datetime(2024, 1, 5, 10, tzinfo=UTC), "2024-01-05T10:00:00.000000Z",
    datetime(2024, 1, 5, 12, tzinfo=timezone(timedelta(hours=2))),
)  # fmt: skip
TIMESTAMPS_BAD: tuple[Any, ...] = (
    datetime(2024, 1, 5, 10),  # naive
    datetime(999, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "2024-1-5T10:00:00.0Z",
    "2024-01-05T10:00:00Z",
    "2024-01-05 10:00:00.000000Z",
    "2024-01-05T10:00:00.000000+00:00",
    "2024-01-05T10:00:00.000000",
    "~",
    date(2024, 1, 5),
    1704448800,
    1704448800.0,
    *TEXT,
)

_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
TEXT_FUZZ = st.text(st.one_of(st.characters(), _SURROGATES, st.sampled_from("\x00'\";%_\\")), max_size=12)
INT_FUZZ = st.one_of(st.integers(), st.floats(), st.booleans())
SECONDS_FUZZ = st.one_of(st.floats(), st.integers())
JSON_FUZZ = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), TEXT_FUZZ, st.binary(max_size=4), st.builds(object)
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(st.one_of(TEXT_FUZZ, st.integers(), st.none(), st.tuples(st.integers())), kids, max_size=3),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=8,
)
_OFFSETS = st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)))
TIMESTAMP_FUZZ = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), _OFFSETS)),
    st.from_regex(r"\A\d{1,5}-\d{1,2}-\d{1,2}T\d{1,2}:\d{1,2}:\d{1,2}(\.\d{0,7})?Z?\Z"),
)


# --- forged objects: the library's own dataclasses, filled with bad fields --------------------------


def _forged_claim(label: str, **changes: Any) -> Lazy:
    return Lazy(f"Claim({label})", lambda w: Claim(dataclasses.replace(w.seeded.claim.task, **changes)))


FORGED_CLAIMS: tuple[Any, ...] = (
    *(_forged_claim(f"fence={v!r}", fence=v) for v in (2**63, 2**70, -1, None, "1", 1.5, True)),
    *(_forged_claim(f"worker_id={v!r}", worker_id=v) for v in ("\ud800", "w\x00", 5, None, object())),
    *(_forged_claim(f"lease_owner={v!r}", lease_owner=v) for v in (None, "\ud800", 5, "")),
    Lazy("Claim(None)", lambda w: Claim(None)),  # type: ignore[arg-type]
    Lazy("Claim(a completed task)", lambda w: Claim(TaskManager(w.conn).get_task(W_COMPLETED))),
)


def _forged_rows(kind: str, attr: str, key: str) -> tuple[Lazy, ...]:
    def forge(name: str, value: Any) -> Lazy:
        return Lazy(
            f"{kind}({name}={value!r})", lambda w: dataclasses.replace(getattr(w.seeded, attr), **{name: value})
        )

    return (
        *(forge("created_at", v) for v in ("\ud800", 5, None, object(), b"x", 2**70)),
        *(forge(key, v) for v in ("\ud800", None, object(), 2**70)),
    )


def _seeded(attr: str) -> Callable[[World], Any]:
    return lambda w: getattr(w.seeded, attr)


def _rows_other_than(attr: str) -> tuple[Lazy, ...]:
    return tuple(
        Lazy(f"a {other} row", _seeded(other))
        for other in ("planner", "router", "conversation", "pending")
        if other != attr
    )


def _after(attr: str, kind: str, key: str) -> tuple[Any, ...]:
    """Hostile ``after=`` values for a keyset page of ``kind`` rows."""
    return ("x", 1, 2**70, {"created_at": "x"}, object(), *_rows_other_than(attr), *_forged_rows(kind, attr, key))


GOOD_MESSAGE = NewMessage("user", "hello")
FORGED_MESSAGES: tuple[NewMessage, ...] = (
    *(NewMessage(v, "content") for v in TEXT),
    *(NewMessage("user", v) for v in TEXT),
    *(NewMessage("user", "content", v) for v in JSON_BAD),
    *(NewMessage("user", "content", None, v) for v in TEXT if v is not None),
)


def _claim(w: World) -> Claim:
    return w.seeded.claim


def _stale(w: World) -> Claim:
    return w.seeded.stale_claim


def _claim_with(result: Any) -> Callable[[World], Any]:
    return lambda w: [(_claim(w), result)]


def _pair_of(claim: Lazy) -> Callable[[World], Any]:
    return lambda w: [(claim.make(w), None)]


CLAIM = Lazy("claim", _claim)
CONN = Lazy("conn", lambda w: w.conn)
BAD_CONNS: tuple[Any, ...] = (
    None, 1, "agentstate.db", b"db", object(), Lazy("a closed connection", lambda w: w.closed),
    Lazy("a read-only connection", lambda w: w.read_only()), Lazy("a MessageLog", lambda w: MessageLog(w.conn)),
)  # fmt: skip

SPEC_FIELDS_BAD: dict[str, tuple[Any, ...]] = {
    "description": TEXT,
    "worker_id": TEXT,
    "max_attempts": INTS,
    **{name: JSON_BAD for name in ("acceptance_criteria", "task_context", "input_images", "metadata")},
}
SPECS_OK: tuple[Any, ...] = (
    [{"description": "one"}],
    [],
    [{}],
    [{"description": "a", "worker_id": "w-a"}, {"description": "b", "metadata": {"k": 1}, "max_attempts": 1}],
    ({"description": "in a tuple"},),
    Lazy("a generator of specs", lambda w: ({"description": d} for d in ("g1", "g2"))),
)
SPECS_BAD: tuple[Any, ...] = (
    None, 5, "ab", b"ab", {"description": "a dict, not a list"}, [None], [5], [["description", "x"]],
    [{"descripton": "misspelled key"}], [{"desc": "x", "max_attempt": 2}], [{"planner_id": PLANNER_2}],
    [{"now": "x"}], [{"self": "x"}], [{1: "x"}], [{"worker_id": W_PENDING}],
    [{"worker_id": "twice"}, {"worker_id": "twice"}], [{"description": "ok"}, {"metadata": {"set"}}],
    *([{name: v}] for name, values in SPEC_FIELDS_BAD.items() for v in values),
)  # fmt: skip

RESULTS_OK: tuple[Any, ...] = (
    Lazy("[(claim, {'ok': True})]", lambda w: [(_claim(w), {"ok": True})]),
    Lazy("[(claim, None)]", lambda w: [(_claim(w), None)]),
    [],
    Lazy("[(stale_claim, None)]", lambda w: [(_stale(w), None)]),
    Lazy("[[claim, 1]]", lambda w: [[_claim(w), 1]]),
    Lazy("a generator of pairs", lambda w: ((c, None) for c in [_claim(w)])),
)
RESULTS_BAD: tuple[Any, ...] = (
    None, 5, "ab", [None], [5], [(W_CLAIMED, None)],
    Lazy("[claim]", lambda w: [_claim(w)]),
    Lazy("claim", _claim),
    Lazy("[(claim,)]", lambda w: [(_claim(w),)]),
    Lazy("[(claim, None, None)]", lambda w: [(_claim(w), None, None)]),
    Lazy("{'w-claimed': claim}", lambda w: {W_CLAIMED: _claim(w)}),
    Lazy("[(claim, None), (claim, None)]", lambda w: [(_claim(w), None), (_claim(w), None)]),
    Lazy("[(claim, None), (stale_claim, None)]", lambda w: [(_claim(w), None), (_stale(w), None)]),
    *(Lazy(f"[(claim, {short(v)})]", _claim_with(v)) for v in JSON_BAD),
    *([(v, None)] for v in TEXT),
    *(Lazy(f"[({c!r}, None)]", _pair_of(c)) for c in FORGED_CLAIMS),
)  # fmt: skip

BATCHES_OK: tuple[Any, ...] = (
    [GOOD_MESSAGE],
    [],
    [
        NewMessage("user", "a", {"k": 1}, "key-new"),
        NewMessage("assistant", "b"),
        NewMessage("user", "a", {"k": 1}, "key-new"),
    ],
    (NewMessage("user", "in a tuple"),),
    Lazy("a generator of messages", lambda w: (m for m in [GOOD_MESSAGE])),
)
BATCHES_BAD: tuple[Any, ...] = (
    None, 5, "ab", b"ab", GOOD_MESSAGE, [None], [("user", "hi")], [{"role": "user", "content": "hi"}],
    [GOOD_MESSAGE, NewMessage("user", "\ud800")],
    [NewMessage("user", "a", None, "same"), NewMessage("user", "b", None, "same")],
    *([m] for m in FORGED_MESSAGES),
)  # fmt: skip
PAIRS_OK: tuple[Any, ...] = (
    [(CONV, GOOD_MESSAGE)],
    [],
    [(CONV, GOOD_MESSAGE), (CONV_2, NewMessage("assistant", "b", [1])), (CONV, NewMessage("user", "c"))],
)
PAIRS_BAD: tuple[Any, ...] = (
    None, 5, "ab", GOOD_MESSAGE, [None], [(CONV,)], [(CONV, GOOD_MESSAGE, "extra")], [[CONV, GOOD_MESSAGE]],
    [(CONV, "not a message")], [(CONV, GOOD_MESSAGE), (UNKNOWN, GOOD_MESSAGE)], {CONV: GOOD_MESSAGE},
    [(CONV, GOOD_MESSAGE), (CONV, NewMessage("user", "\ud800"))],
    *([(v, GOOD_MESSAGE)] for v in TEXT),
    *([(CONV, m)] for m in FORGED_MESSAGES),
)  # fmt: skip

PATHS_OK: tuple[Any, ...] = (
    Lazy("seeded.db", lambda w: str(w.seeded_file)),
    Lazy("Path(seeded.db)", lambda w: w.seeded_file),
    ":memory:",
    "fresh.db",
    Path("fresh-path.db"),
    "file:uri.db?mode=rwc",
)
PATHS_BAD: tuple[Any, ...] = (
    *TEXT,
    Lazy("junk.db", lambda w: str(w.junk_file)),
    Lazy("the tmp directory", lambda w: w.tmp),
    "missing-dir/x.db",
    "file:missing.db?mode=ro",
    "file:x.db?vfs=no-such-vfs",
    "file:x.db?mode=bogus",
    "file::memory:?cache=shared",
    BadFspath(),
)
SQL_OK: tuple[Any, ...] = (None, "INSERT INTO planners (planner_id) VALUES ('planner-new')", "SELECT 1", "SAVEPOINT s")
SQL_BAD: tuple[Any, ...] = (
    f"INSERT INTO planners (planner_id) VALUES ('{PLANNER}')",
    "INSERT INTO planners (planner_id) VALUES ('')",
    "INSERT INTO planners (planner_id) VALUES ('twice'); INSERT INTO planners (planner_id) VALUES ('twice')",
    f"INSERT INTO workers (worker_id, planner_id) VALUES ('w-x', '{UNKNOWN}')",
    "SELEC 1",
    SQL,
    "ROLLBACK",
    "BEGIN",
)


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter: ordinary values (the first is the default) and hostile ones."""

    name: str
    valid: tuple[Any, ...]
    hostile: tuple[Any, ...] = ()
    fuzz: st.SearchStrategy[Any] | None = None
    keyword: bool = False


def text(name: str, *valid: Any, kw: bool = False) -> Param:
    return Param(name, valid, TEXT, TEXT_FUZZ, kw)


def integer(name: str, *valid: Any, kw: bool = False) -> Param:
    return Param(name, valid, INTS, INT_FUZZ, kw)


def seconds(name: str, *valid: Any, kw: bool = True) -> Param:
    return Param(name, valid, SECONDS, SECONDS_FUZZ, kw)


def json_value(name: str, *, kw: bool = True) -> Param:
    return Param(name, JSON_OK, JSON_BAD, JSON_FUZZ, kw)


def timestamp(name: str) -> Param:
    return Param(name, TIMESTAMPS_OK, TIMESTAMPS_BAD, TIMESTAMP_FUZZ, keyword=True)


def custom(name: str, valid: tuple[Any, ...], hostile: tuple[Any, ...], *, kw: bool = False) -> Param:
    return Param(name, valid, hostile, None, kw)


Invoke = Callable[[World, "Case", dict[str, Any]], Any]
Check = Callable[[World, dict[str, Any], Any], "str | None"]


def db_state(world: World) -> Any:
    return digest(world.conn)


@dataclass(frozen=True)
class Case:
    """One line of the table: a method of a target and a value source for each parameter."""

    target: str
    method: str
    params: tuple[Param, ...]
    invoke: Invoke | None = None  # default: call getattr(TARGETS[target](world), method)
    state: Callable[[World], Any] = db_state  # what a failed call must leave unchanged
    check: Check | None = None  # a further check of a successful call's result

    @property
    def name(self) -> str:
        return f"{self.target}.{self.method}"

    def __repr__(self) -> str:
        return self.name


TARGETS: dict[str, Callable[[World], Any]] = {
    "TaskManager(planner)": lambda w: TaskManager(w.conn, PLANNER),
    "TaskManager()": lambda w: TaskManager(w.conn),
    "MessageLog": lambda w: MessageLog(w.conn),
    "Agents": lambda w: Agents(w.conn),
    "agentstate": lambda w: agentstate,
}


def call_with(fn: Callable[..., Any], params: tuple[Param, ...], args: dict[str, Any]) -> Any:
    """Call fn with the params positionally (keyword-only ones, and any after an omitted one,
    by keyword); OMIT leaves a parameter out."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    gap = False
    for param in params:
        value = args[param.name]
        if value is OMIT:
            gap = gap or not param.keyword
        elif param.keyword or gap:
            keywords[param.name] = value
        else:
            positional.append(value)
    return fn(*positional, **keywords)


# TaskManager: every line runs against a TaskManager with a planner and one without.
AGES = tuple(v for v in SECONDS if not (isinstance(v, (int, float)) and v == 0))  # 0 is a valid delay
DEPENDS_BAD = (W_PENDING, [UNKNOWN], [W_OTHER], ["w-new"], [1], [None], [""], None, 7, {"a": 1}, [["w"]], b"w")
WAIT = custom("wait_seconds", (OMIT, 0, 0.01), AGES, kw=True)  # a valid wait is short: nothing may come
claim_arg = custom("claim", (CLAIM, Lazy("stale_claim", _stale), W_CLAIMED), (*TEXT, *FORGED_CLAIMS))
token_arg = integer("token", OMIT, None, Lazy("claim.token", lambda w: _claim(w).token), 0)
TASK_LINES: list[tuple[str, tuple[Param, ...]]] = [
    ("create_task", (
        text("description", "a task", "", OMIT), json_value("acceptance_criteria"), json_value("task_context"),
        json_value("input_images"), json_value("metadata"), text("worker_id", OMIT, None, "w-new", W_PENDING, kw=True),
        integer("max_attempts", OMIT, 3, 1, kw=True), integer("priority", OMIT, 0, -5, 2**63 - 1, kw=True),
        custom("delay_seconds", (OMIT, 0, 60), AGES, kw=True),
        custom("depends_on", (OMIT, (), [W_PENDING], (W_COMPLETED, W_CLAIMED)), DEPENDS_BAD, kw=True),
        text("idempotency_key", OMIT, None, "task-key-1", kw=True),
    )),
    ("create_tasks", (custom("specs", SPECS_OK, SPECS_BAD),)),
    ("get_task", (text("worker_id", *WORKERS),)),
    ("get_current_task", ()),
    ("get_completed_task", ()),
    ("wait_completed", (custom("timeout_seconds", (0, 0.01), AGES, kw=False),)),
    ("list_tasks", (
        custom("status", STATUSES, (*TEXT, "PENDING", "done", STATUSES)),
        custom("after", (OMIT, None, Lazy("pending task", lambda w: w.seeded.pending)),
               _after("pending", "Task", "worker_id"), kw=True),
        integer("limit", OMIT, 1, 100, kw=True),
    )),
    ("counts", ()),
    ("history", (text("worker_id", *WORKERS),)),
    ("retry", (text("worker_id", W_FAILED, W_FINAL, W_PENDING, UNKNOWN), custom("delay_seconds", (OMIT, 0, 60), AGES, kw=True))),
    ("cancel", (text("worker_id", W_PENDING, W_CLAIMED, W_COMPLETED, W_OTHER, UNKNOWN), json_value("reason", kw=False))),
    ("cancel_all", (json_value("reason", kw=False),)),
    ("blocked", ()),
    ("record", (text("worker_id", W_COMPLETED, W_FAILED, W_RECORDED, W_PENDING, UNKNOWN),)),
    ("purge_recorded", (custom("older_than_seconds", (60, DAY, 1e-3, 0), tuple(v for v in SECONDS if not (isinstance(v, (int, float)) and v == 0)), kw=True), integer("batch_size", OMIT, 1, 1000, kw=True))),
    ("claim", (text("owner", OWNER, "executor-2"), seconds("lease_seconds", OMIT, 60, 0.5), WAIT)),
    ("claim_many", (text("owner", OWNER, "executor-2"), integer("limit", 2, 1, 10), seconds("lease_seconds", OMIT, 60), WAIT)),
    ("complete_many", (custom("results", RESULTS_OK, RESULTS_BAD),)),
    ("heartbeat", (claim_arg, token_arg, seconds("lease_seconds", OMIT, 60, 3600))),
    ("complete", (claim_arg, token_arg, json_value("result"))),
    ("fail_validation", (claim_arg, token_arg, json_value("reason"))),
    ("release", (claim_arg, token_arg)),
    ("complete_and_claim_next", (claim_arg, token_arg, json_value("result"), seconds("lease_seconds", OMIT, 60), WAIT)),
]  # fmt: skip

stream_arg = custom("stream", STREAMS, (*TEXT, "Router", "conversation", "workers", ["router"], STREAMS))
stream_id_arg = text("stream_id", CONV, PLANNER, W_PENDING, CONV_2, UNKNOWN)
LOG_LINES: list[tuple[str, tuple[Param, ...]]] = [
    ("append", (
        stream_arg, stream_id_arg, text("role", "user", "assistant", kw=True), text("content", "hello", "", kw=True),
        json_value("metadata"), text("idempotency_key", OMIT, None, "key-new", "key-1", kw=True),
    )),
    ("append_many", (stream_arg, stream_id_arg, custom("messages", BATCHES_OK, BATCHES_BAD))),
    ("append_bulk", (stream_arg, custom("messages", PAIRS_OK, PAIRS_BAD))),
    ("latest", (stream_arg, stream_id_arg, integer("limit", OMIT, 1, 2, 50))),
    ("before", (stream_arg, stream_id_arg, integer("position", 3, 2, 100, 0), integer("limit", OMIT, 1, 50, kw=True))),
    ("after", (stream_arg, stream_id_arg, integer("position", OMIT, 0, 1, 2), integer("limit", OMIT, 1, 50, kw=True))),
    ("between", (
        stream_arg, stream_id_arg, timestamp("since"), timestamp("until"),
        integer("limit", OMIT, None, 1, 2, kw=True),
    )),
    ("get", (stream_arg, stream_id_arg, integer("position", 1, 2, 3, 100))),
    ("count", (stream_arg, stream_id_arg)),
    ("last_position", (stream_arg, stream_id_arg)),
    # trim takes exactly one of before= / keep_last=: one line for each, one for neither or both
    ("trim", (stream_arg, stream_id_arg, integer("before", 2, 1, 100, kw=True))),
    ("trim", (stream_arg, stream_id_arg, integer("keep_last", 2, 1, kw=True))),
    ("trim", (stream_arg, stream_id_arg, custom("before", (None, OMIT, 2), (), kw=True),
              custom("keep_last", (2, OMIT, None), (), kw=True))),
    ("clear", (stream_arg, stream_id_arg,
               custom("delete_owner", (OMIT, False, True), ("yes", None, 0, 1, object()), kw=True))),
    ("pop_last", (stream_arg, stream_id_arg)),
    ("all", (stream_arg, stream_id_arg, integer("page_size", OMIT, 1, 2, 1000, kw=True))),
]  # fmt: skip


def agent_lines(
    kind: str, plural: str, id_name: str, existing: str, other: str, attr: str, key: str
) -> list[tuple[str, tuple[Param, ...]]]:
    row = Lazy(f"a {attr} row", lambda w: getattr(w.seeded, attr))
    ident = text(id_name, existing, other, UNKNOWN)
    return [
        (
            f"create_{kind}",
            (
                text(id_name, OMIT, None, "new-id", existing),
                text("status", OMIT, "active", "paused", kw=True),
                json_value("metadata"),
            ),
        ),
        (f"get_{kind}", (ident,)),
        *([(f"delete_{kind}", (ident,))] if kind != "planner" else []),
        (f"update_{kind}", (ident, text("status", OMIT, None, "paused", kw=True), json_value("metadata"))),
        (
            f"list_{plural}",
            (
                text("status", OMIT, "active", "paused", "closed"),
                custom("after", (OMIT, None, row), _after(attr, kind.capitalize(), key), kw=True),
                integer("limit", OMIT, 1, 100, kw=True),
            ),
        ),
    ]


AGENT_LINES: list[tuple[str, tuple[Param, ...]]] = [
    *agent_lines("conversation", "conversations", "conversation_id", CONV, CONV_2, "conversation", "id"),
    ("get_or_create_conversation", (
        text("conversation_id", CONV, CONV_2, "new-id"),
        text("status", OMIT, "active", "paused", kw=True),
        json_value("metadata"),
    )),
    *agent_lines("router", "routers", "router_id", ROUTER, ROUTER_2, "router", "router_id"),
    *agent_lines("planner", "planners", "planner_id", PLANNER, PLANNER_2, "planner", "planner_id"),
    ("link", (text("router_id", ROUTER, ROUTER_2, UNKNOWN), text("planner_id", PLANNER, PLANNER_2, UNKNOWN))),
    ("unlink", (text("router_id", ROUTER, ROUTER_2, UNKNOWN), text("planner_id", PLANNER, PLANNER_2, UNKNOWN))),
    ("planners_of", (text("router_id", ROUTER, ROUTER_2, UNKNOWN),)),
    ("routers_of", (text("planner_id", PLANNER, PLANNER_2, UNKNOWN),)),
    ("delete_planner", (
        text("planner_id", PLANNER, PLANNER_2, UNKNOWN),
        custom("with_tasks", (OMIT, False, True), ("yes", None, 0, 1, object()), kw=True),
        custom("force", (OMIT, False, True), ("yes", None, 0, 1, object()), kw=True),
        integer("batch_size", OMIT, 1, 1000, kw=True),
    )),
]  # fmt: skip


# --- constructors: hostile arguments, then one method of the object at its default arguments ------

CONSTRUCTED = {"TaskManager": "TaskManager(planner)", "MessageLog": "MessageLog", "Agents": "Agents"}


def then_call(world: World, obj: Any, target: str, method: str) -> Any:
    case = next(c for c in CASES if c.target == target and c.method == method)
    args = {p.name: resolve(world, p.valid[0]) for p in case.params}
    return call_with(getattr(obj, method), case.params, args)


def construct(world: World, case: Case, args: dict[str, Any]) -> Any:
    cls = {"TaskManager": TaskManager, "MessageLog": MessageLog, "Agents": Agents}[case.target]
    ctor_params = tuple(p for p in case.params if p.name != "then")
    obj = call_with(cls, ctor_params, args)
    return then_call(world, obj, CONSTRUCTED[case.target], args["then"])


def then_arg(lines: list[tuple[str, tuple[Param, ...]]]) -> Param:
    return custom("then", tuple(dict.fromkeys(method for method, _ in lines)), ())


CONSTRUCTOR_CASES = [
    Case("TaskManager", "__init__", (
        custom("conn", (CONN,), BAD_CONNS), text("planner_id", PLANNER, None, PLANNER_2, UNKNOWN),
        text("actor", OMIT, None, "actor-1", kw=True), custom("lease_backoff_seconds", (OMIT, 0, 30), AGES, kw=True),
        then_arg(TASK_LINES),
    ), construct),
    Case("MessageLog", "__init__", (custom("conn", (CONN,), BAD_CONNS), then_arg(LOG_LINES)), construct),
    Case("Agents", "__init__", (custom("conn", (CONN,), BAD_CONNS), then_arg(AGENT_LINES)), construct),
]  # fmt: skip


# --- module functions -------------------------------------------------------------------------------


def files_state(world: World) -> Any:
    """What a failed connect() must leave as it was: the seeded file's rows, the junk file's bytes
    and which files exist (a failed connect must not leave a new database behind)."""
    conn = apsw.Connection(str(world.seeded_file))
    try:
        rows = dump(conn)
    finally:
        conn.close()
    names = sorted(p.name for p in world.tmp.iterdir() if not p.name.endswith(("-wal", "-shm", "-journal")))
    return rows, world.junk_file.read_bytes(), names


def call_connect(world: World, case: Case, args: dict[str, Any]) -> None:
    conn = call_with(agentstate.connect, case.params, args)
    try:
        Agents(conn).list_planners()  # one named query, so that on_query and slow_query_ms fire
    finally:
        conn.close()


def _hook(name: str, seconds: float, rows: int) -> None:
    pass


def _raising_hook(name: str, seconds: float, rows: int) -> None:
    raise ValueError("a monitoring hook that fails")


def connect_line(path: Param, state: Callable[[World], Any] | None = None, timeout: Any = OMIT) -> Case:
    """connect() on one kind of path (an existing database, a new file, or a PostgreSQL URL);
    ``timeout``: connect_timeout_s's first ordinary value (what a failed connection costs)."""
    return Case("agentstate", "connect", (
        path, flag("readonly"), flag("migrate"),
        custom("durability", (OMIT, "normal", "full"), (*TEXT, "FULL", "off", ["full"]), kw=True),
        integer("busy_timeout_ms", OMIT, None, 0, 5000, kw=True),
        integer("file_mode", OMIT, 0o600, 0o644, kw=True),
        flag("monitoring"),
        Param("slow_query_ms", (OMIT, None, 0, 100.0), unique(SECONDS, INTS), SECONDS_FUZZ, keyword=True),
        custom("on_query", (OMIT, None, _hook), (5, "x", object(), lambda: None, _raising_hook), kw=True),
        flag("writer_gate"),
        # PostgreSQL's options, checked on either engine
        Param("pool_size", (OMIT, 1, 4), (*INTS, 0, -1), INT_FUZZ, keyword=True),
        Param("connect_timeout_s", tuple(dict.fromkeys((timeout, OMIT, 0.5, 10))), SECONDS, SECONDS_FUZZ, keyword=True),
        Param("statement_timeout_ms", (OMIT, None, 0, 5000), (*INTS, -1), INT_FUZZ, keyword=True),
        custom("application_name", (OMIT, "worker-7"), (*TEXT, None, 5, b"x"), kw=True),
        Param("failover_timeout_s", (OMIT, 0, 30), unique(SECONDS, ()), SECONDS_FUZZ, keyword=True),
    ), call_connect, state or files_state)  # fmt: skip


def call_write(world: World, case: Case, args: dict[str, Any]) -> None:
    with agentstate.write(args["conn"]) as conn:
        if args["sql"] is None:
            return
        if engines.is_postgres(conn):
            with conn.borrowed() as pg:  # the block's own transaction
                pg.execute(args["sql"])
        else:
            conn.execute(args["sql"])


def flag(name: str) -> Param:
    return custom(name, (OMIT, False, True), ("yes", "", None, 0, 2, 2**70, NAN, object(), [], "\ud800"), kw=True)


MODULE_CASES = [
    connect_line(Param("path", PATHS_OK, PATHS_BAD, TEXT_FUZZ)),
    connect_line(custom("path", ("new.db", "file:new-uri.db?mode=rwc"), ())),  # a failure must not leave a file
    Case("agentstate", "write", (custom("conn", (CONN,), BAD_CONNS), custom("sql", SQL_OK, SQL_BAD)), call_write),
    Case("agentstate", "migrate", (
        custom("conn", (CONN,), BAD_CONNS), custom("known", (OMIT, None), (5, "x", [None], [1], {"a": 1})),
        custom("on_apply", (OMIT, None), (5, "x", object())),
    )),
    Case("agentstate", "status", (
        custom("conn", (CONN,), BAD_CONNS), custom("known", (OMIT, None), (5, "x", [None], [1], {"a": 1})),
    )),
    Case("agentstate", "query_stats", ()),
    Case("agentstate", "stats", (
        custom("conn", (CONN,), BAD_CONNS), flag("full"), integer("largest", OMIT, 1, 5, kw=True),
        integer("warn_above_bytes", OMIT, None, 10**12, kw=True),
    )),
    Case("agentstate", "cleanup", (
        custom("conn", (CONN,), BAD_CONNS),
        seconds("recorded_older_than_days", OMIT, None, 30, 1e-6), seconds("messages_older_than_days", OMIT, None, 1),
        integer("keep_last_messages", OMIT, None, 1, 3, kw=True), integer("keep_last_events", OMIT, None, 1, kw=True),
        integer("batch_size", OMIT, 1, 1000, kw=True), flag("dry_run"),
        custom("progress", (OMIT, None, lambda *_: None), (5, "x", object()), kw=True),
    )),
    Case("agentstate", "backup", (
        custom("source", (CONN, Lazy("seeded.db", lambda w: str(w.seeded_file))), BAD_CONNS[:2] + BAD_CONNS[3:]),
        custom("dest", ("copy.db",), (*TEXT, Lazy("seeded.db", lambda w: str(w.seeded_file)),
                                      Lazy("the tmp directory", lambda w: w.tmp), "missing-dir/x.db")),
        flag("overwrite"), integer("pages_per_step", OMIT, 1, 100, kw=True),
        custom("progress", (OMIT, None, lambda *_: None), (5, "x", object()), kw=True),
        integer("file_mode", OMIT, 0o600, 0o640, kw=True),
    ), state=lambda w: (db_state(w), files_state(w))),
    Case("agentstate", "reset_query_stats", ()),
]  # fmt: skip


# --- MessageLog.between must return exactly the messages of the range -----------------------------

_LENIENT = re.compile(r"(\d{1,4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?Z")


class Unreadable(Exception):
    """A bound this check cannot interpret (the library may still accept or refuse it)."""


def instant(value: Any) -> datetime | None:
    """What a time bound means: an aware datetime (a naive one read as UTC), a timestamp string
    (padded or not, with or without a fraction), or None (open)."""
    if value is None or value is OMIT:
        return None
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str) and (m := _LENIENT.fullmatch(value)):
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        try:
            return datetime(y, mo, d, h, mi, s, int((m.group(7) or "0").ljust(6, "0")), tzinfo=UTC)
        except ValueError:
            raise Unreadable(value) from None
    raise Unreadable(value)


def check_between(world: World, args: dict[str, Any], result: Any) -> str | None:
    try:
        since, until = instant(args["since"]), instant(args["until"])
    except Unreadable:
        return None
    stored = MessageLog(world.conn).after(args["stream"], args["stream_id"], 0, limit=1_000_000)
    inside = sorted(
        (m for m in stored if (since is None or since <= parse_time(m.created_at)) and (until is None or parse_time(m.created_at) < until)),
        key=lambda m: (m.created_at, m.position),
    )  # fmt: skip
    limit = args["limit"]
    want = [m.position for m in inside][: None if limit in (None, OMIT) else int(limit)]
    got = [m.position for m in result]
    if got != want:
        return f"returned positions {got}, but the range holds {want} (times {[m.created_at for m in stored]})"
    return None


# --- all the lines ----------------------------------------------------------------------------------

CASES: list[Case] = [
    *(
        Case(target, method, params)
        for target in ("TaskManager(planner)", "TaskManager()")
        for method, params in TASK_LINES
    ),
    *(
        Case("MessageLog", method, params, check=check_between if method == "between" else None)
        for method, params in LOG_LINES
    ),
    *(Case("Agents", method, params) for method, params in AGENT_LINES),
    *CONSTRUCTOR_CASES,
    *MODULE_CASES,
]

# On PostgreSQL: every manager line, and the module functions that take a PostgreSQL handle or URL.
# SQLite's only: connect() on paths and file URIs, and backup (a copy of a file; on PostgreSQL it
# refuses the handle with InvalidTypeError by design: pg_dump's job).
URL = Lazy("the test database's URL", lambda w: cast(PostgresWorld, w).url)
POSTGRES_MODULE_CASES = [
    # a server that refuses a connection is waited for until connect_timeout_s: 2 s, not 10
    connect_line(custom("path", (URL,), ()), state=db_state, timeout=2),
    *(
        c
        for c in MODULE_CASES
        if c.method in ("write", "migrate", "status", "query_stats", "reset_query_stats", "stats", "cleanup")
    ),
]
POSTGRES_CASES: list[Case] = [*(c for c in CASES if c.target != "agentstate"), *POSTGRES_MODULE_CASES]


def cases_for(world: World) -> list[Case]:
    return POSTGRES_CASES if world.engine == "postgres" else CASES


# --- running one call -------------------------------------------------------------------------------


def resolve(world: World, value: Any) -> Any:
    return value.make(world) if isinstance(value, Lazy) else value


def origin(exc: BaseException) -> str:
    """The innermost agentstate frame the exception passed through (file:line), for the report."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}agentstate{os.sep}" in f.filename]
    where = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{Path(where.filename).name}:{where.lineno}"


def run(world: World, case: Case, values: dict[str, Any]) -> tuple[list[str], BaseException | None]:
    """Make one call on a freshly restored seed; return what broke the contract, and the
    exception that escaped (one that is not an AgentStateError), if any."""
    before = world.fresh(case)
    files_before = set(world.tmp.iterdir())
    conns_before = {id(c) for c in apsw.connections()}
    handles_before = {id(h) for h in open_handles()}
    args = {p.name: resolve(world, values[p.name]) for p in case.params}
    problems: list[str] = []
    failure: BaseException | None = None
    result: Any = None
    try:
        result = (case.invoke or call_method)(world, case, args)
    except Exception as exc:
        failure = exc
    for close in world.closers:
        close()
    world.closers.clear()
    leaked = [c for c in apsw.connections() if id(c) not in conns_before and not is_background(c)]
    for conn in leaked:
        conn.close()
    leaked_handles = [h for h in open_handles() if id(h) not in handles_before]
    for handle in leaked_handles:
        handle.close(force=True)
    escaped = failure if failure is not None and not isinstance(failure, errors.AgentStateError) else None
    if escaped is not None:
        problems.append(f"{type(escaped).__name__} escaped at {origin(escaped)}: {short(str(escaped))}")
    elif failure is not None and world.engine == "postgres" and (unclassified := misread(failure, case, args)):
        problems.append(f"{type(failure).__name__} at {origin(failure)}: {unclassified}: {short(str(failure))}")
    if leaked or leaked_handles:
        problems.append(f"left {len(leaked) + len(leaked_handles)} connection(s) open")
    if world.in_transaction():
        problems.append("left a transaction open")
    if world.changed(case, before, failure is not None):
        problems.append(f"failed ({type(failure).__name__}) but changed the database")
    if failure is None and case.check is not None:
        problem = case.check(world, args, result)
        if problem:
            problems.append(problem)
    for path in set(world.tmp.iterdir()) - files_before:  # each call starts from the same files
        if path.is_file():
            path.unlink()
    return problems, escaped


# A connect() given at least this long to connect (connect_timeout_s) gets a connection from the
# test's local, running server, unless a value it passed was refused.
SURE_TO_CONNECT_S = 2


def misread(failure: BaseException, case: Case, args: dict[str, Any]) -> str | None:
    """What is wrong with how a PostgreSQL failure was reported, if anything. The test's server is
    local and up, so a lost connection means a value broke the session (or was waited on until a
    timeout); and a bare AgentStateError made from a server error is one the translator did not
    classify: a value PostgreSQL refuses (NUL, more than 64 bits, too long, a CHECK...) must come
    back as the class SQLite's refusal has (InvalidValueError, CheckConstraintError...). Only
    ``agentstate.write`` runs SQL of the caller's, whose syntax errors are bare on both engines."""
    if isinstance(failure, errors.ConnectionLostError):
        if case.method == "connect":
            timeout = args.get("connect_timeout_s", OMIT)
            timeout = 10 if timeout is OMIT else timeout
            if not (type(timeout) in (int, float) and timeout >= SURE_TO_CONNECT_S):
                return None  # a timeout too short to connect in: losing is the right answer
        return "the server is up: a value broke the connection or was waited on"
    own_sql = case.invoke is call_write  # a syntax error of the caller's is unclassified on SQLite too
    if type(failure) is errors.AgentStateError and isinstance(failure.__cause__, psycopg.Error) and not own_sql:
        return "a server error the translator did not classify"
    return None


def call_method(world: World, case: Case, args: dict[str, Any]) -> Any:
    return call_with(getattr(TARGETS[case.target](world), case.method), case.params, args)


def describe(case: Case, values: dict[str, Any]) -> str:
    return f"{case.name}({', '.join(f'{name}={short(v)}' for name, v in values.items() if v is not OMIT)})"


# --- the tests --------------------------------------------------------------------------------------


class Call:
    """A drawn call (a plain class, so that hypothesis prints it as the call it is)."""

    def __init__(self, case: Case, values: dict[str, Any]) -> None:
        self.case = case
        self.values = values

    def __repr__(self) -> str:
        return describe(self.case, self.values)


@st.composite
def calls(draw: st.DrawFn, cases: list[Case]) -> Call:
    case = draw(st.sampled_from(cases))
    n = len(case.params)
    hostile: frozenset[int] = frozenset()
    if n:
        hostile = draw(
            st.one_of(
                st.integers(0, n - 1).map(lambda i: frozenset({i})),
                st.frozensets(st.integers(0, n - 1), max_size=n),
            )
        )
    values: dict[str, Any] = {}
    for i, param in enumerate(case.params):
        sources = [st.sampled_from(param.valid)]
        if i in hostile and (param.hostile or param.fuzz is not None):
            sources = [st.sampled_from(param.hostile)] if param.hostile else []
            if param.fuzz is not None:
                sources.append(param.fuzz)
        values[param.name] = draw(st.one_of(*sources))
    return Call(case, values)


# Each PostgreSQL call costs round trips to the server (and a restore after a call that wrote).
EXAMPLES = {"sqlite": 6000, "postgres": 1200}


def test_hostile_calls_succeed_or_raise_an_agentstate_error_and_change_nothing(world: World) -> None:
    @settings(
        max_examples=EXAMPLES[world.engine],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(call=calls(cases_for(world)))
    def check(call: Call) -> None:
        case, values = call.case, call.values
        problems, escaped = run(world, case, values)
        if escaped is not None:
            raise escaped  # with its own traceback: hypothesis tells distinct escapes apart by where they arose
        assert not problems, f"{describe(case, values)}: {'; '.join(problems)}"

    check()


def test_every_listed_value_of_every_parameter(world: World) -> None:
    """The sweep: each listed value of each parameter once, the other parameters at their first
    ordinary value. Lists every call that broke the contract."""
    failures: list[str] = []
    for case in cases_for(world):
        defaults = {p.name: p.valid[0] for p in case.params}
        trials = [defaults] + [{**defaults, p.name: value} for p in case.params for value in (*p.valid[1:], *p.hostile)]
        for values in trials:
            problems, _ = run(world, case, values)
            failures += [f"{describe(case, values)}: {problem}" for problem in problems]
    assert not failures, f"{len(failures)} calls broke the contract:\n" + "\n".join(failures)


def public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def parameters(fn: Callable[..., Any]) -> set[str]:
    return {name for name in inspect.signature(fn).parameters if name != "self"}


def covered_params(target: str, method: str) -> set[str]:
    return {p.name for case in CASES if (case.target, case.method) == (target, method) for p in case.params}


@pytest.mark.parametrize(
    ("target", "cls"),
    [
        ("TaskManager(planner)", TaskManager),
        ("TaskManager()", TaskManager),
        ("MessageLog", MessageLog),
        ("Agents", Agents),
    ],
)
def test_the_table_covers_every_public_method_and_parameter(target: str, cls: type) -> None:
    missing = public_methods(cls) - {case.method for case in CASES if case.target == target}
    assert not missing, f"add a line for {target}.{', '.join(sorted(missing))} to the hostile-input table"
    for method in public_methods(cls):
        unfuzzed = parameters(getattr(cls, method)) - covered_params(target, method)
        assert not unfuzzed, f"{target}.{method}: parameters {sorted(unfuzzed)} have no values in the table"
    ctor = cls.__name__
    assert parameters(cls.__init__) <= covered_params(ctor, "__init__"), f"{ctor}.__init__ needs a line"  # type: ignore[misc]


def is_async(fn: Callable[..., Any]) -> bool:
    """connect_async, write_async...: the async twins run the same code on a worker thread."""
    inner = inspect.unwrap(fn)
    return inspect.iscoroutinefunction(inner) or inspect.isasyncgenfunction(inner)


def test_the_table_covers_every_module_function() -> None:
    functions = {
        name for name in agentstate.__all__ if inspect.isfunction(fn := getattr(agentstate, name)) and not is_async(fn)
    }
    assert {"connect", "write"} <= functions
    for name in functions:
        unfuzzed = parameters(getattr(agentstate, name)) - covered_params("agentstate", name)
        assert name in {c.method for c in MODULE_CASES}, f"add a line for agentstate.{name}"
        assert not unfuzzed, f"agentstate.{name}: parameters {sorted(unfuzzed)} have no values in the table"


def test_every_valid_default_reaches_the_database(world: World) -> None:
    """Each line's default call (every parameter at its first ordinary value) must not be refused
    for its argument types, or the sweep would test the refusal of the default instead of the
    hostile value."""
    for case in cases_for(world):
        if case.target == "TaskManager()":
            continue  # most of its methods refuse to run without a planner, by design
        values = {p.name: p.valid[0] for p in case.params}
        world.restore()
        try:
            (case.invoke or call_method)(world, case, {n: resolve(world, v) for n, v in values.items()})
        except (errors.InvalidTypeError, errors.InvalidValueError) as exc:
            pytest.fail(f"{describe(case, values)} is refused: {exc}")
        except errors.AgentStateError:
            pass  # NotFound, Duplicate, transitions...: the arguments were accepted
        finally:
            for close in world.closers:
                close()
            world.closers.clear()
