"""Planning a request's tasks, inside the caller's write transaction: creating tasks with
prerequisites and idempotency keys, and cancelling a task with every task that depends on it.

A task with ``depends_on`` stores one ``task_dependencies`` row per prerequisite and, in
``waiting_on``, how many of them have not yet reached ``completed`` or ``recorded``; a trigger
counts it down as they do (schema/*/0008, 0004), so a claim reads only ready tasks and checks
nothing row by row. Prerequisites are read with a share lock (PostgreSQL), so one cannot finish
or be cancelled between the count and the commit.
"""

from __future__ import annotations

from typing import Any

from agentstate import errors
from agentstate.engines import Connection
from agentstate.runner import run, run_each
from agentstate.task_arguments import delayed_until
from agentstate.task_steps import one_task, refuse
from agentstate.task_types import Task, task_from_row
from agentstate.values import canonical_json, short, to_json

FINISHED = ("completed", "recorded")  # a prerequisite in one of these holds nothing back
JSON_FIELDS = ("acceptance_criteria", "task_context", "input_images", "metadata")


def check_batch(rows: list[dict[str, Any]]) -> None:
    """Before any transaction: no task depends on itself, no cycle, and a prerequisite in the
    same batch comes before the tasks that need it (so the batch can be inserted in order)."""
    position = {params["worker_id"]: i for i, params in enumerate(rows)}
    for i, params in enumerate(rows):
        for dep in params["depends_on"]:
            if dep == params["worker_id"]:
                raise errors.DependencyError(f"task {dep!r} cannot depend on itself")
            if position.get(dep, -1) > i:
                cycle = _cycle(rows, position, params["worker_id"])
                if cycle:
                    raise errors.DependencyError(f"depends_on makes a cycle: {' -> '.join(map(repr, cycle))}")
                raise errors.DependencyError(
                    f"task {params['worker_id']!r} depends on {dep!r}, which comes later in the same batch: "
                    "put a prerequisite before the tasks that depend on it"
                )


def _cycle(rows: list[dict[str, Any]], position: dict[str, int], start: str) -> list[str]:
    """A path from ``start`` back to itself through the batch's prerequisites ([] if none)."""
    path: list[str] = []
    seen: set[str] = set()

    def walk(worker_id: str) -> bool:
        path.append(worker_id)
        for dep in rows[position[worker_id]]["depends_on"]:
            if dep == start:
                path.append(dep)
                return True
            if dep in position and dep not in seen:
                seen.add(dep)
                if walk(dep):
                    return True
        path.pop()
        return False

    return path if walk(start) else []


def insert_tasks(conn: Connection, planner_id: str, rows: list[dict[str, Any]], now: str) -> list[Task]:
    """Inside the write transaction: insert checked rows (:func:`check_batch`) in order and
    return each task as stored, or the one its idempotency key already names."""
    for params in rows:
        params["now"] = now
        params["available_at"] = delayed_until(params["delay_seconds"])
    if not any(params["idempotency_key"] is not None or params["depends_on"] for params in rows):
        # One executemany: on PostgreSQL the statements go out pipelined, not a round trip each.
        return [task_from_row(row) for row in run_each(conn, "tasks.create", [_bound(p) for p in rows])]
    created: list[Task] = []
    new_now: set[str] = set()
    for params in rows:
        key = params["idempotency_key"]
        stored = None if key is None else _by_key(conn, planner_id, key)
        if stored is None:
            params["waiting_on"] = _waiting_on(conn, planner_id, params, new_now)
            row = run(conn, "tasks.create", _bound(params))
            if row is not None:
                run_each(conn, "tasks.add_dependency", [
                    {"worker_id": params["worker_id"], "depends_on": dep} for dep in params["depends_on"]
                ])  # fmt: skip
                new_now.add(params["worker_id"])
                created.append(task_from_row(row))
                continue
            stored = _by_key(conn, planner_id, key)  # PostgreSQL: another transaction took the key meanwhile
            assert stored is not None
        created.append(_same_or_conflict(conn, stored, params))
    return created


def _bound(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if name not in ("depends_on", "explicit_id")}


def _by_key(conn: Connection, planner_id: str, key: str) -> Task | None:
    return one_task(conn, "tasks.by_idempotency_key", {"planner_id": planner_id, "idempotency_key": key})


def _waiting_on(conn: Connection, planner_id: str, params: dict[str, Any], new_now: set[str]) -> int:
    """How many of a new task's prerequisites are unfinished; refuses an unusable one."""
    waiting = 0
    for dep in params["depends_on"]:
        if dep in new_now:  # created earlier in this batch: not finished yet
            waiting += 1
            continue
        found = run(conn, "tasks.prerequisite", {"worker_id": dep})
        if found is None or found[0] != planner_id:
            whose = "no task" if found is None else "another planner's task"
            raise errors.DependencyError(
                f"task {params['worker_id']!r} depends on {dep!r}, which is {whose}: depends_on names "
                f"tasks of planner {planner_id!r}, created before (or earlier in the same batch)"
            )
        if found[1] == "cancelled":
            raise errors.DependencyError(f"task {params['worker_id']!r} depends on {dep!r}, which was cancelled")
        waiting += found[1] not in FINISHED
    return waiting


def _same_or_conflict(conn: Connection, stored: Task, params: dict[str, Any]) -> Task:
    """The stored task of an idempotency key, if this create asks for the same task."""
    mine = (
        params["description"], *(canonical_json(params[name]) for name in JSON_FIELDS), params["max_attempts"],
        params["priority"], sorted(params["depends_on"]),
    )  # fmt: skip
    theirs = (
        stored.description, *(canonical_json(to_json(name, getattr(stored, name))) for name in JSON_FIELDS),
        stored.max_attempts, stored.priority,
        [r[0] for r in run(conn, "tasks.dependencies_of", {"worker_id": stored.worker_id})],
    )  # fmt: skip
    if mine != theirs or (params["explicit_id"] and params["worker_id"] != stored.worker_id):
        raise errors.IdempotencyConflictError(
            f"idempotency key {short(stored.idempotency_key)} of planner {stored.planner_id!r} already names task "
            f"{stored.worker_id!r}, with a different description, JSON fields, max_attempts, priority, depends_on "
            "or worker_id; a new task needs a new key"
        )
    return stored


def cancel_tree(conn: Connection, params: dict[str, Any]) -> list[Task]:
    """Inside the write transaction: cancel ``params['worker_id']`` (pending or claimed, of the
    planner) and then, level by level, every pending task that depends on a cancelled one.
    Returns them all, the named task first; raises if the named task cannot be cancelled."""
    first = one_task(conn, "tasks.cancel", params)
    if first is None:
        task = one_task(conn, "tasks.get", {"worker_id": params["worker_id"]})
        if task is None or task.planner_id != params["planner_id"]:
            raise errors.NotFoundError("task", params["worker_id"])
        refuse(conn, params["worker_id"], "cancel", ("pending", "claimed"))
    cancelled, level = [first], [first.worker_id]
    while level:
        rows = run(conn, "tasks.cancel_dependants", {**params, "ids": to_json("ids", level)})
        found = [task_from_row(row) for row in rows]
        cancelled.extend(found)
        level = [task.worker_id for task in found]
    return cancelled
