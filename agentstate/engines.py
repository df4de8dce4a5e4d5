"""Which engine serves a path, a URL or a connection: the one module that asks.

:func:`connect` and :func:`connect_async` open SQLite for a path (the embedded default) and
PostgreSQL for a ``postgresql://`` URL, and bring the schema up to date. :func:`engine_of` finds
the :class:`~agentstate.engine.Engine` of a connection; the runner, transactions and migrations
ask it, so nothing above this module knows which engine it is on.

One SQLite connection per thread (apsw connections are thread-safe but serialise their calls),
and one or more per process; any number of processes may share the file. A PostgreSQL handle
serves any number of threads. Writes go through :func:`agentstate.write` (``BEGIN IMMEDIATE``
on SQLite), so concurrent writers queue for up to ``busy_timeout_ms`` instead of failing with
"database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import apsw

from agentstate import errors
from agentstate.async_calls import run_async
from agentstate.engine import Engine
from agentstate.monitor import QueryHook
from agentstate.postgres.handle import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_FAILOVER_TIMEOUT_S,
    DEFAULT_POOL_SIZE,
    PostgresConnection,
)
from agentstate.settings import DEFAULT_FILE_MODE, Durability, Settings
from agentstate.sqlite import opening
from agentstate.sqlite.engine import SQLITE
from agentstate.sqlite.files import database_path
from agentstate.values import require_int, require_seconds, require_str

if TYPE_CHECKING:
    AsyncSqlite: TypeAlias = apsw.AsyncConnection
else:  # apsw defines the async connection type in its stubs only
    AsyncSqlite = apsw.Connection

Connection: TypeAlias = "apsw.Connection | PostgresConnection"
"""What :func:`connect` returns and the managers take: an apsw connection (agentstate's own
:class:`~agentstate.sqlite.connection.Connection`, or one made by hand) or a PostgreSQL handle."""
AsyncConnection: TypeAlias = "AsyncSqlite | PostgresConnection"
"""What :func:`connect_async` returns and the Async classes take."""

DEFAULT_PATH = "agentstate.db"
DEFAULT_ENGINE: Engine = SQLITE
"""The embedded default: the engine of a path, and of the query registry tools read."""

_BY_TYPE: dict[type, Engine] = {}


def is_url(path: object) -> bool:
    """Whether ``connect()`` was given a PostgreSQL URL rather than an SQLite path."""
    return isinstance(path, str) and path.startswith(("postgresql://", "postgres://"))


def engine_of(conn: object) -> Engine:
    """The engine of a connection (one dictionary lookup once its type has been seen).

    :raises InvalidTypeError: ``conn`` is not a connection.
    """
    try:
        return _BY_TYPE[type(conn)]
    except KeyError:
        pass
    found = _resolve(conn)
    if found is None:
        raise errors.InvalidTypeError(
            f"expected a connection from agentstate.connect() (or connect_async()), not {type(conn).__name__}"
        )
    _BY_TYPE[type(conn)] = found
    return found


def _resolve(conn: object) -> Engine | None:
    if isinstance(conn, apsw.Connection):
        return SQLITE
    if isinstance(conn, PostgresConnection):
        from agentstate.postgres.engine import POSTGRES  # psycopg: only once a handle exists

        return POSTGRES
    psycopg = sys.modules.get("psycopg")  # loaded by now if conn is a psycopg connection
    if psycopg is not None and isinstance(conn, psycopg.Connection):
        from agentstate.postgres.engine import POSTGRES_DIRECT

        return POSTGRES_DIRECT
    return None


def require_connection(conn: object, who: str, *, sync_only: bool = False) -> Engine:
    """The engine of ``conn``; anything but a connection is refused early, with a message instead
    of an AttributeError later.

    :param sync_only: also refuse an async connection (for calls no Async class wraps).
    """
    try:
        engine = engine_of(conn)
    except errors.InvalidTypeError:
        raise errors.InvalidTypeError(
            f"{who} takes a connection from agentstate.connect() (or connect_async()), not {type(conn).__name__}"
        ) from None
    if sync_only:
        engine.require_sync(conn, who)
    return engine


def require_async_connection(conn: object, who: str) -> Engine:
    """The engine of an async connection; anything else is refused (the Async classes, write_async)."""
    if not isinstance(conn, (apsw.Connection, PostgresConnection)) or not conn.is_async:
        raise errors.InvalidTypeError(
            f"{who} takes a connection from agentstate.connect_async(), not {type(conn).__name__} "
            "(use the synchronous classes with agentstate.connect())"
        )
    return engine_of(conn)


def require_sqlite(conn: object, who: str, instead: str) -> None:
    """Refuse a PostgreSQL URL or handle for work that is about an SQLite file (a copy of it, its
    pages), saying what does that job on PostgreSQL."""
    if is_url(conn) or isinstance(conn, PostgresConnection):
        raise errors.InvalidTypeError(f"{who} works on an SQLite database; on PostgreSQL, {instead}")


def open_unmigrated(path: str | os.PathLike[str]) -> Connection:
    """A connection on which :func:`agentstate.migrate` can bring any schema up to date (no
    check of its own; ``agentstate migrate``): an SQLite file (created if missing), or a
    PostgreSQL handle of one pooled connection."""
    if is_url(path):
        from agentstate.postgres.engine import open_handle

        return open_handle(
            str(path), Settings(), False, pool_size=1, connect_timeout_s=DEFAULT_CONNECT_TIMEOUT_S,
            statement_timeout_ms=None, application_name="agentstate", failover_timeout_s=DEFAULT_FAILOVER_TIMEOUT_S,
            is_async=False,
        )  # fmt: skip
    return opening.open_connection(path)


def is_connection(conn: object) -> bool:
    """Whether ``conn`` is a connection of either engine."""
    return type(conn) in _BY_TYPE or _resolve(conn) is not None


@contextlib.contextmanager
def translating(context: str = "") -> Iterator[None]:
    """Driver errors raised inside, of whichever engine, come out as agentstate's (for code that
    holds no connection to ask, such as a session being set up)."""
    try:
        yield
    except Exception as exc:
        for engine in set(_BY_TYPE.values()) | {SQLITE}:
            if isinstance(exc, engine.driver_errors):
                raise engine.translate(exc, context) from exc
        raise


def is_sqlite(conn: object) -> bool:
    """Whether ``conn`` is an SQLite connection (the CLI's file commands, backup)."""
    return isinstance(conn, apsw.Connection)


def _settings(
    durability: Durability,
    busy_timeout_ms: int | None,
    file_mode: int,
    readonly: bool,
    migrate: bool,
    monitoring: bool,
    slow_query_ms: float | None,
    on_query: QueryHook | None,
    writer_gate: bool,
) -> Settings:
    if not all(isinstance(flag, bool) for flag in (readonly, migrate, monitoring, writer_gate)):
        raise errors.InvalidTypeError("readonly, migrate, monitoring and writer_gate must be True or False")
    if not isinstance(durability, str) or durability not in ("normal", "full"):
        raise errors.InvalidValueError(f"durability must be 'normal' or 'full', not {durability!r}")
    if on_query is not None and not callable(on_query):
        raise errors.InvalidTypeError(f"on_query must be a callable(name, seconds, rows), not {type(on_query).__name__}")
    return Settings(
        durability=durability,
        busy_timeout_ms=busy_timeout_ms,
        file_mode=file_mode,
        monitoring=monitoring,
        slow_query_ms=slow_query_ms,
        on_query=() if on_query is None else (on_query,),
        writer_gate=writer_gate,
    )


MAX_POOL_SIZE = 1000
MAX_APPLICATION_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1


def _check_postgres_options(
    pool_size: object,
    connect_timeout_s: object,
    statement_timeout_ms: object,
    application_name: object,
    failover_timeout_s: object,
) -> None:
    """The PostgreSQL options are checked whatever the engine: a typo fails the same way on both."""
    if require_int("pool_size", pool_size, minimum=1) > MAX_POOL_SIZE:
        raise errors.InvalidValueError(f"pool_size must be at most {MAX_POOL_SIZE}, got {pool_size}")
    require_seconds("connect_timeout_s", connect_timeout_s)
    if not (type(failover_timeout_s) in (int, float) and failover_timeout_s == 0):
        require_seconds("failover_timeout_s", failover_timeout_s)
    if statement_timeout_ms is not None and require_int("statement_timeout_ms", statement_timeout_ms, minimum=0) > 2**31 - 1:
        raise errors.InvalidValueError(f"statement_timeout_ms must be at most {2**31 - 1} (PostgreSQL's limit)")
    name_bytes = len(require_str("application_name", application_name).encode())
    if name_bytes > MAX_APPLICATION_NAME_BYTES:
        # PostgreSQL cuts a longer name to 63 bytes, and one past its startup packet's limit closes
        # the connection: the pool would retry it until connect_timeout_s, then report it lost.
        raise errors.InvalidValueError(
            f"application_name must be at most {MAX_APPLICATION_NAME_BYTES} bytes (PostgreSQL's limit), "
            f"got {name_bytes}"
        )


def _ready(engine: Engine, conn: Any, readonly: bool, migrate: bool, where: str) -> None:
    """Bring the schema up to date, or refuse a database this code cannot use."""
    state = engine.status(conn, None)
    if not state.pending:
        return
    if readonly or not migrate:
        names = ", ".join(m.filename for m in state.pending)
        raise errors.SchemaOutdatedError(f"the database needs migrations {names}: {where}")
    engine.migrate(conn, None, None)


_FIX_SQLITE = "run 'agentstate migrate PATH' or open it with connect(path) (migrate=True)"
_FIX_POSTGRES = "run 'agentstate migrate URL' or connect with migrate=True"


def _open_postgres(url: str, settings: Settings, readonly: bool, migrate: bool, **options: Any) -> PostgresConnection:
    """A PostgreSQL handle, its schema brought up to date (or checked, when ``readonly`` or not
    ``migrate``); closed again if that fails."""
    from agentstate.postgres.engine import POSTGRES, open_handle

    handle = open_handle(url, settings, readonly, **options)
    try:
        _ready(POSTGRES, handle, readonly, migrate, _FIX_POSTGRES)
    except BaseException:
        handle.close()
        raise
    return handle


def connect(
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    readonly: bool = False,
    migrate: bool = True,
    durability: Durability = "normal",
    busy_timeout_ms: int | None = None,
    file_mode: int = DEFAULT_FILE_MODE,
    monitoring: bool = True,
    slow_query_ms: float | None = None,
    on_query: QueryHook | None = None,
    writer_gate: bool = True,
    pool_size: int = DEFAULT_POOL_SIZE,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout_ms: int | None = None,
    application_name: str = "agentstate",
    failover_timeout_s: float = DEFAULT_FAILOVER_TIMEOUT_S,
) -> Connection:
    """Open (creating if needed) an agentstate database and return a configured connection.

    :param path: a file path, ``":memory:"``, or an SQLite ``file:`` URI; or a
        ``postgresql://`` URL, which returns a :class:`~agentstate.postgres.handle.PostgresConnection`
        the managers take alike (see docs/postgres.md).
    :param readonly: open without write access; the schema must already be current.
    :param migrate: apply pending migrations (the default); if False, pending ones raise.
    :param durability: ``"normal"`` (synchronous=NORMAL) or ``"full"`` (every commit fsynced).
    :param busy_timeout_ms: how long a writer waits for another's write lock (default 10 s).
    :param file_mode: permissions of a file this call creates (default ``0o600``: owner only);
        the -wal and -shm files get the same. An existing file keeps its permissions.
    :param monitoring: time every named query (statistics, slow-query log, ``on_query``).
    :param slow_query_ms: log queries slower than this on the ``agentstate`` logger (default:
        ``AGENTSTATE_SLOW_QUERY_MS``, else 100; 0 logs every query).
    :param on_query: called as ``on_query(name, seconds, rows)`` after every named query.
    :param writer_gate: queue this connection's write transactions in arrival order at the
        file's writer gate (``<path>-lock``; see docs/concurrency.md). False
        leaves writers to poll SQLite's lock only: more peak throughput under contention, and a
        long tail (a few writers waiting hundreds of milliseconds).
    :param pool_size, connect_timeout_s, statement_timeout_ms, application_name,
        failover_timeout_s: PostgreSQL only (see :func:`agentstate.postgres.engine.open_handle`); ``file_mode`` and
        ``writer_gate`` are SQLite's only.
    :raises SchemaError: the schema is newer than this code, or an applied file was edited or lost.
    :raises DatabaseCorruptError: the file is not an SQLite database, or is damaged.
    """
    settings = _settings(
        durability, busy_timeout_ms, file_mode, readonly, migrate, monitoring, slow_query_ms, on_query, writer_gate
    )
    _check_postgres_options(pool_size, connect_timeout_s, statement_timeout_ms, application_name, failover_timeout_s)
    if is_url(path):
        return _open_postgres(
            str(path), settings, readonly, migrate, pool_size=pool_size, connect_timeout_s=connect_timeout_s,
            statement_timeout_ms=statement_timeout_ms, application_name=application_name,
            failover_timeout_s=failover_timeout_s, is_async=False,
        )  # fmt: skip
    # Without migrations a new file could never be used: do not create one.
    conn = opening.open_connection(path, readonly=readonly, settings=settings, create=migrate)
    try:
        _ready(SQLITE, conn, readonly, migrate, _FIX_SQLITE)
    except BaseException:
        conn.close()
        raise
    return conn


async def connect_async(
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    readonly: bool = False,
    migrate: bool = True,
    durability: Durability = "normal",
    busy_timeout_ms: int | None = None,
    file_mode: int = DEFAULT_FILE_MODE,
    monitoring: bool = True,
    slow_query_ms: float | None = None,
    on_query: QueryHook | None = None,
    writer_gate: bool = True,
    inline_reads: bool = True,
    inline_writes: bool = True,
    pool_size: int = DEFAULT_POOL_SIZE,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout_ms: int | None = None,
    application_name: str = "agentstate",
    failover_timeout_s: float = DEFAULT_FAILOVER_TIMEOUT_S,
) -> AsyncConnection:
    """:func:`connect` for asyncio: an apsw async connection whose calls run on its own thread.

    Use it with the async classes (:class:`agentstate.AsyncTaskManager`, ...), and close it with
    ``await conn.aclose()``.

    :param inline_reads: let the async classes run reads on the event loop's thread, on a second,
        read-only connection to the file (no thread hop: a read costs what it costs in sync code,
        and blocks the loop that long; False sends every call to the worker thread). Reads inside
        an open :func:`agentstate.write_async` block always go to the worker thread.
    :param inline_writes: at durability ``"normal"``, let the async classes run a write that
        is one transaction on the event loop's thread, on a second connection, when the write
        lock is free at once (no thread hop); when another writer has or awaits it, the write
        goes to the worker thread and waits there. False: every write goes to the worker.

    Given a ``postgresql://`` URL, the handle runs the same calls on a thread pool (``pool_size``
    threads and connections); the inline settings are SQLite's only.
    """
    settings = _settings(
        durability, busy_timeout_ms, file_mode, readonly, migrate, monitoring, slow_query_ms, on_query, writer_gate
    )
    _check_postgres_options(pool_size, connect_timeout_s, statement_timeout_ms, application_name, failover_timeout_s)
    if is_url(path):
        return await asyncio.to_thread(
            _open_postgres, str(path), settings, readonly, migrate, pool_size=pool_size,
            connect_timeout_s=connect_timeout_s, statement_timeout_ms=statement_timeout_ms,
            application_name=application_name, failover_timeout_s=failover_timeout_s, is_async=True,
        )  # fmt: skip
    conn = await opening.open_async_connection(path, readonly=readonly, settings=settings, create=migrate)
    try:
        if not isinstance(inline_reads, bool) or not isinstance(inline_writes, bool):
            raise errors.InvalidTypeError("inline_reads and inline_writes must be True or False")
        await run_async(conn, _ready, SQLITE, conn, readonly, migrate, _FIX_SQLITE)
        # A second connection to a memory database would be another database: none for those.
        if await run_async(conn, getattr, conn, "filename"):
            if inline_reads:
                opening.open_reader(conn, database_path(path), settings)
            if inline_writes and not readonly:
                opening.open_writer(conn, database_path(path), settings)
    except BaseException:
        await conn.aclose()
        raise
    return conn
