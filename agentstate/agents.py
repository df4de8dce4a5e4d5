"""Conversations, routers and planners, and the links between routers and planners.

Workers are tasks and belong to :mod:`agentstate.tasks`; their message streams are keyed by the
task's ``worker_id``.

Each agent row has a status (free text, ``'active'`` by default) and JSON metadata. Lists by status
are keyset-paged: pass the last row of a page as ``after`` to get the next one; a page is one
index range read, however deep into the list it is::

    agents = Agents(conn)
    page = agents.list_planners("active", limit=100)
    while page:
        ...
        page = agents.list_planners("active", after=page[-1], limit=100)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import apsw

from agentstate import engine, errors, queries
from agentstate.engine import AsyncConnection
from agentstate.values import from_json, new_id, require_int, require_str, to_json, utc_now

MAX_ID_LENGTH = 128
MAX_STATUS_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Conversation:
    """One row of ``conversations``: the stream key of ``router_messages``."""

    id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Router:
    """One row of ``routers``."""

    router_id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Planner:
    """One row of ``planners``: the stream key of ``planner_messages`` and the owner of tasks."""

    planner_id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Link:
    """One row of ``router_planner_links``: a router may hand work to this planner."""

    link_id: int
    router_id: str
    planner_id: str
    created_at: str


RowT = TypeVar("RowT", Conversation, Router, Planner)


@dataclass(frozen=True)
class _Table(Generic[RowT]):
    """What differs between the three agent tables: the row type, its key and its statements."""

    kind: str
    row: type[RowT]
    key_of: Callable[[RowT], str]
    create: str
    get: str
    update: str
    list: str

    def build(self, row: tuple[Any, ...]) -> RowT:
        key, status, metadata, created_at, updated_at = row
        return self.row(key, status, from_json(metadata), created_at, updated_at)


def _table(kind: str, table: str, row: type[RowT], key_of: Callable[[RowT], str]) -> _Table[RowT]:
    return _Table(
        kind=kind,
        row=row,
        key_of=key_of,
        create=queries.sql(f"agents.create_{table}"),
        get=queries.sql(f"agents.get_{table}"),
        update=queries.sql(f"agents.update_{table}"),
        list=queries.sql(f"agents.list_{table}"),
    )


CONVERSATIONS = _table("conversation", "conversations", Conversation, lambda r: r.id)
ROUTERS = _table("router", "routers", Router, lambda r: r.router_id)
PLANNERS = _table("planner", "planners", Planner, lambda r: r.planner_id)

_LINK = queries.sql("agents.link")
_UNLINK = queries.sql("agents.unlink")
_PLANNERS_OF_ROUTER = queries.sql("agents.planners_of_router")
_ROUTERS_OF_PLANNER = queries.sql("agents.routers_of_planner")


def _id(name: str, value: object) -> str:
    text = require_str(name, value)
    if len(text) > MAX_ID_LENGTH:
        raise errors.InvalidValueError(f"{name} is {len(text)} characters long; the limit is {MAX_ID_LENGTH}")
    if "\x00" in text:  # SQLite's length() stops at a NUL, so the schema's CHECK would refuse it
        raise errors.InvalidValueError(f"{name} must not contain NUL characters: {text!r}")
    return text


def _status(value: object) -> str:
    text = require_str("status", value)
    if len(text) > MAX_STATUS_LENGTH:
        raise errors.InvalidValueError(f"status is {len(text)} characters long; the limit is {MAX_STATUS_LENGTH}")
    if "\x00" in text:
        raise errors.InvalidValueError(f"status must not contain NUL characters: {text!r}")
    return text


def _is_unique_failure(exc: apsw.ConstraintError) -> bool:
    return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc)


class Agents:
    """Create, read, update and list conversations, routers and planners; link routers to planners.

    Every method is one short statement (writes in their own ``BEGIN IMMEDIATE`` transaction, or a
    savepoint inside yours). Metadata is any JSON value; ``None`` means ``{}`` on create and
    "leave unchanged" on update.
    """

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn

    # --- the shared implementation ---------------------------------------------------------

    def _create(self, table: _Table[RowT], id: str | None, status: str, metadata: Any) -> RowT:
        params = {
            "id": new_id() if id is None else _id(f"{table.kind} id", id),
            "status": _status(status),
            "metadata": "{}" if metadata is None else to_json("metadata", metadata),
        }
        with engine.write(self._conn):
            params["now"] = utc_now()
            try:
                rows = self._conn.execute(table.create, params).fetchall()
            except apsw.ConstraintError as exc:
                if _is_unique_failure(exc):
                    raise errors.DuplicateError(
                        f"{table.kind} {params['id']!r} already exists: pick another id, or get() it"
                    ) from exc
                raise
        return table.build(rows[0])

    def _get(self, table: _Table[RowT], id: str) -> RowT:
        params = {"id": _id(f"{table.kind} id", id)}
        with engine.translating():
            rows = self._conn.execute(table.get, params).fetchall()
        if not rows:
            raise errors.NotFoundError(table.kind, id)
        return table.build(rows[0])

    def _update(self, table: _Table[RowT], id: str, status: str | None, metadata: Any) -> RowT:
        params = {
            "id": _id(f"{table.kind} id", id),
            "status": None if status is None else _status(status),
            "metadata": None if metadata is None else to_json("metadata", metadata),
        }
        with engine.write(self._conn):
            params["now"] = utc_now()
            rows = self._conn.execute(table.update, params).fetchall()
        if not rows:
            raise errors.NotFoundError(table.kind, id)
        return table.build(rows[0])

    def _list(self, table: _Table[RowT], status: str, after: RowT | None, limit: int) -> list[RowT]:
        if after is not None and not isinstance(after, table.row):
            raise errors.InvalidTypeError(
                f"after must be the last {table.row.__name__} of the previous page, not {type(after).__name__}"
            )
        params = {
            "status": _status(status),
            "after_created_at": "" if after is None else after.created_at,
            "after_id": "" if after is None else table.key_of(after),
            "limit": require_int("limit", limit, minimum=1),
        }
        with engine.translating():
            rows = self._conn.execute(table.list, params).fetchall()
        return [table.build(row) for row in rows]

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(
        self, conversation_id: str | None = None, *, status: str = "active", metadata: Any = None
    ) -> Conversation:
        """Create a conversation; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(CONVERSATIONS, conversation_id, status, metadata)

    def get_conversation(self, conversation_id: str) -> Conversation:
        """One conversation. :raises NotFoundError: there is none with this id."""
        return self._get(CONVERSATIONS, conversation_id)

    def update_conversation(
        self, conversation_id: str, *, status: str | None = None, metadata: Any = None
    ) -> Conversation:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such conversation.
        """
        return self._update(CONVERSATIONS, conversation_id, status, metadata)

    def list_conversations(
        self, status: str = "active", *, after: Conversation | None = None, limit: int = 100
    ) -> list[Conversation]:
        """A page of the conversations in ``status``, oldest first, after the row ``after``."""
        return self._list(CONVERSATIONS, status, after, limit)

    # --- routers ----------------------------------------------------------------------------

    def create_router(self, router_id: str | None = None, *, status: str = "active", metadata: Any = None) -> Router:
        """Create a router; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(ROUTERS, router_id, status, metadata)

    def get_router(self, router_id: str) -> Router:
        """One router. :raises NotFoundError: there is none with this id."""
        return self._get(ROUTERS, router_id)

    def update_router(self, router_id: str, *, status: str | None = None, metadata: Any = None) -> Router:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such router.
        """
        return self._update(ROUTERS, router_id, status, metadata)

    def list_routers(self, status: str = "active", *, after: Router | None = None, limit: int = 100) -> list[Router]:
        """A page of the routers in ``status``, oldest first, after the row ``after``."""
        return self._list(ROUTERS, status, after, limit)

    # --- planners ---------------------------------------------------------------------------

    def create_planner(self, planner_id: str | None = None, *, status: str = "active", metadata: Any = None) -> Planner:
        """Create a planner; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(PLANNERS, planner_id, status, metadata)

    def get_planner(self, planner_id: str) -> Planner:
        """One planner. :raises NotFoundError: there is none with this id."""
        return self._get(PLANNERS, planner_id)

    def update_planner(self, planner_id: str, *, status: str | None = None, metadata: Any = None) -> Planner:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such planner.
        """
        return self._update(PLANNERS, planner_id, status, metadata)

    def list_planners(self, status: str = "active", *, after: Planner | None = None, limit: int = 100) -> list[Planner]:
        """A page of the planners in ``status``, oldest first, after the row ``after``."""
        return self._list(PLANNERS, status, after, limit)

    # --- links ------------------------------------------------------------------------------

    def link(self, router_id: str, planner_id: str) -> Link:
        """Link a router to a planner (one link per pair).

        :raises DuplicateError: the pair is already linked.
        :raises NotFoundError: the router or the planner does not exist.
        """
        params = {"router_id": _id("router_id", router_id), "planner_id": _id("planner_id", planner_id)}
        with engine.write(self._conn):
            params["now"] = utc_now()
            try:
                rows = self._conn.execute(_LINK, params).fetchall()
            except apsw.ConstraintError as exc:
                if _is_unique_failure(exc):
                    raise errors.DuplicateError(
                        f"router {router_id!r} is already linked to planner {planner_id!r}"
                    ) from exc
                if "FOREIGN KEY" in str(exc):
                    for kind, sql, key in (("router", ROUTERS.get, router_id), ("planner", PLANNERS.get, planner_id)):
                        if not self._conn.execute(sql, {"id": key}).fetchall():
                            raise errors.NotFoundError(kind, key) from exc
                raise
        return Link(*cast(tuple[int, str, str, str], rows[0]))

    def unlink(self, router_id: str, planner_id: str) -> bool:
        """Remove the link of a pair; False if they were not linked."""
        params = {"router_id": _id("router_id", router_id), "planner_id": _id("planner_id", planner_id)}
        with engine.write(self._conn):
            self._conn.execute(_UNLINK, params)
            return self._conn.changes() > 0

    def planners_of(self, router_id: str) -> list[Planner]:
        """The planners a router is linked to, by id (empty for an unknown router)."""
        params = {"router_id": _id("router_id", router_id)}
        with engine.translating():
            rows = self._conn.execute(_PLANNERS_OF_ROUTER, params).fetchall()
        return [PLANNERS.build(row) for row in rows]

    def routers_of(self, planner_id: str) -> list[Router]:
        """The routers a planner is linked to, by id (empty for an unknown planner)."""
        params = {"planner_id": _id("planner_id", planner_id)}
        with engine.translating():
            rows = self._conn.execute(_ROUTERS_OF_PLANNER, params).fetchall()
        return [ROUTERS.build(row) for row in rows]


class AsyncAgents:
    """:class:`Agents` for asyncio, on a connection from :func:`agentstate.connect_async`.

    Each method runs the synchronous one on the connection's worker thread.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # On its worker thread an async connection answers synchronously, like a plain one.
        self._sync = Agents(cast(apsw.Connection, conn))

    async def create_conversation(
        self, conversation_id: str | None = None, *, status: str = "active", metadata: Any = None
    ) -> Conversation:
        """See :meth:`Agents.create_conversation`."""
        return await engine.run_async(
            self._conn, self._sync.create_conversation, conversation_id, status=status, metadata=metadata
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """See :meth:`Agents.get_conversation`."""
        return await engine.run_async(self._conn, self._sync.get_conversation, conversation_id)

    async def update_conversation(
        self, conversation_id: str, *, status: str | None = None, metadata: Any = None
    ) -> Conversation:
        """See :meth:`Agents.update_conversation`."""
        return await engine.run_async(
            self._conn, self._sync.update_conversation, conversation_id, status=status, metadata=metadata
        )

    async def list_conversations(
        self, status: str = "active", *, after: Conversation | None = None, limit: int = 100
    ) -> list[Conversation]:
        """See :meth:`Agents.list_conversations`."""
        return await engine.run_async(self._conn, self._sync.list_conversations, status, after=after, limit=limit)

    async def create_router(
        self, router_id: str | None = None, *, status: str = "active", metadata: Any = None
    ) -> Router:
        """See :meth:`Agents.create_router`."""
        return await engine.run_async(self._conn, self._sync.create_router, router_id, status=status, metadata=metadata)

    async def get_router(self, router_id: str) -> Router:
        """See :meth:`Agents.get_router`."""
        return await engine.run_async(self._conn, self._sync.get_router, router_id)

    async def update_router(self, router_id: str, *, status: str | None = None, metadata: Any = None) -> Router:
        """See :meth:`Agents.update_router`."""
        return await engine.run_async(self._conn, self._sync.update_router, router_id, status=status, metadata=metadata)

    async def list_routers(
        self, status: str = "active", *, after: Router | None = None, limit: int = 100
    ) -> list[Router]:
        """See :meth:`Agents.list_routers`."""
        return await engine.run_async(self._conn, self._sync.list_routers, status, after=after, limit=limit)

    async def create_planner(
        self, planner_id: str | None = None, *, status: str = "active", metadata: Any = None
    ) -> Planner:
        """See :meth:`Agents.create_planner`."""
        return await engine.run_async(
            self._conn, self._sync.create_planner, planner_id, status=status, metadata=metadata
        )

    async def get_planner(self, planner_id: str) -> Planner:
        """See :meth:`Agents.get_planner`."""
        return await engine.run_async(self._conn, self._sync.get_planner, planner_id)

    async def update_planner(self, planner_id: str, *, status: str | None = None, metadata: Any = None) -> Planner:
        """See :meth:`Agents.update_planner`."""
        return await engine.run_async(
            self._conn, self._sync.update_planner, planner_id, status=status, metadata=metadata
        )

    async def list_planners(
        self, status: str = "active", *, after: Planner | None = None, limit: int = 100
    ) -> list[Planner]:
        """See :meth:`Agents.list_planners`."""
        return await engine.run_async(self._conn, self._sync.list_planners, status, after=after, limit=limit)

    async def link(self, router_id: str, planner_id: str) -> Link:
        """See :meth:`Agents.link`."""
        return await engine.run_async(self._conn, self._sync.link, router_id, planner_id)

    async def unlink(self, router_id: str, planner_id: str) -> bool:
        """See :meth:`Agents.unlink`."""
        return await engine.run_async(self._conn, self._sync.unlink, router_id, planner_id)

    async def planners_of(self, router_id: str) -> list[Planner]:
        """See :meth:`Agents.planners_of`."""
        return await engine.run_async(self._conn, self._sync.planners_of, router_id)

    async def routers_of(self, planner_id: str) -> list[Router]:
        """See :meth:`Agents.routers_of`."""
        return await engine.run_async(self._conn, self._sync.routers_of, planner_id)


__all__ = [
    "Agents",
    "AsyncAgents",
    "Conversation",
    "Link",
    "Planner",
    "Router",
]
