"""agentstate through its public API, on SQLite (``agentstate``) and on PostgreSQL
(``postgres``), and its variants on SQLite: monitoring off, the asyncio API, durability "full".
Every call into the library's public API is in these classes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import apsw

from bench import postgres
from bench.contenders.raw_apsw import RawApsw
from bench.contenders.shared import RESULT, Bound, message_fingerprint
from bench.contenders.untimed import bulk_load, park_pending, reset_tasks, unpark_tasks
from bench.data import DataSpec, Payload, Progress, task_specs
from bench.generate import AGENTSTATE_LAYOUT, generate
from bench.operations import CLAIM_OPERATIONS, QUEUE_SCENARIO

QUEUE_CLAIMS = tuple(op for op in QUEUE_SCENARIO if op in CLAIM_OPERATIONS)
"""The queue scenario's claim tests (issue 21), which agentstate runs on every engine."""


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
        *QUEUE_CLAIMS,
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


class PlannedContender(AgentstateContender):
    """agentstate's data with planning in use: after the bulk load, tasks created through the API
    so that of the pending tasks 10% are delayed past the run and 10% wait on a prerequisite that
    stays claimed. The claims then have ready tasks to find among ones they must pass over; the
    difference to ``agentstate`` in the same run is what priorities, delays and dependencies cost
    a claim (issue 20: within 20%)."""

    name = "agentstate_planned"
    operations = ("claim_finish_1p", "claim_finish_4p", "claim_finish_4p_batch10")
    SHARE = 0.10
    DELAY_SECONDS = 30 * 86_400  # far past any run

    def build(self, spec: DataSpec, progress: Progress) -> None:
        super().build(spec, progress)
        self.open()
        try:
            self._plan()
        finally:
            self.close()
            self.conn, self.managers = None, {}

    def _plan(self) -> None:
        pending = self.conn.execute("SELECT count(*) FROM workers WHERE task_status = 'pending'").fetchone()[0]
        each = round(pending * self.SHARE / (1 - 2 * self.SHARE))  # 10% of the pending afterwards
        held = self.conn.execute(  # a prerequisite per planner that stays claimed (a far lease)
            "SELECT planner_id, min(worker_id) FROM workers WHERE task_status = 'claimed' GROUP BY planner_id"
        ).fetchall()
        by_planner: dict[str, list[dict[str, Any]]] = {planner: [] for planner, _ in held}
        for k, task in enumerate(task_specs(2 * each, seed=23)):  # alternately delayed and dependent
            planner, prerequisite = held[k % len(held)]
            if k % 2:
                task["depends_on"] = [prerequisite]
            else:
                task["delay_seconds"] = self.DELAY_SECONDS
            by_planner[planner].append(task)
        for planner, mine in by_planner.items():
            if mine:
                self.manager(planner).create_tasks(mine)


class PostgresContender(AgentstateContender):
    """agentstate's own API on ``agentstate.connect("postgresql://...")``: the same calls, timed
    the same way, as ``agentstate`` on SQLite, in a database of its own on the benchmark's
    PostgreSQL server. Its bulk load (the same generated data, copied in with COPY) and the claim
    test's bookkeeping are PostgreSQL SQL on a pooled connection of the handle (bench/postgres.py),
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
        postgres.bulk_load(str(self.path), spec, progress)

    def _position(self, agent: str, offset: int) -> int:
        with self.conn.session() as pg:
            return postgres.position(pg, agent, offset)

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        with self.conn.session() as pg:
            return postgres.reset_tasks(pg, ids)

    def backlog(self, count: int, planners: Sequence[str]) -> int:
        with self.conn.session() as pg:
            missing = max(0, count - postgres.pending(pg))
        specs = task_specs(missing, seed=17)
        for i, planner in enumerate(planners):
            if mine := specs[i :: len(planners)]:
                self.manager(planner).create_tasks(mine)
        with self.conn.session() as pg:
            return postgres.park_pending(pg, count)

    def end_backlog(self) -> None:
        with self.conn.session() as pg:
            postgres.unpark_tasks(pg)


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
        *QUEUE_CLAIMS,
    )
    options: ClassVar[dict[str, Any]] = {"durability": "full"}
