"""Planning a request's tasks (issue 20), on both engines: priorities, delays, prerequisites,
idempotent creation, cancellation, delayed retries, the lease back-off, blocked(); bad input
refused with nothing written."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agentstate import errors
from agentstate.aio import AsyncTaskManager
from agentstate.tasks import Claim, Task, TaskManager
from tests.dbdump import dump
from tests.engines import rows


@pytest.fixture
def tm(db: Any) -> TaskManager:
    rows(db, "INSERT INTO planners (planner_id) VALUES ('p1'), ('p2')")
    return TaskManager(db, "p1")


def claim_all(tm: TaskManager) -> list[str]:
    order = []
    while (claim := tm.claim("e")) is not None:
        order.append(claim.worker_id)
        tm.complete(claim)
    return order


def claim_when_due(tm: TaskManager, within_s: float = 20.0) -> Claim:
    """Claim until a delayed task becomes claimable (behaviour, not timing: the deadline is slack)."""
    deadline = time.monotonic() + within_s
    while (claim := tm.claim("e")) is None:
        assert time.monotonic() < deadline, "a due task never became claimable"
        time.sleep(0.02)
    return claim


# --- priorities ------------------------------------------------------------------------------


def test_higher_priority_first_ties_oldest_first(tm: TaskManager) -> None:
    made = [tm.create_task(f"t{i}", worker_id=f"t{i}", priority=p) for i, p in enumerate([0, 5, -1, 5, 2])]
    assert [t.priority for t in made] == [0, 5, -1, 5, 2]
    assert tm.get_current_task() == made[0]  # the guide's query: still the oldest pending task
    assert claim_all(tm) == ["t1", "t3", "t4", "t0", "t2"]


def test_every_claiming_path_follows_priority(tm: TaskManager) -> None:
    tm.create_tasks([{"worker_id": f"t{i}", "priority": i % 3} for i in range(6)])
    batch = tm.claim_many("e", 2)
    assert [c.worker_id for c in batch] == ["t2", "t5"]
    nxt = tm.complete_and_claim_next(batch[0])
    assert nxt is not None and nxt.worker_id == "t1"
    anyone = TaskManager(tm.conn)  # the claim across planners
    tm.create_task("urgent", worker_id="u", priority=10)
    assert (c := anyone.claim("e")) is not None and c.worker_id == "u"


def test_priorities_at_the_edges_of_64_bits(tm: TaskManager) -> None:
    tm.create_task(worker_id="low", priority=-(2**63))
    tm.create_task(worker_id="high", priority=2**63 - 1)
    assert claim_all(tm) == ["high", "low"]


# --- delays ----------------------------------------------------------------------------------


def test_a_delayed_task_is_not_claimed_before_its_time(tm: TaskManager) -> None:
    later = tm.create_task("later", delay_seconds=3600)
    soon = tm.create_task("soon", delay_seconds=0.05)
    assert later.available_at is not None and soon.available_at is not None and soon.available_at < later.available_at
    now = tm.create_task("now")
    assert now.available_at is None
    assert claim_all(tm) == [now.worker_id]  # the others are not due
    claim = claim_when_due(tm)
    assert claim.worker_id == soon.worker_id
    assert claim.task.updated_at >= soon.available_at  # claimed at or after its time, never before
    assert tm.claim("e") is None  # 'later' still waits
    assert tm.get_task(later.worker_id).task_status == "pending"


def test_a_retry_can_wait(tm: TaskManager) -> None:
    task = tm.create_task("flaky")
    claim = tm.claim("e")
    assert claim is not None
    tm.fail_validation(claim, reason="try later")
    waiting = tm.retry(task.worker_id, delay_seconds=0.05)
    assert waiting.task_status == "pending" and waiting.available_at is not None
    again = claim_when_due(tm)
    assert again.worker_id == task.worker_id and again.task.updated_at >= waiting.available_at
    tm.fail_validation(again, reason="no")
    assert tm.retry(task.worker_id).available_at is None  # no delay: claimable at once
    assert (c := tm.claim("e")) is not None and c.worker_id == task.worker_id


def test_a_crashed_executors_lease_waits_out_the_back_off(tm: TaskManager) -> None:
    task = tm.create_task("crashes")
    assert tm.claim("dead", lease_seconds=0.01) is not None
    time.sleep(0.05)  # the lease has run out
    patient = TaskManager(tm.conn, "p1", lease_backoff_seconds=3600)
    assert patient.claim("e2") is None
    assert TaskManager(tm.conn, None, lease_backoff_seconds=3600).claim("e2") is None
    reclaimed = TaskManager(tm.conn, "p1").claim("e3")  # the default back-off is 0
    assert reclaimed is not None and reclaimed.worker_id == task.worker_id and reclaimed.task.attempts == 2


# --- prerequisites ---------------------------------------------------------------------------


def test_a_task_waits_for_its_prerequisites(tm: TaskManager) -> None:
    a = tm.create_task("fetch", worker_id="a")
    b = tm.create_task("parse", worker_id="b", depends_on=["a"], priority=9)
    c = tm.create_task("report", worker_id="c", depends_on=["a", "b"], priority=9)
    assert (b.waiting_on, c.waiting_on) == (1, 2)
    assert [(x.task.worker_id, x.waiting_for) for x in tm.blocked()] == [("b", ("a",)), ("c", ("a", "b"))]
    claim = tm.claim("e")
    assert claim is not None and claim.worker_id == "a" and tm.claim("e") is None
    tm.complete(claim)
    assert tm.get_task("b").waiting_on == 0 and tm.get_task("c").waiting_on == 1
    assert [(x.task.worker_id, x.waiting_for) for x in tm.blocked()] == [("c", ("b",))]
    assert claim_all(tm) == ["b", "c"]
    assert tm.blocked() == [] and a.waiting_on == 0


def test_a_recorded_prerequisite_counts_as_finished(tm: TaskManager) -> None:
    tm.create_task(worker_id="a", max_attempts=1)
    tm.create_task(worker_id="b", depends_on=["a"])
    claim = tm.claim("e")
    assert claim is not None
    tm.fail_validation(claim, reason="bad")
    assert tm.claim("e") is None  # failed validation is not finished
    tm.record("a")  # the planner accepts the outcome
    assert claim_all(tm) == ["b"]
    done = tm.create_task(worker_id="c", depends_on=["a", "b"])  # both finished already
    assert done.waiting_on == 0 and claim_all(tm) == ["c"]


def test_a_batch_may_depend_on_its_earlier_tasks(tm: TaskManager) -> None:
    made = tm.create_tasks([
        {"worker_id": "plan"},
        {"worker_id": "left", "depends_on": ["plan"]},
        {"worker_id": "right", "depends_on": ["plan"]},
        {"worker_id": "join", "depends_on": ["left", "right"]},
    ])  # fmt: skip
    assert [t.waiting_on for t in made] == [0, 1, 1, 2]
    order = claim_all(tm)
    assert order[0] == "plan" and order[-1] == "join" and set(order[1:3]) == {"left", "right"}


@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ([{"worker_id": "x", "depends_on": ["x"]}], "cannot depend on itself"),
        ([{"worker_id": "x", "depends_on": ["ghost"]}], "'ghost', which is no task"),
        ([{"worker_id": "x", "depends_on": ["theirs"]}], "another planner's task"),
        ([{"worker_id": "x", "depends_on": ["gone"]}], "was cancelled"),
        ([{"worker_id": "x", "depends_on": ["y"]}, {"worker_id": "y", "depends_on": ["x"]}], "cycle: 'x' -> 'y' -> 'x'"),
        (
            [{"worker_id": "x", "depends_on": ["z"]}, {"worker_id": "y", "depends_on": ["x"]}, {"worker_id": "z", "depends_on": ["y"]}],
            "cycle: 'x' -> 'z' -> 'y' -> 'x'",
        ),
        ([{"worker_id": "x", "depends_on": ["y"]}, {"worker_id": "y"}], "comes later in the same batch"),
        ([{"worker_id": "ok"}, {"worker_id": "x", "depends_on": ["ghost"]}], "no task"),  # all or nothing
    ],
)
def test_bad_prerequisites_are_refused_and_nothing_is_created(
    tm: TaskManager, specs: list[dict[str, Any]], match: str
) -> None:
    TaskManager(tm.conn, "p2").create_task(worker_id="theirs")
    tm.create_task(worker_id="gone")
    tm.cancel("gone")
    before = dump(tm.conn)
    with pytest.raises(errors.DependencyError, match=match):
        tm.create_tasks(specs)
    assert dump(tm.conn) == before


# --- idempotency -----------------------------------------------------------------------------


def test_an_idempotency_key_returns_the_first_task(tm: TaskManager) -> None:
    first = tm.create_task("summarise", idempotency_key="req-1", metadata={"a": 1}, priority=2)
    before = dump(tm.conn)
    again = tm.create_task("summarise", idempotency_key="req-1", metadata={"a": 1}, priority=2)
    assert again == first and dump(tm.conn) == before
    assert tm.create_tasks([{"description": "summarise", "idempotency_key": "req-1", "metadata": {"a": 1},
                             "priority": 2}]) == [first]  # fmt: skip
    other = TaskManager(tm.conn, "p2").create_task("summarise", idempotency_key="req-1")
    assert other.worker_id != first.worker_id  # a key is the planner's own
    twice = tm.create_tasks([{"description": "x", "idempotency_key": "k2"}, {"description": "x", "idempotency_key": "k2"}])
    assert twice[0] == twice[1]


@pytest.mark.parametrize(
    "changed",
    [
        {"description": "other"}, {"metadata": {"a": 2}}, {"metadata": {"a": True}}, {"priority": 3},
        {"max_attempts": 5}, {"depends_on": ["dep"]}, {"worker_id": "another-id"},
    ],
)
def test_an_idempotency_key_with_other_fields_is_a_conflict(tm: TaskManager, changed: dict[str, Any]) -> None:
    tm.create_task(worker_id="dep")
    tm.create_task("summarise", idempotency_key="req-1", metadata={"a": 1}, priority=2)
    before = dump(tm.conn)
    spec = {"description": "summarise", "idempotency_key": "req-1", "metadata": {"a": 1}, "priority": 2, **changed}
    with pytest.raises(errors.IdempotencyConflictError, match="req-1"):
        tm.create_tasks([spec])
    assert dump(tm.conn) == before


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_takes_every_dependant_along(tm: TaskManager) -> None:
    tm.create_tasks([
        {"worker_id": "a"}, {"worker_id": "b", "depends_on": ["a"]}, {"worker_id": "c", "depends_on": ["b"]},
        {"worker_id": "d"}, {"worker_id": "e", "depends_on": ["d", "b"]},
    ])  # fmt: skip
    cancelled = tm.cancel("a", reason="the user changed their mind")
    assert cancelled[0].worker_id == "a" and {t.worker_id for t in cancelled} == {"a", "b", "c", "e"}
    assert {t.task_status for t in cancelled} == {"cancelled"}
    assert tm.get_task("a").result == {"reason": "the user changed their mind"}
    assert tm.get_task("e").result == {"reason": "the user changed their mind", "prerequisite_cancelled": "a"}
    last = tm.history("a")[-1]
    assert (last.from_status, last.to_status, last.detail) == ("pending", "cancelled", {"reason": "the user changed their mind"})
    assert tm.get_task("d").task_status == "pending" and claim_all(tm) == ["d"]
    assert tm.counts()["cancelled"] == 4 and tm.blocked() == []
    assert tm.record("a").task_status == "recorded"  # the planner takes note
    with pytest.raises(errors.InvalidTransitionError, match="cancel needs 'pending' or 'claimed'"):
        tm.cancel("d")  # completed: too late


def test_a_cancelled_executor_writes_nothing(tm: TaskManager) -> None:
    tm.create_tasks([{"worker_id": "a"}, {"worker_id": "b"}])
    claim = tm.claim("e")
    assert claim is not None
    (cancelled,) = tm.cancel(claim.worker_id)
    assert cancelled.lease_owner is None and cancelled.fence == claim.token
    before = dump(tm.conn)
    for step in (
        lambda: tm.heartbeat(claim),
        lambda: tm.complete(claim, result="late"),
        lambda: tm.fail_validation(claim, reason="late"),
        lambda: tm.release(claim),
        lambda: tm.complete_many([(claim, "late")]),
        lambda: tm.complete_and_claim_next(claim, result="late"),
    ):
        with pytest.raises(errors.TaskCancelledError, match="cancelled it"):
            step()
        assert dump(tm.conn) == before
    assert issubclass(errors.TaskCancelledError, errors.StaleTokenError)  # loops that stop on a lost lease stop


def test_cancel_all_cancels_the_planners_open_tasks(tm: TaskManager) -> None:
    tm.create_tasks([{"worker_id": f"t{i}"} for i in range(4)])
    other = TaskManager(tm.conn, "p2")
    other.create_task(worker_id="theirs")
    done = tm.claim("e")
    assert done is not None
    tm.complete(done)
    held = tm.claim("e")
    assert held is not None
    assert tm.cancel_all(reason="gave up") == 3  # t1 (claimed), t2, t3
    assert tm.counts() == {**dict.fromkeys(tm.counts(), 0), "completed": 1, "cancelled": 3}
    assert other.get_task("theirs").task_status == "pending"
    assert tm.claim("e") is None and tm.cancel_all() == 0
    with pytest.raises(errors.TaskCancelledError):
        tm.complete(held)


def test_cancel_refusals(tm: TaskManager) -> None:
    TaskManager(tm.conn, "p2").create_task(worker_id="theirs")
    before = dump(tm.conn)
    with pytest.raises(errors.NotFoundError):
        tm.cancel("ghost")
    with pytest.raises(errors.NotFoundError):
        tm.cancel("theirs")  # another planner's task
    with pytest.raises(errors.InvalidValueError):
        tm.cancel("ghost", reason=float("nan"))
    with pytest.raises(errors.InvalidValueError):
        TaskManager(tm.conn).cancel_all()  # no planner
    assert dump(tm.conn) == before


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"priority": 2**63}, errors.InvalidValueError),
        ({"priority": -(2**63) - 1}, errors.InvalidValueError),
        ({"priority": 10**100}, errors.InvalidValueError),
        ({"priority": 1.5}, errors.InvalidTypeError),
        ({"priority": True}, errors.InvalidTypeError),
        ({"priority": "high"}, errors.InvalidTypeError),
        ({"delay_seconds": -1}, errors.InvalidValueError),
        ({"delay_seconds": float("nan")}, errors.InvalidValueError),
        ({"delay_seconds": float("inf")}, errors.InvalidValueError),
        ({"delay_seconds": "soon"}, errors.InvalidTypeError),
        ({"depends_on": "a"}, errors.InvalidTypeError),
        ({"depends_on": [1]}, errors.InvalidTypeError),
        ({"depends_on": [""]}, errors.InvalidValueError),
        ({"depends_on": None}, errors.InvalidTypeError),
        ({"idempotency_key": ""}, errors.InvalidValueError),
        ({"idempotency_key": 7}, errors.InvalidTypeError),
        ({"idempotency_key": "k" * 257}, errors.InvalidValueError),
    ],
)
def test_bad_planning_arguments_are_refused_and_nothing_is_written(
    tm: TaskManager, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    before = dump(tm.conn)
    with pytest.raises(error):
        tm.create_task("x", **kwargs)
    with pytest.raises(error):
        tm.create_tasks([{"description": "ok"}, {"description": "x", **kwargs}])
    assert dump(tm.conn) == before


@pytest.mark.parametrize("bad", [-1, float("nan"), "1", 10**12])
def test_bad_retry_delays_and_back_offs_are_refused(tm: TaskManager, bad: Any) -> None:
    tm.create_task(worker_id="t")
    claim = tm.claim("e")
    assert claim is not None
    tm.fail_validation(claim)
    before = dump(tm.conn)
    with pytest.raises((errors.InvalidValueError, errors.InvalidTypeError)):
        tm.retry("t", delay_seconds=bad)
    with pytest.raises((errors.InvalidValueError, errors.InvalidTypeError)):
        TaskManager(tm.conn, "p1", lease_backoff_seconds=bad)
    assert dump(tm.conn) == before


# --- async -----------------------------------------------------------------------------------


def test_the_async_manager_plans_the_same_way(db_url: str, db: Any) -> None:
    import agentstate

    rows(db, "INSERT INTO planners (planner_id) VALUES ('p1')")

    async def main() -> tuple[list[Task], list[str], int]:
        conn = await agentstate.connect_async(db_url)
        try:
            atm = AsyncTaskManager(conn, "p1")
            await atm.create_task(worker_id="a", priority=1)
            await atm.create_task(worker_id="b", depends_on=["a"], idempotency_key="k")
            assert (await atm.create_task(worker_id="b", depends_on=["a"], idempotency_key="k")).worker_id == "b"
            blocked = [x.task.worker_id for x in await atm.blocked()]
            cancelled = await atm.cancel("a", reason="stop")
            return cancelled, blocked, await atm.cancel_all()
        finally:
            await conn.aclose()

    cancelled, blocked, rest = asyncio.run(main())
    assert [t.worker_id for t in cancelled] == ["a", "b"] and blocked == ["b"] and rest == 0
