"""The SQLite floor: what SQLite itself can do, bare apsw on agentstate's own file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import apsw

from bench.contenders.shared import Bound
from bench.data import DataSpec


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
