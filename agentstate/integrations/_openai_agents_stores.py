"""Where a session's calls run: on a connection from :func:`agentstate.connect_async`, through
agentstate's Async classes; on one from :func:`agentstate.connect`, on asyncio's default
executor, one call at a time per connection. No call waits for the write lock on the event
loop's thread, and a cancelled write settles before ``CancelledError`` is raised."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import apsw

from agentstate import errors
from agentstate.agents import Agents
from agentstate.aio import AsyncMessageLog
from agentstate.async_calls import call_async, settled, write_call
from agentstate.calls import writes
from agentstate.engines import AsyncConnection, Connection, engine_of, is_sqlite
from agentstate.integrations._openai_agents_sdk_tables import _sdk_items
from agentstate.message_batches import Draft, position_and_insert
from agentstate.message_streams import stream_sql
from agentstate.messages import Message, MessageLog, Stream
from agentstate.transactions import write
from agentstate.values import utc_now

T = TypeVar("T")

STREAM: Stream = "router"
"""The message stream a session lives in: a conversation's."""


class _Turns:
    """A session's turn inserted after the conversation's last position, in one write transaction
    (the first write makes the conversation; racing writers share it), not read back into
    Messages as MessageLog.append_many's rows are: add_items returns nothing. A declared write of
    a manager, so that on PostgreSQL it is repeated across a lost connection as MessageLog's are
    (the engine wraps declared methods)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sql = stream_sql(STREAM)
        engine_of(conn).protect(self)

    @writes()
    def append(self, conversation_id: str, drafts: list[Draft]) -> None:
        try:
            with write(self.conn):
                position_and_insert(self.conn, self.sql, drafts, [conversation_id], utc_now())
        except errors.ForeignKeyError:  # rolled back: no conversation yet
            Agents(self.conn).get_or_create_conversation(conversation_id)
            with write(self.conn):
                position_and_insert(self.conn, self.sql, drafts, [conversation_id], utc_now())


class _Store(Protocol):
    """One conversation's stream on one connection, awaitable; no lock wait on the event loop's thread."""

    async def latest(self, conversation_id: str, limit: int) -> list[Message]: ...

    async def all(self, conversation_id: str) -> list[Message]: ...

    async def append(self, conversation_id: str, drafts: list[Draft]) -> None: ...

    async def pop(self, conversation_id: str) -> Message | None: ...

    async def clear(self, conversation_id: str) -> None: ...

    async def sdk_items(self, conversation_id: str) -> int:
        """Items the SDK's SQLiteSession left in this file for a conversation with none of its own."""
        ...

    async def transaction(self, call: Callable[..., T], *args: Any) -> T:
        """``call(conn, *args)``, a synchronous function that opens its own write transaction, run
        where the connection answers synchronously, settled before a cancellation is raised."""
        ...


class _AsyncStore:
    """On a connection from :func:`agentstate.connect_async`: agentstate's Async classes, whose
    writes settle before a cancellation is raised."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.loop = getattr(getattr(conn, "async_controller", None), "loop", None)  # PostgreSQL: any loop
        self.log = AsyncMessageLog(conn)
        # On its worker thread an async connection answers synchronously, like a plain one; a
        # short write runs inline on its writer when it has one (see write_call).
        self.turns = _Turns(cast(Connection, conn))
        writer = getattr(conn, "writer", None)
        self.inline_turns = None if writer is None else _Turns(writer).append

    def check_loop(self) -> None:
        """Refuse a call from another event loop before it is sent: its answer could not arrive."""
        if isinstance(self.loop, asyncio.AbstractEventLoop) and self.loop is not asyncio.get_running_loop():
            raise errors.InvalidValueError(
                "AgentStateSession was given an async connection of another event loop: a connection from "
                "connect_async() answers on the loop it was opened on; pass a path instead (the session then "
                "opens a connection on each loop it runs on)"
            )

    async def latest(self, conversation_id: str, limit: int) -> list[Message]:
        return await self.log.latest(STREAM, conversation_id, limit)

    async def all(self, conversation_id: str) -> list[Message]:
        return await self.log.all(STREAM, conversation_id)

    async def append(self, conversation_id: str, drafts: list[Draft]) -> None:
        await write_call(self.conn, self.turns.append, self.inline_turns, conversation_id, drafts)

    async def pop(self, conversation_id: str) -> Message | None:
        return await self.log.pop_last(STREAM, conversation_id)

    async def clear(self, conversation_id: str) -> None:
        await self.log.clear(STREAM, conversation_id)

    async def sdk_items(self, conversation_id: str) -> int:
        if not is_sqlite(self.conn) or await self.log.count(STREAM, conversation_id):
            return 0
        return await call_async(self.conn, _sdk_items, self.conn, conversation_id)

    async def transaction(self, call: Callable[..., T], *args: Any) -> T:
        return await call_async(self.conn, call, self.conn, *args)


# Calls on one synchronous connection take turns, whichever sessions make them: two transactions
# interleaved on one connection would be one transaction.
_turns: weakref.WeakKeyDictionary[Connection, threading.Lock] = weakref.WeakKeyDictionary()
_turns_guard = threading.Lock()


def _turn_of(conn: Connection) -> threading.Lock:
    with _turns_guard:
        lock = _turns.get(conn)
        if lock is None:
            lock = _turns[conn] = threading.Lock()
        return lock


class _ThreadStore:
    """On a connection from :func:`agentstate.connect`: the synchronous classes, each call on a
    thread of asyncio's default executor, one call at a time on the connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.turn = _turn_of(conn)
        self.log = MessageLog(conn)
        self.turns = _Turns(conn)

    def _call(self, call: Callable[..., T], *args: Any) -> T:
        with self.turn:
            return call(*args)

    async def _read(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._call, call, *args)

    async def _write(self, call: Callable[..., T], *args: Any) -> T:
        result, cancelled = await settled(asyncio.to_thread(self._call, call, *args))
        if cancelled:
            raise asyncio.CancelledError
        return result

    async def latest(self, conversation_id: str, limit: int) -> list[Message]:
        return await self._read(self.log.latest, STREAM, conversation_id, limit)

    async def all(self, conversation_id: str) -> list[Message]:
        return await self._read(self.log.all, STREAM, conversation_id)

    async def append(self, conversation_id: str, drafts: list[Draft]) -> None:
        await self._write(self.turns.append, conversation_id, drafts)

    async def pop(self, conversation_id: str) -> Message | None:
        return await self._write(self.log.pop_last, STREAM, conversation_id)

    async def clear(self, conversation_id: str) -> None:
        await self._write(self.log.clear, STREAM, conversation_id)

    def _sdk_items(self, conversation_id: str) -> int:
        if not is_sqlite(self.conn) or self.log.count(STREAM, conversation_id):
            return 0
        return _sdk_items(cast(apsw.Connection, self.conn), conversation_id)

    async def sdk_items(self, conversation_id: str) -> int:
        return await self._read(self._sdk_items, conversation_id)

    async def transaction(self, call: Callable[..., T], *args: Any) -> T:
        return await self._write(call, self.conn, *args)
