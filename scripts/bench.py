#!/usr/bin/env python3
"""Benchmark agentstate against the performance guide's ORM implementation, its peers and the SQLite floor.

Builds the same generated data set (tasks over ~1k planners, ~10% pending; messages over the same
agents) into one database per contender, then times every operation on every contender in
interleaved rounds, so machine drift hits all of them alike. Writes DIR/results.json (raw
figures), DIR/results.md (the table, with ratios to agentstate and the issue's targets) and
DIR/latency.png (latency against data size, log scale, one line per contender).

Each contender runs in a process of its own, driven over a pipe: the ORM baselines and the peers
(litequeue, huey, the OpenAI Agents SDK's SQLiteSession, LangGraph's SqliteSaver) use the stdlib
sqlite3 and the rest apsw, two different SQLite libraries that must never share a file in one
process. Only one contender runs at a time (except the executors of one claim test). agentstate's
framework integrations (AgentStateSession, AgentStateSaver) run against those frameworks' own
SQLite backends, each on a file of its own built with the same data as its peer. A contender
whose packages are not installed (the peers, postgres, langgraph and openai-agents extras) is left
out of a default run, with a line naming the extra that brings it; one named with --contenders is
required, and the bench stops at once (exit 2) if it cannot run.

The ``postgres`` contender is the same agentstate API on ``connect("postgresql://...")``, in a
database of its own on a PostgreSQL server (``--postgres-url``, else a throwaway one started for
the run and stopped at its end; see bench_postgres.py), with the same data and operations, and
claim + finish with 1, 4 and 16 executor processes beside agentstate's on one SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, ClassVar, NoReturn

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path[:0] = [str(SCRIPTS), str(ROOT)]  # run from a checkout without installing

import apsw  # noqa: E402
import bench_postgres  # noqa: E402
from bench_baselines import (  # noqa: E402
    RESULT,
    Bound,
    Floor,
    OrmBaseline,
    RawApsw,
    bulk_load,
    message_fingerprint,
    park_pending,
    reset_tasks,
    unpark_tasks,
)
from bench_data import (  # noqa: E402
    AGENTSTATE_LAYOUT,
    DataSpec,
    Payload,
    Progress,
    format_size,
    generate,
    parse_size,
    payloads,
    planner_id,
    task_specs,
)
from bench_peers import (  # noqa: E402
    CHECKPOINT_OPERATIONS,
    AgentStateSaverContender,
    AgentStateSessionContender,
    HueyNoFsyncPeer,
    HueyPeer,
    LangGraphSqlitePeer,
    LiteQueuePeer,
    OpenAISessionPeer,
)
from bench_postgres import BenchServer, is_url  # noqa: E402

# ---------------------------------------------------------------------------------------------
# What is measured


@dataclass(frozen=True)
class Operation:
    name: str
    what: str
    items: int = 1
    """Messages or tasks per timed call, for the throughput column."""
    processes: int = 0
    """Executor processes, for the claim + finish tests (0 for the others)."""
    batch: int = 1
    """Tasks each executor claims, then finishes, per round trip (claim + finish tests)."""
    backlog: int = 0
    """Tasks pending at the start of each round (claim tests; 0: the data set's own ~10%)."""


OPERATIONS = (
    Operation("get_current_task", "the planner's oldest pending task"),
    Operation("get_completed_task", "the planner's oldest completed or failed_validation task"),
    Operation(
        "select_1",
        "SELECT 1 through a cached statement (the floor; postgres: the same on a pooled connection of its "
        "handle, one round trip to the server, the floor of every call there)",
    ),
    Operation("latest_50", "the newest 50 messages of one stream"),
    Operation("keyset_page", "the 50 messages before a cursor in the middle of a stream"),
    Operation("append_one", "one message, in its own transaction"),
    Operation("append_turn_100", "a turn of 100 messages to one stream, one transaction", items=100),
    Operation(
        "append_bulk_10k",
        "a bulk load: 10,000 messages spread over all streams (10 each at 1k streams), one transaction",
        items=10_000,
    ),
    Operation(
        "claim_finish_1p",
        "claim a task and finish it, 1 executor process (agentstate finishes one and claims the next in one "
        "transaction, complete_and_claim_next; the others make two calls, their claim then their complete)",
        processes=1,
    ),
    Operation("claim_finish_4p", "the same, 4 executor processes", processes=4),
    Operation(
        "claim_finish_16p",
        "the same, 16 executor processes (agentstate and postgres: whether many executors on a server overtake one "
        "SQLite file's single writer)",
        processes=16,
    ),
    Operation(
        "claim_finish_4p_batch10",
        "claim 10 tasks in one transaction, finish them in another, 4 executor processes (agentstate's "
        "claim_many and complete_many)",
        processes=4,
        batch=10,
    ),
    Operation(
        "claim_backlog_5k",
        "claim_finish_1p with exactly 5,000 tasks pending at the start of each round (set up untimed)",
        processes=1,
        backlog=5_000,
    ),
    # Last: the tasks they add stay pending, and would grow the queues the claim tests drain.
    Operation(
        "enqueue_one",
        "create one task, its own transaction (agentstate create_task, litequeue put, huey enqueue)",
    ),
    Operation(
        "enqueue_batch_100",
        "create 100 tasks in one transaction (agentstate create_tasks; the peers have no batch enqueue)",
        items=100,
    ),
    # LangGraph checkpointers (langgraph_sqlite, agentstate_langgraph), on data of their own built
    # untimed: as many checkpoints as rows (a checkpoint per step of a graph) over the planners'
    # threads, so 100 per thread up to 100k rows and 1,000 at 1M (~50 s to build, ~1.1 GB a file);
    # each a small channel state, ~700 bytes serialised, with no pending writes.
    Operation(
        "checkpoint_get",
        "LangGraph get_tuple: a thread's newest checkpoint and its pending writes (the data: as many checkpoints "
        "as rows, over the ~1k planners' threads, a small channel state each)",
    ),
    Operation("checkpoint_list_50", "LangGraph list(limit=50): a thread's 50 newest checkpoints, read and decoded"),
    Operation(
        "checkpoint_put",
        "LangGraph put: one new checkpoint (a small channel state) on an existing thread, its parent the "
        "thread's newest, as a graph's step stores it; its own transaction",
    ),
)
OPERATION = {op.name: op for op in OPERATIONS}
CLAIM_OPERATIONS = tuple(op.name for op in OPERATIONS if op.processes)


# ---------------------------------------------------------------------------------------------
# The agentstate contender: every call into the library's public API is in this class.


class AgentstateContender:
    """agentstate through its public API: ``connect``, ``TaskManager`` and ``MessageLog``.

    Only the bulk load (SQL straight into its tables, as tests/datagen.py does) and the claim
    test's bookkeeping go around the API; both are untimed.
    """

    name = "agentstate"
    operations = (
        *RawApsw.operations,
        "claim_finish_16p",
        "claim_finish_4p_batch10",
        "enqueue_one",
        "enqueue_batch_100",
        "claim_backlog_5k",
    )
    builds = True
    options: ClassVar[dict[str, Any]] = {}
    """agentstate.connect()'s keyword arguments: its defaults here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: Any = None
        self.managers: dict[str | None, Any] = {}

    def build(self, spec: DataSpec, progress: Progress) -> None:
        import agentstate

        agentstate.connect(self.path).close()  # the library's own schema, migrated
        conn = apsw.Connection(str(self.path))
        bulk_load(conn, lambda: generate(conn, AGENTSTATE_LAYOUT, spec, progress))
        conn.close()

    def open(self) -> None:
        import agentstate
        from agentstate.messages import MessageLog, NewMessage
        from agentstate.tasks import TaskManager

        self.conn = agentstate.connect(self.path, **self.options)
        self.TaskManager = TaskManager
        self.NewMessage = NewMessage
        self.log = MessageLog(self.conn)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def manager(self, planner: str | None) -> Any:
        """One TaskManager per planner, made before timing; None claims from any planner."""
        if planner not in self.managers:
            self.managers[planner] = self.TaskManager(self.conn, planner)
        return self.managers[planner]

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        if op == "get_current_task":
            return (lambda tm: tm.get_current_task()), [self.manager(p) for p in keys]
        if op == "get_completed_task":
            return (lambda tm: tm.get_completed_task()), [self.manager(p) for p in keys]
        if op == "latest_50":
            return (lambda agent: self.log.latest("planner", agent, 50)), keys
        if op == "keyset_page":
            cursors = [(agent, self._position(agent, spec.per_planner // 2)) for agent in keys]
            return (lambda c: self.log.before("planner", c[0], c[1], limit=50)), cursors
        raise KeyError(op)

    def _position(self, agent: str, offset: int) -> int:
        """The stream position ``offset`` messages from the oldest: the keyset page's cursor."""
        sql = "SELECT position FROM planner_messages WHERE agent_id = ? ORDER BY position LIMIT 1 OFFSET ?"
        return int(self.conn.execute(sql, (agent, offset)).fetchone()[0])

    def fingerprint(self, op: str, result: Any) -> Any:
        if op in ("get_current_task", "get_completed_task"):
            return None if result is None else result.worker_id
        return message_fingerprint([m.content for m in result])

    def append_one(self, agent: str, m: Payload) -> None:
        self.log.append("planner", agent, role=m.role, content=m.content, metadata=m.metadata)

    def append_turn(self, agent: str, turn: Sequence[Payload]) -> None:
        self.log.append_many("planner", agent, [self.NewMessage(m.role, m.content, m.metadata) for m in turn])

    def append_bulk(self, items: Sequence[tuple[str, Payload]]) -> None:
        self.log.append_bulk("planner", [(agent, self.NewMessage(m.role, m.content, m.metadata)) for agent, m in items])

    def enqueue(self, planner: str, spec: dict[str, Any]) -> None:
        self.manager(planner).create_task(**spec)

    def enqueue_batch(self, planner: str, specs: Sequence[dict[str, Any]]) -> None:
        self.manager(planner).create_tasks(specs)

    def claim(self, owner: str) -> Any:
        return self.manager(None).claim(owner=owner, lease_seconds=60)

    def claim_id(self, claim: Any) -> str:
        return str(claim.worker_id)

    def finish(self, claim: Any) -> None:
        self.manager(None).complete(claim, result=RESULT)

    def finish_and_claim(self, claim: Any) -> Any:
        """The executor loop's idiom: finish this task and claim the next in one transaction."""
        return self.manager(None).complete_and_claim_next(claim, result=RESULT)

    def claim_batch(self, owner: str, size: int) -> list[Any]:
        return list(self.manager(None).claim_many(owner, size, lease_seconds=60))

    def finish_batch(self, claims: Sequence[Any]) -> None:
        self.manager(None).complete_many([(claim, RESULT) for claim in claims])

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        return reset_tasks(self.conn, ids)

    def backlog(self, count: int, planners: Sequence[str]) -> int:
        """Exactly ``count`` pending tasks, untimed: more created through the API if there are
        too few, the newest others parked (see park_pending) if there are too many."""
        pending = self.conn.execute("SELECT count(*) FROM workers WHERE task_status = 'pending'").fetchone()[0]
        specs = task_specs(max(0, count - pending), seed=17)
        for i, planner in enumerate(planners):
            if mine := specs[i :: len(planners)]:
                self.manager(planner).create_tasks(mine)
        return park_pending(self.conn, count)

    def end_backlog(self) -> None:
        unpark_tasks(self.conn)


class PostgresContender(AgentstateContender):
    """agentstate's own API on ``agentstate.connect("postgresql://...")``: the same calls, timed
    the same way, as ``agentstate`` on SQLite, in a database of its own on the benchmark's
    PostgreSQL server. Its bulk load (the same generated data, copied in with COPY) and the claim
    test's bookkeeping are PostgreSQL SQL on a pooled connection of the handle (bench_postgres.py),
    untimed, as agentstate's raw apsw SQL is."""

    name = "postgres"
    operations = (*AgentstateContender.operations, "select_1")

    def __init__(self, url: str) -> None:
        super().__init__(url)  # type: ignore[arg-type]  # a URL where agentstate has a path

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        if op == "select_1":  # not agentstate: the round trip every call to the server pays

            def select_1(_: Any) -> Any:
                with self.conn.session() as pg:
                    return pg.execute("SELECT 1").fetchone()

            return select_1, [None]
        return super().bind(op, keys, spec)

    def build(self, spec: DataSpec, progress: Progress) -> None:
        import agentstate

        agentstate.connect(self.path, pool_size=1).close()  # the library's own schema, migrated
        bench_postgres.bulk_load(str(self.path), spec, progress)

    def _position(self, agent: str, offset: int) -> int:
        with self.conn.session() as pg:
            return bench_postgres.position(pg, agent, offset)

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        with self.conn.session() as pg:
            return bench_postgres.reset_tasks(pg, ids)

    def backlog(self, count: int, planners: Sequence[str]) -> int:
        with self.conn.session() as pg:
            missing = max(0, count - bench_postgres.pending(pg))
        specs = task_specs(missing, seed=17)
        for i, planner in enumerate(planners):
            if mine := specs[i :: len(planners)]:
                self.manager(planner).create_tasks(mine)
        with self.conn.session() as pg:
            return bench_postgres.park_pending(pg, count)

    def end_backlog(self) -> None:
        with self.conn.session() as pg:
            bench_postgres.unpark_tasks(pg)


class UnmonitoredContender(AgentstateContender):
    """agentstate with query monitoring off (``connect(monitoring=False)``), on agentstate's own
    file: the difference to ``agentstate`` in the same run is what monitoring costs."""

    name = "agentstate_unmonitored"
    operations = ("get_current_task", "get_completed_task", "latest_50", "keyset_page")
    options: ClassVar[dict[str, Any]] = {"monitoring": False}


class AsyncContender(AgentstateContender):
    """agentstate's asyncio API (``connect_async``, ``AsyncTaskManager``, ``AsyncMessageLog``) on
    agentstate's own file, one event loop per process, each awaited call timed alone: the
    difference to ``agentstate`` in the same run is what the async API adds per call."""

    name = "agentstate_async"
    operations = ("get_current_task", "get_completed_task", "latest_50", "append_one")

    def open(self) -> None:
        import agentstate
        from agentstate.aio import AsyncMessageLog, AsyncTaskManager

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.conn = self.loop.run_until_complete(agentstate.connect_async(self.path))
        self.TaskManager = AsyncTaskManager
        self.log = AsyncMessageLog(self.conn)

    def close(self) -> None:
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.aclose())
            self.conn = None
        self.loop.close()

    def append_one(self, agent: str, m: Payload) -> Any:
        return self.log.append("planner", agent, role=m.role, content=m.content, metadata=m.metadata)


