"""OpenAI Agents SDK sessions on an agentstate database: an agent's conversation history lives in
the same SQLite file as the tasks and messages of the agents around it.

    from agentstate.integrations.openai_agents import AgentStateSession

    session = AgentStateSession("conv-1", "agents.db")   # was: SQLiteSession("conv-1", "agents.db")
    result = await Runner.run(agent, "Hello", session=session)
    ...
    await session.aclose()

:class:`AgentStateSession` implements the SDK's session protocol (``get_items``, ``add_items``,
``pop_item``, ``clear_session``, ``session_settings``). It takes a path (it then opens its own
connection with :func:`agentstate.connect_async`, lazily, inside the running event loop, and
closes it in :meth:`~AgentStateSession.close` / :meth:`~AgentStateSession.aclose`), or a
connection you opened, which stays yours to close: one from :func:`agentstate.connect_async`
(calls go through :class:`~agentstate.AsyncMessageLog`: short ones on the event loop's thread
when the lock is free, the rest on the connection's own thread; see
:func:`agentstate.connect_async`), or one from :func:`agentstate.connect` (calls run on
asyncio's default executor, one at a time per connection). No call waits for the write lock on
the event loop's thread.

**Storage.** A session is a conversation: its items are the conversation's router message stream
(``router_messages``, keyed by the session id), in order of position. The conversation is made
with :meth:`~agentstate.Agents.get_or_create_conversation` by the first ``add_items`` that finds
it missing (reads never create it); one made beforehand (with your own metadata, say) is used
as it is. Each item is one message whose ``content`` is the item itself as JSON text, exactly as
given (key order kept), and whose ``role`` is the item's ``role`` (``user``, ``assistant``, ...),
else its ``type`` (``function_call``, ``reasoning``, ...), else ``item``; ``metadata`` is empty.
(The item was first kept as metadata: a turn of 100 items then cost 770 µs in the append
against 538 as content, since metadata is encoded and checked as JSON once more.) So
agentstate's own readers page the session like any conversation (``MessageLog.latest``,
``before``, ``after``: one index range read each), each message's ``content`` an SDK item in
JSON. Messages appended to the conversation by other code must carry an SDK input item, as JSON,
as their content: every message of the stream is read back as one.

**What it promises** (those of the SDK's own sessions):

- ``get_items()`` returns items oldest first; ``get_items(limit=N)`` the latest N, oldest first
  (one index range read at any depth); ``None`` falls back to ``session_settings.limit``, then
  to every item; ``0`` returns none. A negative limit raises
  :class:`~agentstate.errors.InvalidValueError`.
- ``add_items`` stores the whole list in one transaction, or nothing (an item that is not a dict,
  or that would not come back from JSON exactly as given, raises before anything is written).
- ``pop_item`` removes and returns the newest item in one statement (None when there is none):
  two callers popping at once never get the same item.
- Sessions with different ids never see each other's items.
- A cancelled ``add_items``, ``pop_item`` or ``clear_session`` finishes (commits or rolls back)
  before ``CancelledError`` reaches the caller, so what the caller sees is what the file holds.
- Any number of processes (and session objects) may append to one session at once: nothing is
  lost, and each writer's items keep their order (positions are assigned inside the appending
  transaction).
- ``clear_session`` deletes the conversation's items and keeps the conversation (its metadata,
  status and links are not the session's to delete); positions are not reused, so a reader
  paging by position never misses a later item. To delete the conversation as well, use
  ``Agents.delete_conversation`` or ``MessageLog.clear(..., delete_owner=True)``.
- Bad input raises :class:`~agentstate.errors.AgentStateError` subclasses, as all of agentstate.

**Where it differs from the SDK's SQLiteSession:** the default ``db_path`` is agentstate's
``agentstate.db`` (not ``:memory:``); an item holding a tuple, a set, a non-str dict key, NaN or
text that is not valid Unicode (a lone surrogate) is refused rather than stored changed; a
negative limit is refused rather than read as "all".

**History is not carried over** from a file the SDK's ``SQLiteSession`` wrote: its items stay in
its own tables (``agent_sessions``, ``agent_messages``), which this session never reads, so a
session pointed at that file starts empty (agentstate adds its own tables to the file, next to
the SDK's). The first call of a session whose conversation is empty while ``agent_messages``
holds items for its id logs a warning on the ``agentstate`` logger saying so. To carry the
history over, copy it once::

    old = SQLiteSession("conv-1", "agents.db")
    await session.add_items(await old.get_items())
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from agents.items import TResponseInputItem
from agents.memory.session import SessionABC, _CompactionSnapshot
from agents.memory.session_settings import SessionSettings, coerce_session_settings, resolve_session_limit
from agents.run_context import RunContextWrapper

# Its parts: _openai_agents_items (SDK items as messages and back), _openai_agents_stores (where the
# calls run), _openai_agents_sdk_tables (items the SDK's SQLiteSession left in the file).
from agentstate import errors
from agentstate.agents import MAX_ID_LENGTH
from agentstate.engines import (
    DEFAULT_PATH,
    AsyncConnection,
    Connection,
    connect_async,
    is_connection,
    is_url,
    translating,
)
from agentstate.integrations._openai_agents_compaction import replace_all, replace_tail
from agentstate.integrations._openai_agents_items import _drafts, _items, _messages
from agentstate.integrations._openai_agents_sdk_tables import _warn_not_carried_over
from agentstate.integrations._openai_agents_stores import _AsyncStore, _Store, _ThreadStore
from agentstate.messages import Message
from agentstate.sqlite.files import database_path
from agentstate.values import require_int, require_str


def _settings(value: object) -> SessionSettings:
    if value is None:
        return SessionSettings()
    if not isinstance(value, (SessionSettings, dict)):
        raise errors.InvalidTypeError(
            f"session_settings must be a SessionSettings or a dict, not {type(value).__name__}"
        )
    try:
        return coerce_session_settings(value)
    except TypeError as exc:  # an unknown field: the SDK's own sessions raise TypeError
        raise errors.UnknownFieldError(f"session_settings: {exc}") from exc
    except Exception as exc:  # pydantic's validation error (a ValueError)
        raise errors.InvalidValueError(f"session_settings: {exc}") from exc


def _session_id(value: object) -> str:
    session_id = require_str("session_id", value)
    if len(session_id) > MAX_ID_LENGTH:
        raise errors.InvalidValueError(f"session_id is {len(session_id)} characters long; the limit is {MAX_ID_LENGTH}")
    return session_id


# --- the session ----------------------------------------------------------------------------


class AgentStateSession(SessionABC):
    """An OpenAI Agents SDK session whose items are an agentstate conversation (see the module).

    ``AgentStateSession(session_id, db_path)`` mirrors the SDK's ``SQLiteSession``; ``db_path``
    may also be a connection from :func:`agentstate.connect_async` or :func:`agentstate.connect`
    (it stays yours to close). With a path, the session opens one async connection per event
    loop it is used on (one, in an ordinary program), when first used there; close them with
    ``await session.aclose()`` (or ``session.close()``, or ``async with`` / ``with`` the session)
    once no call is in flight. A closed session refuses further calls.

    Every method takes the SDK's optional ``wrapper`` keyword (the run's context) and ignores it:
    the session id alone names the history.

    A file the SDK's ``SQLiteSession`` wrote keeps its items in the SDK's own tables: they are not
    carried over (the session starts empty, and its first call logs a warning; see the module).

    :param session_id: the conversation's id (a non-empty str of at most 128 characters).
    :param db_path: a database path (created and migrated if needed), or an open connection.
    :param session_settings: the SDK's session settings (``limit``: the default for
        ``get_items``), as a ``SessionSettings`` or a dict.
    :raises InvalidTypeError, InvalidValueError: a bad id, path, connection or settings.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        db_path: str | os.PathLike[str] | AsyncConnection | Connection = DEFAULT_PATH,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = _session_id(session_id)
        self.session_settings = _settings(session_settings)
        self._closed = False
        self._looked_for_sdk_items = False
        self._guard = threading.Lock()
        # With a path: the connection opening, or open, on each event loop the session runs on.
        self._opened: dict[asyncio.AbstractEventLoop, asyncio.Future[_AsyncStore]] = {}
        self._given: _AsyncStore | _ThreadStore | None = None
        self.db_path: str | None = None
        """The database path, when the session was given one (None for a connection)."""
        if is_url(db_path):
            self.db_path = cast(str, db_path)
        elif isinstance(db_path, (str, os.PathLike)):
            self.db_path = database_path(db_path)
        elif is_connection(db_path):
            with translating("AgentStateSession"):  # a closed connection answers nothing
                if db_path.is_async:
                    self._given = _AsyncStore(cast(AsyncConnection, db_path))
                else:
                    self._given = _ThreadStore(cast(Connection, db_path))
        else:
            raise errors.InvalidTypeError(
                "db_path must be a path (a str or pathlib.Path) or a connection from agentstate.connect() or "
                f"connect_async(), not {type(db_path).__name__}"
            )

    # --- connections ----------------------------------------------------------------------------

    async def _store(self) -> _Store:
        store = await self._connected()
        if not self._looked_for_sdk_items:  # once per session: a history the SDK left in the file
            self._looked_for_sdk_items = True
            with translating():
                count = await store.sdk_items(self.session_id)
            if count:
                where = self.db_path if self.db_path is not None else "the connection's database file"
                _warn_not_carried_over(self.session_id, where, count)
        return store

    async def _connected(self) -> _Store:
        if self._closed:
            raise errors.SessionClosedError(f"AgentStateSession {self.session_id!r} is closed")
        if isinstance(self._given, _AsyncStore):
            self._given.check_loop()
            return self._given
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        stale: list[asyncio.Future[_AsyncStore]] = []
        with self._guard:
            opening = self._opened.get(loop)
            if opening is None:
                # A loop that has closed (an earlier asyncio.run) can never use its connection again.
                for other in [other for other in self._opened if other.is_closed()]:
                    stale.append(self._opened.pop(other))
                opening = self._opened[loop] = loop.create_task(self._open(loop))
                opening.add_done_callback(_retrieve)
        for future in stale:
            await _close_opened(future, on_loop=False)
        # Shielded: a caller cancelled while the connection opens leaves it open for the next call.
        return await asyncio.shield(opening)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _AsyncStore:
        assert self.db_path is not None
        try:
            conn = await connect_async(self.db_path)
        except BaseException:
            with self._guard:
                self._opened.pop(loop, None)  # the next call tries again
            raise
        with self._guard:
            closed = self._closed
        if closed:  # closed while this connection opened: nobody else will close it
            await conn.aclose()
            raise errors.SessionClosedError(f"AgentStateSession {self.session_id!r} is closed")
        return _AsyncStore(conn)

    def _take_opened(self) -> dict[asyncio.AbstractEventLoop, asyncio.Future[_AsyncStore]]:
        with self._guard:
            self._closed = True
            opened, self._opened = self._opened, {}
        return opened

    async def aclose(self) -> None:
        """Close the connections the session opened (a connection it was given stays open); the
        running loop's waits for its calls in flight. Later calls raise AgentStateError."""
        running = asyncio.get_running_loop()
        for loop, future in self._take_opened().items():
            await _close_opened(future, on_loop=loop is running)

    def close(self) -> None:
        """:meth:`aclose` for synchronous code (the SDK's sessions have a ``close()``): closes at
        once, so call it when no call of the session is in flight."""
        for future in self._take_opened().values():
            store = _opened_store(future)
            if store is not None:
                store.conn.close()

    async def __aenter__(self) -> AgentStateSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __enter__(self) -> AgentStateSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- the SDK's session protocol -------------------------------------------------------------

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The session's items, oldest first: the latest ``limit`` of them (``None``:
        ``session_settings.limit``, and if that is None too, all of them; ``0``: none).

        :raises InvalidValueError: a negative limit. :raises InvalidTypeError: a limit that is not an int.
        """
        resolved = resolve_session_limit(limit, self.session_settings)
        count = None if resolved is None else require_int("limit", resolved, minimum=0)
        store = await self._store()
        if count == 0:
            return []
        with translating():  # a connection closed under the session
            if count is None:
                return _items(await store.all(self.session_id))
            return _items(await store.latest(self.session_id, count))

    async def add_items(
        self, items: list[TResponseInputItem], *, wrapper: RunContextWrapper[Any] | None = None
    ) -> None:
        """Append items, in order, in one transaction: all of them or, on any error, none.

        :raises InvalidTypeError: ``items`` is not a list, or an item is not a dict.
        :raises InvalidValueError: an item is not JSON, or would not come back from JSON as given.
        """
        drafts = _drafts("items", items, self.session_id)
        store = await self._store()
        if drafts:
            with translating():
                await store.append(self.session_id, drafts)

    async def pop_item(self, *, wrapper: RunContextWrapper[Any] | None = None) -> TResponseInputItem | None:
        """Remove and return the newest item (one statement: two callers never get the same one);
        None when the session is empty."""
        store = await self._store()
        with translating():
            message = await store.pop(self.session_id)
        return None if message is None else _items([message])[0]

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Delete every item of the session, in one transaction; the conversation itself stays."""
        store = await self._store()
        with translating():
            await store.clear(self.session_id)

    # --- the SDK's compaction hooks (OpenAIResponsesCompactionSession looks them up by name) -----

    async def _get_compaction_snapshot(
        self, limit: int, *, prune_prefix: Callable[[TResponseInputItem], bool] | None = None
    ) -> _CompactionSnapshot | None:
        """The latest ``limit`` items and whether they are all there is, with a ``replace_suffix``
        that swaps the tail it read for the compacted items in one transaction, or changes nothing
        and returns False if the tail moved on (see :mod:`~agentstate.integrations._openai_agents_compaction`).
        None (the SDK then checks coverage its own way) for a stream holding something not an item."""
        count = require_int("limit", limit, minimum=1)
        store = await self._store()
        with translating():
            rows = await store.latest(self.session_id, count + 1)
        complete, rows = len(rows) <= count, rows[-count:]
        try:
            items = _items(rows)
        except errors.InvalidValueError:
            return None
        prune = None if prune_prefix is None else _pruner(prune_prefix)

        async def replace_suffix(start: int, output: list[TResponseInputItem]) -> bool:
            expected = rows[start:]
            if not expected:
                return False
            messages = _messages("output", output)
            with translating():
                return await store.transaction(replace_tail, self.session_id, expected, messages, prune, count)

        return _CompactionSnapshot(items, complete, replace_suffix)

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """The whole history replaced by ``items`` in one transaction (a manual compaction)."""
        messages = _messages("items", items)
        store = await self._store()
        with translating():
            return await store.transaction(replace_all, self.session_id, messages)


