"""A hypothesis state machine drives the task lifecycle against a plain Python model of the rules,
on both engines: priorities, delays, prerequisites, idempotency keys and cancellation included.

Lease expiry is simulated by moving a lease's end into the past, the one thing the clock does (a
write to the row, so it works the same whichever clock, the process's or the PostgreSQL server's,
stamps leases); a delay passes the same way (its available_at moved into the past).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import agentstate
from agentstate import errors
from agentstate.engines import is_url
from agentstate.tasks import Claim, TaskManager
from tests.engines import is_postgres, rows

PLANNERS = ("p1", "p2")
OWNERS = ("e1", "e2", "e3")
PAST = "2000-01-01T00:00:00.000000Z"


@dataclass
class Model:
    planner: str
    created_at: str
    max_attempts: int
    status: str = "pending"
    attempts: int = 0
    fence: int = 0
    owner: str | None = None
    expired: bool = False
    transitions: int = 1  # the creation event
    priority: int = 0
    deps: frozenset[str] = frozenset()
    delayed: bool = False  # not claimable until its delay passes and a claim's sweep sees it
    due: bool = False  # its delay has passed; the next claim's sweep makes it ready
    key: str | None = None


FINISHED = ("completed", "recorded")


class TaskLifecycle(RuleBasedStateMachine):
    claims = Bundle("claims")

    def __init__(self, conn: Any, *, owned: bool) -> None:
        """``conn``: an empty database; ``owned``: close it at the end of the example."""
        super().__init__()
        self.conn, self.owned = conn, owned
        rows(self.conn, "INSERT INTO planners (planner_id) VALUES ('p1'), ('p2')")
        self.model: dict[str, Model] = {}

    def teardown(self) -> None:
        if self.owned:
            self.conn.close()

    def tm(self, planner: str | None = None) -> TaskManager:
        manager = TaskManager(self.conn, planner)
        manager.SWEEP_INTERVAL_S = 0.0  # every claim sweeps, so the model knows when tasks fail
        return manager

    def unfinished(self, m: Model) -> list[str]:
        return sorted(d for d in m.deps if self.model[d].status not in FINISHED)

    def first_ready(self, planner: str | None) -> str | None:
        ready = [
            (-m.priority, m.created_at, wid)
            for wid, m in self.model.items()
            if m.status == "pending" and planner in (None, m.planner) and not m.delayed and not self.unfinished(m)
        ]
        return min(ready)[2] if ready else None

    def oldest_pending(self, planner: str | None) -> str | None:
        waiting = [
            (m.created_at, wid)
            for wid, m in self.model.items()
            if m.status == "pending" and planner in (None, m.planner)
        ]
        return min(waiting)[1] if waiting else None

    @rule(
        planner=st.sampled_from(PLANNERS),
        max_attempts=st.integers(1, 3),
        priority=st.integers(0, 2),
        delayed=st.booleans(),
        key=st.sampled_from((None, None, "k1", "k2")),
        data=st.data(),
    )
    def create(self, planner: str, max_attempts: int, priority: int, delayed: bool, key: str | None, data: st.DataObject) -> None:
        mine = sorted(w for w, m in self.model.items() if m.planner == planner)
        deps = data.draw(st.lists(st.sampled_from(mine), max_size=2, unique=True)) if mine else []
        stored = next((w for w, m in self.model.items() if m.planner == planner and key and m.key == key), None)
        tm = self.tm(planner)
        call = lambda: tm.create_task(  # noqa: E731
            "t", max_attempts=max_attempts, priority=priority, delay_seconds=3600 if delayed else 0,
            depends_on=deps, idempotency_key=key,
        )  # fmt: skip
        if stored is not None:
            m = self.model[stored]
            if (m.max_attempts, m.priority, m.deps) == (max_attempts, priority, frozenset(deps)):
                assert call().worker_id == stored
            else:
                with pytest.raises(errors.IdempotencyConflictError):
                    call()
            return
        if any(self.model[d].status == "cancelled" for d in deps):
            with pytest.raises(errors.DependencyError):
                call()
            return
        task = call()
        self.model[task.worker_id] = Model(
            planner, task.created_at, max_attempts, priority=priority, deps=frozenset(deps), delayed=delayed, key=key
        )
        assert task.waiting_on == len(self.unfinished(self.model[task.worker_id]))

    @rule(target=claims, planner=st.sampled_from((*PLANNERS, None)), owner=st.sampled_from(OWNERS))
    def claim(self, planner: str | None, owner: str) -> Claim | None:
        in_scope = [(w, m) for w, m in self.model.items() if planner in (None, m.planner)]
        for _, m in in_scope:  # a lease that ran out on the last attempt: the task fails for good
            if m.status == "claimed" and m.expired and m.attempts >= m.max_attempts:
                m.status, m.owner, m.expired = "failed_validation", None, False
                m.transitions += 1
        expired = {w for w, m in in_scope if m.status == "claimed" and m.expired}
        for m in self.model.values():  # the sweep makes every due task ready, whoever's it is
            if m.due:
                m.delayed = m.due = False
        pending = self.first_ready(planner)
        claim = self.tm(planner).claim(owner)
        if expired:
            assert claim is not None and claim.worker_id in expired
        elif pending is not None:
            assert claim is not None and claim.worker_id == pending
        else:
            assert claim is None
            return None
        m = self.model[claim.worker_id]
        m.status, m.owner, m.expired = "claimed", owner, False
        m.fence += 1
        m.attempts += 1
        m.transitions += 1
        assert claim.token == m.fence
        return claim

    def holds(self, claim: Claim | None) -> bool:
        if claim is None:
            return False
        m = self.model[claim.worker_id]
        return m.status == "claimed" and m.fence == claim.token

    def expect_refusal(self, claim: Claim, error: Exception) -> None:
        m = self.model[claim.worker_id]
        if m.status == "cancelled":
            assert isinstance(error, errors.TaskCancelledError), error
        elif m.fence != claim.token:
            assert type(error) is errors.StaleTokenError, error
        else:
            assert isinstance(error, errors.InvalidTransitionError), error

    @rule(claim=claims)
    def heartbeat(self, claim: Claim | None) -> None:
        if claim is None:
            return
        try:
            self.tm().heartbeat(claim)
        except errors.AgentStateError as exc:
            assert not self.holds(claim)
            self.expect_refusal(claim, exc)
        else:
            assert self.holds(claim)
            self.model[claim.worker_id].expired = False

    @rule(claim=claims, outcome=st.sampled_from(("completed", "failed_validation", "pending")))
    def finish(self, claim: Claim | None, outcome: str) -> None:
        if claim is None:
            return
        tm = self.tm()
        call = {"completed": tm.complete, "failed_validation": tm.fail_validation, "pending": tm.release}[outcome]
        try:
            task = call(claim)
        except errors.AgentStateError as exc:
            assert not self.holds(claim)
            self.expect_refusal(claim, exc)
        else:
            assert self.holds(claim)
            assert task.task_status == outcome
            m = self.model[claim.worker_id]
            m.status, m.owner, m.expired = outcome, None, False
            m.attempts -= outcome == "pending"  # a release gives its attempt back
            m.transitions += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data(), delayed=st.booleans())
    def retry(self, data: st.DataObject, delayed: bool) -> None:
        wid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[wid]
        try:
            self.tm().retry(wid, delay_seconds=3600 if delayed else 0)
        except errors.RetryLimitError:
            assert m.status == "failed_validation" and m.attempts >= m.max_attempts
        except errors.InvalidTransitionError:
            assert m.status != "failed_validation"
        else:
            assert m.status == "failed_validation" and m.attempts < m.max_attempts
            m.status, m.delayed, m.due = "pending", delayed, False
            m.transitions += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[wid]
        try:
            self.tm().record(wid)
        except errors.InvalidTransitionError:
            assert m.status not in ("completed", "failed_validation", "cancelled")
        else:
            assert m.status in ("completed", "failed_validation", "cancelled")
            m.status = "recorded"
            m.transitions += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data(), reason=st.sampled_from((None, "stop", {"why": 1})))
    def cancel(self, data: st.DataObject, reason: Any) -> None:
        wid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[wid]
        try:
            cancelled = self.tm(m.planner).cancel(wid, reason=reason)
        except errors.InvalidTransitionError:
            assert m.status not in ("pending", "claimed")
            return
        assert m.status in ("pending", "claimed")
        closure = {wid}
        while grown := {w for w, d in self.model.items() if d.status == "pending" and d.deps & closure} - closure:
            closure |= grown
        assert cancelled[0].worker_id == wid and {t.worker_id for t in cancelled} == closure
        for w in closure:
            d = self.model[w]
            d.status, d.owner, d.expired, d.delayed, d.due = "cancelled", None, False, False, False
            d.transitions += 1
        assert self.tm().history(wid)[-1].detail == {"reason": reason}

    @rule(planner=st.sampled_from(PLANNERS))
    def cancel_all(self, planner: str) -> None:
        open_ = [m for m in self.model.values() if m.planner == planner and m.status in ("pending", "claimed")]
        assert self.tm(planner).cancel_all() == len(open_)
        for d in open_:
            d.status, d.owner, d.expired, d.delayed, d.due = "cancelled", None, False, False, False
            d.transitions += 1

    @precondition(lambda self: any(m.delayed and not m.due for m in self.model.values()))
    @rule(data=st.data())
    def delay_passes(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(w for w, m in self.model.items() if m.delayed and not m.due)))
        rows(self.conn, "UPDATE workers SET available_at = ? WHERE worker_id = ?", (PAST, wid))
        self.model[wid].due = True

    @precondition(lambda self: any(m.status == "claimed" for m in self.model.values()))
    @rule(data=st.data())
    def lease_expires(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(w for w, m in self.model.items() if m.status == "claimed")))
        rows(self.conn, "UPDATE workers SET lease_expires_at = ? WHERE worker_id = ?", (PAST, wid))
        self.model[wid].expired = True

    @invariant()
    def database_matches_model(self) -> None:
        found = rows(
            self.conn, "SELECT worker_id, task_status, attempts, fence, lease_owner, waiting_on, priority FROM workers"
        )
        assert {r[0]: r[1:] for r in found} == {
            w: (m.status, m.attempts, m.fence, m.owner, len(self.unfinished(m)), m.priority)
            for w, m in self.model.items()
        }
        events = dict(rows(self.conn, "SELECT worker_id, count(*) FROM task_events GROUP BY worker_id"))
        assert events == {w: m.transitions for w, m in self.model.items()}

    @invariant()
    def queries_match_model(self) -> None:
        for planner in PLANNERS:
            tm = self.tm(planner)
            current = tm.get_current_task()
            assert (current.worker_id if current else None) == self.oldest_pending(planner)
            done = [(m.created_at, w) for w, m in self.model.items()
                    if m.planner == planner and m.status in ("completed", "failed_validation")]  # fmt: skip
            completed = tm.get_completed_task()
            assert (completed.worker_id if completed else None) == (min(done)[1] if done else None)
            counts = tm.counts()
            for status, n in counts.items():
                assert n == sum(1 for m in self.model.values() if m.planner == planner and m.status == status)
            blocked = sorted((m.created_at, w) for w, m in self.model.items()
                             if m.planner == planner and m.status == "pending" and self.unfinished(m))  # fmt: skip
            assert [(b.task.worker_id, b.waiting_for) for b in tm.blocked()] == [
                (w, tuple(self.unfinished(self.model[w]))) for _, w in blocked
            ]


# As many examples on PostgreSQL as on SQLite: a local server runs the 60 in about 2 s.
SETTINGS = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _emptied(conn: Any) -> Any:
    """``conn`` with no tasks and no planners left by an earlier example (deleting the tasks
    deletes their events with them)."""
    rows(conn, "DELETE FROM workers")
    rows(conn, "DELETE FROM planners")
    assert rows(conn, "SELECT count(*) FROM task_events") == [(0,)]
    return conn


@pytest.mark.filterwarnings("ignore")
def test_task_lifecycle(db_url: str) -> None:
    if not is_url(db_url):
        # SQLite: a fresh in-memory database for each example.
        run_state_machine_as_test(lambda: TaskLifecycle(agentstate.connect(":memory:"), owned=True), settings=SETTINGS)
        return
    # PostgreSQL: the test's database for every example, emptied before each one (a database
    # per example would cost more than the example).
    shared = agentstate.connect(db_url)
    assert is_postgres(shared)
    try:
        run_state_machine_as_test(lambda: TaskLifecycle(_emptied(shared), owned=False), settings=SETTINGS)
    finally:
        shared.close()
