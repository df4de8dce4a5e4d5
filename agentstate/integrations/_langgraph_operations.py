"""The checkpointer's operations on a synchronous connection (the async saver's worker thread
has one): each a read snapshot or one ``BEGIN IMMEDIATE`` write of named queries of
``queries/langgraph.sql``, and the serde calls that turn checkpoints and writes into blobs and
back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentstate import errors, transactions
from agentstate.engines import Connection, engine_of
from agentstate.integrations._langgraph_configs import NO_BOUND, Tuples, _config, _id, _Key, _Listing, _Page, _text
from agentstate.integrations._langgraph_history import _needed, _replays_of, replayed_channels, stored_channels
from agentstate.integrations._langgraph_serde import _dump, _load
from agentstate.runner import run, run_each
from agentstate.values import from_json, iterable, require_str, short, to_json

Row = tuple[Any, ...]
STRATEGIES = ("keep_latest", "delete")


# --- the operations, on a synchronous connection (the async saver's worker thread has one) ----


def _write_order(row: Row) -> tuple[str, str, int]:
    """LangGraph's ``writes_sort_key``: the order a step applies its tasks' writes in."""
    return row[5], row[3], row[4]  # task_path, task_id, idx


def _tuples(conn: Connection, serde: SerializerProtocol, rows: list[Row]) -> Tuples:
    """Checkpoint rows (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
    checkpoint, metadata) as CheckpointTuples, with their pending writes (one executemany for all)."""
    keys = [{"thread_id": row[0], "checkpoint_ns": row[1], "checkpoint_id": row[2]} for row in rows]
    writes: dict[tuple[str, str, str], list[Row]] = {}
    for write in run_each(conn, "langgraph.writes", keys):
        writes.setdefault((write[0], write[1], write[2]), []).append(write)
    tuples = []
    for thread_id, ns, checkpoint_id, parent_id, type_, blob, metadata in rows:
        pending = sorted(writes.get((thread_id, ns, checkpoint_id), ()), key=_write_order)
        tuples.append(
            CheckpointTuple(
                config=_config(thread_id, ns, checkpoint_id),
                checkpoint=_load(serde, "checkpoint", type_, blob),
                metadata=cast(CheckpointMetadata, from_json(metadata)),
                parent_config=_config(thread_id, ns, parent_id) if parent_id else None,
                pending_writes=[(w[3], w[6], _load(serde, "write", w[7], w[8])) for w in pending],
            )
        )
    return tuples


def _get_tuple(conn: Connection, serde: SerializerProtocol, config: object) -> CheckpointTuple | None:
    key = _Key.of("get_tuple", config)
    with transactions.reading(conn):
        if key.checkpoint_id is None:
            row = run(conn, "langgraph.latest_checkpoint", key.params())
        else:
            row = run(conn, "langgraph.checkpoint", key.params())
        return None if row is None else _tuples(conn, serde, [row])[0]


def _page(conn: Connection, serde: SerializerProtocol, listing: _Listing) -> _Page:
    if listing.thread_id is None:
        return _page_of_every_thread(conn, serde, listing)
    params: dict[str, object] = {
        "thread_id": listing.thread_id,
        "checkpoint_ns": listing.checkpoint_ns or "",
        "checkpoint_id": listing.checkpoint_id,
        # Each engine's own "no bound" (SQLite's an empty BLOB, PostgreSQL's NULL).
        "before": engine_of(conn).no_upper_bound if listing.before is NO_BOUND else listing.before,
        "filter": listing.filter,
        "limit": listing.size,
    }
    with transactions.reading(conn):
        if listing.checkpoint_id is not None:
            row = run(conn, "langgraph.matching_checkpoint", params)
            rows = [] if row is None else [row]
        elif listing.checkpoint_ns is None:
            rows = run(conn, "langgraph.list_thread_checkpoints", params)
        else:
            rows = run(conn, "langgraph.list_checkpoints", params)
        last = (rows[-1][2], rows[-1][0], rows[-1][1]) if rows else None
        return _Page(_tuples(conn, serde, rows), len(rows), last)


def _page_of_every_thread(conn: Connection, serde: SerializerProtocol, listing: _Listing) -> _Page:
    """A page of list(None): a range of ``listing.size`` rows of every thread's checkpoints
    (newest first, then by thread and namespace), those the filter takes as tuples."""
    params: dict[str, object] = {"filter": listing.filter, "limit": listing.size}
    with transactions.reading(conn):
        if listing.position is None:
            rows = run(conn, "langgraph.list_all_checkpoints_first", params)
        else:
            checkpoint_id, thread_id, checkpoint_ns = listing.position
            params |= {"checkpoint_id": checkpoint_id, "thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
            rows = run(conn, "langgraph.list_all_checkpoints", params)
        matched = [row for row in rows if row[5] is not None][: listing.limit]  # the filter's NULL blobs
        last = (rows[-1][2], rows[-1][0], rows[-1][1]) if rows else None
        return _Page(_tuples(conn, serde, matched), len(rows), last)


def _put(
    conn: Connection, serde: SerializerProtocol, config: RunnableConfig, checkpoint: object, metadata: object
) -> RunnableConfig:
    key = _Key.of("put", config)
    checkpoint_id = checkpoint.get("id") if isinstance(checkpoint, Mapping) else None
    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise errors.InvalidValueError(
            f"put: checkpoint must be a LangGraph Checkpoint, with a str 'id', not {short(checkpoint)}"
        )
    stored = cast(Mapping[str, Any], checkpoint)
    for what, value in (("metadata", metadata), ("config['metadata']", config.get("metadata") or {})):
        if not isinstance(value, Mapping):
            raise errors.InvalidTypeError(f"put: {what} must be a dict, not {type(value).__name__}")
    # As LangGraph's SqliteSaver stores it: `writes` stays (its PostgresSaver drops it).
    meta = get_checkpoint_metadata(config, cast(CheckpointMetadata, metadata))
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
        "channels": to_json("channels", stored_channels(stored)),
        "replays": to_json("replays", replayed_channels(stored, meta)),
    }
    with transactions.write(conn):
        run(conn, "langgraph.put_checkpoint", params)
    return _config(key.thread_id, key.checkpoint_ns, checkpoint_id)


def _put_writes(
    conn: Connection, serde: SerializerProtocol, config: object, writes: object, task_id: object, task_path: object
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
    with transactions.write(conn):
        run_each(conn, "langgraph.replace_write" if special else "langgraph.put_write", rows)


def _delete_thread(conn: Connection, thread_id: object) -> None:
    with transactions.write(conn):
        _delete_thread_rows(conn, _id("thread_id", thread_id))


def _delete_thread_rows(conn: Connection, thread_id: str) -> None:
    params = {"thread_id": thread_id}
    run(conn, "langgraph.delete_thread_writes", params)
    run(conn, "langgraph.delete_thread_checkpoints", params)


def _delete_for_runs(conn: Connection, serde: SerializerProtocol, run_ids: object) -> None:
    """Delete the runs' checkpoints and their writes, except those a checkpoint left behind
    replays a DeltaChannel's history from: the ancestors its history reads, found from each
    deleted checkpoint's children that stay."""
    ids = [_id("run_id", run_id) for run_id in iterable("run_ids", run_ids)]
    with transactions.write(conn):
        doomed = {tuple(key) for run_id in ids for key in run(conn, "langgraph.run_checkpoints", {"run_id": run_id})}
        kept: set[tuple[Any, ...]] = set()
        for thread_id, ns, checkpoint_id in doomed:
            parent = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
            for child_id, replays, type_, blob, metadata in run(conn, "langgraph.checkpoint_children", parent):
                if (thread_id, ns, child_id) not in doomed:
                    channels = _replays_of(serde, replays, type_, blob, metadata)
                    needed = _needed(conn, serde, _Key(thread_id, ns, child_id), channels)
                    kept.update((thread_id, ns, ancestor) for ancestor in needed)
        keys = [_Key(*key).params() for key in sorted(doomed - kept)]
        run_each(conn, "langgraph.delete_checkpoint_writes", keys)
        run_each(conn, "langgraph.delete_checkpoint", keys)


