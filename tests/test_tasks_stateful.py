"""A hypothesis state machine drives the task lifecycle against a plain Python model of the rules.

Lease expiry is simulated by moving a lease's end into the past, the one thing the clock does.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

import agentstate
from agentstate import errors
from agentstate.tasks import Claim, TaskManager

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

    def __init__(self) -> None:
        super().__init__()
        self.conn: apsw.Connection = agentstate.connect(":memory:")
        self.conn.execute("INSERT INTO planners (planner_id) VALUES ('p1'), ('p2')")
        self.model: dict[str, Model] = {}

    def teardown(self) -> None:
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
        self.conn.execute("UPDATE workers SET lease_expires_at = ? WHERE worker_id = ?", (PAST, wid))
        self.model[wid].expired = True

    @invariant()
    def database_matches_model(self) -> None:
        rows = self.conn.execute("SELECT worker_id, task_status, attempts, fence, lease_owner FROM workers").fetchall()
        assert {r[0]: r[1:] for r in rows} == {
            w: (m.status, m.attempts, m.fence, m.owner) for w, m in self.model.items()
        }
        events = dict(self.conn.execute("SELECT worker_id, count(*) FROM task_events GROUP BY worker_id").fetchall())
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


TaskLifecycle.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_task_lifecycle = pytest.mark.filterwarnings("ignore")(TaskLifecycle.TestCase)
