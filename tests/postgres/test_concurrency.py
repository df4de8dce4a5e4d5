"""PostgreSQL-specific concurrency, straight through psycopg with threads (one connection each).

Under READ COMMITTED a statement reads the snapshot it started with, so SQLite's statements,
correct there because one writer holds the lock, are wrong here. Each test below fails for the
naive port and passes for schema/postgres's statements:

- claims take their task with FOR UPDATE SKIP LOCKED: four claimers hand out no task twice,
  pending or whose lease expired (the SQLite statement, run here, claims one task twice: shown);
- appends take the stream's head row lock: positions are unique and commit in position order,
  so a follower paging with after(p) misses nothing (max()+1, run here, fails: shown);
- an idempotency key raced by six appenders stores one message (INSERT ... ON CONFLICT);
- leases and timestamps come from the server's clock.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg
import pytest

from agentstate import queries as sqlite_queries
from agentstate.postgres import queries as pg_queries
from agentstate.runner import run, run_each
from agentstate.values import utc_after, utc_now

WORKERS = 4
BLOCKED_S = 0.3  # how long a statement must stay waiting to count as blocked


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create_planner(conn: Any, planner_id: str) -> None:
    run(conn, "agents.create_planners", {"id": planner_id, "status": "active", "metadata": "{}"})


def create_tasks(conn: Any, planner_id: str, count: int, prefix: str = "task") -> list[str]:
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    with conn.transaction():
        run_each(conn, "tasks.create", [
            {"worker_id": worker_id, "planner_id": planner_id, "description": "", "acceptance_criteria": "[]",
             "task_context": "{}", "input_images": "[]", "metadata": "{}", "max_attempts": 3, "actor": planner_id,
             "priority": 0, "delay_seconds": 0, "waiting_on": 0, "idempotency_key": None}
            for worker_id in ids
        ])  # fmt: skip
    return ids


def create_conversation(conn: Any, conversation_id: str) -> None:
    run(conn, "agents.create_conversations", {"id": conversation_id, "status": "active", "metadata": "{}"})


def message(stream_id: str, content: str, key: str | None = None) -> dict[str, Any]:
    return {"stream_id": stream_id, "role": "user", "content": content, "metadata": "{}", "idempotency_key": key}


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) on as many threads, started together; their results, in order."""
    start = threading.Barrier(count)

    def go(index: int) -> Any:
        start.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(go, i) for i in range(count)]
        return [future.result(timeout=120) for future in futures]


def blocked(future: Future[Any]) -> bool:
    """Whether the statement running in ``future`` is still waiting after a while."""
    time.sleep(BLOCKED_S)
    return not future.done()


def waiting(pg_connect: Callable[..., Any]) -> Any:
    """A connection whose lock waits fail after 10 s instead of hanging the suite."""
    conn = pg_connect()
    conn.execute("SET lock_timeout = '10s'")
    return conn


# --- claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["tasks.claim_any", "tasks.claim_for_planner"])
def test_skip_locked_claims_hand_out_no_task_twice(pg: Any, pg_connect: Callable[..., Any], claim: str) -> None:
    create_planner(pg, "p")
    tasks = create_tasks(pg, "p", 300)
    conns = [pg_connect() for _ in range(WORKERS)]

    def executor(index: int) -> list[str]:
        conn, owner, mine = conns[index], f"executor-{index}", []
        while True:
            with conn.transaction():  # claim and finish in one transaction, holding the row meanwhile
                row = run(conn, claim, {"owner": owner, "lease_seconds": 60, "lease_backoff_seconds": 0, "planner_id": "p"})
                if row is None:
                    return mine
                time.sleep(random.uniform(0, 0.001))
                finished = run(conn, "tasks.finish", {"worker_id": row[0], "token": row[11], "to_status": "completed",
                                                      "result": '{"ok": true}', "actor": owner})  # fmt: skip
                assert finished is not None
            mine.append(row[0])

    claimed = [worker_id for batch in in_threads(WORKERS, executor) for worker_id in batch]
    assert sorted(claimed) == tasks  # every task once: none twice, none left out
    rows = pg.execute("SELECT task_status, fence, attempts, count(*) FROM workers GROUP BY 1, 2, 3").fetchall()
    assert rows == [("completed", 1, 1, 300)]
    events = pg.execute("SELECT count(*) FROM task_events WHERE to_status = 'claimed'").fetchone()
    assert events == (300,)