class FullDurabilityContender(AgentstateContender):
    """agentstate with ``connect(durability="full")`` (synchronous=FULL: every commit fsynced), on
    a file of its own built like agentstate's, for the writes: reads do not depend on durability."""

    name = "agentstate_full"
    operations = (
        "append_one",
        "append_turn_100",
        "append_bulk_10k",
        "enqueue_one",
        "enqueue_batch_100",
        "claim_finish_1p",
        "claim_finish_4p",
        "claim_finish_4p_batch10",
        "claim_backlog_5k",
    )
    options: ClassVar[dict[str, Any]] = {"durability": "full"}


# ---------------------------------------------------------------------------------------------
# Contenders


@dataclass(frozen=True)
class ContenderInfo:
    name: str
    summary: str
    make: Callable[[Any], Any]
    """Makes the contender from its database: a file's Path, or (postgres) a postgresql:// URL."""
    operations: tuple[str, ...]
    builds: bool = True
    durability: str = "normal"
    """What a returned commit survives: "normal" (synchronous=NORMAL in WAL, or PostgreSQL's
    synchronous_commit=off: a crash of the process, not always a power cut), "full" (every commit
    fsynced), "off" (no fsync at all)."""
    needs: tuple[tuple[str, str, str], ...] = ()
    """(module, package, extra) for each optional package this contender imports: the module it
    imports, the distribution that provides it and the extra of pyproject.toml that installs it.
    A contender whose module does not import is left out of a default run (see
    :func:`select_contenders`)."""


PEERS = ("litequeue", "huey", "huey_nofsync", "openai_session", "langgraph_sqlite")
PEER_DISTRIBUTIONS = ("litequeue", "huey", "openai-agents", "langgraph-checkpoint-sqlite", "langgraph-checkpoint")
"""The ``peers`` extra's packages (and langgraph-checkpoint, which agentstate's saver builds on too),
whose versions each report names."""
PAIRS = (("agentstate_session", "openai_session"), ("agentstate_langgraph", "langgraph_sqlite"))
"""agentstate's drop-in for a framework's own SQLite backend, and that backend: compared on every
operation they share (issue 12's targets)."""


