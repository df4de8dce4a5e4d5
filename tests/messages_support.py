"""Helpers the message, stream and agent tests share on both engines: a snapshot of every row (to
prove a failed call changed nothing), owners of message streams made by hand, hypothesis settings
that run fewer examples on PostgreSQL (each one costs round trips to a server), and a bounded run
of a function in several spawned processes."""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, settings

from agentstate.agents import Agents
from agentstate.messages import Stream
from agentstate.values import new_id
from tests import dbdump
from tests.engines import is_postgres, rows

# PostgreSQL runs this share of a hypothesis test's SQLite examples (at least POSTGRES_MIN).
POSTGRES_SHARE = 4
POSTGRES_MIN = 10


def dump(conn: Any) -> dict[str, list[Any]]:
    """Every row of every table, comparable: a failed call must leave it unchanged."""
    if not is_postgres(conn):
        return dbdump.dump(conn)
    tables = [
        row[0]
        for row in rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    ]
    assert tables, "no tables found: the PostgreSQL snapshot would prove nothing"
    return {t: sorted(rows(conn, f'SELECT * FROM "{t}"'), key=repr) for t in tables}


def make_owner(conn: Any, stream: Stream, stream_id: str | None = None) -> str:
    """Create the conversation, planner or worker (task) that owns a stream; the worker row is
    inserted by hand, as a task a planner made elsewhere."""
    stream_id = stream_id or new_id()
    agents = Agents(conn)
    if stream == "router":
        agents.create_conversation(stream_id)
    elif stream == "planner":
        agents.create_planner(stream_id)
    else:
        planner = agents.create_planner().planner_id
        rows(conn, "INSERT INTO workers (worker_id, planner_id) VALUES (?, ?)", (stream_id, planner))
    return stream_id


def examples(conn: Any, sqlite_examples: int, **kwargs: Any) -> settings:
    """Hypothesis settings for a test on ``conn``'s engine: all ``sqlite_examples`` on SQLite, a
    share of them on PostgreSQL."""
    count = sqlite_examples if not is_postgres(conn) else max(POSTGRES_MIN, sqlite_examples // POSTGRES_SHARE)
    return settings(
        max_examples=count, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], **kwargs
    )


SPAWN = multiprocessing.get_context("spawn")
START_TIMEOUT_S = 60.0  # how long a child waits at the start barrier for the others


def _child(index: int, target: Callable[..., Any], args: tuple[Any, ...], out: Any) -> None:
    try:
        out.put((index, "ok", target(*args)))
    except BaseException:
        out.put((index, "error", traceback.format_exc()))


def run_in_processes(
    target: Callable[..., Any], arguments: Sequence[tuple[Any, ...]], timeout_s: float = 120.0
) -> list[Any]:
    """Run ``target(*args)`` in one spawned process per entry of ``arguments`` and return what
    each returned, in the same order. A child that raises fails the test with its traceback; one
    that does not finish within ``timeout_s`` fails it too, and is killed (none is left behind).
    ``target`` must be importable (a module-level function); pass it a :data:`SPAWN` barrier to
    start the children at the same moment (``barrier.wait(START_TIMEOUT_S)``)."""
    out = SPAWN.Queue()
    processes = [SPAWN.Process(target=_child, args=(n, target, args, out)) for n, args in enumerate(arguments)]
    deadline = time.monotonic() + timeout_s
    results: dict[int, Any] = {}
    failures: list[str] = []
    try:
        for process in processes:
            process.start()
        for _ in processes:
            try:
                index, status, value = out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                waiting = len(processes) - len(results) - len(failures)
                failures.append(f"{waiting} process(es) did not finish within {timeout_s} s")
                break
            if status == "ok":
                results[index] = value
            else:
                failures.append(f"process {index}:\n{value}")
        for process in processes:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)
        out.close()
    assert not failures, "\n".join(failures)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return [results[n] for n in range(len(processes))]
