"""agentstate's apsw connection: it knows the process that opened it, its monitor, writer gate,
busy handler and async side connections; closing it stops the file's background checkpointer;
after ``os.fork`` the child's copies refuse to run SQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import apsw

from agentstate import errors
from agentstate.monitor import Monitor
from agentstate.sqlite import gate, wal_checkpoints
from agentstate.sqlite.busy import PatientBusyHandler

if TYPE_CHECKING:
    AsyncConnection: TypeAlias = apsw.AsyncConnection
else:  # apsw defines the async connection type in its stubs only
    AsyncConnection = apsw.Connection

# Our registry holds under 100 statements; keep every one of them prepared.
STATEMENT_CACHE_SIZE = 256


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
    """Where this connection's write transactions queue (see :mod:`agentstate.sqlite.gate`)."""
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
        wal_checkpoints.detach(self)
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
        await asyncio.to_thread(wal_checkpoints.detach, self)
        await apsw.Connection.aclose(self)  # type: ignore[attr-defined]  # apsw's stubs type it on AsyncConnection
        if self.writer_gate is not None:
            self.writer_gate.close()
        for side in (self.reader, self.writer):
            if side is not None:
                side.close()
        self.reader = self.writer = None


def optimize(conn: apsw.Connection) -> None:
    """``PRAGMA optimize`` (what apsw.bestpractice does at close): refresh the planner's statistics
    where this connection's queries showed they are stale; bounded by ``analysis_limit``."""
    with contextlib.suppress(apsw.Error):
        if conn.get_autocommit() and not conn.readonly("main"):
            # ANALYZE needs the write lock; a close must not wait the whole busy timeout for it
            # (the checkpointer's hourly run catches up).
            conn.set_busy_timeout(100)
            conn.execute("PRAGMA optimize")


opened: weakref.WeakSet[Connection] = weakref.WeakSet()


def _refuse_inherited_connections() -> None:
    """After ``os.fork``, in the child: every connection the parent opened refuses to run SQL.

    The child shares the parent's file descriptors but not its POSIX locks, so writing through
    them can corrupt the database (https://sqlite.org/howtocorrupt.html, section 2.6).
    """
    for conn in list(opened):
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