def test_expired_leases_are_taken_over_once(pg: Any, pg_connect: Callable[..., Any]) -> None:
    """Lease takeover races too: 60 tasks whose executors died, four claimers, each task reclaimed once."""
    create_planner(pg, "p")
    tasks = create_tasks(pg, "p", 60)
    pg.execute(
        "UPDATE workers SET task_status = 'claimed', lease_owner = 'dead', fence = 1, attempts = 1, "
        "lease_expires_at = statement_timestamp() - interval '1 minute', updated_at = statement_timestamp()"
    )
    conns = [pg_connect() for _ in range(WORKERS)]

    def executor(index: int) -> list[str]:
        mine = []
        while True:
            with conns[index].transaction():
                row = run(conns[index], "tasks.claim_any", {"owner": f"executor-{index}", "lease_seconds": 60, "lease_backoff_seconds": 0})
                if row is None:
                    return mine
                assert row[11] == 2  # the fence moved past the dead owner's token
                time.sleep(random.uniform(0, 0.001))
            mine.append(row[0])

    taken = [worker_id for batch in in_threads(WORKERS, executor) for worker_id in batch]
    assert sorted(taken) == tasks
    assert pg.execute("SELECT count(*) FROM workers WHERE fence = 2 AND lease_owner LIKE 'executor-%'").fetchone() == (
        60,
    )


def test_a_claimer_skips_a_task_another_transaction_is_claiming(pg: Any, pg_connect: Callable[..., Any]) -> None:
    """The deterministic form of the race, for the SKIP LOCKED statement and for SQLite's: while
    one transaction holds its claim uncommitted, a second claimer gets the next task at once;
    SQLite's statement instead waits for the row and, once the first commits, claims it again
    (its WHERE worker_id = <picked from the old snapshot> still matches the new version)."""
    create_planner(pg, "p")
    create_tasks(pg, "p", 2)
    first, second = pg_connect(), waiting(pg_connect)
    params = {"owner": "executor-1", "lease_seconds": 60, "lease_backoff_seconds": 0}
    with ThreadPoolExecutor(1) as pool:
        with first.transaction():
            mine = run(first, "tasks.claim_any", params)
            theirs = pool.submit(run, second, "tasks.claim_any", {**params, "owner": "executor-2"}).result(timeout=5)
        assert mine[0] == "task-00000" and theirs[0] == "task-00001"

        # SQLite's claim_any, run unchanged (its SQL and its client-clock parameters).
        # (INDEXED BY, SQLite's index pin, is not PostgreSQL's syntax: left out, the statement is the same)
        unpinned = re.sub(r"INDEXED BY \w+", "", sqlite_queries.registry()["tasks.claim_any"].sql)
        naive = pg_queries.convert(unpinned).pyformat
        pg.execute("UPDATE workers SET task_status = 'pending', lease_owner = NULL, lease_expires_at = NULL")

        def naive_claim(conn: Any, owner: str) -> Any:
            now = utc_now()
            values = {"owner": owner, "now": now, "reclaim_before": now, "lease_expires_at": utc_after(60)}
            return conn.execute(naive, values).fetchone()

        with first.transaction():
            mine = naive_claim(first, "executor-1")
            theirs_later = pool.submit(naive_claim, second, "executor-2")
            assert blocked(theirs_later)  # waiting for the row the first transaction holds
        theirs = theirs_later.result(timeout=10)
    assert mine[0] == theirs[0] == "task-00000"  # the same task handed to two executors
    assert pg.execute("SELECT fence FROM workers WHERE worker_id = 'task-00000'").fetchone() == (3,)


