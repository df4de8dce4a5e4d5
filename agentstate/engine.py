"""The SQLite engine: everything that knows it is talking to SQLite through apsw lives here.

Opening a connection, the pragmas, how a write transaction starts, where the engine's SQL files
are, and how apsw exceptions become agentstate's. A PostgreSQL engine would be a sibling module
with the same five things and its own ``schema/postgresql/`` folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import stat
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

import apsw
import apsw.ext

from agentstate import async_worker, checkpoint, errors, gate
from agentstate.monitor import Monitor, QueryHook
from agentstate.postgres.handle import PostgresConnection, is_url
from agentstate.values import require_int

ENGINE = "sqlite"
DEFAULT_PATH = "agentstate.db"
# STRICT tables need 3.37, RETURNING 3.35, ON CONFLICT ... DO NOTHING with RETURNING 3.35.
MIN_SQLITE = (3, 37, 0)
# Pragmas stored in the database file: applied once, when agentstate creates the file.
FILE_PRAGMAS = frozenset({"auto_vacuum", "journal_mode"})
# Our registry holds under 100 statements; keep every one of them prepared.
STATEMENT_CACHE_SIZE = 256
# New database files hold users' conversations: private to their owner unless asked otherwise.
# SQLite gives the -wal and -shm files the main file's mode, so this covers all three.
DEFAULT_FILE_MODE = 0o600

if TYPE_CHECKING:
    AsyncConnection: TypeAlias = apsw.AsyncConnection
else:  # apsw defines the async connection type in its stubs only
    AsyncConnection = apsw.Connection

Durability = Literal["normal", "full"]
# What the managers take: any apsw connection (agentstate's own :class:`Connection` adds pid,
# monitoring and checkpointer bookkeeping). The managers name this, never the driver.
SyncConnection: TypeAlias = apsw.Connection
T = TypeVar("T")


class Connection(apsw.Connection):
    """An apsw connection that knows the process that opened it.

    ``close()`` first stops this file's background checkpointer when it was the last connection
    of the process, so a closed database is free (to delete, copy, or switch out of WAL) at once.
    """

    pid: int
    busy_timeout_ms: int = 0
    """How long a write waits for another connection's write lock (see :func:`patient_busy_handler`)."""
    monitor: Monitor | None = None
    """Where :mod:`agentstate.runner` reports query timings (None: monitoring off)."""
    writer_gate: gate.WriterGate | None = None
    """Where this connection's write transactions queue (see :mod:`agentstate.gate`)."""
    busy_handler: PatientBusyHandler | None = None
    """The busy handler installed by :func:`configure` (told how long the gate made a write wait)."""
    reader: Connection | None = None
    """An async connection's inline reader: a read-only connection to the same file, on which the
    Async classes run short reads on the event loop's thread (see :func:`read_async`)."""
    writer: Connection | None = None
    """An async connection's inline writer: a second connection to the file on which the Async
    classes run a single-transaction write on the event loop's thread when the lock is free at
    once (see :func:`write_call`)."""
    no_wait: bool = False
    """A connection whose write transactions never wait for the lock: busy at once instead."""
    writing: int = 0
    """How many :func:`write_async` blocks are open on this async connection (reads inside one
    must see its uncommitted writes, so they go to the worker thread)."""

    closed: bool = False
    """Whether :meth:`close` (or :meth:`aclose`) has run: a second one does nothing."""

    def close(self, force: bool = False) -> None:
        if self.closed:
            return
        if os.getpid() == getattr(self, "pid", None) and not self.is_async:
            optimize(self)
        checkpoint.detach(self)
        super().close(force)
        self.closed = True
        if self.writer_gate is not None:
            self.writer_gate.close()
        for side in (self.reader, self.writer):
            if side is not None:
                side.close(force)
        self.reader = self.writer = None

    async def aclose(self) -> None:
        """Close an async connection (see :meth:`close`)."""
        if self.closed:
            return
        self.closed = True
        if os.getpid() == getattr(self, "pid", None):
            with contextlib.suppress(Exception):
                await self.async_run(optimize, self)  # type: ignore[attr-defined]
        # detach may wait for a checkpoint in flight: not on the event loop's thread
        await asyncio.to_thread(checkpoint.detach, self)
        await apsw.Connection.aclose(self)  # type: ignore[attr-defined]  # apsw's stubs type it on AsyncConnection
        if self.writer_gate is not None:
            self.writer_gate.close()
        for side in (self.reader, self.writer):
            if side is not None:
                side.close()
        self.reader = self.writer = None


def discard(call: Any) -> None:
    """A call an async connection answered with an awaitable nobody will await."""
    if hasattr(call, "close"):  # a coroutine (apsw's own controller)
        call.close()
    else:  # a future (agentstate's): the worker skips it
        call.cancel()


