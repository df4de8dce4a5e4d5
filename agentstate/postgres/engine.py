"""The PostgreSQL engine: :class:`~agentstate.engine.Engine` over psycopg 3.

Imported once a handle exists (:mod:`agentstate.engines` does it), so psycopg is needed only
for PostgreSQL. On a handle (:data:`POSTGRES`) a statement runs on the calling thread's
transaction, or on a pooled connection (autocommit) for that one statement. On a bare psycopg
connection (the tests' and tools' own: :data:`POSTGRES_DIRECT`) it simply runs there.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, NamedTuple

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent

from agentstate import errors, queries
from agentstate.engine import StorageFacts, Wakeups, WrongMode
from agentstate.monitor import Monitor
from agentstate.postgres import failover, migrations, storage, wakeups
from agentstate.postgres.handle import PostgresConnection
from agentstate.postgres.queries import Query, registry
from agentstate.postgres.translate import translate
from agentstate.schema_files import Migration, MigrationStatus
from agentstate.settings import Settings


class Fetched:
    """A statement's rows, read before its connection went back to the pool."""

    __slots__ = ("_next", "rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows, self.rowcount, self._next = rows, rowcount, 0

    def fetchone(self) -> Any:
        if self._next >= len(self.rows):
            return None
        self._next += 1
        return self.rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest, self._next = self.rows[self._next :], len(self.rows)
        return rest


@functools.cache
def _blocks() -> dict[str, queries.Query]:
    return {name: query.block for name, query in registry().items()}


class Statement(NamedTuple):
    """A query as this engine runs it: psycopg's SQL, how to bind, and whether it returns rows
    (known once here: asking the cursor builds a description of every column, per call)."""

    query: Query
    sql: str
    returns_rows: bool


class PostgresEngine:
    """PostgreSQL through psycopg: a handle's pool, transactions pinned to a thread."""

    name = "postgres"
    label = "PostgreSQL"
    driver_errors: tuple[type[Exception], ...] = (psycopg.Error,)
    no_upper_bound: object = None

    def registry(self) -> Mapping[str, queries.Query]:
        return _blocks()

    def statement(self, query: queries.Query) -> Statement:
        found = registry()[query.name]
        return Statement(found, found.sql, query.cardinality != "exec")

    @contextlib.contextmanager
    def _connection(self, conn: PostgresConnection) -> Iterator[Any]:
        """The psycopg connection a statement runs on."""
        if conn.is_async and not conn.on_worker():
            raise WrongMode  # a synchronous class on an async handle would block the event loop
        with conn.borrowed() as pg:
            yield pg

    def execute(self, conn: Any, statement: Statement, params: Any) -> Fetched:
        with self._connection(conn) as pg:
            cursor = pg.execute(statement.sql, statement.query.bind(params))
            return Fetched(cursor.fetchall() if statement.returns_rows else [], cursor.rowcount)

    def execute_many(self, conn: Any, statement: Statement, params: Iterable[Any]) -> tuple[list[Any], int]:
        bound = [statement.query.bind(p) for p in params]
        if not bound:  # executemany of nothing leaves no result to fetch
            return [], 0
        with self._connection(conn) as pg, pg.cursor() as cursor:
            if not statement.returns_rows:
                cursor.executemany(statement.sql, bound)
                return [], cursor.rowcount
            cursor.executemany(statement.sql, bound, returning=True)
            rows: list[Any] = []
            while True:
                rows.extend(cursor.fetchall())
                if not cursor.nextset():
                    return rows, len(rows)

    def changes(self, conn: Any, cursor: Any) -> int:
        return int(cursor.rowcount)

    def write(self, conn: PostgresConnection) -> AbstractContextManager[PostgresConnection]:
        return self._transaction(conn, read_only=False)

    def lone_write(self, conn: PostgresConnection) -> AbstractContextManager[Any]:
        # Outside a transaction the statement runs on an autocommit pooled connection, which
        # commits it as it runs; inside one it needs the savepoint, so that its failure does not
        # abort the caller's transaction.
        return self.write(conn) if conn.in_transaction() else contextlib.nullcontext()

    def reading(self, conn: PostgresConnection) -> AbstractContextManager[None]:
        return self._transaction(conn, read_only=True)

    @contextlib.contextmanager
    def _transaction(self, conn: PostgresConnection, *, read_only: bool) -> Iterator[Any]:
        if not read_only and conn.is_async and not conn.on_worker():
            raise errors.InvalidTypeError(
                "write() was given an async connection, whose calls return awaitables it cannot run: "
                "use 'async with agentstate.write_async(conn):' instead"
            )
        with conn.transaction(read_only=read_only):
            try:
                yield None if read_only else conn
            except psycopg.Error as exc:  # SQL of the caller's own, on the block's connection
                raise translate(exc) from exc

    def write_async(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        raise errors.InvalidTypeError(
            "write_async() runs raw SQL on an SQLite connection; on PostgreSQL use the Async classes, or "
            "psycopg's own AsyncConnection for SQL of your own"
        )

    def translate(
        self, exc: Exception, context: str = "", *, conn: Any = None, writes: bool = False
    ) -> errors.AgentStateError:
        # A write outside a transaction commits as it runs: a broken connection leaves it unknown.
        return translate(exc, context, committing=writes and conn is not None and not conn.in_transaction())

    def explain(self, conn: Any, sql: str) -> str:
        # EXPLAIN would be another round trip on the server being slow; the plan tests check them.
        return "(PostgreSQL: see EXPLAIN on the server, or pg_stat_statements)"

    def require_sync(self, conn: PostgresConnection, who: str) -> None:
        if conn.is_async and not conn.on_worker():
            raise errors.InvalidTypeError(f"{who} takes a connection from agentstate.connect(), not connect_async()")

    def status(self, conn: PostgresConnection, known: tuple[Migration, ...] | None) -> MigrationStatus:
        with conn.session() as session:
            return migrations.status(session, known)

    def migrate(
        self, conn: PostgresConnection, known: tuple[Migration, ...] | None, on_apply: Callable[[Migration], None] | None
    ) -> list[Migration]:
        with conn.session() as session:
            return migrations.migrate(session, known, on_apply)

    def give_back_free_pages(self, conn: Any) -> int:
        return 0  # autovacuum makes dead rows' space reusable; the server owns its files

    def checkpoint_truncate(self, conn: Any) -> bool:
        return True  # no write-ahead log of ours to truncate

    def storage(self, conn: PostgresConnection, run: Callable[..., Any]) -> StorageFacts:
        return storage.storage(conn, run)

    def wakeups(self, conn: PostgresConnection) -> Wakeups:
        return wakeups.ListenWakeups(conn.url, conn.connect_timeout_s)

    def protect(self, manager: object) -> None:
        failover.protect(manager)


class DirectPostgresEngine(PostgresEngine):
    """The runner on a bare psycopg connection of the caller's own: statements run on it as they
    are, in whatever transaction it has; nothing is repeated after a lost connection."""

    @contextlib.contextmanager
    def _connection(self, conn: Any) -> Iterator[Any]:
        yield conn

    def lone_write(self, conn: Any) -> AbstractContextManager[Any]:
        return self.write(conn)  # the caller's connection, in whatever mode the caller set

    def translate(
        self, exc: Exception, context: str = "", *, conn: Any = None, writes: bool = False
    ) -> errors.AgentStateError:
        return translate(exc, context)

    def wakeups(self, conn: Any) -> Wakeups:
        return wakeups.ListenWakeups(wakeups.conninfo_of(conn), 10.0)

    def protect(self, manager: object) -> None:
        """The caller's own connection: theirs to reconnect."""


POSTGRES = PostgresEngine()
POSTGRES_DIRECT = DirectPostgresEngine()


def open_handle(
    url: str,
    settings: Settings,
    readonly: bool,
    *,
    pool_size: int,
    connect_timeout_s: float,
    statement_timeout_ms: int | None,
    application_name: str,
    failover_timeout_s: float,
    is_async: bool,
) -> PostgresConnection:
    """A PostgreSQL handle (no schema check: see :func:`agentstate.connect`).

    ``pool_size``: connections the handle keeps at most (one per thread in a transaction);
    ``connect_timeout_s``: how long to wait for a connection (the server's, or a free pooled one);
    ``busy_timeout_ms`` becomes ``lock_timeout`` and ``statement_timeout_ms`` ``statement_timeout``;
    ``application_name`` shows in ``pg_stat_activity``; ``failover_timeout_s``: how long calls that
    are safe to repeat keep retrying while the server is unreachable. ``durability="full"`` sets
    ``synchronous_commit=on`` for the handle's sessions; ``"normal"`` keeps the server's setting.
    """
    return PostgresConnection(
        url,
        readonly=readonly,
        pool_size=pool_size,
        connect_timeout_s=connect_timeout_s,
        busy_timeout_ms=settings.busy_timeout_ms,
        statement_timeout_ms=statement_timeout_ms,
        application_name=application_name,
        failover_timeout_s=failover_timeout_s,
        synchronous_commit=settings.durability == "full",
        monitor=Monitor(settings.slow_query_ms, settings.on_query) if settings.monitoring else None,
        is_async=is_async,
    )
