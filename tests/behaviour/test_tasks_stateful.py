"""A hypothesis state machine drives the task lifecycle against a plain Python model of the rules,
on both engines.

Lease expiry is simulated by moving a lease's end into the past, the one thing the clock does (a
write to the row, so it works the same whichever clock, the process's or the PostgreSQL server's,
stamps leases).
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

    def oldest_pending(self, planner: str | None) -> str | None:
        waiting = [
            (m.created_at, wid)
            for wid, m in self.model.items()
            if m.status == "pending" and planner in (None, m.planner)
        ]
        return min(waiting)[1] if waiting else None

    @rule(planner=st.sampled_from(PLANNERS), max_attempts=st.integers(1, 3))
    def create(self, planner: str, max_attempts: int) -> None:
        task = self.tm(planner).create_task("t", max_attempts=max_attempts)
        self.model[task.worker_id] = Model(planner, task.created_at, max_attempts)

    @rule(target=claims, planner=st.sampled_from((*PLANNERS, None)), owner=st.sampled_from(OWNERS))
    def claim(self, planner: str | None, owner: str) -> Claim | None:
        in_scope = [(w, m) for w, m in self.model.items() if planner in (None, m.planner)]
        for _, m in in_scope:  # a lease that ran out on the last attempt: the task fails for good
            if m.status == "claimed" and m.expired and m.attempts >= m.max_attempts:
                m.status, m.owner, m.expired = "failed_validation", None, False
                m.transitions += 1
        expired = {w for w, m in in_scope if m.status == "claimed" and m.expired}
        pending = self.oldest_pending(planner)
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
        if m.fence != claim.token:
            assert isinstance(error, errors.StaleTokenError), error
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
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[wid]
        try:
            self.tm().retry(wid)
        except errors.RetryLimitError:
            assert m.status == "failed_validation" and m.attempts >= m.max_attempts
        except errors.InvalidTransitionError:
            assert m.status != "failed_validation"
        else:
            assert m.status == "failed_validation" and m.attempts < m.max_attempts
            m.status = "pending"
            m.transitions += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[wid]
        try:
            self.tm().record(wid)
        except errors.InvalidTransitionError:
            assert m.status not in ("completed", "failed_validation")
        else:
            assert m.status in ("completed", "failed_validation")
            m.status = "recorded"
            m.transitions += 1

    @precondition(lambda self: any(m.status == "claimed" for m in self.model.values()))
    @rule(data=st.data())
    def lease_expires(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(w for w, m in self.model.items() if m.status == "claimed")))
        rows(self.conn, "UPDATE workers SET lease_expires_at = ? WHERE worker_id = ?", (PAST, wid))
        self.model[wid].expired = True

    @invariant()
    def database_matches_model(self) -> None:
        found = rows(self.conn, "SELECT worker_id, task_status, attempts, fence, lease_owner FROM workers")
        assert {r[0]: r[1:] for r in found} == {
            w: (m.status, m.attempts, m.fence, m.owner) for w, m in self.model.items()
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