def optimize(conn: apsw.Connection) -> None:
    """``PRAGMA optimize`` (what apsw.bestpractice does at close): refresh the planner's statistics
    where this connection's queries showed they are stale; bounded by ``analysis_limit``."""
    with contextlib.suppress(apsw.Error):
        if conn.get_autocommit() and not conn.readonly("main"):
            # ANALYZE needs the write lock; a close must not wait the whole busy timeout for it
            # (the checkpointer's hourly run catches up).
            conn.set_busy_timeout(100)
            conn.execute("PRAGMA optimize")


_opened: weakref.WeakSet[Connection] = weakref.WeakSet()


def _refuse_inherited_connections() -> None:
    """After ``os.fork``, in the child: every connection the parent opened refuses to run SQL.

    The child shares the parent's file descriptors but not its POSIX locks, so writing through
    them can corrupt the database (https://sqlite.org/howtocorrupt.html, section 2.6).
    """
    for conn in list(_opened):
        with contextlib.suppress(apsw.Error):
            conn.set_exec_trace(_wrong_process(conn.pid))


def _wrong_process(opener: int) -> Callable[..., bool]:
    def refuse(*_: Any) -> bool:
        raise errors.WrongProcessError(
            f"this connection was opened by process {opener} and cannot be used in process {os.getpid()} "
            "after os.fork(): SQLite connections do not survive a fork; open a new one in the child "
            "with agentstate.connect()"
        )

    return refuse


os.register_at_fork(after_in_child=_refuse_inherited_connections)


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
    file_mode: int = DEFAULT_FILE_MODE
    """Permissions of a database file agentstate creates (and so of its -wal and -shm files)."""
    monitoring: bool = True
    """Time every named query for statistics, the slow-query log and hooks."""
    slow_query_ms: float | None = None
    """Log queries slower than this (None: ``AGENTSTATE_SLOW_QUERY_MS``, else 100; 0 logs all)."""
    on_query: tuple[QueryHook, ...] = ()
    """Called as ``hook(name, seconds, rows)`` after every named query."""
    writer_gate: bool = True
    """Queue write transactions in arrival order (:mod:`agentstate.gate`) instead of only
    polling SQLite's lock: short tails under contention."""

    def __post_init__(self) -> None:
        if self.busy_timeout_ms is not None:
            # SQLite takes a C int of milliseconds.
            require_int("busy_timeout_ms", self.busy_timeout_ms, minimum=0)
            if self.busy_timeout_ms > 2**31 - 1:
                raise errors.InvalidValueError(f"busy_timeout_ms must be at most {2**31 - 1}, got {self.busy_timeout_ms}")
        require_int("file_mode", self.file_mode, minimum=0)
        Monitor(self.slow_query_ms, self.on_query)  # check them before any file is created
        if self.file_mode > 0o777:
            raise errors.InvalidValueError(f"file_mode must be permission bits such as 0o600, got {oct(self.file_mode)}")

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
    writable = not conn.readonly("main")
    # "New" means no schema yet, not an empty file: a process killed while creating the file
    # can leave its first page written before WAL was switched on (seen in the crash suite).
    empty = writable and conn.execute("SELECT count(*) FROM sqlite_schema").get == 0
    for pragma in settings.pragmas():
        if pragma.name not in FILE_PRAGMAS:
            conn.pragma(pragma.name, pragma.value)
        elif pragma.name == "journal_mode":
            # Setting the mode already in force still takes locks, so only when it differs.
            if writable and str(conn.pragma("journal_mode")).lower() not in (pragma.value.lower(), "memory"):
                _set_file_pragma(conn, pragma, busy_timeout_ms)
        elif empty:  # auto_vacuum can only change before the first table exists
            _set_file_pragma(conn, pragma, busy_timeout_ms)
    # Statements with a bound LIMIT were re-prepared on every call until the plan was pinned:
    # the query planner stability guarantee keeps one plan per statement in apsw's cache.
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_QPSG, 1)
    # Double-quoted strings are identifiers only (apsw.bestpractice.connection_dqs).
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    # Last: the busy_timeout pragma above installs SQLite's own handler, which this replaces.
    handler = patient_busy_handler(busy_timeout_ms)
    conn.set_busy_handler(handler)
    with contextlib.suppress(AttributeError):  # a plain apsw.Connection keeps no handler of ours
        conn.busy_handler = handler  # type: ignore[attr-defined]
    if settings.background_checkpoints:
        checkpoint.attach(conn)


# A loop of write transactions (retention, deletes in batches) sleeps this long between them, so
# a writer waiting in the patient busy handler (a try every 10 ms) mostly gets in.
YIELD_S = 0.005


def yield_lock() -> None:
    """Between two write transactions of a long job: let waiting writers take the lock."""
    time.sleep(YIELD_S)


# SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries.
_BUSY_SLEEPS_S = (0.001, 0.002, 0.005, 0.010)


