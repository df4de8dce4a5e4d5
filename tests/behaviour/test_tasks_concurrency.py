"""Several OS processes claim and finish the same tasks at once: each task is done exactly once,
none is lost, and a SIGKILLed executor's task is reclaimed after its lease and finished by another.
On both engines: the processes open the test's database by its path or URL."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from typing import Any

import pytest

import agentstate
from agentstate.agents import Agents
from agentstate.tasks import TaskManager
from tests.engines import is_postgres, rows, scalar

TASKS = 3000
PROCESSES = 4


def _executor(url: str, owner: str, planner: str | None, out: Any, start: Any) -> None:
    conn = agentstate.connect(url)
    done: list[str] = []
    try:
        tm = TaskManager(conn, planner)
        start.wait(timeout=120)  # all at once: a process that started early must not do every task alone
        claim = tm.claim(owner)
        while claim is not None:
            done.append(claim.worker_id)
            claim = tm.complete_and_claim_next(claim, result={"by": owner})
        out.put((owner, done, None))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put((owner, done, repr(exc)))
    finally:
        conn.close()


@pytest.mark.slow
def test_processes_finish_every_task_exactly_once(db_url: str) -> None:
    conn = agentstate.connect(db_url)
    try:
        for planner in ("a", "b", "c"):
            Agents(conn).create_planner(planner)
        made = []
        for planner in ("a", "b", "c"):
            made += TaskManager(conn, planner).create_tasks([{"description": str(i)} for i in range(TASKS // 3)])
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        start = ctx.Barrier(PROCESSES + 1)
        # two executors serve any planner, two serve one planner each: both claim paths race
        planners = [None, None, "a", "b"]
        procs = [
            ctx.Process(target=_executor, args=(db_url, f"exec-{i}", planners[i], out, start)) for i in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        start.wait(timeout=120)
        reports = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [r[2] for r in reports] == [None] * PROCESSES, reports
        acknowledged = Counter(w for _, done, _ in reports for w in done)
        assert set(acknowledged) == {t.worker_id for t in made}, "a task was lost"
        assert max(acknowledged.values()) == 1, "a task was done twice"
        assert sum(1 for _, done, _ in reports if done) >= 2, "only one process did any work"
        completions = rows(
            conn, "SELECT worker_id, count(*) FROM task_events WHERE to_status = 'completed' GROUP BY worker_id"
        )
        assert len(completions) == TASKS and {n for _, n in completions} == {1}
        by = "result ->> 'by'" if is_postgres(conn) else "json_extract(result, '$.by')"
        results = rows(conn, f"SELECT worker_id, {by} FROM workers")
        owner_of = {w: owner for owner, done, _ in reports for w in done}
        assert len(results) == TASKS and all(owner_of[w] == who for w, who in results), (
            "a result was written by an executor that did not hold the task"
        )
    finally:
        conn.close()


def _victim(url: str, claimed: Any) -> None:
    conn = agentstate.connect(url)
    claim = TaskManager(conn).claim("victim", lease_seconds=1.0)
    claimed.put(None if claim is None else claim.worker_id)
    signal.pause()  # "working" until killed


@pytest.mark.slow
def test_sigkilled_executor_task_is_reclaimed_after_its_lease(db_url: str) -> None:
    conn = agentstate.connect(db_url)
    try:
        Agents(conn).create_planner("p")
        task = TaskManager(conn, "p").create_task("survives a crash")
        ctx = multiprocessing.get_context("spawn")
        claimed = ctx.Queue()
        victim = ctx.Process(target=_victim, args=(db_url, claimed))
        victim.start()
        assert claimed.get(timeout=60) == task.worker_id
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=30)
        assert victim.exitcode == -signal.SIGKILL

        survivor = TaskManager(conn)
        assert survivor.claim("survivor") is None, "the lease has not expired yet: nobody may take the task"
        deadline = 100
        claim = None
        while claim is None and deadline:
            multiprocessing.Event().wait(0.05)
            claim = survivor.claim("survivor")
            deadline -= 1
        assert claim is not None and claim.worker_id == task.worker_id and claim.token == 2
        survivor.complete(claim, result="finished after the crash")
        steps = [(e.to_status, e.actor, e.fence) for e in survivor.history(task.worker_id)]
        assert steps == [
            ("pending", "p", 0),
            ("claimed", "victim", 1),
            ("claimed", "survivor", 2),
            ("completed", "survivor", 2),
        ]
        if not is_postgres(conn):
            assert scalar(conn, "PRAGMA integrity_check") == "ok"
    finally:
        conn.close()
