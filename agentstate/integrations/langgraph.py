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

**Storage** (``0005_langgraph_checkpoints.sql``): a checkpoint is one row, serialised whole by the
saver's ``serde`` (as LangGraph's SqliteSaver stores it), clustered on (thread_id, checkpoint_ns,
checkpoint_id); a task's writes are keyed by (task_id, idx) under it, so a retried
``put_writes`` stores nothing twice. Every statement is a named query of
``queries/langgraph.sql`` (an index search, checked by the plan tests), and every write is one
``BEGIN IMMEDIATE`` transaction, so any number of processes may share the file.

**Where the protocol leaves room:**

- ``list(None)`` (every thread) raises :class:`~agentstate.errors.InvalidValueError`: it would
  read the whole table. A config without ``checkpoint_ns`` lists every namespace of its thread;
  one with a ``checkpoint_id`` lists that checkpoint alone (in namespace ``''`` if none is given).
- ``filter`` matches top-level metadata keys (``{"a.b": 1}`` is the key ``"a.b"``), comparing
  values as SQLite compares JSON: ``True`` matches ``1``, and an object matches only with its
  keys in the same order.
- Thread ids may be ``str``, ``int`` or ``UUID``; they are stored, and given back, as text.
- Bad input (a config without a thread_id, a value the serde cannot encode) raises
  :class:`~agentstate.errors.InvalidValueError` or :class:`~agentstate.errors.InvalidTypeError`:
  nothing but :class:`~agentstate.errors.AgentStateError` escapes, as from all of agentstate.
- ``prune(strategy="keep_latest")`` and ``delete_for_runs`` delete exactly what they name; they
  do not keep the ancestors a ``DeltaChannel`` (beta in LangGraph) replays its history from.
