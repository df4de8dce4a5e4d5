"""How many round trips a task's steps cost on PostgreSQL, counted in libpq's own trace of what
the client sent: each round trip ends with a Sync (a statement with parameters) or is one Query
(BEGIN, COMMIT). A claim, a heartbeat and complete_and_claim_next are one statement each, and
outside a transaction of the caller's they commit as they run, with no BEGIN or COMMIT around."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

import agentstate
from agentstate.postgres.engine import PostgresEngine
from agentstate.tasks import Claim, TaskManager
from tests.engines import fresh_database


@pytest.fixture
def tm(pg_server: Any, pg_template: str) -> Iterator[TaskManager]:
    name, _ = fresh_database(pg_server, pg_template)
    conn = agentstate.connect(pg_server.url(name), pool_size=1)  # one pooled connection: the one traced
    agentstate.Agents(conn).create_planner("p1")
    manager = TaskManager(conn, "p1")
    manager.create_tasks([{"description": f"step {i}"} for i in range(4)])
    manager.claim("warm-up", lease_seconds=60)  # the first claim sweeps; the ones counted do not
    yield manager
    conn.close()
    pg_server.drop_database(name)


@contextmanager
def sent(conn: Any) -> Iterator[list[str]]:
    """The messages the handle's one pooled connection sends inside the block, by type."""
    kinds: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        with conn.session() as pg:
            pg.pgconn.trace(trace.fileno())
            pg.pgconn.set_trace_flags(1)  # PQTRACE_SUPPRESS_TIMESTAMPS: "F <length> <type> ..."
        try:
            yield kinds
        finally:
            with conn.session() as pg:
                pg.pgconn.untrace()
            trace.seek(0)
            lines = [line.split("\t") for line in trace.read().splitlines()]
            kinds.extend(fields[2].split(" ")[0] for fields in lines if len(fields) > 2 and fields[0] == "F")


def round_trips(kinds: list[str]) -> int:
    return kinds.count("Sync") + kinds.count("Query")


def claim(tm: TaskManager) -> Claim:
    found = tm.claim("exec", lease_seconds=60)
    assert found is not None
    return found


STEPS: dict[str, Callable[[TaskManager, Claim], Any]] = {
    "claim": lambda tm, _: claim(tm),
    "heartbeat": lambda tm, held: tm.heartbeat(held, lease_seconds=120),
    "complete_and_claim_next": lambda tm, held: tm.complete_and_claim_next(held, result={"ok": True}),
}


@pytest.mark.parametrize("step", STEPS)
def test_a_step_of_one_statement_is_one_round_trip(tm: TaskManager, step: str) -> None:
    held = claim(tm)
    with sent(tm.conn) as kinds:
        assert STEPS[step](tm, held) is not None
    assert round_trips(kinds) == 1, kinds


def test_a_complete_is_a_transaction_of_three(tm: TaskManager) -> None:
    """The counting itself, on a step that stays a transaction (BEGIN, the UPDATE, COMMIT):
    after a connection lost while its statement ran, a complete is repeated only if it surely did
    not commit, which a transaction of its own can tell and a lone statement cannot."""
    held = claim(tm)
    with sent(tm.conn) as kinds:
        tm.complete(held, result={"ok": True})
    assert round_trips(kinds) == 3 and kinds.count("Query") == 2, kinds


def test_inside_a_transaction_of_the_callers_a_claim_joins_it(tm: TaskManager) -> None:
    """The claim runs in the caller's transaction, under a savepoint: rolled back with it."""
    with pytest.raises(RuntimeError), agentstate.write(tm.conn):
        assert tm.claim("exec", lease_seconds=60) is not None
        raise RuntimeError("the caller gives up")
    assert tm.counts()["claimed"] == 1  # only the warm-up's


def test_a_claim_whose_sweep_is_due_sends_the_sweep_as_two_more(tm: TaskManager) -> None:
    tm._next_sweep = 0.0  # the sweep falls due (once a second on its own)
    with sent(tm.conn) as kinds:
        claim(tm)
    assert round_trips(kinds) == 3, kinds


def test_a_lone_claim_whose_answer_is_lost_is_repeated_and_nothing_is_run_twice(
    tm: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone statement commits as it runs, so a connection lost before its answer came back
    leaves its outcome unknown: a claim is repeated all the same (the unseen lease expires and
    its task is claimed again), and the caller gets a claim of another task."""
    real, lost = PostgresEngine.execute, []

    def execute(self: PostgresEngine, conn: Any, statement: Any, params: Any) -> Any:
        fetched = real(self, conn, statement, params)
        if statement.query.name == "tasks.claim_any" and not lost:  # committed, then the answer is lost
            lost.append(fetched.rows[0][0])
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return fetched

    monkeypatch.setattr(PostgresEngine, "execute", execute)
    tm = TaskManager(tm.conn, None)  # claims any planner's tasks (tasks.claim_any)
    tm._next_sweep = float("inf")  # no sweep: only the claim statement runs
    got = tm.claim("exec", lease_seconds=60)
    assert got is not None and lost and got.worker_id != lost[0]
    unseen = tm.get_task(lost[0])
    assert (unseen.task_status, unseen.lease_owner, unseen.attempts) == ("claimed", "exec", 1)  # its lease expires


def test_a_complete_whose_update_is_cut_off_is_repeated(tm: TaskManager, monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete stays BEGIN, UPDATE, COMMIT: a connection lost while the UPDATE ran surely
    committed nothing, so the call is repeated and the task completed once."""
    held = claim(tm)
    real, cut = PostgresEngine.execute, []

    def execute(self: PostgresEngine, conn: Any, statement: Any, params: Any) -> Any:
        if statement.query.name == "tasks.finish" and not cut:
            cut.append(1)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(self, conn, statement, params)

    monkeypatch.setattr(PostgresEngine, "execute", execute)
    done = tm.complete(held, result={"ok": True})
    assert cut and done.task_status == "completed"
    assert [e.to_status for e in tm.history(held.worker_id)][-1] == "completed"
