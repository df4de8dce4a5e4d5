"""``connect()``: open a database that is ready to use, sync or async.

One connection per thread (apsw connections are thread-safe but serialise their calls), and one
or more per process; any number of processes may share the file. Writes go through
:func:`agentstate.engine.write` (``BEGIN IMMEDIATE``), so concurrent writers queue for up to
``busy_timeout_ms`` instead of failing with "database is locked".
"""

from __future__ import annotations

import os

import apsw

from agentstate import engine, errors, migrations
from agentstate.engine import DEFAULT_PATH, AsyncConnection, Durability, Settings
from agentstate.monitor import Monitor, QueryHook
from agentstate.postgres import handle as postgres
from agentstate.postgres.handle import PostgresConnection
from agentstate.values import require_int, require_seconds, require_str


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


def _ready(conn: apsw.Connection, readonly: bool, migrate: bool) -> None:
    """Bring the schema up to date, or refuse a database this code cannot use."""
    state = migrations.status(conn)
    if not state.pending:
        return
    if readonly or not migrate:
        names = ", ".join(m.filename for m in state.pending)
        raise errors.SchemaOutdatedError(
            f"the database needs migrations {names}: run 'agentstate migrate PATH' "
            "or open it with connect(path) (migrate=True)"
        )
    migrations.migrate(conn)


def connect(
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    readonly: bool = False,
    migrate: bool = True,
    durability: Durability = "normal",
    busy_timeout_ms: int | None = None,
    file_mode: int = engine.DEFAULT_FILE_MODE,
    monitoring: bool = True,
    slow_query_ms: float | None = None,
    on_query: QueryHook | None = None,
    writer_gate: bool = True,
    pool_size: int = postgres.DEFAULT_POOL_SIZE,
    connect_timeout_s: float = postgres.DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout_ms: int | None = None,
    application_name: str = "agentstate",
    failover_timeout_s: float = postgres.DEFAULT_FAILOVER_TIMEOUT_S,
) -> engine.Connection:
    """Open (creating if needed) an agentstate database and return a configured apsw connection.

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
        failover_timeout_s: PostgreSQL only (see :func:`open_postgres`); ``file_mode`` and
        ``writer_gate`` are SQLite's only.
    :raises SchemaError: the schema is newer than this code, or an applied file was edited or lost.
    :raises DatabaseCorruptError: the file is not an SQLite database, or is damaged.
    """
    settings = _settings(
        durability, busy_timeout_ms, file_mode, readonly, migrate, monitoring, slow_query_ms, on_query, writer_gate
    )
    _check_postgres_options(pool_size, connect_timeout_s, statement_timeout_ms, application_name, failover_timeout_s)
    if postgres.is_url(path):
        return open_postgres(  # type: ignore[return-value]  # the managers take either handle
            str(path), settings, readonly, migrate, pool_size, connect_timeout_s, statement_timeout_ms,
            application_name, failover_timeout_s, is_async=False,
        )  # fmt: skip
    # Without migrations a new file could never be used: do not create one.
    conn = engine.open_connection(path, readonly=readonly, settings=settings, create=migrate)
    try:
        _ready(conn, readonly, migrate)
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
    file_mode: int = engine.DEFAULT_FILE_MODE,
    monitoring: bool = True,
    slow_query_ms: float | None = None,
    on_query: QueryHook | None = None,
    writer_gate: bool = True,
    inline_reads: bool = True,
    inline_writes: bool = True,
    pool_size: int = postgres.DEFAULT_POOL_SIZE,
    connect_timeout_s: float = postgres.DEFAULT_CONNECT_TIMEOUT_S,
    statement_timeout_ms: int | None = None,
    application_name: str = "agentstate",
    failover_timeout_s: float = postgres.DEFAULT_FAILOVER_TIMEOUT_S,
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
    if postgres.is_url(path):
        import asyncio

        handle = await asyncio.to_thread(
            open_postgres, str(path), settings, readonly, migrate, pool_size, connect_timeout_s,
            statement_timeout_ms, application_name, failover_timeout_s, is_async=True,
        )  # fmt: skip
        return handle  # type: ignore[return-value]  # the Async classes take either handle
    conn = await engine.open_async_connection(path, readonly=readonly, settings=settings, create=migrate)
    try:
        if not isinstance(inline_reads, bool) or not isinstance(inline_writes, bool):
            raise errors.InvalidTypeError("inline_reads and inline_writes must be True or False")
        await engine.run_async(conn, _ready, conn, readonly, migrate)
        # A second connection to a memory database would be another database: none for those.
        if await engine.run_async(conn, getattr, conn, "filename"):
            if inline_reads:
                engine.open_reader(conn, engine.database_path(path), settings)
            if inline_writes and not readonly:
                engine.open_writer(conn, engine.database_path(path), settings)
    except BaseException:
        await conn.aclose()
        raise
    return conn


def open_postgres(
    url: str,
    settings: Settings,
    readonly: bool,
    migrate: bool,
    pool_size: int,
    connect_timeout_s: float,
    statement_timeout_ms: int | None,
    application_name: str,
    failover_timeout_s: float,
    *,
    is_async: bool,
) -> PostgresConnection:
    """A PostgreSQL handle, its schema brought up to date (or checked, when ``readonly`` or not
    ``migrate``).

    ``pool_size``: connections the handle keeps at most (one per thread in a transaction);
    ``connect_timeout_s``: how long to wait for a connection (the server's, or a free pooled one);
    ``busy_timeout_ms`` becomes ``lock_timeout`` and ``statement_timeout_ms`` ``statement_timeout``;
    ``application_name`` shows in ``pg_stat_activity``; ``failover_timeout_s``: how long calls that
    are safe to repeat keep retrying while the server is unreachable. ``durability="full"`` sets
    ``synchronous_commit=on`` for the handle's sessions; ``"normal"`` keeps the server's setting.
    """
    from agentstate.postgres import migrations as pg_migrations

    monitor = Monitor(settings.slow_query_ms, settings.on_query) if settings.monitoring else None
    handle = PostgresConnection(
        url,
        readonly=readonly,
        pool_size=pool_size,
        connect_timeout_s=connect_timeout_s,
        busy_timeout_ms=settings.busy_timeout_ms,
        statement_timeout_ms=statement_timeout_ms,
        application_name=application_name,
        failover_timeout_s=failover_timeout_s,
        synchronous_commit=settings.durability == "full",
        monitor=monitor,
        is_async=is_async,
    )
    try:
        with handle.session() as conn:
            if readonly or not migrate:
                pending = pg_migrations.status(conn).pending
                if pending:
                    names = ", ".join(m.filename for m in pending)
                    raise errors.SchemaOutdatedError(
                        f"the database needs migrations {names}: run 'agentstate migrate URL' "
                        "or connect with migrate=True"
                    )
            else:
                pg_migrations.migrate(conn)
    except BaseException:
        handle.close()
        raise
    return handle
