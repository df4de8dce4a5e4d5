"""The engine protocol: the few things the query path asks of a database engine.

Each engine (:mod:`agentstate.sqlite`, :mod:`agentstate.postgres`) implements :class:`Engine`
once; :mod:`agentstate.engines` picks one from a path, a URL or a connection, and everything
above (the runner, transactions, migrations, the managers) talks to it through this interface
only, never to apsw or psycopg. Like aiosql's driver adapters: a variant imports this core,
never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from agentstate import errors
    from agentstate.queries import Query
    from agentstate.schema_files import Migration, MigrationStatus


# A loop of write transactions (retention, deletes in batches) sleeps this long between them, so
# a writer waiting for the lock (SQLite's busy handler tries every 10 ms) mostly gets in.
YIELD_S = 0.005


def yield_lock() -> None:
    """Between two write transactions of a long job: let waiting writers take the lock."""
    time.sleep(YIELD_S)


class StorageFacts(NamedTuple):
    """What a store takes, as its engine measures it: the size fields of
    :class:`agentstate.store_stats.Stats`, in its order (each engine's storage module says what
    they mean there), and ``now`` on the clock that stamps the store's times (UTC text)."""

    path: str
    file_bytes: int
    wal_bytes: int
    page_size: int
    page_count: int
    freelist_pages: int
    now: str


class Cursor(Protocol):
    """What :meth:`Engine.execute` returns: the runner reads each cardinality from it."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class WrongMode(Exception):
    """Raised by :meth:`Engine.execute` for an async connection called from outside its worker:
    the runner turns it into :class:`~agentstate.errors.InvalidTypeError`, naming the query."""


class Wakeups(Protocol):
    """A doorbell for a call that waits for work (``claim(wait_seconds=...)``): it rings when
    another connection, in any process, may have committed a change to tasks. A ring may be
    spurious (the waiter then looks, finds nothing and waits again); it is never missed once the
    doorbell is open. :mod:`agentstate.task_waiting` does the waiting."""

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when it rings (select, or the event loop's
        ``add_reader``); None when :meth:`rang` must be polled instead."""
        ...

    def rang(self) -> bool:
        """Whether it rang since the last call (never blocks; empties the descriptor)."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    """One database engine, as the query path sees it."""

    name: str
    """``"sqlite"`` or ``"postgres"``: the folder of its files, ``schema/<name>/``."""
    label: str
    """Its name in messages: ``"SQLite"``, ``"PostgreSQL"``."""
    driver_errors: tuple[type[Exception], ...]
    """The driver's exception classes, which :meth:`translate` turns into agentstate's."""
    no_upper_bound: object
    """A ``:before`` value its queries read as "no bound" (SQLite: an empty BLOB, which sorts
    after every text; PostgreSQL: NULL, which its queries test for)."""

    def registry(self) -> Mapping[str, Query]:
        """Its named queries (``schema/<name>/queries/*.sql``), by qualified name."""
        ...

    def statement(self, query: Query) -> Any:
        """A query's SQL prepared for :meth:`execute` (its placeholders in the driver's style)."""
        ...

    def execute(self, conn: Any, statement: Any, params: Any) -> Cursor:
        """Run one statement with ``params`` bound; its rows are read from the cursor returned."""
        ...

    def execute_many(self, conn: Any, statement: Any, params: Iterable[Any]) -> tuple[list[Any], int]:
        """Run one statement per parameter set: every row returned, and the rows changed."""
        ...

    def changes(self, conn: Any, cursor: Cursor) -> int:
        """Rows the statement just run through ``cursor`` changed."""
        ...

    def write(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction (a savepoint inside an open one): commits at the end of the block,
        rolls back when it raises; driver errors inside come out as agentstate's."""
        ...

    def lone_write(self, conn: Any) -> AbstractContextManager[Any]:
        """What a write of one statement runs in: :meth:`write`, or nothing where a statement
        outside a transaction commits as it runs and that costs less (PostgreSQL: one round trip
        where BEGIN, the statement and COMMIT are three)."""
        ...

    def reading(self, conn: Any) -> AbstractContextManager[None]:
        """A read transaction: every read inside sees one snapshot."""
        ...

    def write_async(self, conn: Any) -> AbstractAsyncContextManager[Any]:
        """:meth:`write` for an async connection's SQL of the caller's own (or a refusal)."""
        ...

    def translate(self, exc: Exception, context: str = "", *, conn: Any = None, writes: bool = False) -> errors.AgentStateError:
        """The agentstate error for a driver exception (``writes``: the statement changes rows,
        so a connection lost outside a transaction leaves its outcome unknown)."""
        ...

    def explain(self, conn: Any, sql: str) -> str:
        """A statement's plan in one line, for the slow-query log."""
        ...

    def require_sync(self, conn: Any, who: str) -> None:
        """Refuse an async connection where only a synchronous one will do."""
        ...

    def status(self, conn: Any, known: tuple[Migration, ...] | None) -> MigrationStatus:
        """Applied and pending migrations (``known``: the files to compare with; None: its own)."""
        ...

    def migrate(
        self, conn: Any, known: tuple[Migration, ...] | None, on_apply: Callable[[Migration], None] | None
    ) -> list[Migration]:
        """Apply every pending migration; return the ones applied."""
        ...

    def give_back_free_pages(self, conn: Any) -> int:
        """After deletes: hand free space back to the file system where the engine owns its files
        (SQLite's incremental vacuum); how many pages. 0 where the server owns them."""
        ...

    def checkpoint_truncate(self, conn: Any) -> bool:
        """Copy the write-ahead log into the database and truncate it where the engine owns one
        (SQLite); False if readers kept it from finishing."""
        ...

    def storage(self, conn: Any, run: Callable[..., Any]) -> StorageFacts:
        """The store's size, read with ``run`` (:func:`agentstate.runner.run`, handed in: the
        runner sits above the engines) in the caller's read transaction."""
        ...

    def wakeups(self, conn: Any) -> Wakeups:
        """A doorbell for waiting claims on ``conn``'s database (SQLite: the file system's notice
        of a write to the WAL; PostgreSQL: LISTEN on a connection of its own)."""
        ...

    def protect(self, manager: object) -> None:
        """Give a manager this engine's policy for a lost connection: which of its calls are
        repeated (see :mod:`agentstate.calls`). SQLite's connections are never lost: nothing."""
        ...
