"""How a :class:`~agentstate.tasks.TaskManager` claims: the claim statement of its scope (one
planner's tasks, or any planner's), and the sweep that fails tasks whose lease ran out on their
last attempt and makes delayed tasks whose time has come ready, at most once per
``SWEEP_INTERVAL_S`` (and whenever a claim finds nothing ready). TaskManager's public claiming methods
(``claim``, ``claim_many``, ``complete_and_claim_next``) run these inside their transactions, and
wait for work with :mod:`agentstate.task_waiting` when given ``wait_seconds``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from agentstate.engine import Engine, Wakeups
from agentstate.engines import Connection
from agentstate.runner import has, run
from agentstate.task_arguments import held
from agentstate.task_steps import finish_params, refuse
from agentstate.task_types import DEFAULT_LEASE_SECONDS, Claim, task_from_row
from agentstate.task_waiting import verdict, waiting
from agentstate.transactions import lone_write, write
from agentstate.values import utc_after, utc_now

T = TypeVar("T")


class Claiming:
    """The claiming half of :class:`~agentstate.tasks.TaskManager`, which sets ``conn`` and
    ``planner_id`` and calls :meth:`_start_claiming` when it is made."""

    SWEEP_INTERVAL_S: float = 1.0
    """How often claims fail tasks whose lease ran out on their last attempt (see ``claim``)."""

    conn: Connection
    planner_id: str | None
    lease_backoff_seconds: float
    actor: str | None
    _engine: Engine

    def _start_claiming(self, conn: Connection) -> None:
        self._next_sweep = 0.0  # the first claim fails poison tasks (see _claim_row)
        scope = "any" if self.planner_id is None else "for_planner"  # which planners' tasks it claims
        self._claim, self._expire = f"tasks.claim_{scope}", f"tasks.expire_exhausted_{scope}"
        self._claimable = f"tasks.claimable_{scope}"
        fused = f"tasks.finish_and_claim_{scope}"
        self._fused = fused if has(conn, fused) else None  # complete_and_claim_next in one statement

    def _claim_one(self, owner: str, lease_seconds: float) -> Claim | None:
        # Its statements each commit alone where the engine allows (PostgreSQL: the claim is one
        # round trip; the sweep, when due, two more): none of them needs the others' effects undone.
        with lone_write(self.conn):
            row = self._claim_row(owner, lease_seconds)
        return None if row is None else Claim(task_from_row(row))  # decoded after the lock is let go

    def _claim_batch(self, owner: str, limit: int, lease_seconds: float) -> list[Claim]:
        rows: list[Any] = []
        with write(self.conn):
            while len(rows) < limit and (row := self._claim_row(owner, lease_seconds)) is not None:
                rows.append(row)
        return [Claim(task_from_row(row)) for row in rows]

    def _claim_again(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """What a waiting claim of the Async class repeats after its first try found nothing: the
        same claim, or after ``complete_and_claim_next`` (which must not complete twice) a plain
        ``claim`` by the same owner."""
        if name != "complete_and_claim_next":
            return name, args, {**kwargs, "wait_seconds": 0}
        token = args[1] if len(args) > 1 else kwargs.get("token")
        owner = held(args[0], token, self.actor)[2]
        return "claim", (owner,), {"lease_seconds": kwargs.get("lease_seconds", DEFAULT_LEASE_SECONDS)}

    def _complete_and_claim(
        self, worker_id: str, token: int, owner: str, result: Any, lease_seconds: float
    ) -> Claim | None:
        params = {**finish_params(worker_id, token, "completed", result, self.actor), "actor": owner}
        if self._fused is not None:
            return self._finish_and_claim(params, owner, lease_seconds)
        with write(self.conn):
            params["now"] = utc_now()
            if run(self.conn, "tasks.finish", params) is None:  # no need to decode it
                refuse(self.conn, worker_id, "complete", ("claimed",), token)
            row = self._claim_row(owner, lease_seconds)
        return None if row is None else Claim(task_from_row(row))

    def _claim_row(self, owner: str, lease_seconds: float) -> Any:
        """Inside the claim's write (its transaction; for :meth:`_claim_one` on PostgreSQL, each
        statement on its own): claim one task and return its row (None if none is due). Times
        are stamped here, under SQLite's lock, so leases follow commit order.

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

    # --- waiting for work (claim(..., wait_seconds=N)) ----------------------------------------

    def _wait_for_work(self, attempt: Callable[[], T], wait_seconds: float) -> T:
        """Repeat ``attempt`` (a claim that just found nothing) as work becomes claimable, for up
        to ``wait_seconds`` (see :mod:`agentstate.task_waiting`)."""
        return waiting(self._open_bell, self._look, attempt, wait_seconds)

    def _open_bell(self) -> Wakeups:
        return self._engine.wakeups(self.conn)

    def _look(self) -> tuple[bool, float | None]:
        """Whether a claim would find work now, and else when a delay or a lease falls due: a
        read, so waiters woken by a commit that made nothing claimable take no lock."""
        params: dict[str, Any] = {"now": utc_now(), "lease_backoff_seconds": self.lease_backoff_seconds}
        if self.planner_id is not None:
            params["planner_id"] = self.planner_id
        return verdict(run(self.conn, self._claimable, params))
