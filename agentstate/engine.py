"""The SQLite engine: everything that knows it is talking to SQLite through apsw lives here.

Opening a connection, the pragmas, how a write transaction starts, where the engine's SQL files
are, and how apsw exceptions become agentstate's. A PostgreSQL engine would be a sibling module
with the same five things and its own ``schema/postgresql/`` folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import apsw

from agentstate import checkpoint, errors

ENGINE = "sqlite"
DEFAULT_PATH = "agentstate.db"
# STRICT tables need 3.37, RETURNING 3.35, ON CONFLICT ... DO NOTHING with RETURNING 3.35.
MIN_SQLITE = (3, 37, 0)
# Pragmas stored in the database file: applied once, when agentstate creates the file.
FILE_PRAGMAS = frozenset({"auto_vacuum", "journal_mode"})
# Our registry holds under 100 statements; keep every one of them prepared.
STATEMENT_CACHE_SIZE = 256

if TYPE_CHECKING:
    AsyncConnection: TypeAlias = apsw.AsyncConnection
else:  # apsw defines the async connection type in its stubs only
    AsyncConnection = apsw.Connection

Durability = Literal["normal", "full"]
T = TypeVar("T")


def schema_dir(engine: str = ENGINE) -> Path:
    """The folder of this engine's .sql files, in a wheel or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schema" / engine, here.parent / "schema" / engine):
        if candidate.is_dir():
            return candidate
    raise errors.SchemaError(f"cannot find the {engine} schema files next to {here}; reinstall agentstate")


@dataclass(frozen=True)
class Pragma:
    """One line of pragmas.sql."""

    name: str
    value: str


_PRAGMA_LINE = re.compile(r"^PRAGMA\s+(\w+)\s*=\s*([\w-]+)\s*;\s*$", re.IGNORECASE)


def load_pragmas(path: Path | None = None) -> tuple[Pragma, ...]:
    """Parse ``pragmas.sql``: one ``PRAGMA name = value;`` per line, comments allowed."""
    return _parse_pragmas(path) if path is not None else _shipped_pragmas()


@cache
def _shipped_pragmas() -> tuple[Pragma, ...]:
    return _parse_pragmas(schema_dir() / "pragmas.sql")


def _parse_pragmas(path: Path) -> tuple[Pragma, ...]:
    pragmas = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        match = _PRAGMA_LINE.match(text)
        if not match:
            raise errors.SchemaError(f"{path}:{lineno}: expected 'PRAGMA name = value;', got {text!r}")
        pragmas.append(Pragma(match.group(1).lower(), match.group(2)))
    return tuple(pragmas)


@dataclass(frozen=True)
class Settings:
    """How connections are opened. pragmas.sql holds the defaults; these override a few of them."""

    durability: Durability = "normal"
    """``normal``: synchronous=NORMAL, a power cut may lose the last commits, never corrupts.
    ``full``: synchronous=FULL, every commit is on disk before it returns (slower appends)."""
    busy_timeout_ms: int | None = None
    """How long a writer waits for the write lock before :class:`DatabaseBusyError`
    (None: pragmas.sql's busy_timeout, 10 s)."""
    background_checkpoints: bool = True
    """Checkpoint the WAL on a background thread instead of inside a random writer's commit."""

    def pragmas(self) -> list[Pragma]:
        overrides = {"synchronous": self.durability.upper()}
        if self.busy_timeout_ms is not None:
            overrides["busy_timeout"] = str(self.busy_timeout_ms)
        return [Pragma(p.name, overrides.get(p.name, p.value)) for p in load_pragmas()]

    def busy_timeout(self) -> int:
        """The busy timeout in force, in milliseconds."""
        return int(next(p.value for p in self.pragmas() if p.name == "busy_timeout"))


def check_sqlite_version() -> None:
    """Refuse an SQLite library too old for the schema (STRICT tables, RETURNING)."""
    version = tuple(int(part) for part in apsw.sqlite_lib_version().split(".")[:3])
    if version < MIN_SQLITE:
        wanted = ".".join(map(str, MIN_SQLITE))
        raise errors.SchemaError(
            f"SQLite {apsw.sqlite_lib_version()} is too old: agentstate needs {wanted}+; "
            "upgrade apsw (pip install -U apsw), which bundles a current SQLite"
        )


