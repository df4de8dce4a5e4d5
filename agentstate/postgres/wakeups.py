"""PostgreSQL's doorbell for waiting claims: ``LISTEN agentstate_tasks`` on a connection of the
waiter's own. The triggers of schema/postgres/0005_task_wakeups.sql notify that channel from
every transaction that may make a task claimable or finish one, and PostgreSQL delivers the
notification to every listener, on any host, when that transaction commits.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg.conninfo import make_conninfo  # type: ignore[import-not-found, unused-ignore]

from agentstate.postgres.translate import translate

CHANNEL = "agentstate_tasks"


class ListenWakeups:
    """Rings when a notification on :data:`CHANNEL` arrives. If its connection is lost it rings
    once and then never again (its descriptor becomes None): the waiter then wakes on its timers
    alone, and its next wait opens a new doorbell."""

    def __init__(self, conninfo: str, connect_timeout_s: float) -> None:
        try:
            self._conn: Any = psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, round(connect_timeout_s)))
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            raise translate(exc, "opening the connection a waiting call listens on") from exc

    def fileno(self) -> int | None:
        return None if self._conn is None else int(self._conn.pgconn.socket)

    def rang(self) -> bool:
        if self._conn is None:
            return False
        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error:
            self.close()  # lost: see the class docstring
            return True
        rang = False
        while pgconn.notifies() is not None:
            rang = True
        return rang

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def conninfo_of(conn: Any) -> str:
    """A bare psycopg connection's parameters, password included (its ``dsn`` leaves it out)."""
    return str(make_conninfo(conn.info.dsn, password=conn.info.password or None))