CONTENDERS = {
    info.name: info
    for info in (
        ContenderInfo(
            "orm_today",
            "baseline A: the guide's SQLAlchemy ORM as it stands (today's indexes, "
            "get_current_task loads the planner's workers and loops in Python; rollback journal, synchronous=FULL)",
            lambda p: OrmBaseline(p, indexed=False),
            OrmBaseline.operations,
            durability="full",
        ),
        ContenderInfo(
            "orm_indexed",
            "baseline B: the same ORM with the guide's recommended indexes, pragmas and filtered queries",
            lambda p: OrmBaseline(p, indexed=True),
            OrmBaseline.operations,
        ),
        ContenderInfo(
            "agentstate",
            "agentstate through its public API, at its default durability (synchronous=NORMAL)",
            AgentstateContender,
            AgentstateContender.operations,
        ),
        ContenderInfo(
            "postgres",
            'agentstate through the same public API on connect("postgresql://..."), a database of its own on a '
            "PostgreSQL server (by default a throwaway one with fsync and full_page_writes on, synchronous_commit off; "
            "the report lists the settings it ran with), the same data and operations",
            PostgresContender,
            PostgresContender.operations,
            needs=(("psycopg", "psycopg", "postgres"), ("psycopg_pool", "psycopg-pool", "postgres")),
        ),
        ContenderInfo(
            "agentstate_full",
            'agentstate with connect(durability="full") (every commit fsynced), on a file of its own '
            "built like agentstate's; the write operations",
            FullDurabilityContender,
            FullDurabilityContender.operations,
            durability="full",
        ),
        ContenderInfo(
            "agentstate_async",
            "agentstate's asyncio API on agentstate's file, one event loop (what async adds per call)",
            AsyncContender,
            AsyncContender.operations,
            builds=False,
        ),
        ContenderInfo(
            "agentstate_unmonitored",
            "agentstate with query monitoring off, on agentstate's file (what monitoring costs)",
            UnmonitoredContender,
            UnmonitoredContender.operations,
            builds=False,
        ),
        ContenderInfo(
            "raw_apsw",
            "the guide's recommended layout in plain SQL on apsw (rowid tables; "
            "messages indexed on (agent_id, created_at))",
            RawApsw,
            RawApsw.operations,
        ),
        ContenderInfo(
            "floor",
            "bare apsw: a primary-key lookup of the row agentstate returns, and SELECT 1",
            Floor,
            Floor.operations,
            builds=False,
        ),
        ContenderInfo(
            "litequeue",
            "peer: litequeue at its defaults (WAL, synchronous=NORMAL): put to enqueue, pop to claim, "
            "done to complete; no lease, no result",
            LiteQueuePeer,
            LiteQueuePeer.operations,
            needs=(("litequeue", "litequeue", "peers"),),
        ),
        ContenderInfo(
            "huey",
            "peer: huey's SqliteHuey at its defaults (WAL, SQLite's default synchronous=FULL): calling the task "
            "to enqueue, huey.dequeue() to claim (deletes the task), huey.put_result() to complete",
            HueyPeer,
            HueyPeer.operations,
            durability="full",
            needs=(("huey", "huey", "peers"),),
        ),
        ContenderInfo(
            "huey_nofsync",
            "peer: the same huey with fsync=False (synchronous=OFF: an OS crash may lose or corrupt)",
            HueyNoFsyncPeer,
            HueyNoFsyncPeer.operations,
            durability="off",
            needs=(("huey", "huey", "peers"),),
        ),
        ContenderInfo(
            "openai_session",
            "peer: the OpenAI Agents SDK's SQLiteSession, one per stream, at its defaults (WAL, SQLite's "
            "default synchronous=FULL): add_items to append, get_items(limit=50); async, one event loop",
            OpenAISessionPeer,
            OpenAISessionPeer.operations,
            durability="full",
            needs=(("agents", "openai-agents", "peers"),),
        ),
        ContenderInfo(
            "agentstate_session",
            "agentstate's AgentStateSession (agentstate.integrations.openai_agents), the drop-in for openai_session, "
            "one per stream, on a file of its own with the same messages, at agentstate's defaults "
            "(synchronous=NORMAL); async, one event loop",
            AgentStateSessionContender,
            AgentStateSessionContender.operations,
            needs=(("agents", "openai-agents", "openai-agents"),),
        ),
        ContenderInfo(
            "langgraph_sqlite",
            "peer: LangGraph's own SqliteSaver (langgraph-checkpoint-sqlite) from_conn_string at its defaults "
            "(WAL, SQLite's default synchronous=FULL: every put fsynced): get_tuple, list, put",
            LangGraphSqlitePeer,
            LangGraphSqlitePeer.operations,
            durability="full",
            needs=(("langgraph.checkpoint.sqlite", "langgraph-checkpoint-sqlite", "peers"),),
        ),
        ContenderInfo(
            "agentstate_langgraph",
            "agentstate's AgentStateSaver (agentstate.integrations.langgraph), the drop-in for langgraph_sqlite, "
            "from_conn_string on a file of its own with the same checkpoints, at agentstate's defaults "
            "(synchronous=NORMAL)",
            AgentStateSaverContender,
            AgentStateSaverContender.operations,
            needs=(("langgraph.checkpoint.base", "langgraph-checkpoint", "langgraph"),),
        ),
    )
}
ORDER = list(CONTENDERS)


# ---------------------------------------------------------------------------------------------
# The contender process


class ContenderProcess:
    """What one contender process does on the coordinator's commands (see :func:`worker_main`)."""

    def __init__(self, name: str, path: Path | str, spec: DataSpec, progress: Progress) -> None:
        self.contender = CONTENDERS[name].make(path)
        self.spec = spec
        self.progress = progress
        self.bound: dict[str, Bound] = {}
        self.next_arg: dict[str, int] = defaultdict(int)

    def build(self) -> None:
        self.contender.build(self.spec, self.progress)

    def open(self) -> None:
        self.contender.open()

    def close(self) -> None:
        self.contender.close()

    def prepare(self, op: str, keys: list[str]) -> list[Any]:
        """Bind the operation and run it once per argument, untimed: this warms the pages the
        timed calls will read, and the fingerprints let the coordinator check all contenders
        found the same rows."""
        fn, args = self.bound[op] = self._bind(op, keys)
        loop = getattr(self.contender, "loop", None)
        results = [fn(arg) for arg in args] if loop is None else loop.run_until_complete(_awaited(fn, args))
        return [self.contender.fingerprint(op, r) for r in results] if op in FINGERPRINTED else []

    def _bind(self, op: str, keys: list[str]) -> Bound:
        c = self.contender
        messages = payloads(256)
        if op == "append_one":
            return (lambda a: c.append_one(*a)), [(keys[i % len(keys)], m) for i, m in enumerate(messages)]
        if op == "append_turn_100":
            turns = [(agent, [messages[(t + i) % len(messages)] for i in range(100)]) for t, agent in enumerate(keys)]
            return (lambda a: c.append_turn(*a)), turns
        if op == "append_bulk_10k":
            agents = [planner_id(i) for i in range(self.spec.planners)]
            loads = [[(agents[i % len(agents)], messages[i % len(messages)]) for i in range(10_000)]]
            return c.append_bulk, loads
        if op == "enqueue_one":
            specs = task_specs(256)
            return (lambda a: c.enqueue(*a)), [(keys[i % len(keys)], spec) for i, spec in enumerate(specs)]
        if op == "enqueue_batch_100":
            specs = task_specs(256)
            batches = [(planner, [specs[(t + i) % len(specs)] for i in range(100)]) for t, planner in enumerate(keys)]
            return (lambda a: c.enqueue_batch(*a)), batches
        return c.bind(op, keys, self.spec)

    def measure(self, op: str, seconds: float, max_calls: int, min_calls: int) -> list[int]:
        """Time calls one by one (nanoseconds) until the budget or the call cap, whichever first.
        An async contender's calls are awaited one by one in its event loop, each timed alone."""
        fn, args = self.bound[op]
        start = self.next_arg[op]  # later rounds go on through the arguments where this one stopped
        gc.collect()  # start each batch with no garbage owed from the last
        loop = getattr(self.contender, "loop", None)
        if loop is None:
            samples = _timed(fn, args, start, seconds, max_calls, min_calls)
        else:
            samples = loop.run_until_complete(_timed_async(fn, args, start, seconds, max_calls, min_calls))
        self.next_arg[op] = start + len(samples)
        return samples

    def backlog(self, count: int) -> int:
        """The backlog test's untimed set-up: exactly ``count`` tasks pending; returns the count."""
        return int(self.contender.backlog(count, self.spec.key_planners()))

    def end_backlog(self) -> None:
        self.contender.end_backlog()

    def executor(self, owner: str, quota: int, start_at: float, deadline: float, batch: int = 1) -> dict[str, Any]:
        """Claim and finish tasks until ``quota`` are done, none is left, or ``deadline``
        (time.monotonic(), shared by all processes). Each sample is one task's worth of work:
        finishing one and claiming the next (with ``batch``, a batch's time over its size)."""
        c = self.contender
        fused = getattr(c, "finish_and_claim", None)
        lock_errors = getattr(c, "lock_errors", 0)  # a running count: this round's is the difference
        time.sleep(max(0.0, start_at - time.monotonic()))
        began = time.monotonic()
        samples: list[int] = []
        ids: list[str] = []
        start = time.perf_counter_ns()
        if batch > 1:
            while len(ids) < quota and time.monotonic() < deadline and (claims := c.claim_batch(owner, batch)):
                ids += [c.claim_id(claim) for claim in claims]
                c.finish_batch(claims)
                now = time.perf_counter_ns()
                samples += [(now - start) // len(claims)] * len(claims)
                start = now
        else:
            claim = c.claim(owner)
            while claim is not None:
                ids.append(c.claim_id(claim))
                more = len(ids) < quota and time.monotonic() < deadline
                if more and fused is not None:
                    claim = fused(claim)
                else:
                    c.finish(claim)
                    claim = c.claim(owner) if more else None
                now = time.perf_counter_ns()
                samples.append(now - start)
                start = now
        return {
            "samples": samples,
            "ids": ids,
            "began": began,
            "ended": time.monotonic(),
            "lock_errors": getattr(c, "lock_errors", 0) - lock_errors,
        }

    def completed_and_reset(self, ids: list[str]) -> int:
        return int(self.contender.completed_and_reset(ids))


FINGERPRINTED = {
    "get_current_task", "get_completed_task", "latest_50", "keyset_page", "checkpoint_get", "checkpoint_list_50",
}  # fmt: skip


def _timed(
    fn: Callable[[Any], Any], args: Sequence[Any], i: int, seconds: float, max_calls: int, min_calls: int
) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(samples) < max_calls and (len(samples) < min_calls or clock() < deadline):
        arg = args[i % len(args)]
        i += 1
        start = clock()
        fn(arg)
        samples.append(clock() - start)
    return samples


async def _timed_async(
    fn: Callable[[Any], Any], args: Sequence[Any], i: int, seconds: float, max_calls: int, min_calls: int
) -> list[int]:
    """_timed for a coroutine function: each call awaited, as an application awaits it."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(samples) < max_calls and (len(samples) < min_calls or clock() < deadline):
        arg = args[i % len(args)]
        i += 1
        start = clock()
        await fn(arg)
        samples.append(clock() - start)
    return samples


async def _awaited(fn: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
    return [await fn(arg) for arg in args]


def worker_main(pipe: Connection, name: str, path: str, size: int) -> None:
    """A contender process: run commands from the pipe, answer ("ok", result) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        where = path if is_url(path) else Path(path)  # a PostgreSQL URL, or a file
        state = ContenderProcess(name, where, DataSpec.for_size(size), lambda text: pipe.send(("progress", text)))
    except Exception:
        pipe.send(("error", traceback.format_exc()))
        return
    while True:
        command, args = pipe.recv()
        try:
            result = getattr(state, command)(**args)
        except Exception:
            pipe.send(("error", traceback.format_exc()))
            continue
        pipe.send(("ok", result))
        if command == "close":
            return


# ---------------------------------------------------------------------------------------------
# The coordinator's side of a contender process

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


class WorkerError(RuntimeError):
    pass


class Worker:
    """A contender process, started with the spawn method so it inherits no open database."""

    def __init__(self, name: str, path: Path | str, spec: DataSpec, label: str | None = None) -> None:
        self.name = name
        self.label = f"{spec.label} {label or name}"
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, name, str(path), spec.size), daemon=True)
        self.process.start()
        child.close()

    def send(self, command: str, **args: Any) -> None:
        self.pipe.send((command, args))

    def receive(self) -> Any:
        """The answer to the last command; progress messages on the way are logged."""
        while True:
            wait([self.pipe, self.process.sentinel])
            answer = _drain(self)
            if answer is not _PENDING:
                return answer

    def call(self, command: str, **args: Any) -> Any:
        self.send(command, **args)
        return self.receive()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(WorkerError, OSError, EOFError):
                self.call("close")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