def configure(conn: apsw.Connection, settings: Settings) -> None:
    """Apply agentstate's settings to a freshly opened connection."""
    # Before anything that reads the file: another process may be creating it right now.
    busy_timeout_ms = settings.busy_timeout()
    conn.set_busy_timeout(busy_timeout_ms)
    new_file = not conn.readonly("main") and conn.pragma("page_count") == 0
    for pragma in settings.pragmas():
        if pragma.name not in FILE_PRAGMAS:
            conn.pragma(pragma.name, pragma.value)
        elif new_file:
            # These live in the file, not the connection: only a new file gets them, because
            # setting one that is already in force still takes locks.
            _set_file_pragma(conn, pragma, busy_timeout_ms)
    # Statements with a bound LIMIT were re-prepared on every call until the plan was pinned:
    # the query planner stability guarantee keeps one plan per statement in apsw's cache.
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_QPSG, 1)
    # Double-quoted strings are identifiers only (apsw.bestpractice.connection_dqs).
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    if settings.background_checkpoints:
        checkpoint.attach(conn)


def _set_file_pragma(conn: apsw.Connection, pragma: Pragma, timeout_ms: int) -> None:
    """Set a file-level pragma while other processes may be creating the same file.

    Two connections that both hold a shared lock and want the exclusive one deadlock, and SQLite
    answers one of them BUSY at once, without waiting; so retry until the busy timeout.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            conn.pragma(pragma.name, pragma.value)
            return
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_connection(
    path: str | os.PathLike[str], *, readonly: bool = False, settings: Settings | None = None
) -> apsw.Connection:
    """Open and configure one apsw connection (no schema check; see :func:`agentstate.connect`)."""
    check_sqlite_version()
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    filename = os.fspath(path)
    try:
        conn = apsw.Connection(filename, flags=flags | apsw.SQLITE_OPEN_URI, statementcachesize=STATEMENT_CACHE_SIZE)
        configure(conn, settings or Settings())
    except apsw.Error as exc:
        raise translate(exc, f"opening {filename!r}") from exc
    return conn


async def open_async_connection(
    path: str | os.PathLike[str], *, readonly: bool = False, settings: Settings | None = None
) -> AsyncConnection:
    """Open a connection in apsw's async mode: its calls run on a worker thread of its own."""
    check_sqlite_version()
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    filename = os.fspath(path)
    try:
        conn = await apsw.Connection.as_async(filename, flags | apsw.SQLITE_OPEN_URI, None, STATEMENT_CACHE_SIZE)
        await run_async(conn, configure, conn, settings or Settings())
    except apsw.Error as exc:
        raise translate(exc, f"opening {filename!r}") from exc
    return conn


def run_async(conn: AsyncConnection, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> Awaitable[T]:
    """Run a synchronous agentstate call on an async connection's worker thread."""
    result: Awaitable[T] = conn.async_run(call, *args, **kwargs)
    return result


@contextlib.contextmanager
def write(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``), or a savepoint when one is already open.

    It takes the write lock up front, so a transaction never fails half-way with "database is
    locked" when it turns from reading to writing: it waits up to the busy timeout instead.
    apsw errors raised inside become agentstate errors, and the transaction rolls back.
    """
    with translating():
        if not conn.get_autocommit():
            with conn:  # apsw nests a savepoint
                yield conn
            return
        # An explicit BEGIN, not apsw's transaction_mode: with several threads in one process,
        # `with conn:` in IMMEDIATE mode was seen to wait for the lock without letting the
        # holder's thread run (measured here with apsw 3.54.1: 4 threads stall until timeout).
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def translating(context: str = "") -> Iterator[None]:
    """Turn any apsw exception raised inside into the matching agentstate error."""
    try:
        yield
    except apsw.Error as exc:
        raise translate(exc, context) from exc


def translate(exc: apsw.Error, context: str = "") -> errors.AgentStateError:
    """The agentstate error for an apsw exception; the caller chains it with ``from exc``."""
    where = f"{context}: " if context else ""
    message = str(exc).removeprefix(f"{type(exc).__name__}: ")
    if isinstance(exc, apsw.ConstraintError):
        code = getattr(exc, "extendedresult", None)
        if code == apsw.SQLITE_CONSTRAINT_FOREIGNKEY:
            return errors.ForeignKeyError(f"{where}{message} (a referenced row does not exist)")
        if code in (apsw.SQLITE_CONSTRAINT_UNIQUE, apsw.SQLITE_CONSTRAINT_PRIMARYKEY):
            return errors.DuplicateError(f"{where}{message}")
        if code == apsw.SQLITE_CONSTRAINT_NOTNULL:
            return errors.NotNullError(f"{where}{message}")
        return errors.CheckConstraintError(f"{where}{message}")
    if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
        return errors.DatabaseBusyError(
            f"{where}{message}: another connection held the write lock past the busy timeout; "
            "keep write transactions short or raise connect(busy_timeout_ms=...)"
        )
    if isinstance(exc, apsw.ReadOnlyError):
        return errors.ReadOnlyError(f"{where}{message}: this connection was opened read-only")
    if isinstance(exc, apsw.CantOpenError):
        return errors.AgentStateError(f"{where}{message}: check that the path exists and is writable")
    return errors.AgentStateError(f"{where}{type(exc).__name__}: {message}")
