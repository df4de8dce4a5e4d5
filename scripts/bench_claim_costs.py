"""Where one task's claim + complete and one enqueue go, beside litequeue's, in one process.

A queue that has run ``--tasks`` tasks (over 1,000 planners, the benchmark's payloads) has 400
ready at the start of each round (put back untimed), consumed one at a time; then rounds of 100
enqueues. The variants: agentstate's public API (``claim`` then ``complete``; ``create_task``),
the same transactions' SQL alone on agentstate's connection (``BEGIN IMMEDIATE``, the named
query, ``COMMIT``: no agentstate Python around it), and each again on a database without the
triggers that write a task's history (a ``task_events`` row per new task and per transition).
litequeue (pop + done; put) keeps no history, lease or fencing token; both run at
synchronous=NORMAL in WAL. Rounds are interleaved, so drift hits every variant alike::

    python scripts/bench_claim_costs.py --tasks 10000 --rounds 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench.contenders.shared import RESULT
from bench.data import task_specs
from bench.statistics import summarize

import agentstate
from agentstate.runner import query
from agentstate.task_arguments import encode_task
from agentstate.task_steps import finish_params
from agentstate.tasks import TaskManager
from agentstate.values import new_id, utc_now

READY = 400
PLANNERS = 1000
ENQUEUES = 100
BASELINE = "litequeue"
HISTORY_TRIGGERS = ("trg_workers_created", "trg_workers_transition")


def agentstate_queue(path: str, tasks: int, history: bool) -> Any:
    """A migrated file with ``tasks`` tasks, all but the newest READY recorded; its connection."""
    conn = agentstate.connect(path)
    agents = agentstate.Agents(conn)
    planners = [f"planner-{i:04d}" for i in range(PLANNERS)]
    with agentstate.write(conn):
        for planner in planners:
            agents.create_planner(planner)
    specs = task_specs(256)
    for start in range(0, tasks, 100):
        count = min(100, tasks - start)
        TaskManager(conn, planners[start // 100 % PLANNERS]).create_tasks(
            [specs[(start + i) % 256] for i in range(count)]
        )
    newest = conn.execute("SELECT worker_id FROM workers ORDER BY worker_id DESC LIMIT 1 OFFSET ?", (READY - 1,)).get
    with agentstate.write(conn):
        conn.execute("UPDATE workers SET task_status = 'recorded' WHERE worker_id < ?", (newest,))
        for trigger in () if history else HISTORY_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return conn


def put_back(conn: Any) -> None:
    """Untimed: the round's tasks pending again."""
    with agentstate.write(conn):
        conn.execute(
            "UPDATE workers SET task_status = 'pending', lease_owner = NULL, lease_expires_at = NULL, result = NULL, "
            "attempts = 0 WHERE task_status <> 'recorded'"
        )


def api_step(conn: Any) -> Callable[[], None]:
    manager = TaskManager(conn, None)

    def step() -> None:
        claim = manager.claim("executor-1", lease_seconds=60)
        assert claim is not None
        manager.complete(claim, result=RESULT)

    return step


def sql_step(conn: Any) -> Callable[[], None]:
    """claim_any and finish as TaskManager binds them, with nothing of agentstate's around them."""
    manager, claim_sql, finish_sql = TaskManager(conn, None), query("tasks.claim_any").sql, query("tasks.finish").sql

    def step() -> None:
        params = manager._claim_params({}, "executor-1", 60)
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(claim_sql, params).fetchall()[0]
        conn.execute("COMMIT")
        done = {**finish_params(row[0], row[11], "completed", RESULT, None), "actor": "executor-1", "now": utc_now()}
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(finish_sql, done).fetchall()
        conn.execute("COMMIT")

    return step


def api_enqueue(conn: Any) -> Callable[[int], None]:
    managers, specs = [TaskManager(conn, f"planner-{i:04d}") for i in range(PLANNERS)], task_specs(256)

    def enqueue(i: int) -> None:
        managers[i % PLANNERS].create_task(**specs[i % 256])

    return enqueue


def sql_enqueue(conn: Any) -> Callable[[int], None]:
    """tasks.create as create_task binds it; the arguments are encoded before the clock starts."""
    sql, specs = query("tasks.create").sql, task_specs(256)
    encoded = [encode_task(None, f"planner-{i:04d}", specs[i % 256]) for i in range(PLANNERS)]

    def enqueue(i: int) -> None:
        params = {k: v for k, v in encoded[i % PLANNERS].items() if k not in ("depends_on", "explicit_id")}
        params["worker_id"], params["now"] = new_id(), utc_now()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, params).fetchall()
        conn.execute("COMMIT")

    return enqueue


Claims = tuple[Callable[[], None], Callable[[], None]]
"""A claim variant: one task's claim + complete, and the untimed put-back before each round."""


def litequeue_queue(path: str, tasks: int) -> tuple[Claims, Callable[[int], None], Any]:
    """litequeue with ``tasks`` messages (the same payloads), all but the newest READY done: its
    claim variant, its enqueue, and the queue."""
    from litequeue import LiteQueue

    queue = LiteQueue(path)
    specs = task_specs(256)
    for i in range(tasks):
        queue.put(json.dumps({"planner_id": f"planner-{i // 100 % PLANNERS:04d}", **specs[i % 256]}))
    table, conn = queue.table, queue.conn
    newest = conn.execute(
        f"SELECT message_id FROM {table} ORDER BY message_id DESC LIMIT 1 OFFSET ?", (READY - 1,)
    ).fetchone()[0]
    conn.execute(f"UPDATE {table} SET status = 2, lock_time = 0, done_time = 0 WHERE message_id < ?", (newest,))

    def step() -> None:
        message = queue.pop()
        assert message is not None
        queue.done(message.message_id)

    def put_back() -> None:
        conn.execute(
            f"UPDATE {table} SET status = 0, lock_time = NULL, done_time = NULL WHERE message_id >= ?", (newest,)
        )

    def enqueue(i: int) -> None:
        queue.put(json.dumps({"planner_id": f"planner-{i % PLANNERS:04d}", **specs[i % 256]}))

    return (step, put_back), enqueue, queue


