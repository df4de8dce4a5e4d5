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

from typing import Any, cast

from agentstate import engine, errors
from agentstate.agent_types import (
    CONVERSATIONS,
    PLANNERS,
    ROUTERS,
    AgentTable,
    Conversation,
    Link,
    Planner,
    Router,
    RowT,
    require_id,
    require_status,
)
from agentstate.agent_types import MAX_ID_LENGTH as MAX_ID_LENGTH
from agentstate.agent_types import MAX_STATUS_LENGTH as MAX_STATUS_LENGTH
from agentstate.calls import reads, writes
from agentstate.engines import Connection, require_connection
from agentstate.runner import run
from agentstate.transactions import write
from agentstate.values import new_id, require_int, require_str, to_json, utc_now


class Agents:
    """Create, read, update and list conversations, routers and planners; link routers to planners.

    Every method is one short statement (writes in their own ``BEGIN IMMEDIATE`` transaction, or a
    savepoint inside yours). Metadata is any JSON value; ``None`` means ``{}`` on create and
    "leave unchanged" on update.
    """

    def __init__(self, conn: Connection) -> None:
        engine = require_connection(conn, "Agents")
        self._conn = conn
        engine.protect(self)

    # --- the shared implementation ---------------------------------------------------------

    def _create(self, table: AgentTable[RowT], id: str | None, status: str, metadata: Any) -> RowT:
        params = {
            "id": new_id() if id is None else require_id(f"{table.kind} id", id),
            "status": require_status(status),
            "metadata": "{}" if metadata is None else to_json("metadata", metadata),
        }
        with write(self._conn):
            params["now"] = utc_now()
            try:
                row = run(self._conn, table.create, params)
            except errors.DuplicateError as exc:
                also = " (or get_or_create_conversation())" if table is CONVERSATIONS else ""
                raise errors.DuplicateError(
                    f"{table.kind} {params['id']!r} already exists: pick another id, or read it with "
                    f"get_{table.kind}(){also}"
                ) from exc
        return table.build(row)

    def _get(self, table: AgentTable[RowT], id: str) -> RowT:
        row = run(self._conn, table.get, {"id": require_id(f"{table.kind} id", id)})
        if row is None:
            raise errors.NotFoundError(table.kind, id)
        return table.build(row)

    def _update(self, table: AgentTable[RowT], id: str, status: str | None, metadata: Any) -> RowT:
        params = {
            "id": require_id(f"{table.kind} id", id),
            "status": None if status is None else require_status(status),
            "metadata": None if metadata is None else to_json("metadata", metadata),
        }
        with write(self._conn):
            params["now"] = utc_now()
            row = run(self._conn, table.update, params)
        if row is None:
            raise errors.NotFoundError(table.kind, id)
        return table.build(row)

    def _list(self, table: AgentTable[RowT], status: str, after: RowT | None, limit: int) -> list[RowT]:
        if after is not None and not isinstance(after, table.row):
            raise errors.InvalidTypeError(
                f"after must be the last {table.row.__name__} of the previous page, not {type(after).__name__}"
            )
        params = {
            "status": require_status(status),
            # a hand-made row's fields reach the SQL: SQLite compares anything, PostgreSQL refuses
            "after_created_at": "" if after is None else require_str("after.created_at", after.created_at),
            "after_id": "" if after is None else require_str("after's id", table.key_of(after)),
            "limit": require_int("limit", limit, minimum=1),
        }
        return [table.build(row) for row in run(self._conn, table.list, params)]

    # --- conversations ----------------------------------------------------------------------

    @writes()
    def create_conversation(
        self, conversation_id: str | None = None, *, status: str = "active", metadata: Any = None
    ) -> Conversation:
        """Create a conversation; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(CONVERSATIONS, conversation_id, status, metadata)

    @writes(repeat="always")
    def get_or_create_conversation(
        self, conversation_id: str, *, status: str = "active", metadata: Any = None
    ) -> Conversation:
        """The conversation with this id, created (with ``status`` and ``metadata``) if there is
        none: one statement, so two callers racing to create it both get the same one. An
        existing conversation is returned as stored; ``status`` and ``metadata`` apply only to
        a new one."""
        params = {
            "id": require_id("conversation id", conversation_id),
            "status": require_status(status),
            "metadata": "{}" if metadata is None else to_json("metadata", metadata),
        }
        with write(self._conn):
            params["now"] = utc_now()
            row = run(self._conn, "agents.create_if_absent_conversations", params)
            if row is None:
                row = run(self._conn, CONVERSATIONS.get, params)
        return CONVERSATIONS.build(row)

    @reads
    def get_conversation(self, conversation_id: str) -> Conversation:
        """One conversation. :raises NotFoundError: there is none with this id."""
        return self._get(CONVERSATIONS, conversation_id)

    @writes()
    def update_conversation(
        self, conversation_id: str, *, status: str | None = None, metadata: Any = None
    ) -> Conversation:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such conversation.
        """
        return self._update(CONVERSATIONS, conversation_id, status, metadata)

    @reads
    def list_conversations(
        self, status: str = "active", *, after: Conversation | None = None, limit: int = 100
    ) -> list[Conversation]:
        """A page of the conversations in ``status``, oldest first, after the row ``after``."""
        return self._list(CONVERSATIONS, status, after, limit)

    # --- routers ----------------------------------------------------------------------------

    @writes()
    def create_router(self, router_id: str | None = None, *, status: str = "active", metadata: Any = None) -> Router:
        """Create a router; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(ROUTERS, router_id, status, metadata)

    @reads
    def get_router(self, router_id: str) -> Router:
        """One router. :raises NotFoundError: there is none with this id."""
        return self._get(ROUTERS, router_id)

    @writes()
    def update_router(self, router_id: str, *, status: str | None = None, metadata: Any = None) -> Router:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such router.
        """
        return self._update(ROUTERS, router_id, status, metadata)

    @reads
    def list_routers(self, status: str = "active", *, after: Router | None = None, limit: int = 100) -> list[Router]:
        """A page of the routers in ``status``, oldest first, after the row ``after``."""
        return self._list(ROUTERS, status, after, limit)

    # --- planners ---------------------------------------------------------------------------

    @writes()
    def create_planner(self, planner_id: str | None = None, *, status: str = "active", metadata: Any = None) -> Planner:
        """Create a planner; without an id, a new time-ordered one is made.

        :raises DuplicateError: the id is taken.
        """
        return self._create(PLANNERS, planner_id, status, metadata)

    @reads
    def get_planner(self, planner_id: str) -> Planner:
        """One planner. :raises NotFoundError: there is none with this id."""
        return self._get(PLANNERS, planner_id)

    @writes()
    def update_planner(self, planner_id: str, *, status: str | None = None, metadata: Any = None) -> Planner:
        """Set the status and/or replace the metadata (``None`` keeps it); returns the new row.

        :raises NotFoundError: there is no such planner.
        """
        return self._update(PLANNERS, planner_id, status, metadata)

    @reads
    def list_planners(self, status: str = "active", *, after: Planner | None = None, limit: int = 100) -> list[Planner]:
        """A page of the planners in ``status``, oldest first, after the row ``after``."""
        return self._list(PLANNERS, status, after, limit)

    # --- links ------------------------------------------------------------------------------

    @writes()
    def link(self, router_id: str, planner_id: str) -> Link:
        """Link a router to a planner (one link per pair).

        :raises DuplicateError: the pair is already linked.
        :raises NotFoundError: the router or the planner does not exist.
        """
        params = {"router_id": require_id("router_id", router_id), "planner_id": require_id("planner_id", planner_id)}
        try:
            with write(self._conn):
                params["now"] = utc_now()
                row = run(self._conn, "agents.link", params)
        except errors.DuplicateError as exc:
            raise errors.DuplicateError(f"router {router_id!r} is already linked to planner {planner_id!r}") from exc
        except errors.ForeignKeyError as exc:
            # Looked up after the rollback: a failed statement ends a PostgreSQL transaction.
            for kind, query, key in (("router", ROUTERS.get, router_id), ("planner", PLANNERS.get, planner_id)):
                if run(self._conn, query, {"id": key}) is None:
                    raise errors.NotFoundError(kind, key) from exc
            raise
        return Link(*cast(tuple[int, str, str, str], row))

    @writes()
    def unlink(self, router_id: str, planner_id: str) -> bool:
        """Remove the link of a pair; False if they were not linked."""
        params = {"router_id": require_id("router_id", router_id), "planner_id": require_id("planner_id", planner_id)}
        with write(self._conn):
            return cast(int, run(self._conn, "agents.unlink", params)) > 0

    @reads
    def planners_of(self, router_id: str) -> list[Planner]:
        """The planners a router is linked to, by id (empty for an unknown router)."""
        rows = run(self._conn, "agents.planners_of_router", {"router_id": require_id("router_id", router_id)})
        return [PLANNERS.build(row) for row in rows]

    @reads
    def routers_of(self, planner_id: str) -> list[Router]:
        """The routers a planner is linked to, by id (empty for an unknown planner)."""
        rows = run(self._conn, "agents.routers_of_planner", {"planner_id": require_id("planner_id", planner_id)})
        return [ROUTERS.build(row) for row in rows]

    # --- deleting ---------------------------------------------------------------------------

    def _delete(self, table: AgentTable[RowT], id: str) -> None:
        params = {"id": require_id(f"{table.kind} id", id)}
        with write(self._conn):
            if not run(self._conn, table.delete, params):
                raise errors.NotFoundError(table.kind, id)

    @writes()
    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and all its messages, in one transaction.

        :raises NotFoundError: there is no such conversation.
        """
        self._delete(CONVERSATIONS, conversation_id)

    @writes()
    def delete_router(self, router_id: str) -> None:
        """Delete a router and its links to planners. :raises NotFoundError: no such router."""
        self._delete(ROUTERS, router_id)

    @writes(several=True)
    def delete_planner(
        self, planner_id: str, *, with_tasks: bool = False, force: bool = False, batch_size: int = 1000
    ) -> int:
        """Delete a planner with its messages and links; returns how many of its tasks went.

        A planner that has tasks is refused unless ``with_tasks=True``: then its tasks go first
        (with their events and worker messages), ``batch_size`` per transaction, and the planner
        last. Tasks an executor holds right now (``claimed``) are refused unless ``force=True``.

        :raises NotFoundError: there is no such planner.
        :raises InUseError: it has tasks and ``with_tasks`` is False, or claimed ones and ``force`` is False.
        """
        key = require_id("planner_id", planner_id)
        if not isinstance(with_tasks, bool) or not isinstance(force, bool):
            raise errors.InvalidTypeError("with_tasks and force must be True or False")
        limit = require_int("batch_size", batch_size, minimum=1)
        self.get_planner(key)
        tasks, claimed = run(self._conn, "tasks.planner_task_counts", {"planner_id": key})
        if tasks and not with_tasks:
            raise errors.InUseError(
                f"planner {key!r} has {tasks} task(s): delete_planner(..., with_tasks=True) deletes them too"
            )
        if claimed and not force:
            raise errors.InUseError(
                f"planner {key!r} has {claimed} claimed task(s) that executors are working on; "
                "wait for them, or pass force=True"
            )
        deleted = 0
        while True:
            with write(self._conn):
                params = {"planner_id": key, "limit": limit, "force": force}
                batch: int = run(self._conn, "tasks.delete_planner_tasks", params)
                deleted += batch
                if batch < limit:  # the last batch: the planner goes in the same transaction
                    try:
                        run(self._conn, PLANNERS.delete, {"id": key})
                    except errors.ForeignKeyError as exc:  # a task was claimed or created meanwhile
                        raise errors.InUseError(
                            f"planner {key!r} kept tasks that were claimed or created while it was being deleted "
                            f"({deleted} others went); retry when its executors are done, or pass force=True"
                        ) from exc
                    return deleted
            engine.yield_lock()


__all__ = [
    "Agents",
    "Conversation",
    "Link",
    "Planner",
    "Router",
]
