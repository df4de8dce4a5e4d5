"""Tasks: the planner's TaskManager, atomic claiming with leases, and fencing tokens.

A task is one row of ``workers``. Its life::

    pending --claim--> claimed --complete--> completed --record--> recorded
       ^                 |  |                                    ^
       |                 |  +--fail_validation--> failed_validation --+
       |                 |                          |
       +----release------+                          | retry (attempts < max_attempts)
       +--------------------------------------------+

A claim is a lease: the owner must ``heartbeat`` before ``lease_expires_at`` or another executor's
``claim`` takes the task over (no sweeper needed). Each claim uses one of the task's
``max_attempts`` (a ``release`` gives it back); a task whose lease expires on its last attempt is
not handed out again but fails validation, with the reason as its result (a poison task cannot
kill executors forever). Each claim increments the task's ``fence``;
the claim carries it as a token, and every later step by that owner must present it, so an
executor that lost its lease cannot overwrite the new owner's work (:class:`StaleTokenError`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from inspect import signature
from typing import Any, Final, Literal, NoReturn, TypeVar, cast

from agentstate import engine, errors
from agentstate.async_calls import inline_write, run_async, settled
from agentstate.calls import claims, reads, writes
from agentstate.engines import AsyncConnection, Connection, require_connection
from agentstate.rows import Builder
from agentstate.runner import has, run, run_each
from agentstate.transactions import write
from agentstate.values import (
    from_json,
    iterable,
    new_id,
    optional_str,
    require_age,
    require_int,
    require_seconds,
    require_str,
    text,
    to_json,
    utc_after,
    utc_now,
)

logger = logging.getLogger("agentstate")

TaskStatus = Literal["pending", "claimed", "completed", "failed_validation", "recorded"]
STATUSES: Final = ("pending", "claimed", "completed", "failed_validation", "recorded")
DEFAULT_LEASE_SECONDS: Final = 60.0
DEFAULT_MAX_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class Task:
    """One task (a row of ``workers``), JSON columns decoded."""

    worker_id: str
    planner_id: str
    task_status: TaskStatus
    description: str
    acceptance_criteria: Any
    task_context: Any
    input_images: Any
    metadata: Any
    result: Any
    attempts: int
    max_attempts: int
    fence: int
    lease_owner: str | None
    lease_expires_at: str | None
    updated_by: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Claim:
    """A task held by one owner until ``lease_expires_at``; ``token`` fences out earlier owners."""

    task: Task

    @property
    def worker_id(self) -> str:
        return self.task.worker_id

    @property
    def token(self) -> int:
        return self.task.fence

    @property
    def owner(self) -> str:
        if self.task.lease_owner is None:
            raise errors.InvalidValueError(f"task {self.task.worker_id!r} of this Claim holds no lease")
        return self.task.lease_owner

    @property
    def lease_expires_at(self) -> str:
        if self.task.lease_expires_at is None:
            raise errors.InvalidValueError(f"task {self.task.worker_id!r} of this Claim holds no lease")
        return self.task.lease_expires_at


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One transition of a task, written in the same transaction as the transition."""

    event_id: int
    worker_id: str
    from_status: TaskStatus | None
    to_status: TaskStatus
    fence: int
    actor: str | None
    detail: Any
    at: str


_build_task = Builder(Task)


def _task(row: Any) -> Task:
    (wid, pid, status, desc, criteria, context, images, meta, result, *rest) = row
    return _build_task(
        wid, pid, status, desc, from_json(criteria), from_json(context), from_json(images), from_json(meta),
        from_json(result), *rest,
    )  # fmt: skip


def _one(conn: Connection, name: str, params: dict[str, Any]) -> Task | None:
    """A named query's one row as a Task (None if there is none)."""
    row = run(conn, name, params)
    return None if row is None else _task(row)


def _claimant(owner: object, lease_seconds: object) -> tuple[str, float]:
    """Check a claim's arguments before any transaction starts."""
    return require_str("owner", owner), require_seconds("lease_seconds", lease_seconds)


