"""SQLite transactions: ``BEGIN IMMEDIATE`` after the writer gate, savepoints inside an open
transaction, read snapshots, and :func:`write_async` for an async connection's raw SQL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, cast

import apsw
import apsw.ext

from agentstate import errors
from agentstate.async_calls import discard, run_async, settled
from agentstate.sqlite.busy import PatientBusyHandler
from agentstate.sqlite.connection import AsyncConnection, Connection
from agentstate.sqlite.translate import translate, translating


def write(conn: apsw.Connection) -> WriteTransaction:
    """A write transaction (``BEGIN IMMEDIATE``), or a savepoint when one is already open.

    It takes the write lock up front, so a transaction never fails half-way with "database is
    locked" when it turns from reading to writing: it waits up to the busy timeout instead.
    apsw errors raised inside become agentstate errors, and the transaction rolls back.

    :raises InvalidTypeError: ``conn`` is an async connection (use :func:`write_async`).
    """
    return WriteTransaction(conn)


class WriteTransaction:
    """What :func:`write` returns. A class rather than a generator-based context manager: every
    write of the library opens one, and the generator's machinery (two layers of it, with the
    error translation) cost more than BEGIN IMMEDIATE itself."""

    __slots__ = ("conn", "savepoint")

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.savepoint = False  # inside a transaction already open: apsw's nested savepoint

    def __enter__(self) -> apsw.Connection:
        conn = self.conn
        try:
            autocommit = conn.get_autocommit()
            if not isinstance(autocommit, bool):  # an async connection, used from outside its worker
                discard(autocommit)
                raise errors.InvalidTypeError(
                    "write() was given an async connection, whose calls return awaitables it cannot run: "
                    "use 'async with agentstate.write_async(conn):' instead"
                )
            if autocommit:
                # An explicit BEGIN, not apsw's transaction_mode: with several threads in one
                # process, `with conn:` in IMMEDIATE mode was seen to wait for the lock without
                # letting the holder's thread run (measured with apsw 3.54.1: 4 threads stall
                # until timeout).
                _begin(conn)
            else:
                conn.__enter__()
                self.savepoint = True
        except apsw.Error as exc:
            raise translate(exc) from exc
        return conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        conn = self.conn
        try:
            if self.savepoint:
                conn.__exit__(kind, exc, tb)  # releases the savepoint, or rolls back to it
            elif exc is None:
                _commit(conn, None)
            else:
                _rollback(conn, None)
        except apsw.Error as failed:
            raise translate(failed) from failed
        if isinstance(exc, apsw.Error):
            raise translate(exc) from exc
        return False


@contextlib.contextmanager
def reading(conn: apsw.Connection) -> Iterator[None]:
    """A read transaction: every read inside sees one snapshot (in WAL it never blocks writers).
    Inside a transaction already open, that one's snapshot serves."""
    require_sync(conn, "reading")
    with translating():
        own = conn.get_autocommit()
        if own:
            conn.execute("BEGIN")
        try:
            yield
        finally:
            if own and not conn.get_autocommit():
                conn.execute("COMMIT")


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
    """:func:`write` on an async connection's worker thread (what :func:`agentstate.write_async`
    opens): settled before a cancellation is raised, so a cancelled caller can trust the file.

    :raises InvalidTypeError: ``conn`` is not an async connection (use :func:`write`).
    """
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


def require_sync(conn: apsw.Connection, who: str) -> None:
    """Refuse an async connection called from outside its worker thread (where its calls answer
    with awaitables instead of results)."""
    with translating(who):  # a closed connection answers nothing
        answer = conn.get_autocommit()
    if conn.is_async and not isinstance(answer, bool):
        discard(answer)
        raise errors.InvalidTypeError(f"{who} takes a connection from agentstate.connect(), not connect_async()")