def gather(workers: Sequence[Worker], command: str, **args: Any) -> list[Any]:
    """Send one command to several processes at once; their answers, in order."""
    for worker in workers:
        worker.send(command, **args)
    answers: dict[int, Any] = {}
    pending = list(workers)
    while pending:
        wait([w.pipe for w in pending] + [w.process.sentinel for w in pending])
        for worker in list(pending):
            answer = _drain(worker)
            if answer is not _PENDING:
                answers[id(worker)] = answer
                pending.remove(worker)
    return [answers[id(w)] for w in workers]


_PENDING = object()


def _drain(worker: Worker) -> Any:
    """Read what a process has sent so far: its answer, or _PENDING after logging progress."""
    while worker.pipe.poll():
        kind, payload = worker.pipe.recv()
        if kind == "progress":
            log(f"{worker.label}: {payload}")
        elif kind == "error":
            raise WorkerError(f"{worker.label} failed:\n{payload}")
        else:
            return payload
    if not worker.process.is_alive():
        raise WorkerError(f"{worker.label}: the process died (exit code {worker.process.exitcode})")
    return _PENDING


# ---------------------------------------------------------------------------------------------
# How long to measure


@dataclass(frozen=True)
class Budget:
    rounds: int
    """Interleaved rounds: in each, every contender takes its turn at the operation."""
    seconds: float
    """Time per contender, operation and round (twice this for a claim round)."""
    max_calls: int
    """Calls per contender, operation and round, at most (the fast contenders stop here)."""
    min_calls: int
    """Calls per contender, operation and round, at least (the slow ones run over the time)."""
    claim_quota: int
    """Tasks per contender and claim round, all its executor processes together."""
    keys: int
    """Planners (and their message streams) that the read operations cycle through."""


FULL = Budget(rounds=5, seconds=1.0, max_calls=4_000, min_calls=3, claim_quota=8_000, keys=32)
QUICK = Budget(rounds=2, seconds=0.02, max_calls=50, min_calls=1, claim_quota=40, keys=8)
DEFAULT_SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (500, 5_000)


# ---------------------------------------------------------------------------------------------
# Figures


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(samples_ns: Sequence[int]) -> dict[str, Any]:
    ordered = sorted(s / 1_000 for s in samples_ns)
    return {
        "median_us": round(percentile(ordered, 0.5), 3),
        "p99_us": round(percentile(ordered, 0.99), 3),
        "n": len(ordered),
        "p999_us": round(percentile(ordered, 0.999), 3),
        "mean_us": round(sum(ordered) / len(ordered), 3),
        "min_us": round(ordered[0], 3),
        "max_us": round(ordered[-1], 3),
    }


def record(contender: str, op: Operation, spec: DataSpec, samples: Sequence[int], **extra: Any) -> dict[str, Any]:
    """One row of results.json."""
    row = {
        "contender": contender,
        "operation": op.name,
        "size": spec.size,
        **summarize(samples),
        "items_per_call": op.items,
    }
    if op.items > 1:  # messages per second over all timed batches
        row["throughput_per_s"] = round(op.items * len(samples) / (sum(samples) / 1e9), 1)
    row.update(extra)
    return row


def cpu_seconds() -> tuple[float, float, float] | None:
    """CPU seconds so far: the machine's busy and total (all cores), and this run's own (this
    process and every process under it: the contender and executor processes, and a throwaway
    PostgreSQL server with its backends; exited ones through their parents' reaped-children
    times). From /proc (Linux); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        times: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry)] = int(stat[1])
            times[int(entry)] = sum(int(x) for x in stat[11:15])  # utime, stime, cutime, cstime
    except (OSError, ValueError, IndexError):
        return None
    ours, frontier = set(), [os.getpid()]
    while frontier:
        pid = frontier.pop()
        ours.add(pid)
        frontier += [child for child, parent in parents.items() if parent == pid and child not in ours]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick, sum(times.get(pid, 0) for pid in ours) / tick


def others_share(before: tuple[float, float, float] | None, after: tuple[float, float, float] | None) -> float | None:
    """The share of the machine's CPU that other work (not this run) took between two readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    busy, total, own = (a - b for a, b in zip(after, before, strict=True))
    return round(min(1.0, max(0.0, (busy - own) / total)), 3)


