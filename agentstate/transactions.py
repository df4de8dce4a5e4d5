"""``agentstate.write()`` and ``reading()``: transactions for the managers and for SQL of your own,
on either engine (each engine's own form: :mod:`agentstate.sqlite.transactions`,
:class:`agentstate.postgres.engine.PostgresEngine`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Any

from agentstate.engines import AsyncConnection, Connection, engine_of, require_async_connection, require_connection


def write(conn: Connection) -> AbstractContextManager[Any]:
    """A write transaction, or a savepoint when one is already open::

        with agentstate.write(conn):
            conn.execute("INSERT ...")
            conn.execute("UPDATE ...")

    On SQLite it is ``BEGIN IMMEDIATE``: it takes the write lock up front, so a transaction never
    fails half-way with "database is locked" when it turns from reading to writing; it waits up to
    the busy timeout instead. On PostgreSQL the block holds one pooled connection of this thread
    (READ COMMITTED). Commits when the block ends, rolls back when it raises; driver errors
    raised inside become agentstate errors.

    :raises InvalidTypeError: ``conn`` is an async connection (use :func:`write_async`).
    """
    return require_connection(conn, "write()").write(conn)


def lone_write(conn: Connection) -> AbstractContextManager[Any]:
    """What a manager's write of one statement runs in (the reads that say why it matched no row
    may follow it): :func:`write`, or nothing where the engine commits a lone statement as it
    runs (see :meth:`agentstate.engine.Engine.lone_write`)."""
    return engine_of(conn).lone_write(conn)


def reading(conn: Connection) -> AbstractContextManager[None]:
    """A read transaction: every read inside sees one snapshot (on SQLite in WAL it never blocks
    writers; on PostgreSQL it is REPEATABLE READ READ ONLY). Inside a transaction already open,
    that one's snapshot serves."""
    return require_connection(conn, "reading").reading(conn)


@contextlib.asynccontextmanager
async def write_async(conn: AsyncConnection) -> AsyncIterator[Any]:
    """:func:`write` for a connection from :func:`agentstate.connect_async`::

        async with agentstate.write_async(conn):
            await conn.execute("INSERT ...")
            await conn.execute("UPDATE ...")

    Commits when the block ends, rolls back when it raises (or is cancelled). The connection runs
    one call at a time on its worker thread, but other tasks sharing it could slip statements in
    between yours: give each concurrent task its own connection. SQLite only: on PostgreSQL use
    the Async classes, or psycopg's own AsyncConnection for SQL of your own.

    :raises InvalidTypeError: ``conn`` is not an async SQLite connection (use :func:`write`).
    """
    engine = require_async_connection(conn, "write_async()")
    async with engine.write_async(conn) as block:
        yield block

