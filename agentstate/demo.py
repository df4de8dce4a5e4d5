"""The demo workload behind ``agentstate demo``: one conversation, end to end.

A router takes a user's request, hands it to a planner, the planner splits it into tasks,
an executor claims and runs them (one in four fails validation once and is retried), the
planner records the outcomes, and every step leaves messages in the streams.

The demo may run on a database that holds other work: it makes agents of its own (named with a
suffix unique to the run) and its executor claims only its own planner's tasks, so it never
claims, completes, fails or sweeps anyone else's.
"""

from __future__ import annotations

import time
from pathlib import Path

from agentstate.agents import Agents
from agentstate.engines import connect, is_url
from agentstate.messages import MessageLog
from agentstate.migrations import status
from agentstate.tasks import TaskManager
from agentstate.values import new_id, require_int


def run(path: Path | str, *, tasks: int = 20) -> None:
    """Create or open the database at ``path`` (a file, or a ``postgresql://`` URL) and run one
    conversation of ``tasks`` tasks (at least 1) through it, touching nothing it did not create.

    :raises InvalidTypeError: ``tasks`` is not an int.
    :raises InvalidValueError: ``tasks`` is less than 1.
    """
    tasks = require_int("tasks", tasks, minimum=1)
    started = time.perf_counter()
    conn = connect(path)
    try:
        shown = repr(conn) if is_url(path) else path  # a URL may hold a password
        print(f"database   {shown} (schema version {status(conn).version})")
        agents, log = Agents(conn), MessageLog(conn)
        suffix = new_id()[-8:]
        conversation = agents.create_conversation(f"conv-{suffix}", metadata={"user": "demo"})
        router = agents.create_router(f"router-{suffix}")
        planner = agents.create_planner(f"planner-{suffix}")
        agents.link(router.router_id, planner.planner_id)
        log.append("router", conversation.id, role="user", content=f"Please run {tasks} analysis steps.")
        print(f"router     {router.router_id} got a request in {conversation.id}")

        tm = TaskManager(conn, planner.planner_id)
        tm.create_tasks(
            [{"description": f"step {i}", "acceptance_criteria": ["has a result"], "task_context": {"step": i}}
             for i in range(tasks)]
        )  # fmt: skip
        log.append("planner", planner.planner_id, role="assistant", content=f"Split the request into {tasks} tasks.")
        print(f"planner    {planner.planner_id} created {tasks} tasks: {tm.counts()}")

        # The executor claims this run's planner's tasks only: the database may hold others' work.
        executor = TaskManager(conn, planner.planner_id, actor="executor-1")
        done = failed = 0
        every = max(10, tasks // 10)

        def progress() -> None:
            print(f"executor   {done} completed, {failed} failed validation and retried", flush=True)

        claim = executor.claim("executor-1", lease_seconds=30)
        while claim is not None:
            step = claim.task.task_context["step"]
            log.append("worker", claim.worker_id, role="assistant", content=f"Working on step {step}.")
            if step % 4 == 3 and claim.task.attempts == 1:
                executor.fail_validation(claim, reason={"missing": "result"})
                tm.retry(claim.worker_id)  # the planner gives it another attempt
                failed += 1
                claim = executor.claim("executor-1", lease_seconds=30)
            else:
                done += 1
                claim = executor.complete_and_claim_next(claim, result={"step": step, "value": step * step})
            if (done + failed) % every == 0:  # about ten progress lines, whatever the size
                progress()
        if (done + failed) % every:  # the last line gives the final figures
            progress()

        recorded = 0
        while (task := tm.get_completed_task()) is not None:
            tm.record(task.worker_id)
            recorded += 1
        log.append("router", conversation.id, role="assistant", content=f"All {recorded} steps are done.")
        print(f"planner    recorded {recorded} tasks: {tm.counts()}")

        history = tm.history(tm.list_tasks("recorded", limit=4)[-1].worker_id)
        print("history    " + " -> ".join(e.to_status for e in history))
        for message in log.latest("router", conversation.id, 50):
            print(f"message    #{message.position} {message.role}: {message.content}")
        inspect = "psql URL" if is_url(path) else f"sqlite3 {path} .tables"
        print(f"done in {time.perf_counter() - started:.2f}s; inspect it with: {inspect}")
    finally:
        conn.close()
