"""Running the synchronous API for asyncio, on either engine: a call on the connection's worker
thread (apsw's async mode, or the PostgreSQL handle's thread pool), settled before a cancellation
is raised; a short read or write inline on the event loop's thread where the connection has an
inline reader or writer (SQLite's). The generated :mod:`agentstate.aio` calls these."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from agentstate import errors

T = TypeVar("T")
# Either engine's async connection (agentstate.engines.AsyncConnection); only its async_run,
# reader, writer and writing are used here.
AsyncConnection = Any


def discard(call: Any) -> None:
    """A call an async connection answered with an awaitable nobody will await."""
    if hasattr(call, "close"):  # a coroutine (apsw's own controller)
        call.close()
    else:  # a future (agentstate's): the worker skips it
        call.cancel()


def materialise(value: T) -> T:
    """An iterator argument of an async call, consumed on the caller's thread (a generator must
    not run on the connection's worker thread); anything else is passed on unchanged."""
    return list(value) if isinstance(value, Iterator) else value  # type: ignore[return-value]


def run_async(conn: AsyncConnection, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> Awaitable[T]:
    """Run a synchronous agentstate call on an async connection's worker thread."""
    result: Awaitable[T] = conn.async_run(call, *args, **kwargs)
    return result


def inline_write(conn: AsyncConnection, inline: Callable[..., T] | None, args: Any, kwargs: Any) -> tuple[bool, T | None]:
    """Run a single-transaction write on the connection's inline writer, right here, if the write
    lock is free at once: (True, its result); (False, None) when it must go to the worker thread
    (no inline writer, a write_async block open, or another writer has or awaits the lock). A
    write done here cannot be cancelled half-way: it has finished when the caller sees it."""
    if inline is None or conn.writing:
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
    if inline is not None and not conn.writing:
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
