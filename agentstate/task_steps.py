"""One step on a task's row, inside the caller's write transaction: read a task by a named
query, finish a claimed task by compare-and-set on its fencing token, and explain why such a
step matched no row (the task is gone, the token is stale, or the status does not allow it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from agentstate import engine, errors
from agentstate.engines import Connection
from agentstate.runner import run, run_each
from agentstate.task_arguments import held
from agentstate.task_types import Claim, Task, finished_task, task_from_row
from agentstate.transactions import lone_write, write
from agentstate.values import iterable, require_seconds, short, to_json, utc_after, utc_now


def one_task(conn: Connection, name: str, params: dict[str, Any]) -> Task | None:
    """A named query's one row as a Task (None if there is none)."""
    row = run(conn, name, params)
    return None if row is None else task_from_row(row)


def finish_params(worker_id: str, token: int, to_status: str, result: Any, actor: str | None) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "token": token,
        "to_status": to_status,
        "result": None if result is None else to_json("result", result),
        "actor": actor,
    }


def finish(
    conn: Connection, actor: str | None, claim: Claim | str, token: int | None, to_status: str, result: Any, action: str
) -> Task:
    worker_id, token, owner = held(claim, token, actor)
    params = finish_params(worker_id, token, to_status, result, actor)
    params["actor"] = owner  # the executor that held it did this step
    with write(conn):
        params["now"] = utc_now()
        row = run(conn, "tasks.finish", params)
        if row is None:
            refuse(conn, worker_id, action, ("claimed",), token)
    return finished_task(row, claim)  # decoded after the lock is let go


def finish_many(conn: Connection, actor: str | None, results: Iterable[tuple[Claim, Any]]) -> list[Task]:
    """complete_many: every (claim, result) pair completed in one transaction, or none."""
    steps, pairs = [], []
    for pair in iterable("results", results):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], Claim)):
            raise errors.InvalidTypeError(f"complete_many takes (Claim, result) pairs, not {pair!r:.80}")
        worker_id, token, owner = held(pair[0], None, actor)
        steps.append({**finish_params(worker_id, token, "completed", pair[1], actor), "actor": owner})
        pairs.append(pair)
    with write(conn):
        now = utc_now()
        for params in steps:
            params["now"] = now
        # One executemany (pipelined on PostgreSQL); a step whose token no longer holds its task
        # returns no row: the first such step is refused, and the whole batch rolls back.
        rows = iter(run_each(conn, "tasks.finish", steps))
        done, row = [], next(rows, None)
        for params in steps:
            if row is None or row[0] != params["worker_id"]:
                refuse(conn, params["worker_id"], "complete", ("claimed",), params["token"])
            done.append(row)
            row = next(rows, None)
    return [finished_task(row, claim) for row, (claim, _) in zip(done, pairs, strict=True)]


def extend_lease(conn: Connection, actor: str | None, claim: Claim | str, token: int | None, lease_seconds: float) -> Claim:
    """heartbeat: the lease of a task still held, ``lease_seconds`` from now."""
    worker_id, token, _ = held(claim, token, actor)
    lease_seconds = require_seconds("lease_seconds", lease_seconds)
    params: dict[str, Any] = {"worker_id": worker_id, "token": token, "lease_seconds": lease_seconds}
    with lone_write(conn):
        # Under the lock: a lease runs from when it is granted, not from when the call began.
        params["now"], params["lease_expires_at"] = utc_now(), utc_after(lease_seconds)
        task = one_task(conn, "tasks.heartbeat", params)
        if task is None:
            refuse(conn, worker_id, "heartbeat", ("claimed",), token)
    return Claim(task)


def refuse(conn: Connection, worker_id: str, action: str, allowed: tuple[str, ...], token: int | None = None) -> NoReturn:
    """Explain why a compare-and-set matched no row; called inside its transaction."""
    task = one_task(conn, "tasks.get", {"worker_id": worker_id})
    if task is None:
        raise errors.NotFoundError("task", worker_id)
    if token is not None and task.task_status == "cancelled":  # an executor's step on a cancelled task
        raise errors.TaskCancelledError(
            f"cannot {action} task {worker_id!r}: its planner cancelled it "
            f"(reason: {short(task.result.get('reason') if isinstance(task.result, dict) else None)}); "
            "stop working on it: nothing was written"
        )
    if token is not None and token != task.fence:
        raise errors.StaleTokenError(
            f"cannot {action} task {worker_id!r}: token {token} is stale (the task was claimed again; "
            f"it is now {task.task_status!r} with token {task.fence}, owner {task.lease_owner!r}): "
            "your lease expired and was taken over, so stop working on it"
        )
    if task.task_status not in allowed:
        raise errors.InvalidTransitionError(worker_id, task.task_status, action, allowed)
    if action == "retry":
        raise errors.RetryLimitError(worker_id, task.attempts, task.max_attempts)
    raise AssertionError(f"{action} of {worker_id!r} matched no row for no known reason")


def delete_in_batches(conn: Connection, query: str, params: dict[str, Any]) -> int:
    """Run a deleting ``query`` (``params['limit']`` rows at most, returning one row per row it
    deleted) in write transactions of its own until it deletes fewer; how many went in all.
    Between two, waiting writers get the lock (:func:`agentstate.engine.yield_lock`)."""
    total = 0
    while True:
        with write(conn):
            deleted = len(run(conn, query, params))
        total += deleted
        if deleted < params["limit"]:
            return total
        engine.yield_lock()