- ``put`` of an id already stored replaces it (as LangGraph's savers do), so a checkpoint put
  again under its own descendant has a parent chain that loops. ``get_delta_channel_history``
  (and its async twin) reads each ancestor once and ends where the chain comes back, as
  LangGraph's SqliteSaver does; no other call follows parents.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # the langgraph extra is not installed
    raise ImportError(
        f"agentstate.integrations.langgraph needs LangGraph: pip install 'agentstate[langgraph]' ({exc})"
    ) from exc

if TYPE_CHECKING:  # DeltaChannel support (beta) is in langgraph-checkpoint 4.1+ only
    from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite

from agentstate import engine, errors
from agentstate.database import connect, connect_async
from agentstate.engine import AsyncConnection, SyncConnection
from agentstate.postgres.handle import PostgresConnection
from agentstate.runner import run, run_each
from agentstate.values import from_json, iterable, require_int, require_str, short, to_json

T = TypeVar("T")
Row = tuple[Any, ...]
Tuples = list[CheckpointTuple]  # `list` is a method name inside the saver classes

PAGE = 100
"""Checkpoints read per query while a ``list()`` is iterated."""
NO_BOUND = b""
"""``:before`` for an unbounded list: SQLite sorts every BLOB after every TEXT checkpoint id."""
STRATEGIES = ("keep_latest", "delete")


# --- arguments ------------------------------------------------------------------------------


def _id(name: str, value: object) -> str:
    """A thread or run id: LangGraph stores any id's ``str()``; agentstate takes text, ints and UUIDs."""
    if isinstance(value, (int, UUID)) and not isinstance(value, bool):
        return str(value)
    return require_str(name, value)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise errors.InvalidTypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _configurable(who: str, config: object) -> Mapping[str, Any]:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    if not isinstance(configurable, Mapping):
        raise errors.InvalidTypeError(
            f"{who}: config must be a dict with a 'configurable' dict, as "
            f"{{'configurable': {{'thread_id': ...}}}}, not {short(config)}"
        )
    return configurable


@dataclass(frozen=True, slots=True)
class _Key:
    """Where a config points: a thread, a namespace, and a checkpoint (None: the newest)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None

    @classmethod
    def of(cls, who: str, config: object) -> _Key:
        conf = _configurable(who, config)
        if conf.get("thread_id") is None:
            raise errors.InvalidValueError(f"{who}: config['configurable'] has no thread_id")
        checkpoint_id = conf.get("checkpoint_id") or None
        return cls(
            _id("thread_id", conf["thread_id"]),
            _text("checkpoint_ns", conf.get("checkpoint_ns") or ""),
            None if checkpoint_id is None else _text("checkpoint_id", checkpoint_id),
        )

    def params(self) -> dict[str, object]:
        return {"thread_id": self.thread_id, "checkpoint_ns": self.checkpoint_ns, "checkpoint_id": self.checkpoint_id}


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


@dataclass(frozen=True, slots=True)
class _Listing:
    """What a ``list()`` asks for; each page read moves ``before`` past it and uses up ``limit``."""

    thread_id: str
    checkpoint_ns: str | None  # None: every namespace of the thread
    checkpoint_id: str | None  # the one checkpoint the config names
    filter: str  # a JSON object
    before: str | bytes
    limit: int | None

    @classmethod
    def of(cls, config: object, filter: object, before: object, limit: object) -> _Listing:
        if config is None:
            raise errors.InvalidValueError(
                "list(None) would read the checkpoints of every thread: pass a config with a thread_id"
            )
        key = _Key.of("list", config)
        ns = _configurable("list", config).get("checkpoint_ns")
        if filter is not None and not isinstance(filter, Mapping):
            raise errors.InvalidTypeError(f"filter must be a dict of metadata keys and values, not {short(filter)}")
        before_id = None if before is None else _configurable("list(before=...)", before).get("checkpoint_id")
        return cls(
            key.thread_id,
            None if ns is None else key.checkpoint_ns,
            key.checkpoint_id,
            to_json("filter", dict(filter or {})),
            _text("before's checkpoint_id", before_id) if before_id else NO_BOUND,
            None if limit is None else require_int("limit", limit, minimum=0),
        )

    @property
    def size(self) -> int:
        return PAGE if self.limit is None else min(PAGE, self.limit)

    def after(self, page: Tuples) -> _Listing | None:
        """The rest of the listing once ``page`` is read; None when nothing is left. The next page
        starts below the last id read (two namespaces of one thread sharing a checkpoint id at a
        page's edge would lose one: LangGraph's ids are unique per thread)."""
        limit = None if self.limit is None else self.limit - len(page)
        if self.checkpoint_id is not None or len(page) < self.size or limit == 0:
            return None
        return replace(self, before=page[-1].config["configurable"]["checkpoint_id"], limit=limit)


# --- serialising ----------------------------------------------------------------------------


def _dump(serde: SerializerProtocol, what: str, value: Any) -> tuple[str, bytes]:
    try:
        return serde.dumps_typed(value)
    except Exception as exc:  # whatever the serde raises, the value came from the caller
        raise errors.InvalidValueError(f"{what} cannot be serialised by {type(serde).__name__}: {exc}") from exc


def _load(serde: SerializerProtocol, what: str, type_: str, blob: bytes) -> Any:
    try:
        return serde.loads_typed((type_, blob))
    except Exception as exc:
        raise errors.AgentStateError(
            f"a stored {what} cannot be read back by {type(serde).__name__} ({exc}); was it written with another serde?"
        ) from exc


def _write_order(row: Row) -> tuple[str, str, int]:
    """LangGraph's ``writes_sort_key``: the order a step applies its tasks' writes in."""
    return row[4], row[2], row[3]  # task_path, task_id, idx


# --- the operations, on a synchronous connection (the async saver's worker thread has one) ----


def _tuples(conn: SyncConnection, serde: SerializerProtocol, thread_id: str, rows: list[Row]) -> Tuples:
    """Checkpoint rows (checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
    metadata) as CheckpointTuples, with their pending writes (one executemany for all)."""
    keys = [{"thread_id": thread_id, "checkpoint_ns": row[0], "checkpoint_id": row[1]} for row in rows]
    writes: dict[tuple[str, str], list[Row]] = {}
    for write in run_each(conn, "langgraph.writes", keys):
        writes.setdefault((write[0], write[1]), []).append(write)
    tuples = []
    for ns, checkpoint_id, parent_id, type_, blob, metadata in rows:
        pending = sorted(writes.get((ns, checkpoint_id), ()), key=_write_order)
        tuples.append(
            CheckpointTuple(
                config=_config(thread_id, ns, checkpoint_id),
                checkpoint=_load(serde, "checkpoint", type_, blob),
                metadata=cast(CheckpointMetadata, from_json(metadata)),
                parent_config=_config(thread_id, ns, parent_id) if parent_id else None,
                pending_writes=[(w[2], w[5], _load(serde, "write", w[6], w[7])) for w in pending],
            )
        )
    return tuples


def _get_tuple(conn: SyncConnection, serde: SerializerProtocol, config: object) -> CheckpointTuple | None:
    key = _Key.of("get_tuple", config)
    with engine.reading(conn):
        if key.checkpoint_id is None:
            row = run(conn, "langgraph.latest_checkpoint", key.params())
        else:
            row = run(conn, "langgraph.checkpoint", key.params())
        return None if row is None else _tuples(conn, serde, key.thread_id, [row])[0]


def _page(conn: SyncConnection, serde: SerializerProtocol, listing: _Listing) -> Tuples:
    params: dict[str, object] = {
        "thread_id": listing.thread_id,
        "checkpoint_ns": listing.checkpoint_ns or "",
        "checkpoint_id": listing.checkpoint_id,
        # PostgreSQL's statements take NULL for "no bound" (text compares with text only there).
        "before": None if listing.before is NO_BOUND and isinstance(conn, PostgresConnection) else listing.before,
        "filter": listing.filter,
        "limit": listing.size,
    }
    with engine.reading(conn):
        if listing.checkpoint_id is not None:
            row = run(conn, "langgraph.matching_checkpoint", params)
            rows = [] if row is None else [row]
        elif listing.checkpoint_ns is None:
            rows = run(conn, "langgraph.list_thread_checkpoints", params)
        else:
            rows = run(conn, "langgraph.list_checkpoints", params)
        return _tuples(conn, serde, listing.thread_id, rows)


def _put(
    conn: SyncConnection, serde: SerializerProtocol, config: RunnableConfig, checkpoint: object, metadata: object
) -> RunnableConfig:
    key = _Key.of("put", config)
    checkpoint_id = checkpoint.get("id") if isinstance(checkpoint, Mapping) else None
    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise errors.InvalidValueError(
            f"put: checkpoint must be a LangGraph Checkpoint, with a str 'id', not {short(checkpoint)}"
        )
    for what, value in (("metadata", metadata), ("config['metadata']", config.get("metadata") or {})):
        if not isinstance(value, Mapping):
            raise errors.InvalidTypeError(f"put: {what} must be a dict, not {type(value).__name__}")
    meta = get_serializable_checkpoint_metadata(config, cast(CheckpointMetadata, metadata))
    run_id = meta.get("run_id")
    type_, blob = _dump(serde, "the checkpoint", checkpoint)
    params = {
        "thread_id": key.thread_id,
        "checkpoint_ns": key.checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": key.checkpoint_id,
        "run_id": None if run_id is None else str(run_id),
        "type": type_,
        "checkpoint": blob,
        "metadata": to_json("metadata", meta),
    }
    with engine.write(conn):
        run(conn, "langgraph.put_checkpoint", params)
    return _config(key.thread_id, key.checkpoint_ns, checkpoint_id)


def _put_writes(
    conn: SyncConnection, serde: SerializerProtocol, config: object, writes: object, task_id: object, task_path: object
) -> None:
    key = _Key.of("put_writes", config)
    if key.checkpoint_id is None:
        raise errors.InvalidValueError(
            "put_writes: config['configurable'] must name the checkpoint_id the writes belong to"
        )
    base = key.params() | {"task_id": require_str("task_id", task_id), "task_path": _text("task_path", task_path)}
    rows: list[dict[str, Any]] = []
    for idx, write in enumerate(iterable("writes", writes)):
        if not isinstance(write, (tuple, list)) or len(write) != 2 or not isinstance(write[0], str):
            raise errors.InvalidTypeError(
                f"writes must be (channel, value) pairs with a str channel, not {short(write)}"
            )
        channel, value = write
        type_, blob = _dump(serde, f"the write to {channel!r}", value)
        rows.append(base | {"idx": WRITES_IDX_MAP.get(channel, idx), "channel": channel, "type": type_, "value": blob})
    if not rows:
        return
    special = all(row["channel"] in WRITES_IDX_MAP for row in rows)
    with engine.write(conn):
        run_each(conn, "langgraph.replace_write" if special else "langgraph.put_write", rows)


def _delete_thread(conn: SyncConnection, thread_id: object) -> None:
    params = {"thread_id": _id("thread_id", thread_id)}
    with engine.write(conn):
        run(conn, "langgraph.delete_thread_writes", params)
        run(conn, "langgraph.delete_thread_checkpoints", params)


def _delete_for_runs(conn: SyncConnection, run_ids: object) -> None:
    ids = [_id("run_id", run_id) for run_id in iterable("run_ids", run_ids)]
    with engine.write(conn):
        for run_id in ids:
            keys = run(conn, "langgraph.delete_run_checkpoints", {"run_id": run_id})
            run_each(conn, "langgraph.delete_checkpoint_writes", [_Key(*key).params() for key in keys])


def _copy_thread(conn: SyncConnection, source: object, target: object) -> None:
    params = {"source": _id("source_thread_id", source), "target": _id("target_thread_id", target)}
    with engine.write(conn):
        run(conn, "langgraph.copy_checkpoints", params)
        run(conn, "langgraph.copy_writes", params)


def _prune(conn: SyncConnection, thread_ids: object, strategy: object) -> None:
    if strategy not in STRATEGIES:
        raise errors.InvalidValueError(f"prune: strategy must be 'keep_latest' or 'delete', not {short(strategy)}")
    ids = [_id("thread_id", thread_id) for thread_id in iterable("thread_ids", thread_ids)]
    writes, checkpoints = (
        ("langgraph.prune_writes", "langgraph.prune_checkpoints")
        if strategy == "keep_latest"
        else ("langgraph.delete_thread_writes", "langgraph.delete_thread_checkpoints")
    )
    with engine.write(conn):
        for thread_id in ids:
            run(conn, writes, {"thread_id": thread_id})  # first: the prune finds them by their checkpoints
            run(conn, checkpoints, {"thread_id": thread_id})


# --- the delta-channel history walk ---------------------------------------------------------------


class _History:
    """LangGraph's ``get_delta_channel_history`` walk (BaseCheckpointSaver's, step for step: a
    checkpoint's parents, nearest first, collecting each one's pending writes to the channels
    asked for until each channel finds its value), remembering the checkpoints it has been to.
    A checkpoint put again under its own descendant (``put`` replaces a re-put id, as LangGraph's
    savers do) makes its parent chain a loop; the walk ends where the chain comes back, as in
    LangGraph's SqliteSaver, instead of going round forever."""

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self.collected: dict[str, list[PendingWrite]] = {channel: [] for channel in self.channels}
        self.seeds: dict[str, Any] = {}
        self.remaining = set(self.channels)
        self.seen: set[str] = set()

    def start(self, target: CheckpointTuple | None) -> RunnableConfig | None:
        """The first parent to read (None: no walk), from the checkpoint the history is of."""
        if target is None:
            return None
        self.seen.add(target.config["configurable"]["checkpoint_id"])
        return self._parent(target)

    def step(self, ancestor: CheckpointTuple | None) -> RunnableConfig | None:
        """Take in one ancestor; the next one to read, or None when the walk is over."""
        if ancestor is None:  # deleted (pruned): the chain ends here
            return None
        for write in reversed(ancestor.pending_writes or ()):
            if write[1] in self.remaining:
                self.collected[write[1]].append(write)
        values = ancestor.checkpoint["channel_values"]
        for channel in [c for c in self.remaining if c in values]:
            self.seeds[channel] = values[channel]
            self.remaining.discard(channel)
        return self._parent(ancestor)

    def _parent(self, checkpoint: CheckpointTuple) -> RunnableConfig | None:
        parent = checkpoint.parent_config
        if parent is None or not self.remaining:
            return None
        parent_id = parent["configurable"]["checkpoint_id"]
        if parent_id in self.seen:  # the chain loops: every checkpoint on it is read
            return None
        self.seen.add(parent_id)
        return parent

    def result(self) -> dict[str, DeltaChannelHistory]:
        history: dict[str, DeltaChannelHistory] = {}
        for channel in self.channels:
            entry: DeltaChannelHistory = {"writes": self.collected[channel][::-1]}  # oldest first
            if channel in self.seeds:
                entry["seed"] = self.seeds[channel]
            history[channel] = entry
        return history