def _held(claim_or_id: Claim | str, token: int | None, actor: str | None) -> tuple[str, int, str | None]:
    """The task id, fencing token and owner of a step on a claimed task, checked before any
    transaction: from a Claim (its owner acts), or from a worker_id and token (``actor`` acts)."""
    if isinstance(claim_or_id, Claim):
        task = claim_or_id.task
        if not isinstance(task, Task):
            raise errors.InvalidTypeError(f"a Claim wraps the Task that claim() returned, not {type(task).__name__}")
        worker_id = require_str("claim.worker_id", task.worker_id)
        token = require_int("claim.token", task.fence) if token is None else require_int("token", token)
        return worker_id, token, optional_str("claim.owner", task.lease_owner) or actor
    worker_id = require_str("worker_id", claim_or_id)
    if token is None:
        raise errors.InvalidTypeError("token is required when a worker_id is given instead of a Claim")
    return worker_id, require_int("token", token), actor


def _task_spec(spec: object) -> dict[str, Any]:
    """Check one ``create_tasks`` spec: a dict whose keys are ``create_task``'s arguments."""
    if not isinstance(spec, dict):
        raise errors.InvalidTypeError(f"each task spec must be a dict of create_task's arguments, not {type(spec).__name__}")
    unknown = [key for key in spec if key not in _TASK_FIELDS]
    if unknown:
        raise errors.InvalidValueError(
            f"unknown task field {unknown[0]!r:.80}; a spec takes {', '.join(_TASK_FIELDS)}"
        )
    return spec


