"""The delta-channel history, read by the store: ``get_delta_channel_history`` is one query per
channel along a checkpoint's parent chain (``langgraph.channel_history``), and ``prune`` and
``delete_for_runs`` keep the ancestors that history needs.

``put`` records in two columns what a checkpoint's blob holds: ``channels``, the channels whose
value it stores (where a channel's history starts: its seed), and ``replays``, the channels
LangGraph rebuilds from the history at it. A row stored before migration 0006 (PostgreSQL's
0002) has neither; the walk reads its blob then, and goes on past it if the value is not there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from langgraph.checkpoint.base import writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentstate import transactions
from agentstate.engines import Connection
from agentstate.integrations._langgraph_configs import _Key
from agentstate.integrations._langgraph_serde import _load
from agentstate.runner import run
from agentstate.values import from_json

if TYPE_CHECKING:  # DeltaChannel support (beta) is in langgraph-checkpoint 4.1+ only
    from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite

Row = tuple[Any, ...]
Writes = dict[str, dict[tuple[str, int], Row]]  # by checkpoint id, by (task_id, idx)
NO_SEED = object()
"""A walk that reached the root (or a deleted ancestor) without finding the channel's value."""


def _names(value: object) -> list[str]:
    return sorted(k for k in value if isinstance(k, str)) if isinstance(value, Mapping) else []


def stored_channels(checkpoint: Mapping[str, Any]) -> list[str]:
    """The channels whose value the checkpoint stores."""
    return _names(checkpoint.get("channel_values"))


def replayed_channels(checkpoint: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """The channels LangGraph rebuilds from the history at this checkpoint: those its metadata's
    ``counters_since_delta_snapshot`` names (LangGraph's own record of the DeltaChannels written
    since their last snapshot) that the checkpoint has a version of and stores no value for."""
    versions = checkpoint.get("channel_versions")
    stored = set(stored_channels(checkpoint))
    return [
        channel
        for channel in _names(metadata.get("counters_since_delta_snapshot"))
        if isinstance(versions, Mapping) and channel in versions and channel not in stored
    ]


def _walk(
    conn: Connection, serde: SerializerProtocol, key: _Key, channel: str, loaded: dict[str, Any] | None
) -> tuple[list[str], Writes, Any]:
    """One channel's history at ``key``: the ancestors it reads (nearest first, the seed's
    included), their writes to the channel, and the seed (``NO_SEED``: none). With ``loaded``
    None only the ancestors are wanted: a seed's blob is not read. Each query walks until a
    checkpoint that stores the value or that was stored before 0006; after one of those that
    does not hold it, the next query goes on from there. A chain that loops ends where it comes
    back (the checkpoint the history is of counts as read)."""
    ids: list[str] = []
    writes: Writes = {}
    seen: set[str] = set()
    start = key.checkpoint_id
    while True:
        params = {
            "thread_id": key.thread_id,
            "checkpoint_ns": key.checkpoint_ns,
            "checkpoint_id": start,
            "channel": channel,
        }
        nodes: dict[str, Row] = {}
        anchor: Row | None = None
        for cid, parent, holds, is_anchor, type_, blob, task_id, idx, task_path, w_type, value in run(
            conn, "langgraph.channel_history", params
        ):
            if is_anchor:
                anchor = (cid, parent)
                continue
            nodes.setdefault(cid, (parent, holds, type_, blob))
            if task_id is not None:
                writes.setdefault(cid, {})[(task_id, idx)] = (task_path, task_id, idx, w_type, value)
        if anchor is None:  # no such checkpoint
            return ids, writes, NO_SEED
        seen.add(anchor[0])
        current = anchor[1]
        start = None
        while current is not None and current in nodes and current not in seen:
            seen.add(current)
            ids.append(current)
            parent, holds, type_, blob = nodes[current]
            if holds is not None and not holds:
                current = parent
                continue
            if holds and loaded is None:
                return ids, writes, NO_SEED
            checkpoint = None if loaded is None else loaded.get(current)
            if checkpoint is None:
                checkpoint = _load(serde, "checkpoint", type_, blob)
                if loaded is not None:
                    loaded[current] = checkpoint
            values = checkpoint.get("channel_values") or {}
            if channel in values:
                return ids, writes, values[channel]
            start = current  # stored before 0006, without the channel: go on from its parent
            break
        if start is None:
            return ids, writes, NO_SEED


def _history(
    conn: Connection, serde: SerializerProtocol, config: object, channels: Sequence[str]
) -> dict[str, DeltaChannelHistory]:
    """LangGraph's ``get_delta_channel_history``: for each channel, the writes to it of the
    checkpoint's ancestors, oldest first (each checkpoint's in ``writes_sort_key`` order), back
    to the nearest ancestor that stores its value (the ``seed``; none if the walk reaches the
    root), one query per channel, in one read snapshot."""
    key = _Key.of("get_delta_channel_history", config)
    loaded: dict[str, Any] = {}
    history: dict[str, DeltaChannelHistory] = {}
    with transactions.reading(conn):
        for channel in channels:
            ids, writes, seed = _walk(conn, serde, key, channel, loaded)
            collected: list[PendingWrite] = []
            for cid in reversed(ids):
                for _path, task_id, _idx, type_, value in sorted(
                    writes.get(cid, {}).values(), key=lambda w: writes_sort_key(w[0], w[1], w[2])
                ):
                    collected.append((task_id, channel, _load(serde, "write", type_, value)))
            entry: DeltaChannelHistory = {"writes": collected}
            if seed is not NO_SEED:
                entry["seed"] = seed
            history[channel] = entry
    return history


def _replays_of(
    serde: SerializerProtocol, replays: str | None, type_: str | None, blob: bytes | None, metadata: str
) -> list[str]:
    """The channels a stored checkpoint replays: its column, or for a row stored before 0006,
    what its blob and metadata say."""
    if replays is not None:
        return cast(list[str], from_json(replays))
    return replayed_channels(_load(serde, "checkpoint", cast(str, type_), cast(bytes, blob)), from_json(metadata))


def _needed(conn: Connection, serde: SerializerProtocol, key: _Key, channels: Sequence[str]) -> set[str]:
    """The ancestors of ``key``'s checkpoint that the history of ``channels`` reads, seeds included."""
    needed: set[str] = set()
    for channel in channels:
        needed.update(_walk(conn, serde, key, channel, None)[0])
    return needed
