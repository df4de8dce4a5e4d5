"""How a :class:`~agentstate.tasks.TaskManager` claims: the claim statement of its scope (one
planner's tasks, or any planner's), and the sweep that fails tasks whose lease ran out on their
last attempt and makes delayed tasks whose time has come ready, at most once per
``SWEEP_INTERVAL_S`` (and whenever a claim finds nothing ready). TaskManager's public claiming methods
(``claim``, ``claim_many``, ``complete_and_claim_next``) run these inside their transactions."""

from __future__ import annotations

import time
from typing import Any

from agentstate.engines import Connection
from agentstate.runner import has, run
from agentstate.task_steps import refuse
from agentstate.task_types import Claim, task_from_row
from agentstate.values import utc_after, utc_now


class Claiming:
    """The claiming half of :class:`~agentstate.tasks.TaskManager`, which sets ``conn`` and
    ``planner_id`` and calls :meth:`_start_claiming` when it is made."""

    SWEEP_INTERVAL_S: float = 1.0
    """How often claims fail tasks whose lease ran out on their last attempt (see ``claim``)."""

    conn: Connection
    planner_id: str | None
    lease_backoff_seconds: float

    def _start_claiming(self, conn: Connection) -> None:
        self._next_sweep = 0.0  # the first claim fails poison tasks (see _claim_row)
        scope = "any" if self.planner_id is None else "for_planner"  # which planners' tasks it claims
        self._claim, self._expire = f"tasks.claim_{scope}", f"tasks.expire_exhausted_{scope}"
        fused = f"tasks.finish_and_claim_{scope}"
        self._fused = fused if has(conn, fused) else None  # complete_and_claim_next in one statement

    def _claim_row(self, owner: str, lease_seconds: float) -> Any:
        """Inside the write transaction: claim one task and return its row (None if none is due).
        Times are stamped here, under the lock, so leases follow commit order.

        A task whose lease ran out on its last attempt is never handed out (the claim skips it);
        the sweep that fails it, with the reason, runs at most once per ``SWEEP_INTERVAL_S`` per
        manager, and whenever a claim finds nothing else to do: every claim paying for it cost
        9% of the claim rate. So a delayed task is claimed up to ``SWEEP_INTERVAL_S`` after its
        time while other work is ready, and at once when nothing else is."""
        params = self._claim_params({}, owner, lease_seconds)
        if time.monotonic() >= self._next_sweep:
            self._sweep(params)
            return run(self.conn, self._claim, params)
        row = run(self.conn, self._claim, params)
        if row is None and self._sweep(params):
            row = run(self.conn, self._claim, params)
        return row

    def _claim_params(self, params: dict[str, Any], owner: str, lease_seconds: float) -> dict[str, Any]:
        """``params`` plus what a claim binds. PostgreSQL stamps leases from the server's clock
        (lease_seconds); SQLite from ours (now, lease_expires_at)."""
        now = utc_now()
        params.update(owner=owner, now=now, lease_expires_at=utc_after(lease_seconds), lease_seconds=lease_seconds)
        backoff = params["lease_backoff_seconds"] = self.lease_backoff_seconds
        params["reclaim_before"] = utc_after(-backoff) if backoff else now
        if self.planner_id is not None:
            params["planner_id"] = self.planner_id
        return params

    def _sweep(self, params: dict[str, Any]) -> bool:
        """Fail exhausted leases, make due delayed tasks ready; whether any task became ready."""
        run(self.conn, self._expire, params)
        promoted = run(self.conn, "tasks.promote_due", params)
        self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_S
        return bool(promoted)

    def _finish_and_claim(self, params: dict[str, Any], owner: str, lease_seconds: float) -> Claim | None:
        """complete_and_claim_next as one statement, where the engine has it (PostgreSQL: one round
        trip instead of four). The lease sweep runs as in :meth:`_claim_row`, as its own statement."""
        assert self._fused is not None
        self._claim_params(params, owner, lease_seconds)
        if time.monotonic() >= self._next_sweep:
            self._sweep(params)
        row = run(self.conn, self._fused, params)
        if not row[0]:  # the token no longer holds the task: nothing was written
            refuse(self.conn, params["worker_id"], "complete", ("claimed",), params["token"])
        if row[1] is None:
            if not self._sweep(params):
                return None
            params["now"] = utc_now()
            again = run(self.conn, self._claim, params)  # a delayed task just became ready
            return None if again is None else Claim(task_from_row(again))
        return Claim(task_from_row(row[1:]))