class TaskManager:
    """Create, find and move the tasks of one planner (or, with ``planner_id=None``, claim any).

    Every method is one short transaction; none leaves one open. Share the connection only
    within one thread (see docs/concurrency.md).
    """

    SWEEP_INTERVAL_S: float = 1.0
    """How often claims fail tasks whose lease ran out on their last attempt (see ``claim``)."""

    def __init__(self, conn: Connection, planner_id: str | None = None, *, actor: str | None = None) -> None:
        """:param actor: who is acting, recorded on task events (default: the planner id)."""
        self._engine = require_connection(conn, "TaskManager")
        self.conn = conn
        self.planner_id = optional_str("planner_id", planner_id)
        self.actor = optional_str("actor", actor) or self.planner_id
        self._next_sweep = 0.0  # the first claim fails poison tasks (see _claim_row)
        scope = "any" if self.planner_id is None else "for_planner"  # which planners' tasks it claims
        self._claim, self._expire = f"tasks.claim_{scope}", f"tasks.expire_exhausted_{scope}"
        fused = f"tasks.finish_and_claim_{scope}"
        self._fused = fused if has(conn, fused) else None  # complete_and_claim_next in one statement
        self._engine.protect(self)

    # --- the planner's side ----------------------------------------------------------------

    def _planner(self) -> str:
        if self.planner_id is None:
            raise errors.InvalidValueError(
                "this TaskManager has no planner_id; pass one to TaskManager(conn, planner_id)"
            )
        return self.planner_id

    @writes()
    def create_task(
        self,
        description: str = "",
        *,
        acceptance_criteria: Any = None,
        task_context: Any = None,
        input_images: Any = None,
        metadata: Any = None,
        worker_id: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Task:
        """Add a pending task for this planner. ``worker_id`` defaults to a new time-ordered id.

        :raises NotFoundError: the planner does not exist.
        :raises DuplicateError: a task with this worker_id exists.
        :raises InvalidValueError: a JSON argument cannot be encoded as JSON.
        """
        return self.create_tasks(
            [
                dict(
                    description=description,
                    acceptance_criteria=acceptance_criteria,
                    task_context=task_context,
                    input_images=input_images,
                    metadata=metadata,
                    worker_id=worker_id,
                    max_attempts=max_attempts,
                )
            ]
        )[0]

    @writes()
    def create_tasks(self, specs: Iterable[dict[str, Any]]) -> list[Task]:
        """Add several tasks in one transaction: all of them, or (on any error) none.

        Each spec is a dict of the keyword arguments of :meth:`create_task`.

        :raises InvalidValueError: a spec names a field that does not exist.
        """
        planner_id = self._planner()
        rows = [self._new_task_params(planner_id, _task_spec(spec)) for spec in iterable("specs", specs)]
        created: list[Task] = []
        try:
            with write(self.conn):
                now = utc_now()  # under the lock, so creation times follow commit order
                for params in rows:
                    params["now"] = now
                # One executemany: on PostgreSQL the statements go out pipelined, not a round trip each.
                created = [_task(row) for row in run_each(self.conn, "tasks.create", rows)]
        except errors.ForeignKeyError as exc:
            raise errors.NotFoundError("planner", planner_id) from exc
        except errors.DuplicateError as exc:
            raise errors.DuplicateError(f"a task with one of these worker_ids already exists: {exc}") from exc
        return created

    def _new_task_params(self, planner_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self._encode_task(planner_id, **spec)

    def _encode_task(
        self,
        planner_id: str,
        description: str = "",
        acceptance_criteria: Any = None,
        task_context: Any = None,
        input_images: Any = None,
        metadata: Any = None,
        worker_id: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> dict[str, Any]:
        if not isinstance(description, str):
            raise errors.InvalidTypeError(f"description must be a str, not {type(description).__name__}")
        return {
            "description": text("description", description),
            "worker_id": new_id() if worker_id is None else require_str("worker_id", worker_id),
            "planner_id": planner_id,
            "acceptance_criteria": to_json(
                "acceptance_criteria", [] if acceptance_criteria is None else acceptance_criteria
            ),
            "task_context": to_json("task_context", {} if task_context is None else task_context),
            "input_images": to_json("input_images", [] if input_images is None else input_images),
            "metadata": to_json("metadata", {} if metadata is None else metadata),
            "max_attempts": require_int("max_attempts", max_attempts, minimum=1),
            "actor": self.actor,
        }

    @reads
    def get_task(self, worker_id: str) -> Task:
        """One task by id. :raises NotFoundError: no such task."""
        task = _one(self.conn, "tasks.get", {"worker_id": require_str("worker_id", worker_id)})
        if task is None:
            raise errors.NotFoundError("task", worker_id)
        return task

    @reads
    def get_current_task(self) -> Task | None:
        """The planner's oldest pending task, or None when nothing waits."""
        return _one(self.conn, "tasks.current_task", {"planner_id": self._planner()})

    @reads
    def get_completed_task(self) -> Task | None:
        """The planner's oldest finished task (``completed`` or ``failed_validation``) not yet recorded."""
        return _one(self.conn, "tasks.completed_task", {"planner_id": self._planner()})

    @reads
    def list_tasks(self, status: TaskStatus, *, after: Task | None = None, limit: int = 100) -> list[Task]:
        """One page of the planner's tasks in ``status``, oldest first.

        Pass the last task of a page as ``after`` to get the next page (keyset paging: stable
        while tasks are added, and as fast on page 1000 as on page 1).
        """
        if status not in STATUSES:
            raise errors.InvalidValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        if after is not None and not isinstance(after, Task):
            raise errors.InvalidTypeError(f"after must be a Task from the previous page, not {type(after).__name__}")
        params = {
            "planner_id": self._planner(),
            "status": status,
            # a hand-made row's fields reach the SQL: SQLite compares anything, PostgreSQL refuses
            "after_created_at": require_str("after.created_at", after.created_at) if after else "",
            "after_worker_id": require_str("after.worker_id", after.worker_id) if after else "",
            "limit": require_int("limit", limit, minimum=1),
        }
        return [_task(row) for row in run(self.conn, "tasks.list_by_status", params)]

    @reads
    def counts(self) -> dict[str, int]:
        """The number of the planner's tasks in each status (every status present, zeros included)."""
        found: dict[str, int] = dict(run(self.conn, "tasks.counts", {"planner_id": self._planner()}))
        return {status: found.get(status, 0) for status in STATUSES}

    @reads
    def history(self, worker_id: str) -> list[TaskEvent]:
        """Every transition of a task, oldest first. :raises NotFoundError: no such task."""
        rows = run(self.conn, "tasks.history", {"worker_id": require_str("worker_id", worker_id)})
        if not rows:
            raise errors.NotFoundError("task", worker_id)
        return [TaskEvent(e, w, f, t, fence, a, from_json(d), at) for (e, w, f, t, fence, a, d, at) in rows]

    @writes()
    def retry(self, worker_id: str) -> Task:
        """Send a task that failed validation back to pending.

        :raises RetryLimitError: it already used ``max_attempts`` attempts.
        :raises InvalidTransitionError: it is not ``failed_validation``.
        """
        params = {"worker_id": require_str("worker_id", worker_id), "actor": self.actor}
        with write(self.conn):
            params["now"] = utc_now()
            task = _one(self.conn, "tasks.retry", params)
            if task is None:
                self._refuse(worker_id, "retry", ("failed_validation",))
        return task

    @writes()
    def record(self, worker_id: str) -> Task:
        """Mark a finished task recorded: the planner has taken its outcome into account.

        :raises InvalidTransitionError: it is not ``completed`` or ``failed_validation``.
        """
        params = {"worker_id": require_str("worker_id", worker_id), "actor": self.actor}
        with write(self.conn):
            params["now"] = utc_now()
            task = _one(self.conn, "tasks.record", params)
            if task is None:
                self._refuse(worker_id, "record", ("completed", "failed_validation"))
        return task

    @writes(several=True)
    def purge_recorded(self, *, older_than_seconds: float, batch_size: int = 1000) -> int:
        """Retention: delete this planner's tasks recorded more than ``older_than_seconds`` ago
        (every planner's, on a TaskManager without a planner_id), with their events and worker
        messages, in short transactions of ``batch_size``; then hand the freed pages back to the
        file system. Returns how many tasks went. ``older_than_seconds=0``: every recorded task."""
        params: dict[str, Any] = {
            "before": utc_after(-require_age("older_than_seconds", older_than_seconds)),
            "limit": require_int("batch_size", batch_size, minimum=1),
        }
        query = "tasks.purge_recorded_any"
        if self.planner_id is not None:
            query, params["planner_id"] = "tasks.purge_recorded_for_planner", self.planner_id
        total = 0
        while True:
            with write(self.conn):
                deleted = len(run(self.conn, query, params))
            total += deleted
            if deleted < batch_size:
                break
            engine.yield_lock()
        if total:
            self._engine.give_back_free_pages(self.conn)
        return total

    # --- the executor's side ---------------------------------------------------------------

    @claims(repeat="always")
    def claim(self, owner: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Claim | None:
        """Take the next task for ``owner``: a task whose lease expired, else the oldest pending
        one (of this planner, or of any planner when ``planner_id`` is None). One statement, so
        two executors never get the same task. Returns None when there is nothing to do."""
        owner, lease_seconds = _claimant(owner, lease_seconds)
        with write(self.conn):
            row = self._claim_row(owner, lease_seconds)
        return None if row is None else Claim(_task(row))  # decoded after the lock is let go

    @claims(repeat="always")
    def claim_many(self, owner: str, limit: int, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> list[Claim]:
        """Claim up to ``limit`` tasks in one transaction, in the order :meth:`claim` would hand
        them out. For executors of many small tasks: one commit serves the whole batch."""
        limit = require_int("limit", limit, minimum=1)
        owner, lease_seconds = _claimant(owner, lease_seconds)
        rows: list[Any] = []
        with write(self.conn):
            while len(rows) < limit and (row := self._claim_row(owner, lease_seconds)) is not None:
                rows.append(row)
        return [Claim(_task(row)) for row in rows]

    @writes()
    def complete_many(self, results: Iterable[tuple[Claim, Any]]) -> list[Task]:
        """Complete several claimed tasks, each with its result, in one transaction: all of
        them, or (if any token is stale) none."""
        steps = []
        for pair in iterable("results", results):
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], Claim)):
                raise errors.InvalidTypeError(f"complete_many takes (Claim, result) pairs, not {pair!r:.80}")
            worker_id, token, owner = _held(pair[0], None, self.actor)
            steps.append({**self._finish_params(worker_id, token, "completed", pair[1]), "actor": owner})
        with write(self.conn):
            now = utc_now()
            for params in steps:
                params["now"] = now
            # One executemany (pipelined on PostgreSQL); a step whose token no longer holds its task
            # returns no row: the first such step is refused, and the whole batch rolls back.
            rows = iter(run_each(self.conn, "tasks.finish", steps))
            done, row = [], next(rows, None)
            for params in steps:
                if row is None or row[0] != params["worker_id"]:
                    self._refuse(params["worker_id"], "complete", ("claimed",), params["token"])
                done.append(_task(row))
                row = next(rows, None)
        return done

    def _claim_row(self, owner: str, lease_seconds: float) -> Any:
        """Inside the write transaction: claim one task and return its row (None if none is due).
        Times are stamped here, under the lock, so leases follow commit order.

        A task whose lease ran out on its last attempt is never handed out (the claim skips it);
        the sweep that fails it, with the reason, runs at most once per ``SWEEP_INTERVAL_S`` per
        manager, and whenever a claim finds nothing else to do: every claim paying for it cost
        9% of the claim rate."""
        params = self._claim_params({}, owner, lease_seconds)
        if time.monotonic() >= self._next_sweep:
            self._sweep(params)
            return run(self.conn, self._claim, params)
        row = run(self.conn, self._claim, params)
        if row is None:
            self._sweep(params)
        return row

    def _claim_params(self, params: dict[str, Any], owner: str, lease_seconds: float) -> dict[str, Any]:
        """``params`` plus what a claim binds. PostgreSQL stamps leases from the server's clock
        (lease_seconds); SQLite from ours (now, lease_expires_at)."""
        params.update(owner=owner, now=utc_now(), lease_expires_at=utc_after(lease_seconds), lease_seconds=lease_seconds)
        if self.planner_id is not None:
            params["planner_id"] = self.planner_id
        return params

    def _sweep(self, params: dict[str, Any]) -> None:
        run(self.conn, self._expire, params)
        self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_S

    @writes(repeat="always")
    def heartbeat(
        self, claim: Claim | str, token: int | None = None, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Claim:
        """Extend a lease to ``lease_seconds`` from now. A lease that expired but was not yet
        taken over is still yours.

        :raises StaleTokenError: another owner claimed the task since.
        """
        worker_id, token, _ = _held(claim, token, self.actor)
        lease_seconds = require_seconds("lease_seconds", lease_seconds)
        params: dict[str, Any] = {"worker_id": worker_id, "token": token, "lease_seconds": lease_seconds}
        with write(self.conn):
            # Under the lock: a lease runs from when it is granted, not from when the call began.
            params["now"], params["lease_expires_at"] = utc_now(), utc_after(lease_seconds)
            task = _one(self.conn, "tasks.heartbeat", params)
            if task is None:
                self._refuse(worker_id, "heartbeat", ("claimed",), token)
        return Claim(task)

    @writes()
    def complete(self, claim: Claim | str, token: int | None = None, *, result: Any = None) -> Task:
        """Finish a claimed task successfully, storing ``result`` (any JSON value).

        :raises StaleTokenError: the lease was lost to another owner; nothing is written.
        """
        return self._finish(claim, token, "completed", result, "complete")

    @writes()
    def fail_validation(self, claim: Claim | str, token: int | None = None, *, reason: Any = None) -> Task:
        """Finish a claimed task whose output failed its acceptance criteria; ``reason`` is kept
        (in ``result`` and in the task's history) for the planner to read."""
        return self._finish(claim, token, "failed_validation", reason, "fail_validation")

    @writes()
    def release(self, claim: Claim | str, token: int | None = None) -> Task:
        """Give a claimed task back, unfinished, to pending (e.g. on a clean shutdown)."""
        return self._finish(claim, token, "pending", None, "release")

    @claims()
    def complete_and_claim_next(
        self,
        claim: Claim | str,
        token: int | None = None,
        *,
        result: Any = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> Claim | None:
        """Complete one task and claim the next in a single transaction: one round trip per task."""
        worker_id, token, owner = _held(claim, token, self.actor)
        if owner is None:
            raise errors.InvalidValueError(
                "complete_and_claim_next needs to know who claims the next task: pass the Claim itself "
                "(it carries its owner), or create the TaskManager with actor='executor-name'"
            )
        owner, lease_seconds = _claimant(owner, lease_seconds)
        params = {**self._finish_params(worker_id, token, "completed", result), "actor": owner}
        if self._fused is not None:
            return self._finish_and_claim(params, owner, lease_seconds)
        with write(self.conn):
            params["now"] = utc_now()
            if run(self.conn, "tasks.finish", params) is None:  # no need to decode it
                self._refuse(worker_id, "complete", ("claimed",), token)
            row = self._claim_row(owner, lease_seconds)
        return None if row is None else Claim(_task(row))

    def _finish_and_claim(self, params: dict[str, Any], owner: str, lease_seconds: float) -> Claim | None:
        """complete_and_claim_next as one statement, where the engine has it (PostgreSQL: one round
        trip instead of four). The lease sweep runs as in :meth:`_claim_row`, as its own statement."""
        assert self._fused is not None
        self._claim_params(params, owner, lease_seconds)
        if time.monotonic() >= self._next_sweep:
            self._sweep(params)
        row = run(self.conn, self._fused, params)
        if not row[0]:  # the token no longer holds the task: nothing was written
            self._refuse(params["worker_id"], "complete", ("claimed",), params["token"])
        if row[1] is None:
            self._sweep(params)
            return None
        return Claim(_task(row[1:]))

    def _finish_params(self, worker_id: str, token: int, to_status: str, result: Any) -> dict[str, Any]:
        return {
            "worker_id": worker_id,
            "token": token,
            "to_status": to_status,
            "result": None if result is None else to_json("result", result),
            "actor": self.actor,
        }

    def _finish(self, claim: Claim | str, token: int | None, to_status: str, result: Any, action: str) -> Task:
        worker_id, token, owner = _held(claim, token, self.actor)
        params = self._finish_params(worker_id, token, to_status, result)
        params["actor"] = owner  # the executor that held it did this step
        with write(self.conn):
            params["now"] = utc_now()
            task = _one(self.conn, "tasks.finish", params)
            if task is None:
                self._refuse(worker_id, action, ("claimed",), token)
        return task

    def _refuse(self, worker_id: str, action: str, allowed: tuple[str, ...], token: int | None = None) -> NoReturn:
        """Explain why a compare-and-set matched no row; called inside its transaction."""
        task = _one(self.conn, "tasks.get", {"worker_id": worker_id})
        if task is None:
            raise errors.NotFoundError("task", worker_id)
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


ClaimResult = TypeVar("ClaimResult")


async def claim_call(
    manager: TaskManager,
    conn: AsyncConnection,
    call: Callable[..., ClaimResult],
    inline: Callable[..., ClaimResult] | None,
    /,
    *args: Any,
    **kwargs: Any,
) -> ClaimResult:
    """A claim for the Async classes: inline when the lock is free at once (see
    :func:`~agentstate.async_calls.write_call`; nothing to release, it cannot be cancelled half-way), else
    :func:`claim_async`."""
    done, result = inline_write(conn, inline, args, kwargs)
    if done:
        return cast(ClaimResult, result)
    return await claim_async(manager, conn, call, *args, **kwargs)


async def claim_async(
    manager: TaskManager, conn: AsyncConnection, call: Callable[..., ClaimResult], /, *args: Any, **kwargs: Any
) -> ClaimResult:
    """:func:`~agentstate.async_calls.call_async` for the calls that claim (``claim``, ``claim_many``,
    ``complete_and_claim_next``): when the caller is cancelled, the claims the call made are
    released before ``CancelledError`` is raised, so no task waits out a lease nobody holds."""
    result, cancelled = await settled(run_async(conn, call, *args, **kwargs))
    if cancelled:
        claims: list[Any] = result if isinstance(result, list) else [] if result is None else [result]
        for claim in claims:  # each on its own: one that fails must not keep the others held
            try:
                await settled(run_async(conn, manager.release, claim))
            except (Exception, asyncio.CancelledError):
                logger.warning("agentstate: releasing %s after a cancelled claim failed", claim.worker_id, exc_info=True)
        raise asyncio.CancelledError
    return result



# What a create_tasks spec may hold: create_task's keyword arguments, read off the one signature.
_TASK_FIELDS = tuple(signature(TaskManager._encode_task).parameters)[2:]


