"""Tasks: the planner's TaskManager, atomic claiming with leases, and fencing tokens.

A task is one row of ``workers``. Its life::

    pending --claim--> claimed --complete--> completed --record--> recorded
       ^                 |  |                                    ^  ^
       |                 |  +--fail_validation--> failed_validation --+  |
       +----release------+                          | retry              | record
       +--------------------------------------------+                    |
    pending or claimed --cancel (and every dependant)--> cancelled ------+

A claim takes a *ready* task: pending, not delayed, its prerequisites all completed or recorded;
higher ``priority`` first, then the oldest (see docs/tasks.md).

A claim is a lease: the owner must ``heartbeat`` before ``lease_expires_at`` or another executor's
``claim`` takes the task over (no sweeper needed). Each claim uses one of the task's
``max_attempts`` (a ``release`` gives it back); a task whose lease expires on its last attempt is
not handed out again but fails validation, with the reason as its result (a poison task cannot
kill executors forever). Each claim increments the task's ``fence``;
the claim carries it as a token, and every later step by that owner must present it, so an
executor that lost its lease cannot overwrite the new owner's work (:class:`StaleTokenError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentstate import errors
from agentstate.calls import claims, reads, reads_all, waits, writes
from agentstate.engines import Connection, require_connection
from agentstate.runner import run
from agentstate.task_arguments import claimant, delayed_until, encode_task, held, task_spec
from agentstate.task_async_claims import claim_async, claim_call, wait_call
from agentstate.task_claiming import Claiming
from agentstate.task_planning import cancel_tree, check_batch, insert_tasks
from agentstate.task_steps import delete_in_batches, extend_lease, finish, finish_many, one_task, refuse
from agentstate.task_types import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    STATUSES,
    BlockedTask,
    Claim,
    Task,
    TaskEvent,
    TaskStatus,
    blocked_from_rows,
    events_from_rows,
    task_from_row,
)
from agentstate.task_waiting import waiting
from agentstate.transactions import write
from agentstate.values import iterable, optional_str, require_age, require_int, require_str, to_json, utc_after, utc_now


class TaskManager(Claiming):
    """Create, find and move the tasks of one planner (or, with ``planner_id=None``, claim any).

    Every method is one short transaction; none leaves one open. Share the connection only
    within one thread (see docs/concurrency.md).
    """

    def __init__(
        self,
        conn: Connection,
        planner_id: str | None = None,
        *,
        actor: str | None = None,
        lease_backoff_seconds: float = 0,
    ) -> None:
        """:param actor: who is acting, recorded on task events (default: the planner id).
        :param lease_backoff_seconds: how long after its lease expired (its executor crashed)
            this manager's claims leave a task alone before taking it over."""
        self._engine = require_connection(conn, "TaskManager")
        self.conn = conn
        self.planner_id = optional_str("planner_id", planner_id)
        self.actor = optional_str("actor", actor) or self.planner_id
        self.lease_backoff_seconds = require_age("lease_backoff_seconds", lease_backoff_seconds)
        self._start_claiming(conn)
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
        priority: int = 0,
        delay_seconds: float = 0,
        depends_on: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> Task:
        """Add a pending task for this planner. ``worker_id`` defaults to a new time-ordered id.

        :param priority: claimed before every ready task of a lower one (any 64-bit int).
        :param delay_seconds: not claimable before this many seconds from now.
        :param depends_on: worker ids of this planner's tasks that must each reach ``completed``
            or ``recorded`` before this one is claimable.
        :param idempotency_key: a second create with the same key returns the first task.
        :raises NotFoundError: the planner does not exist.
        :raises DuplicateError: a task with this worker_id exists.
        :raises DependencyError: ``depends_on`` names no task of this planner, the task itself, or
            a cancelled task.
        :raises IdempotencyConflictError: the key names a task with other fields.
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
                    priority=priority,
                    delay_seconds=delay_seconds,
                    depends_on=depends_on,
                    idempotency_key=idempotency_key,
                )
            ]
        )[0]

    @writes()
    def create_tasks(self, specs: Iterable[dict[str, Any]]) -> list[Task]:
        """Add several tasks in one transaction: all of them, or (on any error) none.

        Each spec is a dict of the keyword arguments of :meth:`create_task`; a ``depends_on``
        may name a task earlier in the same batch.

        :raises InvalidValueError: a spec names a field that does not exist.
        :raises DependencyError: a ``depends_on`` names a task later in the batch, or makes a cycle.
        """
        planner_id = self._planner()
        rows = [encode_task(self.actor, planner_id, task_spec(spec)) for spec in iterable("specs", specs)]
        check_batch(rows)
        created: list[Task] = []
        try:
            with write(self.conn):
                # now: under the lock, so creation times follow commit order
                created = insert_tasks(self.conn, planner_id, rows, utc_now())
        except errors.ForeignKeyError as exc:
            raise errors.NotFoundError("planner", planner_id) from exc
        except errors.DuplicateError as exc:
            raise errors.DuplicateError(f"a task with one of these worker_ids already exists: {exc}") from exc
        return created

    @reads
    def get_task(self, worker_id: str) -> Task:
        """One task by id. :raises NotFoundError: no such task."""
        task = one_task(self.conn, "tasks.get", {"worker_id": require_str("worker_id", worker_id)})
        if task is None:
            raise errors.NotFoundError("task", worker_id)
        return task

    @reads
    def get_current_task(self) -> Task | None:
        """The planner's oldest pending task, or None when nothing waits."""
        return one_task(self.conn, "tasks.current_task", {"planner_id": self._planner()})

    @reads
    def get_completed_task(self) -> Task | None:
        """The planner's oldest finished task (``completed`` or ``failed_validation``) not yet recorded."""
        return one_task(self.conn, "tasks.completed_task", {"planner_id": self._planner()})

    @waits("get_completed_task")
    def wait_completed(self, timeout_seconds: float) -> Task | None:
        """:meth:`get_completed_task`, waiting up to ``timeout_seconds`` for a task to finish
        (as ``claim(wait_seconds=...)`` waits for work): None if none did in that time."""
        timeout_seconds = require_age("timeout_seconds", timeout_seconds)
        found = self.get_completed_task()
        if found is None and timeout_seconds:
            found = waiting(self._open_bell, None, self.get_completed_task, timeout_seconds)
        return found

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
        return [task_from_row(row) for row in run(self.conn, "tasks.list_by_status", params)]

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
        return events_from_rows(rows)

    @writes()
    def retry(self, worker_id: str, *, delay_seconds: float = 0) -> Task:
        """Send a task that failed validation back to pending, claimable in ``delay_seconds``.

        :raises RetryLimitError: it already used ``max_attempts`` attempts.
        :raises InvalidTransitionError: it is not ``failed_validation``.
        """
        params: dict[str, Any] = {"worker_id": require_str("worker_id", worker_id), "actor": self.actor}
        params["delay_seconds"] = require_age("delay_seconds", delay_seconds)
        with write(self.conn):
            params["now"], params["available_at"] = utc_now(), delayed_until(params["delay_seconds"])
            task = one_task(self.conn, "tasks.retry", params)
            if task is None:
                refuse(self.conn, worker_id, "retry", ("failed_validation",))
        return task

    @writes()
    def record(self, worker_id: str) -> Task:
        """Mark a finished (or cancelled) task recorded: the planner has taken its outcome into account.

        :raises InvalidTransitionError: it is not ``completed``, ``failed_validation`` or ``cancelled``.
        """
        params = {"worker_id": require_str("worker_id", worker_id), "actor": self.actor}
        with write(self.conn):
            params["now"] = utc_now()
            task = one_task(self.conn, "tasks.record", params)
            if task is None:
                refuse(self.conn, worker_id, "record", ("completed", "failed_validation", "cancelled"))
        return task

    @writes()
    def cancel(self, worker_id: str, reason: Any = None) -> list[Task]:
        """Cancel a pending or claimed task of this planner, and in the same transaction every
        task that depends on it, transitively. ``reason`` (any JSON value) is kept in their
        results and histories. Its executor's next step raises :class:`TaskCancelledError`.
        Returns the cancelled tasks, this one first.

        :raises InvalidTransitionError: it is not ``pending`` or ``claimed``.
        :raises NotFoundError: this planner has no such task.
        """
        params: dict[str, Any] = {"worker_id": require_str("worker_id", worker_id), "planner_id": self._planner()}
        params.update(reason=to_json("reason", reason), actor=self.actor)
        with write(self.conn):
            params["now"] = utc_now()
            return cancel_tree(self.conn, params)

    @writes()
    def cancel_all(self, reason: Any = None) -> int:
        """Cancel every pending or claimed task of this planner (the user gave up on the
        request); returns how many."""
        params = {"planner_id": self._planner(), "reason": to_json("reason", reason), "actor": self.actor}
        with write(self.conn):
            params["now"] = utc_now()
            count: int = run(self.conn, "tasks.cancel_all", params)
        return count

    @reads_all
    def blocked(self) -> list[BlockedTask]:
        """The planner's pending tasks that wait on prerequisites, oldest first, each with the
        ids of the prerequisites it still waits for."""
        return blocked_from_rows(run(self.conn, "tasks.blocked", {"planner_id": self._planner()}))

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
        total = delete_in_batches(self.conn, query, params)
        if total:
            self._engine.give_back_free_pages(self.conn)
        return total

    # --- the executor's side ---------------------------------------------------------------

    @claims(repeat="always")
    def claim(
        self, owner: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, wait_seconds: float = 0
    ) -> Claim | None:
        """Take the next task for ``owner``: a task whose lease expired, else the first ready one
        (of this planner, or of any planner when ``planner_id`` is None). One statement, so
        two executors never get the same task. Returns None when there is nothing to do.

        :param wait_seconds: when nothing is claimable, wait up to this long for a task. It ends
            within milliseconds of a commit (any process's) that makes one claimable, or of a delay
            or lease running out, and uses no CPU meanwhile (see :mod:`agentstate.task_waiting`)."""
        owner, lease_seconds = claimant(owner, lease_seconds)
        wait_seconds = require_age("wait_seconds", wait_seconds)
        found = self._claim_one(owner, lease_seconds)
        if found is None and wait_seconds:
            found = self._wait_for_work(lambda: self._claim_one(owner, lease_seconds), wait_seconds)
        return found

    @claims(repeat="always")
    def claim_many(
        self, owner: str, limit: int, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, wait_seconds: float = 0
    ) -> list[Claim]:
        """Claim up to ``limit`` tasks in one transaction, in the order :meth:`claim` would hand
        them out (``wait_seconds`` as :meth:`claim`'s). For executors of many small tasks: one
        commit serves the whole batch."""
        limit = require_int("limit", limit, minimum=1)
        owner, lease_seconds = claimant(owner, lease_seconds)
        wait_seconds = require_age("wait_seconds", wait_seconds)
        found = self._claim_batch(owner, limit, lease_seconds)
        if not found and wait_seconds:
            found = self._wait_for_work(lambda: self._claim_batch(owner, limit, lease_seconds), wait_seconds)
        return found

    @writes()
    def complete_many(self, results: Iterable[tuple[Claim, Any]]) -> list[Task]:
        """Complete several claimed tasks, each with its result, in one transaction: all of
        them, or (if any token is stale) none."""
        return finish_many(self.conn, self.actor, results)

    @writes(repeat="always")
    def heartbeat(
        self, claim: Claim | str, token: int | None = None, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Claim:
        """Extend a lease to ``lease_seconds`` from now. A lease that expired but was not yet
        taken over is still yours.

        :raises StaleTokenError: another owner claimed the task since.
        """
        return extend_lease(self.conn, self.actor, claim, token, lease_seconds)

    @writes()
    def complete(self, claim: Claim | str, token: int | None = None, *, result: Any = None) -> Task:
        """Finish a claimed task successfully, storing ``result`` (any JSON value).

        :raises StaleTokenError: the lease was lost to another owner; nothing is written.
        """
        return finish(self.conn, self.actor, claim, token, "completed", result, "complete")

    @writes()
    def fail_validation(self, claim: Claim | str, token: int | None = None, *, reason: Any = None) -> Task:
        """Finish a claimed task whose output failed its acceptance criteria; ``reason`` is kept
        (in ``result`` and in the task's history) for the planner to read."""
        return finish(self.conn, self.actor, claim, token, "failed_validation", reason, "fail_validation")

    @writes()
    def release(self, claim: Claim | str, token: int | None = None) -> Task:
        """Give a claimed task back, unfinished, to pending (e.g. on a clean shutdown)."""
        return finish(self.conn, self.actor, claim, token, "pending", None, "release")

    @claims()
    def complete_and_claim_next(
        self,
        claim: Claim | str,
        token: int | None = None,
        *,
        result: Any = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = 0,
    ) -> Claim | None:
        """Complete one task and claim the next in a single transaction: one round trip per task
        (``wait_seconds`` as :meth:`claim`'s, once the task is completed)."""
        worker_id, token, owner = held(claim, token, self.actor)
        if owner is None:
            raise errors.InvalidValueError(
                "complete_and_claim_next needs to know who claims the next task: pass the Claim itself "
                "(it carries its owner), or create the TaskManager with actor='executor-name'"
            )
        owner, lease_seconds = claimant(owner, lease_seconds)
        wait_seconds = require_age("wait_seconds", wait_seconds)
        found = self._complete_and_claim(worker_id, token, owner, result, lease_seconds)
        if found is None and wait_seconds:
            found = self._wait_for_work(lambda: self._claim_one(owner, lease_seconds), wait_seconds)
        return found


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "STATUSES",
    "BlockedTask",
    "Claim",
    "Task",
    "TaskEvent",
    "TaskManager",
    "TaskStatus",
    "claim_async",
    "claim_call",
    "wait_call",
]