def _copy_thread(conn: Connection, source: object, target: object) -> None:
    params = {"source": _id("source_thread_id", source), "target": _id("target_thread_id", target)}
    with transactions.write(conn):
        run(conn, "langgraph.copy_checkpoints", params)
        run(conn, "langgraph.copy_writes", params)


def _prune(conn: Connection, serde: SerializerProtocol, thread_ids: object, strategy: object) -> None:
    if strategy not in STRATEGIES:
        raise errors.InvalidValueError(f"prune: strategy must be 'keep_latest' or 'delete', not {short(strategy)}")
    ids = [_id("thread_id", thread_id) for thread_id in iterable("thread_ids", thread_ids)]
    with transactions.write(conn):
        for thread_id in ids:
            if strategy == "delete":
                _delete_thread_rows(conn, thread_id)
                continue
            ns: str | None = ""
            while ns is not None:
                _keep_latest(conn, serde, thread_id, ns)
                ns = run(conn, "langgraph.next_namespace", {"thread_id": thread_id, "checkpoint_ns": ns})


def _keep_latest(conn: Connection, serde: SerializerProtocol, thread_id: str, ns: str) -> None:
    """Prune one namespace to its newest checkpoint and the ancestors whose writes and values
    its DeltaChannels replay (none for a graph without them), with their writes."""
    newest = run(conn, "langgraph.newest_in_namespace", {"thread_id": thread_id, "checkpoint_ns": ns})
    if newest is None:
        return
    checkpoint_id, replays, type_, blob, metadata = newest
    channels = _replays_of(serde, replays, type_, blob, metadata)
    needed = _needed(conn, serde, _Key(thread_id, ns, checkpoint_id), channels)
    params = {
        "thread_id": thread_id,
        "checkpoint_ns": ns,
        "checkpoint_id": checkpoint_id,
        "ids": to_json("ids", sorted(needed)),
    }
    run(conn, "langgraph.prune_namespace_writes", params)
    run(conn, "langgraph.prune_namespace_checkpoints", params)