class PatientBusyHandler:
    """Wait for another connection's lock up to ``timeout_ms``, trying again after 1, 2, 5, then
    every 10 ms.

    SQLite's own handler backs off to 100 ms between tries, so a waiter can sleep through every
    moment the lock is free: a writer that commits batch after batch (retention, say) starved
    another process's append for 1.6 s (scripts/bench_retention.py). Polling finer than 10 ms
    cost four executors a third of their claim rate (measured with 0.1-1 ms); 10 ms keeps it.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout = timeout_ms / 1000
        self.already_waited = 0.0
        """Seconds this transaction already waited at the writer gate: the wait here is the rest."""
        self._started = 0.0

    def __call__(self, prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            self._started = now - self.already_waited
        if now - self._started >= self.timeout:
            return False  # SQLite then raises BUSY, which becomes DatabaseBusyError
        time.sleep(_BUSY_SLEEPS_S[min(prior_calls, len(_BUSY_SLEEPS_S) - 1)])
        return True


def patient_busy_handler(timeout_ms: int) -> PatientBusyHandler:
    """The busy handler agentstate installs (see :class:`PatientBusyHandler`)."""
    return PatientBusyHandler(timeout_ms)


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


def require_connection(conn: object, who: str, *, sync_only: bool = False) -> None:
    """Refuse anything but a connection early, with a message instead of an AttributeError later.

    :param sync_only: also refuse an async connection (for calls no Async class wraps).
    """
    if isinstance(conn, PostgresConnection):
        if sync_only and conn.is_async and not conn.on_worker():
            raise errors.InvalidTypeError(f"{who} takes a connection from agentstate.connect(), not connect_async()")
        return
    if not isinstance(conn, apsw.Connection):
        raise errors.InvalidTypeError(
            f"{who} takes a connection from agentstate.connect() (or connect_async()), not {type(conn).__name__}"
        )
    if not sync_only:
        return
    with translating(who):  # a closed connection answers nothing
        outside = conn.is_async and _outside_worker(conn)
    if outside:
        raise errors.InvalidTypeError(f"{who} takes a connection from agentstate.connect(), not connect_async()")


def require_sqlite(conn: object, who: str, instead: str) -> None:
    """Refuse a PostgreSQL handle for work that is about an SQLite file (its size, its pages, a
    copy of it), saying what does that job on PostgreSQL."""
    if isinstance(conn, PostgresConnection) or is_url(conn):
        raise errors.InvalidTypeError(f"{who} works on an SQLite database; on PostgreSQL, {instead}")


def _outside_worker(conn: apsw.Connection) -> bool:
    """Whether an async connection is being called from outside its worker thread (where its
    calls answer with awaitables instead of results)."""
    answer = conn.get_autocommit()
    if isinstance(answer, bool):
        return False
    discard(answer)
    return True


def require_async_connection(conn: object, who: str) -> None:
    """Refuse anything but an async connection (the Async classes and write_async)."""
    if not isinstance(conn, (apsw.Connection, PostgresConnection)) or not conn.is_async:
        raise errors.InvalidTypeError(
            f"{who} takes a connection from agentstate.connect_async(), not {type(conn).__name__} "
            "(use the synchronous classes with agentstate.connect())"
        )


def database_path(path: object) -> str:
    """Check a ``connect()`` path: a str or path-like naming a file, ``:memory:`` or a ``file:`` URI."""
    if not isinstance(path, (str, os.PathLike)):
        raise errors.InvalidTypeError(f"path must be a str or a pathlib.Path, not {type(path).__name__}")
    try:
        filename = os.fspath(path)
    except TypeError as exc:
        raise errors.InvalidTypeError(f"path: {exc}") from None
    if not isinstance(filename, str):
        raise errors.InvalidTypeError(f"path must be text, not {type(filename).__name__}")
    if not filename:
        raise errors.InvalidValueError("path must not be empty (use ':memory:' for a private in-memory database)")
    if "\x00" in filename:
        raise errors.InvalidValueError(f"path {filename!r} contains a NUL character")
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidValueError(f"path {filename!r} is not valid Unicode (it holds a lone surrogate)") from None
    if os.path.isdir(filename):
        raise errors.InvalidValueError(f"path {filename!r} is a directory: give the database file's path inside it")
    if filename != ":memory:" and not filename.startswith("file:"):
        _require_short_enough(filename)
    return filename


# SQLite opens <name>-journal and <name>-wal beside the database: the longest suffix it adds.
_LONGEST_SUFFIX = len("-journal")
_NAME_MAX = 255  # bytes in one file name, on every file system Linux and macOS mount by default


def _require_short_enough(filename: str) -> None:
    """Refuse a name whose -journal or -wal file could not exist, before SQLite creates anything:
    otherwise SQLite creates the database file, then fails to open the journal with 'unable to
    open database file'."""
    name = len(os.path.basename(filename).encode())
    if name + _LONGEST_SUFFIX > _NAME_MAX:
        raise errors.InvalidValueError(
            f"the database's file name is {name} bytes: SQLite adds '-journal' and '-wal' to it, and a file "
            f"name may have {_NAME_MAX}, so it can be at most {_NAME_MAX - _LONGEST_SUFFIX}"
        )
    longest = _longest_path()
    full = len(os.path.abspath(filename).encode())
    if full + _LONGEST_SUFFIX > longest:
        raise errors.InvalidValueError(
            f"the database's full path is {full} bytes: SQLite's files beside it need '-journal' more and "
            f"SQLite takes paths of up to {longest} bytes, so it can be at most {longest - _LONGEST_SUFFIX}; "
            "use a shorter folder"
        )