def time_claims(claims: dict[str, Claims], rounds: int) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Each variant's claim + complete, one task at a time, READY a round, rounds interleaved: ns
    per task, and tasks/s over the rounds' wall time."""
    per_task: dict[str, list[int]] = {name: [] for name in claims}
    wall_ns = dict.fromkeys(claims, 0)
    for round_ in range(rounds):
        if round_ % 5 == 0:
            print(f"claims: round {round_ + 1}/{rounds}", file=sys.stderr, flush=True)
        for name, (step, reset) in claims.items():
            reset()
            started = time.perf_counter_ns()
            for _ in range(READY):
                begun = time.perf_counter_ns()
                step()
                per_task[name].append(time.perf_counter_ns() - begun)
            wall_ns[name] += time.perf_counter_ns() - started
    return per_task, {name: READY * rounds / (ns / 1e9) for name, ns in wall_ns.items()}


def time_enqueues(enqueues: dict[str, Callable[[int], None]], rounds: int) -> dict[str, list[int]]:
    """Each variant's enqueue, ENQUEUES a round, rounds interleaved: ns per call."""
    per_call: dict[str, list[int]] = {name: [] for name in enqueues}
    for round_ in range(rounds):
        if round_ % 5 == 0:
            print(f"enqueues: round {round_ + 1}/{rounds}", file=sys.stderr, flush=True)
        for name, enqueue in enqueues.items():
            for i in range(round_ * ENQUEUES, (round_ + 1) * ENQUEUES):
                begun = time.perf_counter_ns()
                enqueue(i)
                per_call[name].append(time.perf_counter_ns() - begun)
    return per_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time one task's claim + complete, and one enqueue, through agentstate's API and as its SQL "
        "alone, each with and without the task history triggers, beside litequeue's (one process, interleaved rounds).",
        epilog="example: python scripts/bench_claim_costs.py --tasks 10000 --rounds 20",
    )
    parser.add_argument(
        "--tasks", type=int, default=10_000, metavar="N", help="tasks the queue has run (default 10000)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=20,
        metavar="N",
        help=f"rounds per variant: {READY} claims, then {ENQUEUES} enqueues (default 20)",
    )
    args = parser.parse_args(argv)
    if args.tasks < READY or args.rounds < 1:
        parser.error(f"--tasks must be >= {READY} (a round's tasks) and --rounds >= 1")
    try:
        import litequeue  # noqa: F401
    except ImportError:
        parser.exit(2, "litequeue is not installed: pip install -e '.[peers]'\n")
    with tempfile.TemporaryDirectory(prefix="claim-costs-") as folder:
        print(f"building queues of {args.tasks:,} tasks", file=sys.stderr, flush=True)
        with_history = agentstate_queue(os.path.join(folder, "history.db"), args.tasks, history=True)
        without = agentstate_queue(os.path.join(folder, "no-history.db"), args.tasks, history=False)
        litequeue_claims, litequeue_enqueue, queue = litequeue_queue(os.path.join(folder, "litequeue.db"), args.tasks)
        claims: dict[str, Claims] = {
            "agentstate API (claim + complete)": (api_step(with_history), lambda: put_back(with_history)),
            "agentstate API, without history": (api_step(without), lambda: put_back(without)),
            "its SQL alone, with history": (sql_step(with_history), lambda: put_back(with_history)),
            "its SQL alone, without history": (sql_step(without), lambda: put_back(without)),
            BASELINE: litequeue_claims,
        }
        enqueues: dict[str, Callable[[int], None]] = {
            "agentstate API (create_task)": api_enqueue(with_history),
            "agentstate API, without history": api_enqueue(without),
            "its SQL alone, with history": sql_enqueue(with_history),
            "its SQL alone, without history": sql_enqueue(without),
            BASELINE: litequeue_enqueue,
        }
        per_task, rates = time_claims(claims, args.rounds)
        per_enqueue = time_enqueues(enqueues, args.rounds)  # after the claims: the tasks they add stay pending
        with_history.close()
        without.close()
        queue.close()
    print(f"\n{args.tasks:,} tasks run before, {args.rounds} rounds, synchronous=NORMAL\n")
    print(f"claim + complete, one task at a time, {READY} a round (litequeue: pop + done):\n")
    print("| variant | median µs per task | p99 µs | tasks/s | median / litequeue's | tasks/s / litequeue's |")
    print("|---|---:|---:|---:|---:|---:|")
    figures = {name: summarize(found) for name, found in per_task.items()}
    for name, row in figures.items():
        print(
            f"| {name} | {row['median_us']:,.1f} | {row['p99_us']:,.0f} | {rates[name]:,.0f} "
            f"| {row['median_us'] / figures[BASELINE]['median_us']:.2f} | {rates[name] / rates[BASELINE]:.2f} |"
        )
    print(f"\nenqueue one task, its own transaction, {ENQUEUES} a round (litequeue: put):\n")
    print("| variant | median µs | p99 µs | median / litequeue's |")
    print("|---|---:|---:|---:|")
    figures = {name: summarize(found) for name, found in per_enqueue.items()}
    for name, row in figures.items():
        print(
            f"| {name} | {row['median_us']:,.1f} | {row['p99_us']:,.0f} "
            f"| {row['median_us'] / figures[BASELINE]['median_us']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
