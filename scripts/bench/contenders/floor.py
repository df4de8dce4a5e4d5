"""The SQLite floor: what SQLite itself can do, bare apsw: reads on agentstate's own file, writes on a
file of their own."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import apsw

from bench.contenders.shared import Bound
from bench.data import DataSpec, Progress


class Floor:
    """What SQLite itself can do: a bare apsw primary-key lookup of the very row agentstate's
    get_current_task / get_completed_task returns, and ``SELECT 1``, each through apsw's cache of
    prepared statements. It reads agentstate's file (or raw_apsw's when agentstate is left out)."""

    name = "floor"
    operations = ("get_current_task", "get_completed_task", "select_1")
    builds = False

    # The rows whose lookups we time are found the way agentstate's queries define them.
    _FIND: ClassVar[dict[str, str]] = {
        "get_current_task": "SELECT worker_id FROM workers WHERE planner_id = ? AND task_status = 'pending' "
        "ORDER BY created_at, worker_id LIMIT 1",
        "get_completed_task": "SELECT worker_id FROM workers WHERE planner_id = ? "
        "AND task_status IN ('completed', 'failed_validation') ORDER BY created_at, worker_id LIMIT 1",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: apsw.Connection | None = None

    def open(self) -> None:
        self.conn = apsw.Connection(str(self.path))  # apsw defaults: nothing but the statement cache

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        conn = self.conn
        assert conn is not None
        if op == "select_1":
            return (lambda _: conn.execute("SELECT 1").fetchone()), [None]
        ids = [conn.execute(self._FIND[op], (planner,)).fetchone()[0] for planner in keys]
        return (
            lambda worker_id: conn.execute("SELECT * FROM workers WHERE worker_id = ?", (worker_id,)).fetchone()
        ), ids

    def fingerprint(self, op: str, result: Any) -> Any:
        return None if op == "select_1" else result[0]


class WriteFloor:
    """What SQLite itself can do for a queue's writes: bare apsw on a file of its own, WAL, every
    write ``BEGIN IMMEDIATE; UPDATE`` of one small row ``; COMMIT``, through apsw's statement cache.
    enqueue is one such transaction; a claim is one and a complete another (the queue tests' two
    calls per task), each executor process updating a row of its own. No queue, no row found:
    the cost of the transactions alone, at ``synchronous`` NORMAL (``floor_write``) or FULL
    (``floor_write_full``)."""

    name = "floor_write"
    operations = ("enqueue_one", "claim_complete_1p", "claim_complete_4p")
    builds = True
    synchronous = "NORMAL"
    ROWS = 64

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: apsw.Connection | None = None
        self.row = 0
        self.done = 0

    def build(self, spec: DataSpec, progress: Progress) -> None:
        conn = apsw.Connection(str(self.path))
        conn.pragma("journal_mode", "WAL")
        conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        with conn:
            conn.executemany("INSERT INTO counters VALUES (?, 0)", [(i,) for i in range(self.ROWS)])
        conn.close()

    def open(self) -> None:
        self.conn = conn = apsw.Connection(str(self.path))
        conn.pragma("synchronous", self.synchronous)
        conn.set_busy_timeout(60_000)
        self.row = os.getpid() % self.ROWS  # a row per executor process

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _write(self) -> None:
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE counters SET n = n + 1 WHERE id = ?", (self.row,))
        conn.execute("COMMIT")

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        raise KeyError(op)

    def fingerprint(self, op: str, result: Any) -> Any:
        return None

    def enqueue(self, planner: str, task: dict[str, Any]) -> None:
        self._write()

    def claim(self, owner: str) -> str:
        self._write()
        self.done += 1
        return f"{owner}-{self.done}"  # unique across processes: the owners differ

    def claim_id(self, claim: str) -> str:
        return claim

    def finish(self, claim: str) -> None:
        self._write()

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        return len(ids)  # nothing to put back: every "task" was a write

    def backlog(self, count: int, planners: Sequence[str]) -> int:
        return count  # the floor's queue is never empty

    def end_backlog(self) -> None:
        pass


class WriteFloorFull(WriteFloor):
    """The same at synchronous=FULL: every commit fsynced."""

    name = "floor_write_full"
    synchronous = "FULL"