@cache
def _longest_path() -> int:
    """The longest path the default VFS takes (SQLite's unix VFS: 512 bytes)."""
    default = apsw.vfs_names()[0]
    return next((int(d["mxPathname"]) for d in apsw.vfs_details() if d["zName"] == default), 512)


@cache
def _log_sqlite() -> None:
    """SQLite's own log (WAL recovery, misuse, constraint aborts) into the ``agentstate`` logger at
    INFO and below, once per process (apsw.bestpractice.library_logging)."""
    apsw.ext.log_sqlite(level=logging.INFO, logger=logging.getLogger("agentstate"))


def _open_flags(readonly: bool, create: bool = True) -> int:
    if readonly:
        return apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    return apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0) | apsw.SQLITE_OPEN_URI


def _prepare(conn: Connection, settings: Settings) -> None:
    """Everything between opening a connection and handing it out."""
    conn.pid = os.getpid()
    conn.busy_timeout_ms = settings.busy_timeout()
    conn.monitor = Monitor(settings.slow_query_ms, settings.on_query) if settings.monitoring else None
    _log_sqlite()
    _make_private(conn, settings.file_mode)
    configure(conn, settings)
    if settings.writer_gate and not conn.readonly("main") and conn.filename:
        conn.writer_gate = gate.open_gate(conn.filename, settings.file_mode, conn.busy_timeout_ms / 1000)
    _opened.add(conn)


def _make_private(conn: Connection, mode: int) -> None:
    """Give a file SQLite has just created ``mode``, before its -wal and -shm files exist (they
    copy the main file's mode). An existing database keeps the permissions it has."""
    filename = conn.filename
    if not filename or conn.readonly("main"):
        return
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(filename)
        if info.st_size == 0 and stat.S_IMODE(info.st_mode) != mode and stat.S_ISREG(info.st_mode):
            os.chmod(filename, mode)


def open_connection(
    path: str | os.PathLike[str], *, readonly: bool = False, settings: Settings | None = None, create: bool = True
) -> Connection:
    """Open and configure one apsw connection (no schema check; see :func:`agentstate.connect`).

    :param create: create the file if it does not exist (else a missing file is an error).
    """
    check_sqlite_version()
    filename = database_path(path)
    try:
        conn = Connection(filename, flags=_open_flags(readonly, create), statementcachesize=STATEMENT_CACHE_SIZE)
    except apsw.Error as exc:
        raise translate(exc, f"opening {filename!r}") from exc
    full = conn.filename or filename
    try:
        if not conn.readonly("main"):
            refuse_foreign_files(conn.filename)
        _prepare(conn, settings or Settings())
    except BaseException as exc:
        with contextlib.suppress(apsw.Error):  # the error that matters is the first one
            conn.close()
        if isinstance(exc, apsw.Error):
            raise translate(exc, f"opening {filename!r}", path=full) from exc
        raise
    return conn


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def refuse_foreign_files(filename: str) -> None:
    """Refuse files another user planted where the database and SQLite's own files go.

    An empty (or headerless) database file that another user owns was made by them, not by
    SQLite for us: written to, it and its -wal and -shm (which SQLite gives the database's owner)
    stay theirs to read. A -wal, -shm or -journal file beside the database must belong to the
    database's owner (or to this user). A real database of another user's (a service's, shared
    through its group) is opened as it is.
    """
    if not filename:
        return  # a memory database
    me = os.geteuid()
    try:
        info = os.stat(filename)
    except FileNotFoundError:
        return
    if info.st_uid != me and stat.S_ISREG(info.st_mode) and not _has_sqlite_header(filename):
        raise errors.ForeignFileError(
            f"{filename} is an empty or non-SQLite file that belongs to user id {info.st_uid}, not to this "
            f"user ({me}): agentstate would write every conversation into a file that user can read. Delete it "
            "(or ask its owner to), or choose another path"
        )
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            side = os.lstat(filename + suffix)
            if side.st_uid not in (me, info.st_uid) or stat.S_ISLNK(side.st_mode):
                raise errors.ForeignFileError(
                    f"{filename}{suffix} belongs to user id {side.st_uid}, not to the database's owner "
                    f"({info.st_uid}){' and is a symbolic link' if stat.S_ISLNK(side.st_mode) else ''}: SQLite "
                    "would write the database's pages into it. Delete it while no process has the database open"
                )


