"""Checking and encoding the arguments of a task call, before any transaction starts: a claim's
owner and lease, the task and token a step acts on, and the fields of a new task."""

from __future__ import annotations

from typing import Any

from agentstate import errors
from agentstate.task_types import DEFAULT_MAX_ATTEMPTS, Claim, Task
from agentstate.values import (
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
)


def claimant(owner: object, lease_seconds: object) -> tuple[str, float]:
    """Check a claim's arguments before any transaction starts."""
    return require_str("owner", owner), require_seconds("lease_seconds", lease_seconds)


def held(claim_or_id: Claim | str, token: int | None, actor: str | None) -> tuple[str, int, str | None]:
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


def task_spec(spec: object) -> dict[str, Any]:
    """Check one ``create_tasks`` spec: a dict whose keys are ``create_task``'s arguments."""
    if not isinstance(spec, dict):
        raise errors.InvalidTypeError(f"each task spec must be a dict of create_task's arguments, not {type(spec).__name__}")
    unknown = [key for key in spec if key not in TASK_FIELDS]
    if unknown:
        raise errors.InvalidValueError(
            f"unknown task field {unknown[0]!r:.80}; a spec takes {', '.join(TASK_FIELDS)}"
        )
    return spec


def encode_task(actor: str | None, planner_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``tasks.create`` for one new task of ``planner_id``, created by ``actor``,
    from a checked spec (:func:`task_spec`; a field left out takes create_task's default)."""
    description = spec.get("description", "")
    acceptance_criteria, task_context = spec.get("acceptance_criteria"), spec.get("task_context")
    input_images, metadata, worker_id = spec.get("input_images"), spec.get("metadata"), spec.get("worker_id")
    max_attempts = spec.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    delay_seconds = require_age("delay_seconds", spec.get("delay_seconds", 0))
    idempotency_key = optional_str("idempotency_key", spec.get("idempotency_key"))
    if idempotency_key is not None and len(idempotency_key) > 256:
        raise errors.InvalidValueError(f"idempotency_key must be at most 256 characters, not {len(idempotency_key)}")
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
        "actor": actor,
        "priority": require_int("priority", spec.get("priority", 0)),
        # SQLite stamps the client's clock (under the lock, see create_tasks); PostgreSQL the server's.
        "delay_seconds": delay_seconds,
        "available_at": None,
        "waiting_on": 0,
        "idempotency_key": None if idempotency_key is None else text("idempotency_key", idempotency_key),
        "depends_on": prerequisites(spec.get("depends_on", ())),
        "explicit_id": worker_id is not None,
    }


def prerequisites(value: object) -> tuple[str, ...]:
    """Check ``depends_on``: worker ids (an iterable of str, not a str), each once, in order."""
    if isinstance(value, str):
        raise errors.InvalidTypeError(
            f"depends_on must be a list of worker ids, not one str ({value!r:.40}): write depends_on=[{value!r:.40}]"
        )
    found = [require_str("depends_on[]", item) for item in iterable("depends_on", value)]
    return tuple(dict.fromkeys(found))


def delayed_until(delay_seconds: float) -> str | None:
    """When a task delayed by ``delay_seconds`` becomes claimable (None: at once)."""
    return utc_after(delay_seconds) if delay_seconds > 0 else None


# What a create_tasks spec may hold: create_task's arguments (a test checks they agree).
TASK_FIELDS = (
    "description", "acceptance_criteria", "task_context", "input_images", "metadata", "worker_id", "max_attempts",
    "priority", "delay_seconds", "depends_on", "idempotency_key",
)  # fmt: skip