def test_leases_and_times_come_from_the_server_clock(pg: Any) -> None:
    create_planner(pg, "p")
    create_tasks(pg, "p", 1)
    for name in ("tasks.claim_any", "tasks.heartbeat", "tasks.finish", "messages.append_router_messages"):
        assert not {"now", "lease_expires_at", "created_at"} & set(pg_queries.registry()[name].params), name
    with pg.transaction():
        server_now = when(pg.execute("SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', "
                                     "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").fetchone()[0])  # fmt: skip
        row = run(pg, "tasks.claim_any", {"owner": "executor-1", "lease_seconds": 90.5, "lease_backoff_seconds": 0})
    lease, updated = when(row[13]), when(row[16])
    assert (lease - updated).total_seconds() == 90.5
    assert abs((updated - server_now).total_seconds()) < 5
    beat = run(pg, "tasks.heartbeat", {"worker_id": row[0], "token": row[11], "lease_seconds": 10})
    assert (when(beat[13]) - when(beat[16])).total_seconds() == 10


# --- message positions -------------------------------------------------------------------------


def test_concurrent_appenders_get_unique_positions_in_commit_order(pg: Any, pg_connect: Callable[..., Any]) -> None:
    """Four appenders to one stream, each holding its transaction open a moment after appending,
    and a follower paging with after(last seen) all along: it must see every position, in order.
    A position that committed after a higher one would be skipped by it."""
    create_conversation(pg, "c")
    per_thread, total = 40, 40 * WORKERS
    conns = [pg_connect() for _ in range(WORKERS + 1)]
    appended = threading.Event()
    seen: list[int] = []

    def follow() -> None:
        conn, last = conns[-1], 0
        while True:
            finished = appended.is_set()  # read before the page: then that page sees every commit
            rows = run(conn, "messages.after_router_messages", {"stream_id": "c", "position": last, "limit": 1000})
            for row in rows:
                seen.append(row[0])
                last = row[0]
            if finished and not rows:
                return
            if not rows:
                time.sleep(0.0005)

    def appender(index: int) -> list[int]:
        conn, mine = conns[index], []
        for n in range(per_thread):
            with conn.transaction():
                row = run(conn, "messages.append_router_messages", message("c", f"{index}:{n}"))
                time.sleep(random.uniform(0, 0.001))
            mine.append(row[0])
        return mine

    with ThreadPoolExecutor(1) as pool:
        follower = pool.submit(follow)
        try:
            batches = in_threads(WORKERS, appender)
        finally:
            appended.set()
        follower.result(timeout=60)
    for batch in batches:
        assert batch == sorted(batch) and len(set(batch)) == len(batch)
    assert sorted(p for batch in batches for p in batch) == list(range(1, total + 1))
    assert seen == list(range(1, total + 1))  # the follower missed nothing
    rows = pg.execute("SELECT position, created_at FROM router_messages WHERE conversation_id = 'c' ORDER BY position")
    times = [created for _, created in rows.fetchall()]
    assert times == sorted(times)  # created_at follows position within a stream
    assert pg.execute("SELECT last_position FROM message_heads WHERE stream_id = 'c'").fetchone() == (total,)


def test_a_second_appender_waits_for_the_first_to_commit(pg: Any, pg_connect: Callable[..., Any]) -> None:
    """The head row's lock, deterministically; and SQLite's max()+1 statement, ported, failing: the
    second appender reads the same max(position) from its snapshot and hits the first one's key."""
    create_conversation(pg, "c")
    first, second = pg_connect(), waiting(pg_connect)
    with ThreadPoolExecutor(1) as pool:
        with first.transaction():
            mine = run(first, "messages.append_router_messages", message("c", "one"))
            theirs = pool.submit(run, second, "messages.append_router_messages", message("c", "two"))
            assert blocked(theirs)
        assert (mine[0], theirs.result(timeout=10)[0]) == (1, 2)

        # SQLite's append with its two-argument max() spelled greatest(): max(position) + 1.
        sqlite_sql = sqlite_queries.registry()["messages.append_router_messages"].sql
        naive = pg_queries.convert(sqlite_sql.replace("max(coalesce(", "greatest(coalesce(", 1)).pyformat
        values = {**message("c", "naive"), "created_at": utc_now()}
        with first.transaction():
            first.execute(naive, values)  # position 3: max(position) + 1
            later = pool.submit(second.execute, naive, values)  # reads the same max, then waits on the key
            assert blocked(later)
        with pytest.raises(psycopg.errors.UniqueViolation):
            later.result(timeout=10)