def _has_sqlite_header(filename: str) -> bool:
    try:
        with open(filename, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return True  # unreadable: SQLite's own open reports that


async def open_async_connection(
    path: str | os.PathLike[str], *, readonly: bool = False, settings: Settings | None = None, create: bool = True
) -> AsyncConnection:
    """Open a connection in apsw's async mode: its calls run on a worker thread of its own."""
    check_sqlite_version()
    filename = database_path(path)
    try:
        conn = await _as_async(filename, _open_flags(readonly, create))
    except apsw.Error as exc:
        raise translate(exc, f"opening {filename!r}") from exc
    full = filename
    try:
        full = await run_async(conn, getattr, conn, "filename")
        if not readonly:
            refuse_foreign_files(full)
        await run_async(conn, _prepare, conn, settings or Settings())
    except BaseException as exc:
        await conn.aclose()  # its worker thread too
        if isinstance(exc, apsw.Error):
            raise translate(exc, f"opening {filename!r}", path=full) from exc
        raise
    return conn


async def _as_async(filename: str, flags: int) -> AsyncConnection:
    """apsw's as_async with agentstate's lean controller (:mod:`agentstate.async_worker`), unless
    the caller chose a controller of their own."""
    # The context variable holds a factory of controllers (apsw's stubs type it as one).
    if apsw.async_controller.get(None) is not None:
        return await Connection.as_async(filename, flags, None, STATEMENT_CACHE_SIZE)
    token = apsw.async_controller.set(cast(Any, async_worker.Controller))
    try:
        return await Connection.as_async(filename, flags, None, STATEMENT_CACHE_SIZE)
    finally:
        apsw.async_controller.reset(token)


def materialise(value: T) -> T:
    """An iterator argument of an async call, consumed on the caller's thread (a generator must
    not run on the connection's worker thread); anything else is passed on unchanged."""
    return list(value) if isinstance(value, Iterator) else value  # type: ignore[return-value]


def run_async(conn: AsyncConnection, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> Awaitable[T]:
    """Run a synchronous agentstate call on an async connection's worker thread."""
    result: Awaitable[T] = conn.async_run(call, *args, **kwargs)
    return result


def open_reader(conn: AsyncConnection, path: str, settings: Settings) -> None:
    """Give an async connection on ``path`` (its file, or the same ``file:`` URI, VFS and all)
    its inline reader. It never waits for a lock (a busy read goes to the worker thread
    instead), never writes, and takes no part in checkpoints. Where it cannot be opened (a URI
    whose mode forbids read-only), the connection simply has none."""
    lean = replace(settings, busy_timeout_ms=0, background_checkpoints=False, writer_gate=False)
    try:
        cast(Connection, conn).reader = open_connection(path, readonly=True, settings=lean, create=False)
    except errors.AgentStateError:
        logging.getLogger("agentstate").debug("agentstate: no inline reader for %s", path, exc_info=True)


def open_writer(conn: AsyncConnection, path: str, settings: Settings) -> None:
    """Give an async connection on ``path`` its inline writer (see :func:`write_call`): it never
    waits for the lock (busy at once), and exists only at durability normal (a full commit
    fsyncs, which must not happen on the event loop's thread)."""
    if settings.durability != "normal":
        return
    try:
        writer = open_connection(path, settings=replace(settings, busy_timeout_ms=0), create=False)
    except errors.AgentStateError:
        logging.getLogger("agentstate").debug("agentstate: no inline writer for %s", path, exc_info=True)
        return
    writer.no_wait = True
    writer.set_busy_handler(None)
    cast(Connection, conn).writer = writer


def inline_write(conn: AsyncConnection, inline: Callable[..., T] | None, args: Any, kwargs: Any) -> tuple[bool, T | None]:
    """Run a single-transaction write on the connection's inline writer, right here, if the write
    lock is free at once: (True, its result); (False, None) when it must go to the worker thread
    (no inline writer, a write_async block open, or another writer has or awaits the lock). A
    write done here cannot be cancelled half-way: it has finished when the caller sees it."""
    if inline is None or cast(Connection, conn).writing:
        return False, None
    try:
        return True, inline(*args, **kwargs)
    except errors.DatabaseBusyError:
        return False, None  # nothing was written: the transaction never began


async def write_call(
    conn: AsyncConnection, threaded: Callable[..., T], inline: Callable[..., T] | None, /, *args: Any, **kwargs: Any
) -> T:
    """A write for the Async classes: inline when the lock is free at once (no thread hop),
    else on the worker thread, settled before a cancellation is raised (:func:`call_async`)."""
    done, result = inline_write(conn, inline, args, kwargs)
    if done:
        return cast(T, result)
    return await call_async(conn, threaded, *args, **kwargs)


async def read_async(
    conn: AsyncConnection, threaded: Callable[..., T], inline: Callable[..., T] | None, /, *args: Any, **kwargs: Any
) -> T:
    """A read for the Async classes. A thread hop costs two thread wake-ups, 20-60 µs on a 2-core
    VM, several times what a cached read costs: so on the connection's inline reader the read
    runs right here, on the event loop's thread (like any short computation in a coroutine),
    unless a :func:`write_async` block is open (its uncommitted writes are only visible on the
    connection itself) or the file is busy (WAL recovery): then it goes to the worker thread."""
    if inline is not None and not cast(Connection, conn).writing:
        try:
            return inline(*args, **kwargs)
        except errors.DatabaseBusyError:
            pass
    return await run_async(conn, threaded, *args, **kwargs)


async def call_async(conn: AsyncConnection, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """:func:`run_async` for the Async classes: a call settles before a cancellation is raised, so
    a caller that sees ``CancelledError`` knows the call has finished (committed or rolled back)."""
    result, cancelled = await settled(run_async(conn, call, *args, **kwargs))
    if cancelled:
        raise asyncio.CancelledError
    return result


@contextlib.contextmanager
def write(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``), or a savepoint when one is already open.

    It takes the write lock up front, so a transaction never fails half-way with "database is
    locked" when it turns from reading to writing: it waits up to the busy timeout instead.
    apsw errors raised inside become agentstate errors, and the transaction rolls back.

    :raises InvalidTypeError: ``conn`` is an async connection (use :func:`write_async`).
    """
    require_connection(conn, "write()")
    if isinstance(conn, PostgresConnection):
        if conn.is_async and not conn.on_worker():
            raise errors.InvalidTypeError(
                "write() was given an async connection, whose calls return awaitables it cannot run: "
                "use 'async with agentstate.write_async(conn):' instead"
            )
        with conn.transaction(), _translating_postgres():
            yield conn
        return
    with translating():
        autocommit = conn.get_autocommit()
        if not isinstance(autocommit, bool):  # an async connection, used from outside its worker
            discard(autocommit)
            raise errors.InvalidTypeError(
                "write() was given an async connection, whose calls return awaitables it cannot run: "
                "use 'async with agentstate.write_async(conn):' instead"
            )
        if not autocommit:
            with conn:  # apsw nests a savepoint
                yield conn
            return
        # An explicit BEGIN, not apsw's transaction_mode: with several threads in one process,
        # `with conn:` in IMMEDIATE mode was seen to wait for the lock without letting the
        # holder's thread run (measured here with apsw 3.54.1: 4 threads stall until timeout).
        _begin(conn)
        try:
            yield conn
        except BaseException:
            _rollback(conn, None)
            raise
        _commit(conn, None)


@contextlib.contextmanager
def _translating_postgres() -> Iterator[None]:
    """psycopg errors raised inside a PostgreSQL ``write()`` or ``reading()`` block (SQL of the
    caller's own, on the block's connection) become agentstate's, as apsw's do on SQLite."""
    try:
        yield
    except Exception as exc:
        import psycopg  # a PostgresConnection exists, so the postgres extra is installed

        if not isinstance(exc, psycopg.Error):
            raise
        from agentstate.postgres.translate import translate as translate_postgres

        raise translate_postgres(exc) from exc


@contextlib.contextmanager
def reading(conn: apsw.Connection) -> Iterator[None]:
    """A read transaction: every read inside sees one snapshot (in WAL it never blocks writers).
    Inside a transaction already open, that one's snapshot serves."""
    if isinstance(conn, PostgresConnection):
        with conn.transaction(read_only=True), _translating_postgres():
            yield
        return
    require_connection(conn, "reading", sync_only=True)
    with translating():
        own = conn.get_autocommit()
        if own:
            conn.execute("BEGIN")
        try:
            yield
        finally:
            if own and not conn.get_autocommit():
                conn.execute("COMMIT")


# Pages incremental_vacuum frees per transaction: a few milliseconds of work, then other writers.
VACUUM_CHUNK_PAGES = 2048


def give_back_free_pages(conn: apsw.Connection) -> int:
    """``PRAGMA incremental_vacuum``: hand the file's free pages to the file system, a chunk per
    transaction so other writers get in between; returns how many. Best effort: it runs after
    deletes have committed, so a failure (a full disk, say) is logged and the deletes still
    count; the next vacuum tries again."""
    if isinstance(conn, PostgresConnection):
        return 0  # autovacuum makes dead rows' space reusable; the server owns its files
    freed = 0
    try:
        while True:
            # One row per page freed: the pragma works only as far as its rows are read.
            chunk = len(conn.execute(f"PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES})").fetchall())
            freed += chunk
            if chunk < VACUUM_CHUNK_PAGES or not conn.get_autocommit():
                return freed
            yield_lock()
    except apsw.Error as exc:
        logging.getLogger("agentstate").warning(
            "agentstate: giving free pages back to the file system failed (%s); the deleted rows stay "
            "deleted, and 'agentstate vacuum' can try again",
            translate(exc),
        )
        return freed


def checkpoint_truncate(conn: apsw.Connection, attempts: int = 50) -> bool:
    """Copy the whole WAL into the database file and truncate the WAL (so space freed in the
    file reaches the disk); retried while the background checkpointer runs one of its own.
    False if readers kept it from finishing."""
    if isinstance(conn, PostgresConnection):
        return True  # no WAL file of ours to truncate
    for _ in range(attempts):
        try:
            conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)  # raises BusyError if it cannot finish
            return True
        except (apsw.BusyError, apsw.LockedError):
            pass
        except apsw.Error as exc:
            raise translate(exc, "checkpointing the WAL") from exc
        time.sleep(0.02)
    return False


_savepoints = itertools.count(1)


def _begin(conn: apsw.Connection) -> str | None:
    """Start a write transaction, or a savepoint (whose name it returns) inside an open one.
    A transaction first queues at the writer gate, then takes SQLite's lock."""
    if conn.get_autocommit():
        queue = getattr(conn, "writer_gate", None)
        if queue is None:
            conn.execute("BEGIN IMMEDIATE")
            return None
        no_wait = getattr(conn, "no_wait", False)
        arrived = time.monotonic()
        if not queue.acquire(wait=not no_wait) and no_wait:
            raise errors.DatabaseBusyError("another writer holds or awaits the lock (a no-wait connection)")
        handler: PatientBusyHandler | None = getattr(conn, "busy_handler", None)
        if handler is not None:  # the wait at the gate counts against the busy timeout
            handler.already_waited = time.monotonic() - arrived
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            queue.release()
            raise
        finally:
            if handler is not None:
                handler.already_waited = 0.0
        return None
    name = f"agentstate_{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")  # a name we made, never user input
    return name


def _commit(conn: apsw.Connection, savepoint: str | None) -> None:
    try:
        conn.execute("COMMIT" if savepoint is None else f"RELEASE {savepoint}")
    except BaseException:
        _rollback(conn, savepoint)
        raise
    if savepoint is None:
        _leave_gate(conn)


def _rollback(conn: apsw.Connection, savepoint: str | None) -> None:
    try:
        if conn.get_autocommit():
            return  # SQLite already rolled back (e.g. after a full disk)
        if savepoint is None:
            conn.execute("ROLLBACK")
        else:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")
    finally:
        if savepoint is None:
            _leave_gate(conn)


def _leave_gate(conn: apsw.Connection) -> None:
    queue = getattr(conn, "writer_gate", None)
    if queue is not None:
        queue.release()


@contextlib.asynccontextmanager
async def write_async(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """:func:`write` for a connection from :func:`agentstate.connect_async`::

        async with agentstate.write_async(conn):
            await conn.execute("INSERT ...")
            await conn.execute("UPDATE ...")

    Commits when the block ends, rolls back when it raises (or is cancelled). The connection runs
    one call at a time on its worker thread, but other tasks sharing it could slip statements in
    between yours: give each concurrent task its own connection.

    :raises InvalidTypeError: ``conn`` is not an async connection (use :func:`write`).
    """
    require_async_connection(conn, "write_async()")
    if isinstance(conn, PostgresConnection):
        raise errors.InvalidTypeError(
            "write_async() runs raw SQL on an SQLite connection; on PostgreSQL use the Async classes, or "
            "psycopg's own AsyncConnection for SQL of your own"
        )
    own = cast(Connection, conn)
    own.writing += 1  # reads through the Async classes now go where the block's writes are
    try:
        async with _writing(conn):
            yield conn
    finally:
        own.writing -= 1


@contextlib.asynccontextmanager
async def _writing(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    try:
        savepoint, cancelled = await settled(run_async(conn, _begin, conn))
    except apsw.Error as exc:
        raise translate(exc) from exc
    if cancelled:  # the BEGIN went through on the worker thread all the same: undo it
        try:
            await settled(run_async(conn, _rollback, conn, savepoint))
        except apsw.Error as exc:
            raise asyncio.CancelledError() from translate(exc, "rolling back")
        raise asyncio.CancelledError
    try:
        yield conn
    except BaseException as exc:
        try:
            _, cancelled = await settled(run_async(conn, _rollback, conn, savepoint))
        except apsw.Error as failed:
            raise translate(failed, "rolling back") from exc
        if cancelled and not isinstance(exc, asyncio.CancelledError):
            raise asyncio.CancelledError() from exc
        if isinstance(exc, apsw.Error):
            raise translate(exc) from exc
        raise
    try:
        _, cancelled = await settled(run_async(conn, _commit, conn, savepoint))
    except apsw.Error as exc:
        raise translate(exc, "committing") from exc
    if cancelled:
        raise asyncio.CancelledError  # after the commit settled, so the caller can trust the file


async def settled(step: Awaitable[T]) -> tuple[T, bool]:
    """Await ``step`` to its end even if the caller is cancelled meanwhile (a transaction's
    BEGIN, ROLLBACK or COMMIT must not be left half known); returns its result and whether a
    cancellation arrived, for the caller to raise once the step has settled."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
        except BaseException as exc:
            if cancelled:  # the step failed after the caller was cancelled: still deliver the cancel
                raise asyncio.CancelledError() from exc
            raise


@contextlib.contextmanager
def translating(context: str = "") -> Iterator[None]:
    """Turn any apsw exception raised inside into the matching agentstate error."""
    try:
        yield
    except apsw.Error as exc:
        raise translate(exc, context) from exc


_BUSY_FIX = {
    apsw.SQLITE_BUSY_SNAPSHOT: (
        errors.SnapshotConflictError,
        "this transaction read the database, then another connection wrote before it could: it cannot "
        "write from an out-of-date snapshot, and waiting will not help. Roll back and retry the whole "
        "transaction, and start transactions that write with agentstate.write(conn) (BEGIN IMMEDIATE)",
    ),
    apsw.SQLITE_BUSY_RECOVERY: (
        errors.DatabaseBusyError,
        "another process is recovering the WAL after a crash; retry in a moment",
    ),
}


def translate(exc: apsw.Error, context: str = "", *, path: str = "") -> errors.AgentStateError:
    """The agentstate error for an apsw exception; the caller chains it with ``from exc``.

    :param path: the database file, when the error came from opening it (so a read-only or
        unopenable file can be explained by its permissions).
    """
    where = f"{context}: " if context else ""
    message = str(exc).removeprefix(f"{type(exc).__name__}: ")
    code = getattr(exc, "extendedresult", None)
    if isinstance(exc, apsw.ConstraintError):
        if code == apsw.SQLITE_CONSTRAINT_FOREIGNKEY:
            return errors.ForeignKeyError(f"{where}{message} (a referenced row does not exist)")
        if code in (apsw.SQLITE_CONSTRAINT_UNIQUE, apsw.SQLITE_CONSTRAINT_PRIMARYKEY):
            return errors.DuplicateError(f"{where}{message}")
        if code == apsw.SQLITE_CONSTRAINT_NOTNULL:
            return errors.NotNullError(f"{where}{message}")
        return errors.CheckConstraintError(f"{where}{message}")
    if isinstance(exc, apsw.BusyError) and code in _BUSY_FIX:
        kind, fix = _BUSY_FIX[code]
        return kind(f"{where}{message}: {fix}")
    if isinstance(exc, apsw.BusyError):
        return errors.DatabaseBusyError(
            f"{where}{message}: another connection held the write lock past the busy timeout; "
            "keep write transactions short or raise connect(busy_timeout_ms=...)"
        )
    if isinstance(exc, apsw.LockedError):
        return errors.DatabaseBusyError(
            f"{where}{message}: a table is locked by another statement on this same connection "
            "(an unfinished read, or a schema change under it); finish or close that cursor first"
        )
    if isinstance(exc, apsw.ConnectionClosedError):
        return errors.ConnectionClosedError(f"{where}the connection is closed: open a new one with agentstate.connect()")
    if isinstance(exc, apsw.ReadOnlyError):
        cause = _why_not_writable(path) if path else None
        return errors.ReadOnlyError(f"{where}{message}: {cause or 'this connection was opened read-only'}")
    if isinstance(exc, apsw.NotADBError):
        return errors.DatabaseCorruptError(f"{where}{message}: the file is not an SQLite database")
    if isinstance(exc, apsw.CorruptError):
        return errors.DatabaseCorruptError(
            f"{where}{message}: the database file is damaged or truncated; restore it from a backup "
            "(PRAGMA integrity_check names the damage)"
        )
    if isinstance(exc, apsw.FullError):
        return errors.DiskFullError(f"{where}{message}: the disk or quota is full; free space and retry")
    if isinstance(exc, apsw.IOError):
        return errors.StorageError(
            f"{where}{message}: the operating system failed a read, write or sync of the database files"
        )
    if isinstance(exc, apsw.CantOpenError):
        cause = (_why_not_writable(path) if path else None) or "check that the path exists and is writable"
        return errors.AgentStateError(f"{where}{message}: {cause}")
    return errors.AgentStateError(f"{where}{type(exc).__name__}: {message}")


def _why_not_writable(path: str) -> str | None:
    """What this user may not do to a database file or its folder, in words (None: nothing)."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return (
            f"{path} is not writable by this user (its mode is {stat.S_IMODE(os.stat(path).st_mode):o}): "
            "run as its owner, or open it with readonly=True"
            + ("" if os.access(folder, os.W_OK) else f" once its -shm file exists (the folder {folder} is not writable either)")
        )
    if not os.access(folder, os.W_OK):
        return (
            f"the folder {folder} is not writable by this user, and SQLite must create the database's -wal and "
            "-shm files there (even to read a WAL database, until they exist): run as the folder's owner, or let "
            "that user open the database first"
        )
    return None
