"""The handle ``agentstate.connect("postgresql://...")`` returns: a pool of psycopg connections.

The managers take it where they take an apsw connection; :mod:`agentstate.engines` gives it the
PostgreSQL engine (:mod:`agentstate.postgres.engine`), which runs named queries and transactions
on it:

- A statement outside a transaction borrows a pooled connection (autocommit) for that statement.
- :meth:`PostgresConnection.transaction` (what ``agentstate.write`` opens) pins one pooled
  connection to the calling thread until the outermost block ends: ``BEGIN`` (READ COMMITTED:
  the PostgreSQL queries are written for it, with row locks, ``SKIP LOCKED`` and head rows) on
  the outer block, savepoints inside. :meth:`reading` is ``REPEATABLE READ READ ONLY``: one
  snapshot, as a SQLite read transaction gives. So, unlike an apsw connection, one handle serves
  any number of threads at once, each in its own transaction.
- Its async form (``connect_async``) runs the same calls on a thread pool, so the generated
  Async classes work unchanged.

This module imports psycopg only when a handle is made, so SQLite users never need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from agentstate import errors
from agentstate.monitor import Monitor

T = TypeVar("T")
_savepoints = itertools.count(1)
_pools = itertools.count(1)

DEFAULT_POOL_SIZE = 10
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_FAILOVER_TIMEOUT_S = 30.0


def _redacted(url: str) -> str:
    """The URL without user or password, with every host's port (libpq's default if none was
    given), for messages and logs: ``postgresql://db1:5432,db2:5432/agents``."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://..."
    db = parts.get("dbname", "")
    hosts = str(parts.get("host") or os.environ.get("PGHOST", "")).split(",")
    ports = str(parts.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    if len(ports) != len(hosts) or any(not h or h.startswith("/") for h in hosts):  # a Unix socket: no URL form
        named = f"host={','.join(hosts)}&" if any(hosts) else ""
        return f"postgresql:///{db}?{named}port={','.join(ports)}"
    return f"postgresql://{','.join(f'[{h}]:{p}' if ':' in h else f'{h}:{p}' for h, p in zip(hosts, ports, strict=True))}/{db}"


class PostgresConnection:
    """A PostgreSQL database shared by agents on many hosts, behind agentstate's usual API.

    Made by :func:`agentstate.connect` (or :func:`agentstate.connect_async`) from a
    ``postgresql://`` URL; pass it to :class:`~agentstate.TaskManager`, :class:`~agentstate.
    MessageLog`, :class:`~agentstate.Agents` (or their Async forms) as you would an SQLite
    connection. Close it with :meth:`close` (``await aclose()`` for the async form).
    """

    engine = "postgres"
    reader = None  # the Async classes' inline reader and writer: none here (see read_async)
    writer = None
    writing = 0

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        busy_timeout_ms: int | None = None,
        statement_timeout_ms: int | None = None,
        application_name: str = "agentstate",
        failover_timeout_s: float = DEFAULT_FAILOVER_TIMEOUT_S,
        synchronous_commit: bool = False,
        monitor: Monitor | None = None,
        is_async: bool = False,
    ) -> None:
        try:
            import psycopg_pool  # noqa: F401  # the extra's presence, checked first
        except ImportError:
            raise errors.AgentStateError(
                "a postgresql:// URL needs the postgres extra: pip install 'agentstate[postgres]'"
            ) from None
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        from agentstate.postgres import connection, pool
        from agentstate.postgres.translate import connect_cause, refusal

        try:
            conninfo_to_dict(url)  # refused at once, not retried until connect_timeout_s
        except ProgrammingError as exc:
            raise errors.InvalidValueError(f"not a valid PostgreSQL URL: {exc}") from None
        self.url = url
        self.readonly = readonly
        self.is_async = is_async
        self.monitor = monitor
        self.failover_timeout_s = failover_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pid = os.getpid()
        options = ["-c TimeZone=UTC"]
        # lock_timeout is SQLite's busy timeout: how long a statement waits for a row or table lock.
        options.append(f"-c lock_timeout={10_000 if busy_timeout_ms is None else busy_timeout_ms}")
        if statement_timeout_ms is not None:
            options.append(f"-c statement_timeout={statement_timeout_ms}")
        if readonly:
            options.append("-c default_transaction_read_only=on")
        if synchronous_commit:
            options.append("-c synchronous_commit=on")
        kwargs = {"autocommit": True, "application_name": application_name, "options": " ".join(options)}
        begin, shown = time.monotonic(), _redacted(url)
        pool.reach(url, kwargs, connect_timeout_s, shown)  # a refusal fails here, at once
        self.pool = pool.Pool(
            url,
            shown=shown,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            configure=connection.configure,
            timeout=connect_timeout_s,
            open=False,
            name=f"{application_name}#{next(_pools)}",  # unique: its warnings are recognised by name
        )
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        try:
            self.pool.open(wait=True, timeout=max(1.0, connect_timeout_s - (time.monotonic() - begin)))
        except Exception as exc:
            self.pool.close()
            failure = self.pool.last_failure
            if failure is not None and (rejected := refusal(failure)) is not None:
                raise rejected from None
            cause = connect_cause(failure) if failure is not None else str(exc)
            raise errors.ConnectionLostError(
                f"could not connect to {shown} within {connect_timeout_s} s: {cause}"
            ) from None

    def __repr__(self) -> str:
        return f"<agentstate PostgresConnection {_redacted(self.url)}{' async' if self.is_async else ''}>"

    # --- statements and transactions ---------------------------------------------------------

    @property
    def current(self) -> Any:
        """The psycopg connection of this thread's open transaction, or None."""
        return getattr(self._local, "conn", None)

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[Any]:
        """This thread's transaction connection, or a pooled one for one statement."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._pooled() as conn:
            yield conn

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """A pooled psycopg connection of your own for the block (autocommit; errors translated):
        for SQL of your own, with psycopg's ``%s`` placeholders."""
        import psycopg

        from agentstate.postgres.translate import translate

        with self._pooled() as conn:
            try:
                yield conn
            except psycopg.Error as exc:
                raise translate(exc) from exc

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[Any]:
        if self.pool.closed:
            raise errors.ConnectionClosedError("the connection is closed: open a new one with agentstate.connect()")
        if os.getpid() != self.pid:  # the pool's sockets are the parent's: sharing them mixes protocols
            raise errors.WrongProcessError(
                "this PostgreSQL handle was opened in another process (before os.fork()); open a new one here"
            )
        from psycopg import OperationalError
        from psycopg_pool import PoolTimeout

        from agentstate.postgres.translate import connect_cause, refusal

        try:
            conn = self.pool.getconn()
        except PoolTimeout as exc:
            failure = self.pool.last_failure
            if failure is not None and (rejected := refusal(failure)) is not None:
                raise rejected from None
            why = (
                f"the server cannot be reached: {connect_cause(failure)}"
                if failure is not None
                else f"all {self.pool.max_size} pooled connections were busy, or the server was slow to answer"
            )
            raise errors.ConnectionLostError(
                f"no connection to {_redacted(self.url)} within {self.pool.timeout} s ({why}): {exc}"
            ) from None
        except OperationalError as exc:  # the pool failed this wait: the server refused a new connection
            raise (
                refusal(exc) or errors.ConnectionLostError(f"no connection to {_redacted(self.url)}: {connect_cause(exc)}")
            ) from None
        try:
            yield conn
        finally:
            self.pool.putconn(conn)  # the pool discards a broken connection

    @contextlib.contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Any]:
        """A transaction pinned to this thread (a savepoint inside an open one). Commits when the
        block ends, rolls back when it raises; errors come out as agentstate's."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield from self._savepoint(conn)
            return
        with self._pooled() as conn:
            self._local.conn = conn
            try:
                _execute(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if read_only else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    _rollback(conn)
                    raise
                _execute(conn, "COMMIT", committing=not read_only)
            finally:
                self._local.conn = None

    def _savepoint(self, conn: Any) -> Iterator[Any]:
        name = f"agentstate_{next(_savepoints)}"  # a name we made, never user input
        _execute(conn, f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        _execute(conn, f"RELEASE SAVEPOINT {name}")

    def in_transaction(self) -> bool:
        return self.current is not None

    # --- async ---------------------------------------------------------------------------------

    def async_run(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a synchronous call on this handle's threads (what apsw's async connections do on
        their worker): the generated Async classes rely on it."""
        if self.pool.closed:
            raise errors.ConnectionClosedError("the connection is closed: open a new one with agentstate.connect()")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.pool.max_size, thread_name_prefix="agentstate-pg")
        future: Future[T] = self._executor.submit(self._on_worker, call, *args, **kwargs)
        return asyncio.wrap_future(future)

    def _on_worker(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        self._local.worker = True
        return call(*args, **kwargs)

    def on_worker(self) -> bool:
        """Whether this thread is one of the handle's async workers (where it answers like a
        synchronous handle)."""
        return getattr(self._local, "worker", False)

    # --- closing -------------------------------------------------------------------------------

    def close(self, force: bool = False) -> None:
        """Close every pooled connection (after the transactions in flight, unless ``force``)."""
        if self._executor is not None:
            self._executor.shutdown(wait=not force)
        self.pool.close(timeout=0 if force else 5.0)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _execute(conn: Any, sql: str, *, committing: bool = False) -> None:
    import psycopg

    from agentstate.postgres.translate import translate

    try:
        conn.execute(sql)
    except psycopg.Error as exc:
        if committing:
            _rollback(conn)
        raise translate(exc, sql.split()[0].lower(), committing=committing) from exc


def _rollback(conn: Any) -> None:
    """Roll back whatever is open; a broken connection has nothing left to roll back."""
    import psycopg

    with contextlib.suppress(psycopg.Error):
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
