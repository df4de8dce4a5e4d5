"""The straightforward layout written directly on apsw: the guide's recommended schema, plain SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw

from bench.contenders.shared import LEASE_SECONDS, RESULT, Bound, message_fingerprint
from bench.contenders.untimed import bulk_load, reset_tasks
from bench.data import DataSpec, Payload, Progress
from bench.generate import RAW_LAYOUT, generate


def utc_text(delta_seconds: float = 0.0) -> str:
    """Now (+ delta) in agentstate's timestamp text, for the layouts that store it."""
    moment = datetime.now(UTC) + timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


RAW_SCHEMA = """
CREATE TABLE planners (
    planner_id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'active', metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY, planner_id TEXT NOT NULL REFERENCES planners (planner_id),
    task_status TEXT NOT NULL, description TEXT NOT NULL, acceptance_criteria TEXT NOT NULL,
    task_context TEXT NOT NULL, input_images TEXT NOT NULL, metadata TEXT NOT NULL, result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 3, fence INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_expires_at TEXT, updated_by TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
-- the guide's recommended indexes, as written there
CREATE INDEX idx_workers_planner_status ON workers (planner_id, task_status);
CREATE INDEX idx_workers_status ON workers (task_status);
CREATE TABLE planner_messages (
    id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE INDEX idx_planner_messages_agent_time ON planner_messages (agent_id, created_at);
"""

# The same connection settings as agentstate's pragmas.sql, so the comparison is about the layout.
RAW_PRAGMAS = {
    "busy_timeout": "10000",
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "cache_size": "-65536",
    "temp_store": "MEMORY",
}


class RawApsw:
    """The guide's recommended schema as anyone would write it directly on apsw: rowid tables,
    the recommended indexes, plain SQL. Messages live in a rowid table with an (agent_id,
    created_at) index and "latest 50" is ``ORDER BY created_at DESC LIMIT 50``."""

    name = "raw_apsw"
    operations = (
        "get_current_task",
        "get_completed_task",
        "latest_50",
        "keyset_page",
        "append_one",
        "append_turn_100",
        "append_bulk_10k",
        "claim_finish_1p",
        "claim_finish_4p",
    )
    builds = True

    SELECT_TASK = "SELECT * FROM workers WHERE planner_id = ? AND {} ORDER BY created_at LIMIT 1"
    INSERT_MESSAGE = (
        "INSERT INTO planner_messages (agent_id, role, content, metadata, created_at) VALUES (?, ?, ?, ?, ?)"
    )
    MESSAGE_COLUMNS = "id, agent_id, role, content, metadata, created_at"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: apsw.Connection | None = None

    def build(self, spec: DataSpec, progress: Progress) -> None:
        conn = apsw.Connection(str(self.path))
        conn.execute(RAW_SCHEMA)
        bulk_load(conn, lambda: generate(conn, RAW_LAYOUT, spec, progress))
        conn.close()

    def open(self) -> None:
        self.conn = apsw.Connection(str(self.path), statementcachesize=256)
        for name, value in RAW_PRAGMAS.items():
            self.conn.pragma(name, value)
        self.conn.transaction_mode = "IMMEDIATE"  # claim's SELECT-then-UPDATE under the write lock

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    # -- operations ---------------------------------------------------------------------------

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        conn = self.conn
        assert conn is not None
        if op == "get_current_task":
            sql = self.SELECT_TASK.format("task_status = 'pending'")
            return (lambda p: conn.execute(sql, (p,)).fetchone()), keys
        if op == "get_completed_task":
            sql = self.SELECT_TASK.format("task_status IN ('completed', 'failed_validation')")
            return (lambda p: conn.execute(sql, (p,)).fetchone()), keys
        if op == "latest_50":
            sql = f"SELECT {self.MESSAGE_COLUMNS} FROM planner_messages WHERE agent_id = ? ORDER BY created_at DESC LIMIT 50"
            return (lambda a: conn.execute(sql, (a,)).fetchall()), keys
        if op == "keyset_page":
            sql = (
                f"SELECT {self.MESSAGE_COLUMNS} FROM planner_messages WHERE agent_id = ? AND created_at < ? "
                "ORDER BY created_at DESC LIMIT 50"
            )
            find = "SELECT created_at FROM planner_messages WHERE agent_id = ? ORDER BY created_at LIMIT 1 OFFSET ?"
            cursors = [(a, conn.execute(find, (a, spec.per_planner // 2)).fetchone()[0]) for a in keys]
            return (lambda c: conn.execute(sql, c).fetchall()), cursors
        raise KeyError(op)

    def fingerprint(self, op: str, result: Any) -> Any:
        if op in ("get_current_task", "get_completed_task"):
            return result[0]
        return message_fingerprint([row[3] for row in result])

    def _row(self, agent_id: str, m: Payload) -> tuple[str, str, str, str, str]:
        return agent_id, m.role, m.content, json.dumps(m.metadata), utc_text()

    def append_one(self, agent_id: str, message: Payload) -> None:
        assert self.conn is not None
        with self.conn:
            self.conn.execute(self.INSERT_MESSAGE, self._row(agent_id, message))

    def append_bulk(self, items: Sequence[tuple[str, Payload]]) -> None:
        assert self.conn is not None
        with self.conn:
            self.conn.executemany(self.INSERT_MESSAGE, [self._row(a, m) for a, m in items])

    def append_turn(self, agent_id: str, turn: Sequence[Payload]) -> None:
        self.append_bulk([(agent_id, m) for m in turn])

    # -- claims -------------------------------------------------------------------------------

    CLAIM = """
        UPDATE workers SET task_status = 'claimed', lease_owner = :owner, lease_expires_at = :expires,
               fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = :now
        WHERE worker_id = (SELECT worker_id FROM workers WHERE task_status = 'pending' ORDER BY created_at LIMIT 1)
        RETURNING worker_id, fence
    """
    FINISH = """
        UPDATE workers SET task_status = 'completed', result = :result, lease_owner = NULL,
               lease_expires_at = NULL, updated_by = :owner, updated_at = :now
        WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :fence
    """

    def claim(self, owner: str) -> tuple[str, int, str] | None:
        assert self.conn is not None
        with self.conn:
            row = self.conn.execute(
                self.CLAIM, {"owner": owner, "expires": utc_text(LEASE_SECONDS), "now": utc_text()}
            ).fetchone()
        return None if row is None else (row[0], row[1], owner)

    def claim_id(self, claim: tuple[str, int, str]) -> str:
        return claim[0]

    def finish(self, claim: tuple[str, int, str]) -> None:
        assert self.conn is not None
        worker_id, fence, owner = claim
        with self.conn:
            self.conn.execute(
                self.FINISH,
                {
                    "worker_id": worker_id,
                    "fence": fence,
                    "owner": owner,
                    "result": json.dumps(RESULT),
                    "now": utc_text(),
                },
            )
            if self.conn.changes() != 1:
                raise RuntimeError(f"raw_apsw: finishing {worker_id} changed {self.conn.changes()} rows")

    def completed_and_reset(self, ids: Sequence[str]) -> int:
        """How many of ``ids`` are completed; then put them back to pending for the next round."""
        assert self.conn is not None
        return reset_tasks(self.conn, ids)
