"""LangGraph checkpointers on an agentstate database: a graph's state after every step lives in
the same SQLite file as the tasks and messages of the agents that run it.

    from agentstate.integrations.langgraph import AgentStateSaver

    with AgentStateSaver.from_conn_string("agents.db") as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "conv-1"}})

:class:`AgentStateSaver` runs on a connection from :func:`agentstate.connect`;
:class:`AsyncAgentStateSaver` on one from :func:`agentstate.connect_async`, every call on that
connection's own thread, never on the event loop. Both implement LangGraph's whole protocol,
the optional parts included (``delete_for_runs``, ``copy_thread``, ``prune``), and pass its
conformance suite (``langgraph-checkpoint-conformance``) with nothing skipped.

**Storage** (``0005_langgraph_checkpoints.sql``, ``0006_langgraph_history.sql``): a checkpoint is
one row, serialised whole by the saver's ``serde`` (as LangGraph's SqliteSaver stores it),
clustered on (thread_id, checkpoint_ns, checkpoint_id), with the names of the channels it stores
and replays; a task's writes are keyed by (task_id, idx) under it, so a retried ``put_writes``
stores nothing twice. Every statement is a named query of ``queries/langgraph.sql`` (an index
search, checked by the plan tests), and every write is one ``BEGIN IMMEDIATE`` transaction, so any
number of processes may share the file.

**As SqliteSaver, and where the protocol leaves room:**

- ``list(None)`` lists every thread's checkpoints newest first (by id, then thread and
  namespace): a keyset walk of :data:`PAGE`-row pages along an index, each page read when the
  iterator gets there. A config without ``checkpoint_ns`` lists every namespace of its thread;
  one with a ``checkpoint_id`` lists that checkpoint alone (in namespace ``''`` if none is given).
- ``filter`` keys are dotted paths into the metadata (``{"a.b": 1}`` is ``metadata["a"]["b"]``)
  of letters, digits, ``_``, ``-`` and ``.``, as SqliteSaver takes them; a missing key matches
  ``None``. On SQLite values compare as SQLite compares JSON (``True`` matches ``1``; an object
  only with its keys in the same order); on PostgreSQL as jsonb.
- Metadata is stored as SqliteSaver stores it, ``writes`` included (PostgresSaver drops it).
- Thread ids may be ``str``, ``int`` or ``UUID``; they are stored, and given back, as text.
- Bad input (a config without a thread_id, a value the serde cannot encode) raises
  :class:`~agentstate.errors.InvalidValueError` or :class:`~agentstate.errors.InvalidTypeError`:
  nothing but :class:`~agentstate.errors.AgentStateError` escapes, as from all of agentstate.
- ``get_delta_channel_history`` is one query per channel along the parent chain (see
  ``_langgraph_history``); ``prune(strategy="keep_latest")`` and ``delete_for_runs`` keep the
  ancestors (and their writes) that the DeltaChannels of a checkpoint that stays replay.
- ``put`` of an id already stored replaces it (as LangGraph's savers do), so a checkpoint put
  again under its own descendant has a parent chain that loops: the history walk reads each
  ancestor once and ends where the chain comes back, as LangGraph's SqliteSaver does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # the langgraph extra is not installed
    raise ImportError(
        f"agentstate.integrations.langgraph needs LangGraph: pip install 'agentstate[langgraph]' ({exc})"
    ) from exc
if TYPE_CHECKING:  # DeltaChannel support (beta) is in langgraph-checkpoint 4.1+ only
    from langgraph.checkpoint.base import DeltaChannelHistory

# Its parts: _langgraph_configs (what a config names), _langgraph_operations (the statements, on a
# synchronous connection), _langgraph_history (the delta-channel walk), _langgraph_base (what both
# savers share: the a* methods).
from agentstate import errors
from agentstate.async_calls import call_async, run_async, settled
from agentstate.engines import (
    AsyncConnection,
    Connection,
    connect,
    connect_async,
    require_async_connection,
    require_connection,
)
from agentstate.integrations._langgraph_base import _Saver
from agentstate.integrations._langgraph_configs import PAGE, _Listing
from agentstate.integrations._langgraph_history import _history
from agentstate.integrations._langgraph_operations import (
    _copy_thread,
    _delete_for_runs,
    _delete_thread,
    _get_tuple,
    _page,
    _prune,
    _put,
    _put_writes,
)

T = TypeVar("T")


# --- the savers -------------------------------------------------------------------------------


class AgentStateSaver(_Saver):
    """A LangGraph checkpointer on a connection from :func:`agentstate.connect`::

        with AgentStateSaver.from_conn_string("agents.db") as saver:
            graph = builder.compile(checkpointer=saver)

    or ``AgentStateSaver(conn)`` on a connection you opened (it stays yours to close). LangGraph
    calls a saver from several threads at once (its puts run in the background); the calls take
    turns on the connection. The ``a*`` methods run the same calls on a thread of asyncio's
    default executor, so ``graph.ainvoke`` works too, and a cancelled write still finishes before
    ``CancelledError`` is raised; :class:`AsyncAgentStateSaver` is the saver for async code.

    :param serde: LangGraph's serialiser for checkpoints and writes (default: its JsonPlusSerializer).
    :raises InvalidTypeError: ``conn`` is not a connection from :func:`agentstate.connect`.
    """

    def __init__(self, conn: Connection, *, serde: SerializerProtocol | None = None) -> None:
        require_connection(conn, "AgentStateSaver", sync_only=True)
        super().__init__(serde=serde)
        self.conn = conn
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, conn_string: str, *, serde: SerializerProtocol | None = None
    ) -> Iterator[AgentStateSaver]:
        """A saver on the database at ``conn_string`` (a path, ``":memory:"`` or a ``file:``
        URI; created and migrated if needed), closed when the block ends. For other connection
        options, open it with :func:`agentstate.connect` and pass the connection."""
        conn = connect(conn_string)
        try:
            yield cls(conn, serde=serde)
        finally:
            conn.close()

    def _call(self, operation: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return operation(self.conn, *args)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names by ``checkpoint_id``, else the newest of its thread and
        namespace, with its pending writes; None if there is none."""
        return self._call(_get_tuple, self.serde, config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """A thread's checkpoints, newest first: those older than ``before``'s checkpoint, whose
        metadata holds every key of ``filter`` with its value, at most ``limit``. Read a page of
        :data:`PAGE` at a time, each in its own read transaction."""
        listing: _Listing | None = _Listing.of(config, filter, before, limit)
        while listing is not None:
            page = self._call(_page, self.serde, listing)
            yield from page.tuples
            listing = listing.after(page)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (whole, so ``new_versions`` is not needed) under the config's thread
        and namespace, its ``checkpoint_id`` as the parent; returns the new checkpoint's config."""
        return self._call(_put, self.serde, config, checkpoint, metadata)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's writes as pending writes of the checkpoint ``config`` names; a retry
        stores nothing twice."""
        self._call(_put_writes, self.serde, config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread, in every namespace."""
        self._call(_delete_thread, thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints whose metadata names one of these runs, and their writes,
        except the ancestors a checkpoint that stays replays a DeltaChannel's history from."""
        self._call(_delete_for_runs, self.serde, run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (same namespaces and ids;
        what the target holds under the same keys is replaced)."""
        self._call(_copy_thread, source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep only the newest checkpoint (and its writes) of each namespace of
        these threads, and the ancestors its DeltaChannels replay their history from (none for a
        graph without them); ``delete``: delete the threads. One transaction."""
        self._call(_prune, self.serde, thread_ids, strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """For each channel, the writes to it of the checkpoint's ancestors, oldest first, back to
        the nearest one that stores its value (the ``seed``; none if the walk reaches the root):
        one query per channel along the parent chain, in one read snapshot. A chain that loops (a
        checkpoint put again under its own descendant) ends where it comes back."""
        return self._call(_history, self.serde, config, list(channels))

    # The a* methods (see _Saver) run the same calls on a thread of asyncio's default executor.
    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._call, operation, *args)

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        result, cancelled = await settled(asyncio.to_thread(self._call, operation, *args))
        if cancelled:
            raise asyncio.CancelledError
        return result


class AsyncAgentStateSaver(_Saver):
    """A LangGraph checkpointer for asyncio, on a connection from :func:`agentstate.connect_async`::

        async with AsyncAgentStateSaver.from_conn_string("agents.db") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "conv-1"}})

    or ``AsyncAgentStateSaver(conn)`` on a connection you opened (it stays yours to close). Every
    call, serialising included, runs on the connection's own thread; a cancelled write finishes
    (committed or rolled back) before ``CancelledError`` reaches the caller. Its synchronous
    methods (for LangGraph's sync API) may be called from other threads only: they wait for the
    event loop the saver was made on, as LangGraph's AsyncSqliteSaver does. Methods are those of
    :class:`AgentStateSaver`.

    :raises InvalidTypeError: ``conn`` is not from :func:`agentstate.connect_async`, or no event
        loop is running.
    """

    def __init__(self, conn: AsyncConnection, *, serde: SerializerProtocol | None = None) -> None:
        require_async_connection(conn, "AsyncAgentStateSaver")
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            raise errors.InvalidTypeError(
                "AsyncAgentStateSaver must be made in async code, on the connection's event loop"
            ) from None
        super().__init__(serde=serde)
        self.conn = conn
        self._sync = cast(Connection, conn)  # what it is on its worker thread

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, *, serde: SerializerProtocol | None = None
    ) -> AsyncIterator[AsyncAgentStateSaver]:
        """A saver on the database at ``conn_string`` (see :meth:`AgentStateSaver.from_conn_string`)."""
        conn = await connect_async(conn_string)
        try:
            yield cls(conn, serde=serde)
        finally:
            await conn.aclose()

    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        return await run_async(self.conn, operation, self._sync, *args)

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        return await call_async(self.conn, operation, self._sync, *args)

    # --- LangGraph's sync API, from threads other than the event loop's ----------------------

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop or self.loop.is_closed():
            call.close()
            raise errors.InvalidTypeError(
                "AsyncAgentStateSaver's synchronous methods wait for its event loop, so they work only from "
                "other threads while that loop runs: on it, await the async ones (graph.ainvoke, "
                "graph.aget_state, saver.aget_tuple, ...)"
            )
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`aget_tuple`, from another thread."""
        return self._wait(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """:meth:`alist`, from another thread."""
        listing: _Listing | None = _Listing.of(config, filter, before, limit)
        while listing is not None:
            page = self._wait(self._read(_page, self.serde, listing))
            yield from page.tuples
            listing = listing.after(page)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """:meth:`aput`, from another thread."""
        return self._wait(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """:meth:`aput_writes`, from another thread."""
        self._wait(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """:meth:`adelete_thread`, from another thread."""
        self._wait(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """:meth:`adelete_for_runs`, from another thread."""
        self._wait(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """:meth:`acopy_thread`, from another thread."""
        self._wait(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """:meth:`aprune`, from another thread."""
        self._wait(self.aprune(thread_ids, strategy=strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """:meth:`aget_delta_channel_history`, from another thread."""
        return self._wait(self.aget_delta_channel_history(config=config, channels=channels))


__all__ = ["PAGE", "AgentStateSaver", "AsyncAgentStateSaver"]