# --- the savers -------------------------------------------------------------------------------


class _Saver(BaseCheckpointSaver[str]):
    """What both savers share: LangGraph's text channel versions, and the ``a*`` methods, each a
    read or a write that the saver runs where it runs its calls (``_read``, ``_write``)."""

    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The async form of :meth:`AgentStateSaver.get_tuple`."""
        return await self._read(_get_tuple, self.serde, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The async form of :meth:`AgentStateSaver.list`."""
        listing: _Listing | None = _Listing.of(config, filter, before, limit)
        while listing is not None:
            page = await self._read(_page, self.serde, listing)
            for item in page:
                yield item
            listing = listing.after(page)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """The async form of :meth:`AgentStateSaver.put`."""
        return await self._write(_put, self.serde, config, checkpoint, metadata)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """The async form of :meth:`AgentStateSaver.put_writes`."""
        await self._write(_put_writes, self.serde, config, engine.materialise(writes), task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """The async form of :meth:`AgentStateSaver.delete_thread`."""
        await self._write(_delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """The async form of :meth:`AgentStateSaver.delete_for_runs`."""
        await self._write(_delete_for_runs, engine.materialise(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """The async form of :meth:`AgentStateSaver.copy_thread`."""
        await self._write(_copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """The async form of :meth:`AgentStateSaver.prune`."""
        await self._write(_prune, engine.materialise(thread_ids), strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """For each channel, the pending writes of the checkpoint's ancestors back to the nearest
        that holds the channel's value (its ``seed``), oldest first: LangGraph's own walk over
        ``get_tuple`` and ``parent_config``, each ancestor read once, so that a parent chain
        that loops (a checkpoint put again under its own descendant) ends where it comes back."""
        if not channels:
            return {}
        walk = _History(channels)
        parent = walk.start(self.get_tuple(config))
        while parent is not None:
            parent = walk.step(self.get_tuple(parent))
        return walk.result()

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The async form of :meth:`get_delta_channel_history`."""
        if not channels:
            return {}
        walk = _History(channels)
        parent = walk.start(await self.aget_tuple(config))
        while parent is not None:
            parent = walk.step(await self.aget_tuple(parent))
        return walk.result()

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The version after ``current``: a zero-padded counter and a random fraction, as
        LangGraph's SQLite and Postgres savers make them (they sort as text)."""
        number = 0 if current is None else current if isinstance(current, int) else int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"


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

    def __init__(self, conn: SyncConnection, *, serde: SerializerProtocol | None = None) -> None:
        engine.require_connection(conn, "AgentStateSaver", sync_only=True)
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
            yield from page
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
        """Delete the checkpoints whose metadata names one of these runs, and their writes."""
        self._call(_delete_for_runs, run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (same namespaces and ids;
        what the target holds under the same keys is replaced)."""
        self._call(_copy_thread, source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep only the newest checkpoint (and its writes) of each namespace of
        these threads; ``delete``: delete the threads. One transaction."""
        self._call(_prune, thread_ids, strategy)

    # The a* methods (see _Saver) run the same calls on a thread of asyncio's default executor.
    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._call, operation, *args)

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        result, cancelled = await engine.settled(asyncio.to_thread(self._call, operation, *args))
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
        engine.require_async_connection(conn, "AsyncAgentStateSaver")
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            raise errors.InvalidTypeError(
                "AsyncAgentStateSaver must be made in async code, on the connection's event loop"
            ) from None
        super().__init__(serde=serde)
        self.conn = conn
        self._sync = cast(SyncConnection, conn)  # what it is on its worker thread

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
        return await engine.run_async(self.conn, operation, self._sync, *args)

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        return await engine.call_async(self.conn, operation, self._sync, *args)

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
            yield from page
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


__all__ = ["PAGE", "AgentStateSaver", "AsyncAgentStateSaver"]