def _pruner(prune_prefix: Callable[[TResponseInputItem], bool]) -> Callable[[Message], bool]:
    """The SDK's prefix test on a stored message; a message that is not an item stops the pruning."""

    def prune(message: Message) -> bool:
        try:
            item = _items([message])[0]
        except errors.InvalidValueError:
            return False
        return bool(prune_prefix(item))

    return prune


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an opening's failure as seen: its callers may all have been cancelled meanwhile."""
    if not future.cancelled():
        future.exception()


def _opened_store(future: asyncio.Future[_AsyncStore]) -> _AsyncStore | None:
    """The store a finished opening made; None if it failed or is still running (an opening that
    finishes after the session closed closes its own connection)."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


async def _close_opened(future: asyncio.Future[_AsyncStore], *, on_loop: bool) -> None:
    """Close a connection the session opened: awaited on its own loop (after its calls in flight),
    else at once on a worker thread (its loop is gone or elsewhere)."""
    if on_loop:
        try:
            opened = await asyncio.shield(future)
        except Exception:  # its opening failed (nothing to close), or saw the close and closed itself
            return
        await opened.conn.aclose()
        return
    store = _opened_store(future)
    if store is not None:
        await asyncio.to_thread(store.conn.close)


__all__ = ["AgentStateSession"]
