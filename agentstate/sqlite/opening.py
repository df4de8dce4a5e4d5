"""Opening SQLite connections, sync and async: apsw's flags, the pragmas, the writer gate, and
an async connection's inline reader and writer (no schema check: see :func:`agentstate.connect`)."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import replace
from functools import cache
from typing import Any, cast

import apsw
import apsw.ext

from agentstate import errors
from agentstate.async_calls import run_async
from agentstate.monitor import Monitor
from agentstate.settings import Settings
from agentstate.sqlite import async_worker, gate
from agentstate.sqlite.configure import busy_timeout_of, check_sqlite_version, configure
from agentstate.sqlite.connection import STATEMENT_CACHE_SIZE, AsyncConnection, Connection, opened
from agentstate.sqlite.files import database_path, make_private, refuse_foreign_files
from agentstate.sqlite.translate import translate


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
    conn.busy_timeout_ms = busy_timeout_of(settings)
    conn.monitor = Monitor(settings.slow_query_ms, settings.on_query) if settings.monitoring else None
    _log_sqlite()
    make_private(conn, settings.file_mode)
    configure(conn, settings)
    if settings.writer_gate and not conn.readonly("main") and conn.filename:
        conn.writer_gate = gate.open_gate(conn.filename, settings.file_mode, conn.busy_timeout_ms / 1000)
    opened.add(conn)


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
    """apsw's as_async with agentstate's lean controller (:mod:`agentstate.sqlite.async_worker`), unless
    the caller chose a controller of their own."""
    # The context variable holds a factory of controllers (apsw's stubs type it as one).
    if apsw.async_controller.get(None) is not None:
        return await Connection.as_async(filename, flags, None, STATEMENT_CACHE_SIZE)
    token = apsw.async_controller.set(cast(Any, async_worker.Controller))
    try:
        return await Connection.as_async(filename, flags, None, STATEMENT_CACHE_SIZE)
    finally:
        apsw.async_controller.reset(token)


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
    if writer.writer_gate is not None:  # its turn at the gate lasts as long as any writer's
        writer.writer_gate.max_hold_s = busy_timeout_of(settings) / 1000
    cast(Connection, conn).writer = writer
