"""The SQLite engine: :class:`~agentstate.engine.Engine` over apsw."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

import apsw

from agentstate import errors, queries
from agentstate.engine import Cursor, StorageFacts, Wakeups
from agentstate.schema_files import Migration, MigrationStatus
from agentstate.sqlite import migrations, storage, transactions, vacuum, wakeups
from agentstate.sqlite.query_plans import plan_details
from agentstate.sqlite.translate import translate


class SqliteEngine:
    """SQLite through apsw: statements run on the connection itself; a write transaction is
    ``BEGIN IMMEDIATE`` after the writer gate."""

    name = "sqlite"
    label = "SQLite"
    driver_errors: tuple[type[Exception], ...] = (apsw.Error,)
    no_upper_bound: object = b""
    # apsw's own method, called without a Python frame in between: this is the hot path.
    execute = staticmethod(apsw.Connection.execute)

    def registry(self) -> Mapping[str, queries.Query]:
        return queries.registry()

    def statement(self, query: queries.Query) -> str:
        return query.sql

    def execute_many(self, conn: apsw.Connection, statement: str, params: Iterable[Any]) -> tuple[list[Any], int]:
        before = conn.total_changes()
        rows = conn.executemany(statement, params).fetchall()
        return rows, conn.total_changes() - before

    def changes(self, conn: apsw.Connection, cursor: Cursor) -> int:
        return conn.changes()

    def write(self, conn: apsw.Connection) -> AbstractContextManager[apsw.Connection]:
        return transactions.write(conn)

    def lone_write(self, conn: apsw.Connection) -> AbstractContextManager[apsw.Connection]:
        # A statement of its own would take the lock after its read began, and could then fail
        # with SQLITE_BUSY instead of waiting: every write goes through BEGIN IMMEDIATE.
        return transactions.write(conn)

    def reading(self, conn: apsw.Connection) -> AbstractContextManager[None]:
        return transactions.reading(conn)

    def write_async(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        return transactions.write_async(conn)

    def translate(
        self, exc: Exception, context: str = "", *, conn: Any = None, writes: bool = False
    ) -> errors.AgentStateError:
        assert isinstance(exc, apsw.Error)
        return translate(exc, context)

    def explain(self, conn: apsw.Connection, sql: str) -> str:
        return " | ".join(plan_details(conn, sql))

    def require_sync(self, conn: apsw.Connection, who: str) -> None:
        transactions.require_sync(conn, who)

    def status(self, conn: apsw.Connection, known: tuple[Migration, ...] | None) -> MigrationStatus:
        return migrations.status(conn, known)

    def migrate(
        self, conn: apsw.Connection, known: tuple[Migration, ...] | None, on_apply: Callable[[Migration], None] | None
    ) -> list[Migration]:
        return migrations.migrate(conn, known, on_apply)

    def give_back_free_pages(self, conn: apsw.Connection) -> int:
        return vacuum.give_back_free_pages(conn)

    def checkpoint_truncate(self, conn: apsw.Connection) -> bool:
        return vacuum.checkpoint_truncate(conn)

    def storage(self, conn: apsw.Connection, run: Callable[..., Any]) -> StorageFacts:
        return storage.storage(conn, run)

    def wakeups(self, conn: apsw.Connection) -> Wakeups:
        return wakeups.open_wakeups(conn.filename)

    def protect(self, manager: object) -> None:
        """An SQLite connection is never lost mid-call: nothing to repeat, no wrapper."""


SQLITE = SqliteEngine()
