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
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentstate import errors, transactions
from agentstate.engines import Connection, engine_of
from agentstate.integrations._langgraph_configs import NO_BOUND, Tuples, _config, _id, _Key, _Listing, _text
from agentstate.runner import run, run_each
from agentstate.values import from_json, iterable, require_str, short, to_json

Row = tuple[Any, ...]
STRATEGIES = ("keep_latest", "delete")


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


def _tuples(conn: Connection, serde: SerializerProtocol, thread_id: str, rows: list[Row]) -> Tuples:
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


def _get_tuple(conn: Connection, serde: SerializerProtocol, config: object) -> CheckpointTuple | None:
    key = _Key.of("get_tuple", config)
    with transactions.reading(conn):
        if key.checkpoint_id is None:
            row = run(conn, "langgraph.latest_checkpoint", key.params())
        else:
            row = run(conn, "langgraph.checkpoint", key.params())
        return None if row is None else _tuples(conn, serde, key.thread_id, [row])[0]


def _page(conn: Connection, serde: SerializerProtocol, listing: _Listing) -> Tuples:
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
        return _tuples(conn, serde, listing.thread_id, rows)


def _put(
    conn: Connection, serde: SerializerProtocol, config: RunnableConfig, checkpoint: object, metadata: object
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
    params = {"thread_id": _id("thread_id", thread_id)}
    with transactions.write(conn):
        run(conn, "langgraph.delete_thread_writes", params)
        run(conn, "langgraph.delete_thread_checkpoints", params)


def _delete_for_runs(conn: Connection, run_ids: object) -> None:
    ids = [_id("run_id", run_id) for run_id in iterable("run_ids", run_ids)]
    with transactions.write(conn):
        for run_id in ids:
            keys = run(conn, "langgraph.delete_run_checkpoints", {"run_id": run_id})
            run_each(conn, "langgraph.delete_checkpoint_writes", [_Key(*key).params() for key in keys])


def _copy_thread(conn: Connection, source: object, target: object) -> None:
    params = {"source": _id("source_thread_id", source), "target": _id("target_thread_id", target)}
    with transactions.write(conn):
        run(conn, "langgraph.copy_checkpoints", params)
        run(conn, "langgraph.copy_writes", params)


def _prune(conn: Connection, thread_ids: object, strategy: object) -> None:
    if strategy not in STRATEGIES:
        raise errors.InvalidValueError(f"prune: strategy must be 'keep_latest' or 'delete', not {short(strategy)}")
    ids = [_id("thread_id", thread_id) for thread_id in iterable("thread_ids", thread_ids)]
    writes, checkpoints = (
        ("langgraph.prune_writes", "langgraph.prune_checkpoints")
        if strategy == "keep_latest"
        else ("langgraph.delete_thread_writes", "langgraph.delete_thread_checkpoints")
    )
    with transactions.write(conn):
        for thread_id in ids:
            run(conn, writes, {"thread_id": thread_id})  # first: the prune finds them by their checkpoints
            run(conn, checkpoints, {"thread_id": thread_id})
