"""What a task is: its statuses, the :class:`Task` row, the :class:`Claim` an executor holds, the
:class:`TaskEvent` of a transition, and the builders that turn stored rows into them.

:class:`~agentstate.tasks.TaskManager` moves tasks through these statuses (see :mod:`agentstate.tasks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from agentstate import errors
from agentstate.rows import Builder
from agentstate.values import from_json

TaskStatus = Literal["pending", "claimed", "completed", "failed_validation", "recorded", "cancelled"]
STATUSES: Final = ("pending", "claimed", "completed", "failed_validation", "recorded", "cancelled")
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
    priority: int = 0
    """Claimed before every ready task of a lower priority; ties go to the older task."""
    available_at: str | None = None
    """A delayed task is not claimable before this time; None once it is (or if never delayed)."""
    waiting_on: int = 0
    """How many of its prerequisites (``depends_on``) have not yet reached completed or recorded."""
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class BlockedTask:
    """A pending task that waits on prerequisites (:meth:`~agentstate.TaskManager.blocked`)."""

    task: Task
    waiting_for: tuple[str, ...]
    """The worker ids of its prerequisites that have not yet reached completed or recorded."""


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


def task_from_row(row: Any) -> Task:
    """A ``workers`` row (its columns in :class:`Task`'s field order) as a Task, JSON decoded."""
    (wid, pid, status, desc, criteria, context, images, meta, result, *rest) = row
    return _build_task(
        wid, pid, status, desc, from_json(criteria), from_json(context), from_json(images), from_json(meta),
        from_json(result), *rest,
    )  # fmt: skip


def finished_task(row: Any, claim: object) -> Task:
    """A finished task's row (a ``tasks.finish``) as a Task. A finish never changes the payload
    (acceptance_criteria, task_context, input_images, metadata: written once, at creation), so
    when the caller passed the :class:`Claim` of this very task those are its decoded values,
    shared rather than parsed again; only ``result`` is decoded. Else as :func:`task_from_row`."""
    held = claim.task if isinstance(claim, Claim) else None
    if held is None or held.worker_id != row[0]:
        return task_from_row(row)
    (wid, pid, status, desc, _criteria, _context, _images, _meta, result, *rest) = row
    return _build_task(
        wid, pid, status, desc, held.acceptance_criteria, held.task_context, held.input_images, held.metadata,
        from_json(result), *rest,
    )  # fmt: skip


def events_from_rows(rows: list[Any]) -> list[TaskEvent]:
    """``task_events`` rows as TaskEvents, their detail decoded."""
    return [TaskEvent(e, w, f, t, fence, a, from_json(d), at) for (e, w, f, t, fence, a, d, at) in rows]


def blocked_from_rows(rows: list[Any]) -> list[BlockedTask]:
    """``tasks.blocked`` rows (a task's columns, then one unfinished prerequisite) per task."""
    found: dict[str, tuple[Task, list[str]]] = {}
    for row in rows:
        entry = found.get(row[0])
        if entry is None:
            entry = found[row[0]] = (task_from_row(row[:-1]), [])
        entry[1].append(row[-1])
    return [BlockedTask(task, tuple(sorted(ids))) for task, ids in found.values()]
