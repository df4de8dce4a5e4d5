"""TaskManager: the lifecycle, claims and fencing, paging, retention, bad input and async."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import apsw
import pytest

import agentstate
from agentstate import errors
from agentstate.aio import AsyncAgents, AsyncTaskManager
from agentstate.tasks import Claim, TaskManager
from tests.dbdump import dump
from tests.engines import rows, scalar
from tests.plans import plan_details


@pytest.fixture
def tm(db: Any) -> TaskManager:
    rows(db, "INSERT INTO planners (planner_id) VALUES ('p1'), ('p2')")
    return TaskManager(db, "p1")


def test_current_and_completed_task_are_the_oldest(tm: TaskManager) -> None:
    assert tm.get_current_task() is None and tm.get_completed_task() is None
    first, second, third = (tm.create_task(f"step {i}") for i in range(3))
    assert tm.get_current_task() == first
    claim = tm.claim("exec")
    assert claim is not None and claim.worker_id == first.worker_id
    assert tm.get_current_task() == second
    tm.complete(claim, result={"answer": 42})
    completed = tm.get_completed_task()
    assert completed is not None and completed.worker_id == first.worker_id and completed.result == {"answer": 42}
    assert tm.counts() == {"pending": 2, "claimed": 0, "completed": 1, "failed_validation": 0, "recorded": 0, "cancelled": 0}
    tm.record(first.worker_id)
    assert tm.get_completed_task() is None
    assert third.worker_id in {t.worker_id for t in tm.list_tasks("pending")}


def test_ties_on_created_at_break_by_worker_id(tm: TaskManager) -> None:
    rows(
        tm.conn,
        "INSERT INTO workers (worker_id, planner_id, created_at) VALUES ('b', 'p1', '2026-01-01T00:00:00.000000Z'), "
        "('a', 'p1', '2026-01-01T00:00:00.000000Z'), ('c', 'p1', '2025-12-31T00:00:00.000000Z')",
    )
    order = []
    while (task := tm.get_current_task()) is not None:
        order.append(task.worker_id)
        claim = tm.claim("e")
        assert claim is not None and claim.worker_id == task.worker_id
        tm.complete(claim)
    assert order == ["c", "a", "b"]


def test_full_lifecycle_writes_history(tm: TaskManager) -> None:
    task = tm.create_task("write a poem", acceptance_criteria=["rhymes"], max_attempts=2)
    claim = tm.claim("exec-1")
    assert claim is not None
    failed = tm.fail_validation(claim, reason={"why": "no rhyme"})
    assert failed.task_status == "failed_validation" and failed.attempts == 1
    tm.retry(task.worker_id)
    claim = tm.claim("exec-2")
    assert claim is not None and claim.token == 2
    tm.complete(claim, result="roses are red")
    tm.record(task.worker_id)
    steps = [(e.from_status, e.to_status, e.actor) for e in tm.history(task.worker_id)]
    assert steps == [
        (None, "pending", "p1"),
        ("pending", "claimed", "exec-1"),
        ("claimed", "failed_validation", "exec-1"),
        ("failed_validation", "pending", "p1"),
        ("pending", "claimed", "exec-2"),
        ("claimed", "completed", "exec-2"),
        ("completed", "recorded", "p1"),
    ]
    assert tm.history(task.worker_id)[2].detail == {"why": "no rhyme"}


def test_retry_limit(tm: TaskManager) -> None:
    task = tm.create_task(max_attempts=1)
    claim = tm.claim("e")
    assert claim is not None
    tm.fail_validation(claim, reason="bad")
    before = dump(tm.conn)
    with pytest.raises(errors.RetryLimitError, match="used 1 of its 1 attempts"):
        tm.retry(task.worker_id)
    assert dump(tm.conn) == before
    assert tm.record(task.worker_id).task_status == "recorded"


def test_expired_lease_is_reclaimed_and_the_old_token_is_stale(tm: TaskManager) -> None:
    tm.create_task()
    dead = tm.claim("dies", lease_seconds=0.001)
    assert dead is not None
    time.sleep(0.005)
    alive = tm.claim("lives")
    assert alive is not None and alive.worker_id == dead.worker_id and alive.token == dead.token + 1
    before = dump(tm.conn)
    for call in (lambda: tm.complete(dead), lambda: tm.heartbeat(dead), lambda: tm.release(dead)):
        with pytest.raises(errors.StaleTokenError, match="stale"):
            call()
    assert dump(tm.conn) == before
    assert tm.complete(alive).task_status == "completed"


def test_expired_but_not_reclaimed_lease_is_still_yours(tm: TaskManager) -> None:
    tm.create_task()
    claim = tm.claim("slow", lease_seconds=0.001)
    assert claim is not None
    time.sleep(0.005)
    renewed = tm.heartbeat(claim, lease_seconds=30)
    assert renewed.lease_expires_at > claim.lease_expires_at
    assert tm.complete(renewed).task_status == "completed"


def test_claim_any_planner_and_complete_and_claim_next(db: Any) -> None:
    rows(db, "INSERT INTO planners (planner_id) VALUES ('a'), ('b')")
    made = [TaskManager(db, p).create_task(p) for p in ("a", "b", "a")]
    executor = TaskManager(db)
    claim = executor.claim("exec")
    done = []
    while claim is not None:
        done.append(claim.worker_id)
        claim = executor.complete_and_claim_next(claim, result="ok")
    assert done == [t.worker_id for t in made]
    assert {t.task_status for t in (executor.get_task(w) for w in done)} == {"completed"}


@pytest.mark.parametrize("planner", [None, "p1"])
def test_complete_and_claim_next_finishes_a_late_task_and_claims_another(tm: TaskManager, planner: str | None) -> None:
    """Its own lease ran out, nobody took it over: the token still holds, so the task completes,
    and the next claim is another task, never the one being finished (on PostgreSQL both are one
    statement, which must not update one row twice)."""
    executor = TaskManager(tm.conn, planner)
    first, second = tm.create_task("first"), tm.create_task("second")
    late = executor.claim("slow", lease_seconds=0.001)
    assert late is not None and late.worker_id == first.worker_id
    time.sleep(0.005)
    following = executor.complete_and_claim_next(late, result="late but done")
    assert following is not None and following.worker_id == second.worker_id and following.owner == "slow"
    done = executor.get_task(first.worker_id)
    assert (done.task_status, done.result, done.fence) == ("completed", "late but done", late.token)
    assert executor.complete_and_claim_next(following, result="ok") is None  # nothing left: None, and it completed
    assert executor.get_task(second.worker_id).task_status == "completed"
    before = dump(tm.conn)
    with pytest.raises(errors.InvalidTransitionError):  # completed already: refused, nothing written
        executor.complete_and_claim_next(following, result="again")
    assert dump(tm.conn) == before


def test_complete_and_claim_next_with_a_stale_token_writes_nothing(tm: TaskManager) -> None:
    tm.create_task("one"), tm.create_task("two")
    dead = tm.claim("dies", lease_seconds=0.001)
    assert dead is not None
    time.sleep(0.005)
    alive = tm.claim("lives")
    assert alive is not None and alive.worker_id == dead.worker_id
    before = dump(tm.conn)
    with pytest.raises(errors.StaleTokenError):
        tm.complete_and_claim_next(dead, result="too late")
    assert dump(tm.conn) == before  # the other task was not claimed either


def test_claim_many_and_complete_many_are_all_or_nothing(tm: TaskManager) -> None:
    made = tm.create_tasks([{"description": str(i)} for i in range(5)])
    claims = tm.claim_many("batcher", 3)
    assert [c.worker_id for c in claims] == [t.worker_id for t in made[:3]]
    stale = Claim(dataclasses.replace(claims[2].task, fence=claims[2].token - 1))
    before = dump(tm.conn)
    with pytest.raises(errors.StaleTokenError):
        tm.complete_many([(claims[0], 1), (claims[1], 2), (stale, 3)])
    assert dump(tm.conn) == before
    done = tm.complete_many([(c, i) for i, c in enumerate(claims)])
    assert [t.result for t in done] == [0, 1, 2] and {t.task_status for t in done} == {"completed"}
    assert [c.worker_id for c in tm.claim_many("batcher", 10)] == [t.worker_id for t in made[3:]]
    assert tm.claim_many("batcher", 10) == []


def test_release_returns_a_task_to_pending(tm: TaskManager) -> None:
    task = tm.create_task()
    claim = tm.claim("e")
    assert claim is not None
    assert tm.release(claim).task_status == "pending"
    assert tm.get_current_task() == tm.get_task(task.worker_id)


def test_list_tasks_pages_without_offset(tm: TaskManager) -> None:
    made = tm.create_tasks([{"description": str(i)} for i in range(25)])
    seen: list[str] = []
    page = tm.list_tasks("pending", limit=7)
    while page:
        seen += [t.worker_id for t in page]
        page = tm.list_tasks("pending", after=page[-1], limit=7)
    assert seen == [t.worker_id for t in sorted(made, key=lambda t: (t.created_at, t.worker_id))]


def test_purge_recorded_of_age_zero_takes_every_recorded_task(tm: TaskManager) -> None:
    """0 means "everything recorded until now", as for cleanup (it was refused as not positive)."""
    task = tm.create_task()
    claim = tm.claim("e")
    assert claim is not None
    tm.complete(claim)
    tm.record(task.worker_id)
    open_task = tm.create_task()
    assert tm.purge_recorded(older_than_seconds=0) == 1
    with pytest.raises(errors.NotFoundError):
        tm.get_task(task.worker_id)
    assert tm.get_task(open_task.worker_id).task_status == "pending"


def test_purge_recorded_deletes_old_tasks_with_their_events(tm: TaskManager) -> None:
    old = tm.create_task()
    claim = tm.claim("e")
    assert claim is not None
    tm.complete(claim)
    tm.record(old.worker_id)
    keep = tm.create_task()
    rows(tm.conn, "UPDATE workers SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE worker_id = ?", (old.worker_id,))
    assert tm.purge_recorded(older_than_seconds=3600, batch_size=1) == 1
    with pytest.raises(errors.NotFoundError):
        tm.get_task(old.worker_id)
    assert scalar(tm.conn, "SELECT count(*) FROM task_events WHERE worker_id = ?", (old.worker_id,)) == 0
    assert tm.get_task(keep.worker_id).task_status == "pending"


def test_purge_plan_and_cascade_use_indexes(fresh_db: apsw.Connection) -> None:
    # The cascade from workers to task_events and worker_messages must not scan those tables.
    details = plan_details(fresh_db, "DELETE FROM task_events WHERE worker_id = ?")
    assert any("idx_task_events_worker" in d for d in details), details
    details = plan_details(fresh_db, "DELETE FROM worker_messages WHERE agent_id = ?")
    assert any("PRIMARY KEY" in d for d in details), details


BAD_CALLS: list[tuple[str, type[errors.AgentStateError], Any]] = [
    ("unknown planner", errors.NotFoundError, lambda c: TaskManager(c, "nope").create_task()),
    ("duplicate id", errors.DuplicateError, lambda c: TaskManager(c, "p1").create_task(worker_id="t1")),
    ("id of wrong type", errors.InvalidTypeError, lambda c: TaskManager(c, "p1").create_task(worker_id=7)),
    (
        "id too long",
        errors.CheckConstraintError,
        lambda c: TaskManager(c, "p1").create_tasks([{}, {"worker_id": "x" * 129}]),
    ),
    ("planner of wrong type", errors.InvalidTypeError, lambda c: TaskManager(c, 5)),
    (
        "context not JSON",
        errors.InvalidValueError,
        lambda c: TaskManager(c, "p1").create_task(task_context={"x": {1, 2}}),
    ),
    ("NaN is not JSON", errors.InvalidValueError, lambda c: TaskManager(c, "p1").create_task(metadata=float("nan"))),
    ("max_attempts zero", errors.InvalidValueError, lambda c: TaskManager(c, "p1").create_task(max_attempts=0)),
    ("max_attempts bool", errors.InvalidTypeError, lambda c: TaskManager(c, "p1").create_task(max_attempts=True)),
    (
        "half a batch bad",
        errors.InvalidValueError,
        lambda c: TaskManager(c, "p1").create_tasks([{}, {"metadata": object()}]),
    ),
    (
        "batch with a duplicate",
        errors.DuplicateError,
        lambda c: TaskManager(c, "p1").create_tasks([{}, {"worker_id": "t1"}]),
    ),
    ("unknown task", errors.NotFoundError, lambda c: TaskManager(c, "p1").get_task("missing")),
    ("unknown task retry", errors.NotFoundError, lambda c: TaskManager(c, "p1").retry("missing")),
    ("record a pending task", errors.InvalidTransitionError, lambda c: TaskManager(c, "p1").record("t1")),
    ("retry a pending task", errors.InvalidTransitionError, lambda c: TaskManager(c, "p1").retry("t1")),
    ("complete a pending task", errors.InvalidTransitionError, lambda c: TaskManager(c, "p1").complete("t1", 0)),
    ("token missing", errors.InvalidTypeError, lambda c: TaskManager(c, "p1").complete("t1")),
    ("token of wrong type", errors.InvalidTypeError, lambda c: TaskManager(c, "p1").complete("t1", "0")),
    ("result not JSON", errors.InvalidValueError, lambda c: TaskManager(c, "p1").complete("t1", 0, result=b"x")),
    ("negative lease", errors.InvalidValueError, lambda c: TaskManager(c, "p1").claim("e", lease_seconds=-1)),
    ("owner of wrong type", errors.InvalidTypeError, lambda c: TaskManager(c, "p1").claim(None)),
    ("unknown status", errors.InvalidValueError, lambda c: TaskManager(c, "p1").list_tasks("done")),
    ("no planner for current", errors.InvalidValueError, lambda c: TaskManager(c).get_current_task()),
]


@pytest.mark.parametrize(("label", "error", "call"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_raises_and_changes_nothing(
    tm: TaskManager, label: str, error: type[errors.AgentStateError], call: Any
) -> None:
    tm.create_task(worker_id="t1")
    before = dump(tm.conn)
    with pytest.raises(error) as caught:
        call(tm.conn)
    assert str(caught.value), label
    assert dump(tm.conn) == before


def test_schema_refuses_bad_rows_written_around_the_library(db: Any) -> None:
    rows(db, "INSERT INTO planners (planner_id) VALUES ('p')")
    before = dump(db)
    with pytest.raises(errors.CheckConstraintError), agentstate.write(db):
        rows(db, "INSERT INTO workers (worker_id, planner_id, task_status) VALUES ('x', 'p', 'done')")
    with pytest.raises(errors.CheckConstraintError), agentstate.write(db):
        rows(db, "INSERT INTO workers (worker_id, planner_id, task_status) VALUES ('x', 'p', 'claimed')")
    with pytest.raises(errors.ForeignKeyError), agentstate.write(db):
        rows(db, "INSERT INTO workers (worker_id, planner_id) VALUES ('x', 'ghost')")
    assert dump(db) == before


def test_async_task_manager(db_url: str) -> None:
    async def main() -> list[str]:
        conn = await agentstate.connect_async(db_url)
        try:
            await AsyncAgents(conn).create_planner("p")
            tm = AsyncTaskManager(conn, "p")
            task = await tm.create_task("async", task_context={"k": [1, 2]})
            assert (await tm.get_current_task()) == task
            claim = await tm.claim("exec")
            assert isinstance(claim, Claim)
            await tm.heartbeat(claim)
            await tm.complete(claim, result=True)
            with pytest.raises(errors.StaleTokenError):
                await tm.complete(claim.worker_id, claim.token - 1)
            await tm.record(task.worker_id)
            return [e.to_status for e in await tm.history(task.worker_id)]
        finally:
            await conn.aclose()

    assert asyncio.run(main()) == ["pending", "claimed", "completed", "recorded"]


def test_a_finish_returns_the_task_as_stored(tm: TaskManager) -> None:
    """complete, fail_validation, release and complete_many return what a read of the task gives
    (the payload is taken from the Claim rather than parsed again: it must be the same), and the
    same whether given the Claim or its worker_id and token."""
    payload = {
        "acceptance_criteria": ["cites two sources", {"max_words": 200}],
        "task_context": {"query": "héllo", "nested": {"n": [1, 2.5, None, True]}},
        "input_images": ["a.png"],
        "metadata": {"k": "v"},
    }
    for finishing in ("complete", "fail_validation", "release", "complete_many", "by_id"):
        task = tm.create_task(finishing, **payload)
        claim = tm.claim("e")
        assert claim is not None and claim.worker_id == task.worker_id
        if finishing == "complete":
            done = tm.complete(claim, result={"ok": [1, 2]})
        elif finishing == "fail_validation":
            done = tm.fail_validation(claim, reason="too long")
        elif finishing == "release":
            done = tm.release(claim)
        elif finishing == "complete_many":
            [done] = tm.complete_many([(claim, "all of it")])
        else:
            done = tm.complete(claim.worker_id, claim.token, result=7)
        assert done == tm.get_task(task.worker_id), finishing
        if finishing == "release":
            tm.cancel(task.worker_id)  # out of the next claim's way