def rotated(items: Sequence[Any], turn: int) -> list[Any]:
    """Each round starts with a different contender, so none always runs first or last."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]


# ---------------------------------------------------------------------------------------------
# One data size


class SizeRun:
    """Build one size's databases, measure every operation on every contender, clean up."""

    def __init__(
        self,
        spec: DataSpec,
        names: Sequence[str],
        ops: Sequence[Operation],
        budget: Budget,
        data_dir: Path,
        postgres: BenchServer | None = None,
    ) -> None:
        self.spec = spec
        self.names = list(names)
        self.ops = ops
        self.budget = budget
        self.data_dir = data_dir
        # The floor looks up agentstate's rows in agentstate's own file.
        source = "agentstate" if "agentstate" in names else "raw_apsw"
        shared = {"floor": source, "agentstate_unmonitored": "agentstate", "agentstate_async": "agentstate"}
        self.paths: dict[str, Path | str] = {n: data_dir / f"{shared.get(n, n)}.db" for n in names}
        self.postgres = postgres
        # The postgres contender's database on the server, one per size (and per run: a server
        # given with --postgres-url may be shared).
        self.pg_database = f"agentstate_bench_{os.getpid()}_{spec.label.lower()}"
        self.workers: dict[str, Worker] = {}
        self.mismatches: list[dict[str, Any]] = []
        self.db_bytes: dict[str, int] = {}

    def start(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        if "postgres" in self.names:
            assert self.postgres is not None, "the postgres contender needs a server"
            self.paths["postgres"] = self.postgres.create(self.pg_database)
        self.workers = {n: Worker(n, self.paths[n], self.spec) for n in self.names}
        builders = [w for n, w in self.workers.items() if CONTENDERS[n].builds]
        log(
            f"{self.spec.label}: building {len(builders)} databases of {self.spec.size:,} tasks and "
            f"{self.spec.size:,} messages over {self.spec.planners:,} planners, in parallel"
        )
        gather(builders, "build")
        self.db_bytes = {w.name: self._bytes(w.name) for w in builders}
        sizes = ", ".join(f"{n} {b / 2**20:,.0f} MiB" for n, b in self.db_bytes.items())
        log(f"{self.spec.label}: built ({sizes}); opening")
        gather(list(self.workers.values()), "open")

    def _bytes(self, name: str) -> int:
        path = self.paths[name]
        if isinstance(path, str):
            assert self.postgres is not None
            return self.postgres.database_bytes(self.pg_database)
        return path.stat().st_size

    def stop(self, keep_data: bool) -> None:
        for worker in self.workers.values():
            worker.stop()
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if "postgres" in self.names and self.postgres is not None:
                with contextlib.suppress(Exception):  # the server may be gone with a failed run
                    self.postgres.drop(self.pg_database)

    def measure(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for op in self.ops:
            names = [n for n in self.names if op.name in CONTENDERS[n].operations]
            if not names:
                continue
            rows = self.measure_claims(op, names) if op.processes else self.measure_calls(op, names)
            results += rows
            medians = ", ".join(f"{r['contender']} {format_us(r['median_us'])}" for r in rows)
            log(f"{self.spec.label} {op.name}: median µs {medians}")
        return results

    # -- calls timed one by one -----------------------------------------------------------------

    def measure_calls(self, op: Operation, names: list[str]) -> list[dict[str, Any]]:
        group = [self.workers[n] for n in names]
        keys = self.spec.key_planners(self.budget.keys)
        log(f"{self.spec.label} {op.name}: warming up (an untimed pass over the arguments, every contender)")
        fingerprints = gather(group, "prepare", op=op.name, keys=keys)
        self.check_agreement(op, names, fingerprints)
        samples: dict[str, list[int]] = defaultdict(list)
        b = self.budget
        before = cpu_seconds()
        for turn in range(b.rounds):
            for worker in rotated(group, turn):
                samples[worker.name] += worker.call(
                    "measure", op=op.name, seconds=b.seconds, max_calls=b.max_calls, min_calls=b.min_calls
                )
            counts = ", ".join(f"{n} {len(samples[n])}" for n in names)
            log(f"{self.spec.label} {op.name}: round {turn + 1}/{b.rounds} (calls so far: {counts})")
        others = others_share(before, cpu_seconds())
        return [record(n, op, self.spec, samples[n], rounds=b.rounds, others_cpu=others) for n in names]

    def check_agreement(self, op: Operation, names: list[str], fingerprints: list[list[Any]]) -> None:
        """Every contender must have found the same task, or the same messages, for each key."""
        by_name = {n: f for n, f in zip(names, fingerprints, strict=True) if f}
        if len(by_name) < 2:
            return
        reference = "agentstate" if "agentstate" in by_name else next(iter(by_name))
        for name, found in by_name.items():
            differ = sum(a != b for a, b in zip(found, by_name[reference], strict=True))
            if differ:
                log(
                    f"WARNING {self.spec.label} {op.name}: {name} disagrees with {reference} on {differ} of {len(found)} keys"
                )
                self.mismatches.append(
                    {
                        "size": self.spec.size,
                        "operation": op.name,
                        "contender": name,
                        "reference": reference,
                        "keys_differing": differ,
                    }
                )

    # -- claim + finish ---------------------------------------------------------------------------

    def measure_claims(self, op: Operation, names: list[str]) -> list[dict[str, Any]]:
        extras = {
            n: [Worker(n, self.paths[n], self.spec, label=f"{n} executor {i + 2}") for i in range(op.processes - 1)]
            for n in names
        }
        try:
            if op.processes > 1:
                log(f"{self.spec.label} {op.name}: starting {op.processes - 1} more executor processes per contender")
                gather([w for group in extras.values() for w in group], "open")
            executors = {n: [self.workers[n], *extras[n]] for n in names}
            if op.backlog:
                self.set_backlog(op, names)
            quota = max(1, min(self.budget.claim_quota, op.backlog or self.spec.pending))
            totals: dict[str, dict[str, Any]] = {n: defaultdict(int, samples=[]) for n in names}
            for n in names:
                # Untimed: warm the pending tasks' pages, and every executor process's statements
                # (a PostgreSQL client also reads its query files on its first call). Its duplicate
                # check counts all the same.
                warm = self.claim_round(n, executors[n], min(quota, max(20, 2 * len(executors[n]))), op.batch)
                for key in ("duplicates", "unfinished"):
                    totals[n][key] += warm[key]
            before = cpu_seconds()
            for turn in range(self.budget.rounds):
                for n in rotated(names, turn):
                    outcome = self.claim_round(n, executors[n], quota, op.batch)
                    t = totals[n]
                    t["samples"] += outcome["samples"]
                    for key in ("wall", "duplicates", "unfinished", "lock_errors"):
                        t[key] += outcome[key]
                done = ", ".join(f"{n} {len(totals[n]['samples'])}" for n in names)
                log(f"{self.spec.label} {op.name}: round {turn + 1}/{self.budget.rounds} (tasks so far: {done})")
            others = others_share(before, cpu_seconds())
        finally:
            for group in extras.values():
                for worker in group:
                    worker.stop()
            if op.backlog:
                gather([self.workers[n] for n in names], "end_backlog")
        return [
            record(
                n,
                op,
                self.spec,
                t["samples"],
                rounds=self.budget.rounds,
                processes=op.processes,
                throughput_per_s=round(len(t["samples"]) / t["wall"], 1),
                duplicates=t["duplicates"],
                unfinished=t["unfinished"],
                lock_errors=t["lock_errors"],
                others_cpu=others,
            )
            for n, t in totals.items()
        ]

    def set_backlog(self, op: Operation, names: list[str]) -> None:
        """Untimed: exactly ``op.backlog`` tasks pending in every contender's queue."""
        log(f"{self.spec.label} {op.name}: setting up a backlog of {op.backlog:,} pending tasks per contender")
        found = gather([self.workers[n] for n in names], "backlog", count=op.backlog)
        wrong = [f"{n} {count:,}" for n, count in zip(names, found, strict=True) if count != op.backlog]
        if wrong:
            raise WorkerError(
                f"{self.spec.label} {op.name}: the backlog is not {op.backlog:,} tasks: {', '.join(wrong)}"
            )

    def claim_round(self, name: str, group: list[Worker], quota: int, batch: int) -> dict[str, Any]:
        """All of a contender's executors at once, from one start time; then check that no task
        was done twice and that each was finished, and put the tasks back to pending."""
        start_at = time.monotonic() + 0.05
        deadline = start_at + 2 * self.budget.seconds
        per_process = math.ceil(quota / len(group))
        for i, worker in enumerate(group):
            worker.send(
                "executor",
                owner=f"{name}-executor-{i + 1}",
                quota=per_process,
                start_at=start_at,
                deadline=deadline,
                batch=batch,
            )
        outs = [worker.receive() for worker in group]
        ids = [task for out in outs for task in out["ids"]]
        unique = sorted(set(ids))
        duplicates = len(ids) - len(unique)
        finished = group[0].call("completed_and_reset", ids=unique)
        if duplicates or finished != len(unique):
            log(
                f"ERROR {self.spec.label} {name}: {duplicates} tasks done twice, "
                f"{len(unique) - finished} of {len(unique)} not left completed"
            )
        return {
            "samples": [s for out in outs for s in out["samples"]],
            "wall": max(o["ended"] for o in outs) - min(o["began"] for o in outs),
            "duplicates": duplicates,
            "unfinished": len(unique) - finished,
            "lock_errors": sum(o["lock_errors"] for o in outs),
        }


# ---------------------------------------------------------------------------------------------
# The targets


def reference(op: str) -> str:
    """The contender an operation's "x agentstate" ratios are taken against: agentstate, or for the
    checkpoint operations (agentstate's core API has none) agentstate's LangGraph saver."""
    return "agentstate_langgraph" if op in CHECKPOINT_OPERATIONS else "agentstate"


def evaluate_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target this run has the figures for, at the largest size: issue 11's first, then issue
    12's (agentstate's framework integrations against the frameworks' own SQLite backends), issue
    13's (agentstate on PostgreSQL against agentstate on SQLite), then the earlier ones issue 11
    left standing. Met or not is read from the figures, never assumed."""
    if not results:
        return []
    size = max(r["size"] for r in results)
    smallest = min(r["size"] for r in results)
    fig = {(r["contender"], r["operation"], r["size"]): r for r in results}
    out: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool, source: str = "issue 11") -> None:
        out.append({"size": size, "target": target, "measured": measured, "met": met, "source": source})

    def row(contender: str, op: str) -> dict[str, Any] | None:
        return fig.get((contender, op, size))

    def clean(r: dict[str, Any]) -> bool:
        return r.get("duplicates", 0) == 0 and r.get("unfinished", 0) == 0

    for op, floor_rate in (
        ("claim_finish_4p", 5_000),
        ("claim_finish_1p", 6_000),
        ("claim_finish_4p_batch10", 15_000),
        ("enqueue_batch_100", 15_000),
        ("append_turn_100", 100_000),
        ("append_bulk_10k", 50_000),
    ):
        if r := row("agentstate", op):
            claims = op in CLAIM_OPERATIONS
            unit = "messages" if op.startswith("append") else "tasks"
            add(
                f"{op}: at least {floor_rate:,} {unit}/s" + (", none done twice" if claims else ""),
                f"{r['throughput_per_s']:,.0f}/s" + (f", {r['duplicates']} done twice" if claims else ""),
                r["throughput_per_s"] >= floor_rate and clean(r),
            )
    if r := row("agentstate", "enqueue_one"):
        add("enqueue_one: median at most 80 µs", f"{format_us(r['median_us'])} µs", r["median_us"] <= 80)
    if r := row("agentstate", "claim_finish_4p"):
        add("claim_finish_4p: p99 at most 5 ms", f"{format_us(r['p99_us'])} µs", r["p99_us"] <= 5_000)
        add("claim_finish_4p: p99.9 at most 20 ms", f"{format_us(r['p999_us'])} µs", r["p999_us"] <= 20_000)
    # At durability full, against the fastest peer that fsyncs every commit too: by throughput on
    # the claim tests (their figure), by median latency on the single calls.
    full_peers = [n for n in PEERS if CONTENDERS[n].durability == "full"]
    for op in ("enqueue_one", "claim_finish_1p", "claim_finish_4p", "append_one", "append_turn_100"):
        ours = row("agentstate_full", op)
        theirs = [r for n in full_peers if (r := row(n, op))]
        if not (ours and theirs):
            continue
        if op in CLAIM_OPERATIONS:
            best = max(theirs, key=lambda r: float(r["throughput_per_s"]))
            add(
                f"{op}: agentstate_full at least as many tasks/s as the fastest FULL-durability peer ({best['contender']})",
                f"{ours['throughput_per_s']:,.0f}/s vs {best['throughput_per_s']:,.0f}/s",
                ours["throughput_per_s"] >= best["throughput_per_s"] and clean(ours),
            )
        else:
            best = min(theirs, key=lambda r: float(r["median_us"]))
            add(
                f"{op}: agentstate_full's median at most the fastest FULL-durability peer's ({best['contender']})",
                f"{format_us(ours['median_us'])} vs {format_us(best['median_us'])} µs",
                ours["median_us"] <= best["median_us"],
            )
    for op in AsyncContender.operations:
        sync, awaited = row("agentstate", op), row("agentstate_async", op)
        if sync and awaited:
            extra = awaited["median_us"] - sync["median_us"]
            add(
                f"{op}: the async API adds at most 30 µs per call (median, over the sync one)",
                f"+{format_us(extra)} µs ({format_us(awaited['median_us'])} vs {format_us(sync['median_us'])})",
                extra <= 30,
            )
    ours, raw = row("agentstate", "latest_50"), row("raw_apsw", "latest_50")
    if ours and raw:
        add(
            "latest_50: median at most raw_apsw's",
            f"{format_us(ours['median_us'])} vs {format_us(raw['median_us'])} µs",
            ours["median_us"] <= raw["median_us"],
        )
    for op, source in (("get_completed_task", "issue 11"), ("get_current_task", "earlier")):
        ours, floor = row("agentstate", op), row("floor", op)
        if ours and floor:
            ratio = ours["median_us"] / floor["median_us"]
            add(f"{op}: median within 2x of the floor's primary-key lookup", format_ratio(ratio), ratio <= 2, source)

    # Issue 12: each framework integration against the framework's own SQLite backend, at both
    # one's defaults, on every operation they share (by median latency; met: ours is not slower).
    for ours_name, theirs_name in PAIRS:
        for op in OPERATIONS:
            ours, theirs = row(ours_name, op.name), row(theirs_name, op.name)
            if not (ours and theirs):
                continue
            durabilities = CONTENDERS[ours_name].durability, CONTENDERS[theirs_name].durability
            writes = op.name.startswith(("append", "checkpoint_put"))
            add(
                f"{op.name}: {ours_name}'s median at most {theirs_name}'s"
                + (f" (synchronous {durabilities[0].upper()} vs {durabilities[1].upper()})" if writes else ""),
                f"{format_us(ours['median_us'])} vs {format_us(theirs['median_us'])} µs "
                f"({format_ratio(ours['median_us'] / theirs['median_us'])})",
                ours["median_us"] <= theirs["median_us"],
                "issue 12",
            )

    # Issue 13: the postgres contender (agentstate's API on PostgreSQL, loopback) against
    # agentstate on one SQLite file in the same run.
    if r := row("postgres", "claim_finish_16p"):
        add(
            "claim_finish_16p: postgres at least 2,000 tasks/s with 16 executor processes",
            f"{r['throughput_per_s']:,.0f}/s",
            r["throughput_per_s"] >= 2_000 and clean(r),
            "issue 13",
        )
    for op in ("latest_50", "get_current_task"):
        pg, ours = row("postgres", op), row("agentstate", op)
        if pg and ours:
            ratio = pg["median_us"] / ours["median_us"]
            add(
                f"{op}: postgres's median within 3x of agentstate's (SQLite)",
                f"{format_ratio(ratio)} ({format_us(pg['median_us'])} vs {format_us(ours['median_us'])} µs)",
                ratio <= 3,
                "issue 13",
            )
    pg_claims = [r for r in results if r["contender"] == "postgres" and r["operation"] in CLAIM_OPERATIONS]
    if pg_claims:
        twice = sum(r["duplicates"] for r in pg_claims)
        unfinished = sum(r["unfinished"] for r in pg_claims)
        add(
            "postgres: no task ever handed out twice (every claim test, every size)",
            f"{twice:,} done twice, {unfinished:,} unfinished in {len(pg_claims)} claim rows",
            twice == 0 and unfinished == 0,
            "issue 13",
        )

    # Earlier targets, still held.
    for op in ("get_current_task", "get_completed_task"):
        ours = row("agentstate", op)
        for other, factor in (("orm_today", 1_000), ("orm_indexed", 20)):
            if ours and (theirs := row(other, op)):
                ratio = theirs["median_us"] / ours["median_us"]
                add(f"{op}: at least {factor:,}x faster than {other}", format_ratio(ratio), ratio >= factor, "earlier")
    if one := row("agentstate", "append_one"):
        add("append_one: p99.9 under 2 ms", f"{format_us(one['p999_us'])} µs", one["p999_us"] < 2_000, "earlier")
    if smallest < size:
        bound = math.log(size) / math.log(smallest)
        for op in ("get_current_task", "get_completed_task", "latest_50", "keyset_page"):
            small, big = fig.get(("agentstate", op, smallest)), row("agentstate", op)
            if small and big:
                growth = big["median_us"] / small["median_us"]
                add(
                    f"{op}: from {format_size(smallest)} to {format_size(size)} rows grows no faster than log n "
                    f"(≤ {bound:.2f}x)",
                    format_ratio(growth),
                    growth <= bound,
                    "earlier",
                )
    return out


# ---------------------------------------------------------------------------------------------
# Reports


def format_us(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def format_ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def machine_info() -> dict[str, Any]:
    import sqlite3  # only for its version: this process opens no database
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"

    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "missing"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite_apsw": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "sqlite_stdlib": sqlite3.sqlite_version,
        "sqlalchemy": installed("sqlalchemy"),
        "peers": {dist: installed(dist) for dist in PEER_DISTRIBUTIONS},
        "agentstate_commit": commit,
    }


@dataclass
class Report:
    machine: dict[str, Any]
    config: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    db_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "duration_s": round(time.monotonic() - _T0, 1),
            "machine": self.machine,
            "config": self.config,
            "contenders": {n: CONTENDERS[n].summary for n in self.config["contenders"]},
            "operations": {op.name: op.what for op in OPERATIONS},
            "db_bytes": self.db_bytes,
            "mismatches": self.mismatches,
            "targets": evaluate_targets(self.results),
            "results": self.results,
        }

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(
            json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (out / "results.md").write_text(markdown(self), encoding="utf-8")
        plot(self, out / "latency.png")


def markdown(report: Report) -> str:
    m = report.machine
    sizes = sorted({r["size"] for r in report.results})
    names = [n for n in ORDER if n in report.config["contenders"]]
    lines = [
        "# agentstate benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']}; Python {m['python']}; "
        f"SQLite {m['sqlite_apsw']} via apsw {m['apsw']}, SQLite {m['sqlite_stdlib']} via the stdlib sqlite3 "
        f"(ORM baselines and peers), SQLAlchemy {m['sqlalchemy']}, "
        + ", ".join(f"{dist} {m['peers'].get(dist, 'missing')}" for dist in PEER_DISTRIBUTIONS)
        + ".",
        f"Run: {report.started}, agentstate {m['agentstate_commit']}, sizes {', '.join(map(format_size, sizes))} "
        f"(tasks and messages each), {report.config['rounds']} interleaved rounds, "
        f"`python scripts/bench.py {' '.join(report.config['argv'])}`.",
        *_postgres_server_lines(report),
        *_others_line(report),
        "",
    ]
    lines += _targets_section(report)
    if sizes:
        lines += _summary_section(report, names, sizes[-1])
        lines += _postgres_section(report, sizes)
    lines += _full_table(report, names)
    lines += ["## Contenders", ""] + [f"- `{n}`: {CONTENDERS[n].summary}." for n in names] + [""]
    lines += ["## Operations", ""] + [f"- `{op.name}`: {op.what}." for op in OPERATIONS] + [""]
    lines += [
        "Latencies are per call (per batch for the append_turn, append_bulk and enqueue_batch rows, per task for "
        "the claim rows), timed one by one after an untimed warm-up pass; openai_session's, agentstate_session's "
        "and agentstate_async's calls are awaited in their event loop. \"vs agentstate\" is the contender's figure "
        "divided by agentstate's (above 1: slower); on the checkpoint rows, by agentstate_langgraph's. "
        "Throughput: items per second over all timed calls (claim rows: tasks per second of wall time, all "
        'executor processes together). "done twice": on every claim row, how many times a claim was handed a '
        "task that another claim of the same round (in any process) already had; a task the round left "
        "unfinished is shown beside it.",
        "",
    ]
    twice = [r for r in report.results if r.get("duplicates") or r.get("unfinished")]
    if twice:
        lines += [
            "## Tasks handed out twice",
            "",
            "Claim tests in which a task went to more than one claim, or was left unfinished:",
            "",
        ]
        lines += [
            f"- {r['operation']} at {format_size(r['size'])}: {r['contender']} handed out {r['duplicates']:,} tasks "
            f"a second time; {r['unfinished']:,} were left unfinished"
            for r in twice
        ] + [""]
    if report.mismatches:
        lines += ["## Disagreements", "", "Contenders that returned different rows for the same keys:", ""]
        lines += [
            f"- {x['operation']} at {format_size(x['size'])}: {x['contender']} differs from {x['reference']} "
            f"on {x['keys_differing']} keys"
            for x in report.mismatches
        ] + [""]
    return "\n".join(lines)


def _targets_section(report: Report) -> list[str]:
    targets = evaluate_targets(report.results)
    if not targets:
        return []
    lines = [
        f"## The issue's targets at {format_size(targets[0]['size'])} rows",
        "",
        "Issue 11's targets, issue 12's (agentstate's framework integrations against the frameworks' own SQLite "
        "backends, each pair at its defaults), issue 13's (agentstate on PostgreSQL, the `postgres` contender, "
        "against agentstate on one SQLite file), then the earlier ones issue 11 left standing; met or not as "
        "measured in this run.",
        "",
        "| target | from | measured | met |",
        "| --- | --- | ---: | :---: |",
    ]
    lines += [
        f"| {t['target']} | {t['source']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in targets
    ]
    return [*lines, ""]


def _others_line(report: Report) -> list[str]:
    """How much of the machine other work took while this run measured (``others_cpu``)."""
    shares = [r["others_cpu"] for r in report.results if r.get("others_cpu") is not None]
    if not shares:
        return []
    return [
        f"Other work on the machine (processes not started by this run) took {min(shares):.0%} to "
        f"{max(shares):.0%} of its CPU while the operations were timed (per row: `others_cpu` in results.json); "
        "figures taken on a busy machine are lower than on an idle one."
    ]


def _postgres_server_lines(report: Report) -> list[str]:
    """The PostgreSQL server the postgres contender ran on, and its settings (read back from it)."""
    pg = report.machine.get("postgres")
    if not pg:
        return []
    settings = pg["settings"]
    listed = ", ".join(f"{k}={v}" for k, v in settings.items())
    kind = (
        f"{pg['origin']}; a throwaway server started for this run and stopped at its end"
        if pg["throwaway"]
        else "a server given with --postgres-url: its work counts as other work below"
    )
    return [
        f"PostgreSQL {pg['version']} ({kind}), reached over {pg['transport']}; settings: {listed}. "
        f"fsync={settings.get('fsync')}, full_page_writes={settings.get('full_page_writes')} and "
        f"synchronous_commit={settings.get('synchronous_commit')} match agentstate's SQLite default, durability "
        '"normal" (synchronous=NORMAL in WAL): a returned commit survives a crash of the process, a power cut may '
        "lose the last ones, and neither corrupts."
        if (settings.get("fsync"), settings.get("full_page_writes"), settings.get("synchronous_commit"))
        == ("on", "on", "off")
        else f"PostgreSQL {pg['version']} ({kind}), reached over {pg['transport']}; settings: "
        f"{listed} (not the benchmark's fair default of fsync=on, full_page_writes=on, synchronous_commit=off)."
    ]


def _postgres_section(report: Report, sizes: list[int]) -> list[str]:
    """agentstate on one SQLite file against agentstate on PostgreSQL, operation by operation:
    medians (and throughput for the claim and batch rows), at every size, with the ratio."""
    fig = {(r["contender"], r["operation"], r["size"]): r for r in report.results}
    if not any(c == "postgres" for c, _, _ in fig) or not any(c == "agentstate" for c, _, _ in fig):
        return []
    lines = [
        "## PostgreSQL against one SQLite file",
        "",
        "agentstate's API on `connect('postgresql://...')` (`postgres`) against the same calls on one SQLite "
        "file (`agentstate`), same data, same run: the per-call cost of going to a server, and where several "
        "executor processes on a server overtake one file's single writer. Median µs (throughput per second in "
        "brackets for the claim and batch rows; claim rows are per task, all processes together). The last "
        "column: the share of the machine's CPU that other work took meanwhile.",
        "",
        "| operation | size | agentstate (SQLite) | postgres | postgres / agentstate | CPU taken by other work |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(r: dict[str, Any]) -> str:
        rate = f" ({r['throughput_per_s']:,.0f}/s)" if "throughput_per_s" in r else ""
        return format_us(r["median_us"]) + rate

    for op in OPERATIONS:
        for size in sizes:
            base = "floor" if op.name == "select_1" else "agentstate"  # the SQLite floor's SELECT 1
            ours, pg = fig.get((base, op.name, size)), fig.get(("postgres", op.name, size))
            if ours and pg:
                others = pg.get("others_cpu")
                label = f"{op.name} (SQLite: the floor's)" if base == "floor" else op.name
                lines.append(
                    f"| {label} | {format_size(size)} | {cell(ours)} | {cell(pg)} | "
                    f"{format_ratio(pg['median_us'] / ours['median_us'])} | "
                    f"{'' if others is None else f'{others:.0%}'} |"
                )
    return [*lines, ""]


def _summary_section(report: Report, names: list[str], size: int) -> list[str]:
    fig = {(r["contender"], r["operation"]): r for r in report.results if r["size"] == size}
    lines = [
        f"## Median µs at {format_size(size)} rows (x agentstate)",
        "",
        "| operation | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    others: set[str] = set()
    for op in OPERATIONS:
        if not any((n, op.name) in fig for n in names):
            continue
        base = reference(op.name)
        ours = fig.get((base, op.name))
        if ours and base != "agentstate":
            others.add(base)
        cells = []
        for n in names:
            row = fig.get((n, op.name))
            if row is None:
                cells.append("")
            elif ours and n != base:
                cells.append(f"{format_us(row['median_us'])} ({format_ratio(row['median_us'] / ours['median_us'])})")
            else:
                cells.append(format_us(row["median_us"]))
        lines.append(f"| {op.name} | " + " | ".join(cells) + " |")
    if others:
        lines += [
            "",
            "The checkpoint rows' ratios are to " + ", ".join(sorted(others)) + ", agentstate's LangGraph saver.",
        ]
    return [*lines, ""]


def _full_table(report: Report, names: list[str]) -> list[str]:
    fig = {(r["contender"], r["operation"], r["size"]): r for r in report.results}
    lines = [
        "## All figures",
        "",
        "| operation | size | contender | median µs | p99 µs | p99.9 µs | n | throughput /s | done twice "
        "| median vs agentstate | p99 vs agentstate |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in OPERATIONS:
        for size in sorted({r["size"] for r in report.results}):
            ours = fig.get((reference(op.name), op.name, size))
            for n in names:
                row = fig.get((n, op.name, size))
                if row is None:
                    continue
                throughput = f"{row['throughput_per_s']:,.0f}" if "throughput_per_s" in row else ""
                checked = _queue_check(row)
                vs = (
                    (format_ratio(row["median_us"] / ours["median_us"]), format_ratio(row["p99_us"] / ours["p99_us"]))
                    if ours
                    else ("", "")
                )
                lines.append(
                    f"| {op.name} | {format_size(size)} | {n} | {format_us(row['median_us'])} | "
                    f"{format_us(row['p99_us'])} | {format_us(row['p999_us'])} | {row['n']:,} | {throughput} | "
                    f"{checked} | {vs[0]} | {vs[1]} |"
                )
    return [*lines, ""]


def _queue_check(row: dict[str, Any]) -> str:
    """A claim row's duplicate check: tasks done more than once (and any left unfinished)."""
    if "duplicates" not in row:
        return ""
    text = f"{row['duplicates']:,}" if not row["duplicates"] else f"**{row['duplicates']:,}**"
    return text + (f" ({row['unfinished']:,} unfinished)" if row.get("unfinished") else "")


COLORS = {
    "orm_today": "#d62728",
    "orm_indexed": "#ff7f0e",
    "agentstate": "#1f77b4",
    "agentstate_unmonitored": "#aec7e8",
    "agentstate_async": "#9edae5",
    "agentstate_full": "#17becf",
    "postgres": "#393b79",
    "raw_apsw": "#2ca02c",
    "floor": "#7f7f7f",
    "litequeue": "#9467bd",
    "huey": "#8c564b",
    "huey_nofsync": "#c49c94",
    "openai_session": "#e377c2",
    "agentstate_session": "#f7b6d2",
    "langgraph_sqlite": "#bcbd22",
    "agentstate_langgraph": "#dbdb8d",
}


def plot(report: Report, path: Path) -> None:
    """Median latency against data size, log-log, a panel per operation and a line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    ops = [op for op in OPERATIONS if any(r["operation"] == op.name for r in report.results)]
    sizes = sorted({r["size"] for r in report.results})
    cols = 3
    rows = max(1, math.ceil(len(ops) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        for name in ORDER:
            points = sorted(
                (r["size"], r["median_us"])
                for r in report.results
                if r["operation"] == op.name and r["contender"] == name
            )
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=COLORS[name], label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [format_size(s) for s in sizes])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        # Labels at 1-2-5 steps in plain numbers: a panel may span less than a decade.
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.tick_params(labelsize=8)
        ax.set_title(op.name + (f" ({op.items:,} per call)" if op.items > 1 else ""), fontsize=10)
        ax.set_xlabel("rows (tasks and messages)", fontsize=8)
        ax.set_ylabel("median µs per " + ("task" if op.processes else "call"), fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(ops) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], color=COLORS[n], marker="o", label=n) for n in ORDER if n in report.config["contenders"]
    ]
    m = report.machine
    fig.suptitle(
        f"agentstate benchmark: median latency against data size ({m['cpu']}, {m['cores']} cores, "
        f"SQLite {m['sqlite_apsw']})",
        y=0.995,
        fontsize=11,
    )
    per_row = 6  # legend entries per line: fifteen contenders do not fit on one
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.975), ncol=per_row, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95 - 0.015 * (math.ceil(len(handles) / per_row) - 1)))
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python scripts/bench.py",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python scripts/bench.py --out bench-out            1k, 100k and 1M rows (~15 min on 2 cores)\n"
        "  python scripts/bench.py --out bench-out --quick    500 and 5k rows, under a minute\n"
        "  python scripts/bench.py --out bench-out --size 10M  10M rows (~15 GB of disk per contender; measures the disk\n                                                     where the file cache is smaller)\n"
        "\ncontenders (by default every one whose packages are installed, each left out saying what it needs: the\n"
        "peers need the peers extra, pip install -e '.[bench,peers]'; postgres the postgres extra and a server;\n"
        "agentstate_langgraph the langgraph extra; agentstate_session the openai-agents extra):\n"
        + "\n".join(f"  {n:22} {c.summary}" for n, c in CONTENDERS.items())
        + "\n\noperations:\n"
        + "\n".join(f"  {op.name:23} {op.what}" for op in OPERATIONS),
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="where results.json, results.md and latency.png are written",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (500 and 5k rows) and short rounds: under a minute, a smoke test",
    )
    parser.add_argument(
        "--size",
        action="append",
        metavar="N",
        help="rows of tasks and of messages, e.g. 10M; repeat or comma-separate for several "
        "(default 1k,100k,1M; --quick 500,5k)",
    )
    parser.add_argument(
        "--contenders",
        metavar="LIST",
        help=f"comma-separated subset of: {', '.join(ORDER)} (default: all whose packages are installed, the others "
        "left out with a line saying so; a contender named here is required: exit 2 if it cannot run; described "
        "below). "
        f"The peers ({', '.join(PEERS)}) are other libraries, from the peers extra; agentstate_full is "
        'agentstate with durability="full"',
    )
    parser.add_argument("--operations", metavar="LIST", help="comma-separated subset of the operations below")
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="interleaved rounds per operation (default 5, --quick 2)"
    )
    parser.add_argument(
        "--seconds", type=float, metavar="S", help="time per contender, operation and round (default 1.0, --quick 0.02)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where the databases are built (default DIR/data; 1.1-1.5 GB per contender at 1M)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the databases afterwards (by default each size's are deleted once measured; a throwaway "
        "PostgreSQL server goes at the end all the same: use --postgres-url to keep its databases)",
    )
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="the postgres contender's server: a postgresql:// URL of a role that may create databases (the "
        "bench makes one per size, agentstate_bench_<pid>_<size>, and drops it). Default: a throwaway server "
        "from the pgserver wheel (or the system's binaries), on 127.0.0.1, fsync and full_page_writes on, "
        "synchronous_commit off, stopped at the end",
    )
    return parser.parse_args(argv)


def fail(message: str) -> NoReturn:
    """Stop before anything is built: the message on stderr and exit status 2 (a usage error, as
    argparse's own)."""
    print(f"bench.py: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def choose(text: str | None, allowed: Sequence[str], what: str) -> list[str]:
    if not text:
        return list(allowed)
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown:
        fail(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [a for a in allowed if a in chosen]


def importable(module: str) -> bool:
    """Whether ``module`` imports in this interpreter (what the contender's process will import)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def unavailable(name: str, postgres_url: str | None = None) -> str | None:
    """What the contender needs that is missing here, with how to install it; None if it can run."""
    for module, package, extra in CONTENDERS[name].needs:
        if not importable(module):
            return f"{package}, which is not installed (pip install -e '.[bench,{extra}]')"
    if name == "postgres" and not postgres_url:
        from tests.postgres import server as servers

        try:
            servers.find_binaries()
        except servers.Unavailable:
            return (
                "a PostgreSQL server: give --postgres-url, or install PostgreSQL's binaries (the pgserver "
                "wheel, pip install -e '.[test]', or the system's postgresql) for a throwaway one"
            )
    return None


def select_contenders(text: str | None, postgres_url: str | None = None) -> list[str]:
    """The contenders to run. By default every contender whose packages are installed, each of the
    others left out with a line saying what it needs; the ones named in ``text`` (--contenders) are
    all required: one that cannot run stops the bench (exit 2) with the extra to install."""
    names = choose(text, ORDER, "contenders")
    chosen: list[str] = []
    for name in names:
        why = unavailable(name, postgres_url)
        if why is None:
            chosen.append(name)
        elif text:
            fail(f"the {name} contender needs {why}; or leave {name} out of --contenders")
        else:
            log(f"leaving out {name}: it needs {why}")
    return chosen


def check_dependencies(names: Iterable[str]) -> None:
    """Fail at once, with the fix, rather than minutes into a run (the contenders' own packages are
    checked by :func:`select_contenders`)."""
    names = list(names)
    if {"agentstate", "agentstate_full", "postgres"} & set(names):
        try:
            import agentstate.messages
            import agentstate.tasks  # noqa: F401
        except ImportError as exc:
            fail(
                f"the agentstate contender needs agentstate.tasks and agentstate.messages ({exc}); "
                "leave it out with --contenders orm_today,orm_indexed,raw_apsw,floor"
            )
    for reader in ("agentstate_unmonitored", "agentstate_async"):
        if reader in names and "agentstate" not in names:
            fail(f"{reader} reads agentstate's database: include agentstate")
    if "floor" in names and not {"agentstate", "raw_apsw"} & set(names):
        fail("the floor reads agentstate's (or raw_apsw's) database: include one of them")


def check_bench_extra() -> None:
    """The bench extra (the ORM baselines' SQLAlchemy, the chart's matplotlib) is always required."""
    missing = [module for module in ("sqlalchemy", "matplotlib") if not importable(module)]
    if missing:
        fail(f"{', '.join(missing)} not installed: pip install -e '.[bench]'")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_bench_extra()
    names = select_contenders(args.contenders, args.postgres_url)
    ops = [OPERATION[o] for o in choose(args.operations, [op.name for op in OPERATIONS], "operations")]
    check_dependencies(names)
    base = QUICK if args.quick else FULL
    budget = Budget(
        rounds=args.rounds or base.rounds,
        seconds=args.seconds or base.seconds,
        max_calls=base.max_calls,
        min_calls=base.min_calls,
        claim_quota=base.claim_quota,
        keys=base.keys,
    )
    try:
        sizes = (
            sorted({parse_size(s) for arg in args.size for s in arg.split(",")})
            if args.size
            else list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
        )
    except ValueError as exc:
        raise SystemExit(f"bench.py: {exc}") from exc
    workdir = args.workdir or args.out / "data"
    report = Report(
        machine_info(),
        {
            "contenders": names,
            "operations": [op.name for op in ops],
            "sizes": sizes,
            "rounds": budget.rounds,
            "budget": budget.__dict__,
            "quick": args.quick,
            "argv": list(argv if argv is not None else sys.argv[1:]),
        },
    )
    log(f"benchmark: {', '.join(names)} at {', '.join(map(format_size, sizes))} rows; results in {args.out}")
    postgres: BenchServer | None = None
    try:
        if "postgres" in names:
            postgres = BenchServer.start(args.postgres_url)
            report.machine["postgres"] = postgres.describe()
            pg = report.machine["postgres"]
            log(f"postgres: {pg['version']} ({pg['origin']}) over {pg['transport']}")
        for size in sizes:
            run = SizeRun(DataSpec.for_size(size), names, ops, budget, workdir / format_size(size), postgres)
            try:
                run.start()
                report.db_bytes[format_size(size)] = run.db_bytes
                report.results += run.measure()
            except WorkerError as exc:
                log(f"FAILED at {format_size(size)}: {exc}")
                report.write(args.out)
                return 1
            finally:
                report.mismatches += run.mismatches
                run.stop(args.keep_data)
            report.write(args.out)
            log(f"{format_size(size)}: done; {args.out / 'results.md'} updated")
    finally:
        if postgres is not None:
            postgres.stop(args.keep_data)
            if postgres.throwaway:
                log("postgres: the throwaway server is stopped")
    with contextlib.suppress(OSError):
        workdir.rmdir()  # gone if empty, i.e. unless --keep-data
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