def test_a_batch_locks_the_head_it_numbers_from(pg: Any, pg_connect: Callable[..., Any]) -> None:
    """MessageLog's batch path: last_position locks the head, the rows go in with insert, and an
    append meanwhile waits, then takes the position after the batch."""
    create_conversation(pg, "c")
    run(pg, "messages.append_router_messages", message("c", "zero"))
    first, second = pg_connect(), waiting(pg_connect)
    with ThreadPoolExecutor(1) as pool:
        with first.transaction():
            stream_id, last, now = run(first, "messages.last_position_router_messages", {"stream_id": "c"})
            assert (stream_id, last) == ("c", 1)
            theirs = pool.submit(run, second, "messages.append_router_messages", message("c", "after"))
            assert blocked(theirs)
            rows = [("c", last + i, "user", f"batch {i}", "{}", None, now) for i in (1, 2)]
            run_each(first, "messages.insert_router_messages", rows)
        assert theirs.result(timeout=10)[0] == 4


def test_two_poppers_never_take_the_same_message(pg: Any, pg_connect: Callable[..., Any]) -> None:
    create_conversation(pg, "c")
    for n in range(3):
        run(pg, "messages.append_router_messages", message("c", f"m{n}"))
    first, second = pg_connect(), waiting(pg_connect)
    with ThreadPoolExecutor(1) as pool:
        with first.transaction():
            mine = run(first, "messages.pop_last_router_messages", {"stream_id": "c"})
            theirs = pool.submit(run, second, "messages.pop_last_router_messages", {"stream_id": "c"})
            assert blocked(theirs)
        assert (mine[0], theirs.result(timeout=10)[0]) == (3, 2)
    # Popped positions are never handed out again: the head keeps 3.
    assert run(pg, "messages.append_router_messages", message("c", "next"))[0] == 4


# --- idempotency -------------------------------------------------------------------------------


def test_a_raced_idempotency_key_stores_one_message(pg: Any, pg_connect: Callable[..., Any]) -> None:
    create_conversation(pg, "c")
    racers = 6
    conns = [pg_connect() for _ in range(racers)]

    def append(index: int) -> Any:
        with conns[index].transaction():
            row = run(conns[index], "messages.append_router_messages", message("c", "same", key="request-42"))
            time.sleep(0.05)  # commit late, so the others are already waiting
        if row is None:  # the key was taken: read the stored message, as MessageLog does
            return run(conns[index], "messages.by_idempotency_key_router_messages",
                       {"stream_id": "c", "idempotency_key": "request-42"})[1]  # fmt: skip
        return row[0]

    positions = in_threads(racers, append)
    assert len(set(positions)) == 1
    count = pg.execute("SELECT count(*) FROM router_messages WHERE idempotency_key = 'request-42'").fetchone()
    assert count == (1,)
    # A later retry finds the key in its snapshot and moves no head: the next append is next.
    assert run(pg, "messages.append_router_messages", message("c", "same", key="request-42")) is None
    head = pg.execute("SELECT last_position FROM message_heads WHERE stream_id = 'c'").fetchone()[0]
    assert run(pg, "messages.append_router_messages", message("c", "other"))[0] == head + 1


def test_a_key_whose_first_append_rolls_back_is_stored_by_the_waiter(pg: Any, pg_connect: Callable[..., Any]) -> None:
    create_conversation(pg, "c")
    first, second = pg_connect(), waiting(pg_connect)
    with ThreadPoolExecutor(1) as pool:
        with first.transaction(force_rollback=True):
            assert run(first, "messages.append_router_messages", message("c", "x", key="k")) is not None
            theirs = pool.submit(run, second, "messages.append_router_messages", message("c", "x", key="k"))
            assert blocked(theirs)
        assert theirs.result(timeout=10) is not None
    assert pg.execute("SELECT count(*) FROM router_messages WHERE idempotency_key = 'k'").fetchone() == (1,)
