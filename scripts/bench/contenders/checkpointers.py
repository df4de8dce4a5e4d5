"""The LangGraph checkpointers, LangGraph's own ``SqliteSaver`` (langgraph-checkpoint-sqlite) and
agentstate's drop-in for it, ``AgentStateSaver`` (agentstate.integrations.langgraph), each through
LangGraph's checkpointer API on a file of its own, and the checkpoints both files are built with.

``langgraph_sqlite``: ``get_tuple`` / ``list`` / ``put``; WAL, no synchronous: FULL; the stdlib
sqlite3. It gets as many checkpoints as rows, over the data set's threads (:func:`checkpoint_rows`),
serialised by its own serde; so does ``agentstate_langgraph``, at agentstate's defaults.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import count, islice
from pathlib import Path
from typing import Any

import apsw

from bench.contenders.shared import Bound
from bench.contenders.untimed import bulk, bulk_load
from bench.data import CORPUS, DataSpec, Progress, planner_id

# ---------------------------------------------------------------------------------------------
# LangGraph checkpoints

# The checkpointers (langgraph_sqlite, agentstate_langgraph) get ``size`` checkpoints over the
# planners' threads (thread id = planner id), built the same way in both files: the n-th checkpoint
# is step n // planners of thread n % planners, its parent the step before, n seconds after EPOCH.
# LangGraph's default serde (JsonPlusSerializer, msgpack) turns each into ~700 bytes, as a graph's
# put() would store it; no pending writes are built.

_UUID_EPOCH_OFFSET = 0x01B21DD213814000  # 100 ns intervals from 1582-10-15 to 1970-01-01
_EPOCH_UNIX = 1_735_689_600  # EPOCH, 2025-01-01T00:00:00Z
_EPOCH_DT = datetime(2025, 1, 1, tzinfo=UTC)


def checkpoint_id(n: int) -> str:
    """The n-th checkpoint's id: a UUIDv6 (what LangGraph's ``uuid6`` makes) for EPOCH + n seconds,
    with a fixed clock sequence and node, so every build has the same ids and they sort by n."""
    ts = (_EPOCH_UNIX + n) * 10_000_000 + _UUID_EPOCH_OFFSET
    h = f"{(ts >> 12) & 0xFFFF_FFFF_FFFF:012x}"
    return f"{h[:8]}-{h[8:]}-6{ts & 0x0FFF:03x}-802a-00000000be0c"  # version 6, RFC 4122 variant


def _version(number: int, h: int) -> str:
    """A channel version as LangGraph's SQLite saver makes them: a zero-padded counter and a fraction."""
    return f"{number:032}.0.{h % 10**16:016}"


def checkpoint_of(n: int, step: int) -> dict[str, Any]:
    """The n-th checkpoint (LangGraph's ``Checkpoint`` as ``create_checkpoint`` makes it) with a
    small channel state: a step counter, a short note (40-200 characters) and a route."""
    h = (n * 2654435761) % 4294967291
    start = h % 3_000
    prev, now = _version(step + 1, h), _version(step + 2, h)
    return {
        "v": 2,
        "id": checkpoint_id(n),
        "ts": (_EPOCH_DT + timedelta(seconds=n)).isoformat(),  # as datetime.now(UTC).isoformat()
        "channel_values": {
            "step": step,
            "note": CORPUS[start : start + 40 + (h // 100) % 160],
            "route": ("planner", "executor", "reviewer")[h % 3],
        },
        "channel_versions": {"__start__": _version(1, h), "step": now, "note": now, "route": now},
        "versions_seen": {"__input__": {}, "__start__": {"__start__": _version(1, h)}, "agent": {"step": prev}},
        "pending_sends": [],
        "updated_channels": ["note", "route", "step"],
    }


def checkpoint_metadata(step: int) -> dict[str, Any]:
    """What a graph's loop stores as a checkpoint's metadata."""
    return {"source": "loop", "step": step, "parents": {}}


def checkpoint_rows(spec: DataSpec) -> Iterator[tuple[str, str, str | None, dict[str, Any], dict[str, Any]]]:
    """(thread_id, checkpoint_id, parent_checkpoint_id, checkpoint, metadata) for the data set's
    ``spec.size`` checkpoints, in the order a run over all threads would have written them."""
    threads = [planner_id(p) for p in range(spec.planners)]
    for n in range(spec.size):
        step, thread = divmod(n, spec.planners)
        checkpoint = checkpoint_of(n, step)
        parent = checkpoint_id(n - spec.planners) if step else None
        yield threads[thread], checkpoint["id"], parent, checkpoint, checkpoint_metadata(step)


# ---------------------------------------------------------------------------------------------
# LangGraph checkpointers: LangGraph's own SqliteSaver, and agentstate's


CHECKPOINT_OPERATIONS = ("checkpoint_get", "checkpoint_list_50", "checkpoint_put")
CHECKPOINT_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"


def thread_config(thread: str) -> dict[str, Any]:
    """A graph's config for a thread's root namespace, as ``graph.get_state`` passes it."""
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def checkpoint_batches(spec: DataSpec, progress: Progress, chunk: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    """The data set's checkpoints (:func:`checkpoint_rows`), a chunk at a time, with progress."""
    rows = checkpoint_rows(spec)
    started, done = time.perf_counter(), 0
    while batch := list(islice(rows, chunk)):
        done += len(batch)
        yield batch
        progress(f"checkpoints {done:,}/{spec.size:,} ({time.perf_counter() - started:.0f} s)")


class CheckpointerContender:
    """A LangGraph checkpointer through LangGraph's ``BaseCheckpointSaver`` API, on its own file,
    synchronous (as ``graph.invoke`` calls it). The data set: ``spec.size`` checkpoints over the
    planners' threads (thread id = planner id; :func:`checkpoint_rows`), serialised by the
    saver's own serde (LangGraph's JsonPlusSerializer) and bulk-loaded, untimed, into the saver's
    own tables, which the saver made.

    get: ``get_tuple(config)``, the thread's newest checkpoint and its pending writes. list:
    ``list(config, limit=50)``, the thread's 50 newest, consumed. put: ``put(config, checkpoint,
    metadata, new_versions)`` of a new checkpoint (a built one's channel state under a new, later
    id) whose parent is the thread's newest, as a graph's step makes it; the returned config is the
    thread's next parent.
    """

    name = ""
    operations = CHECKPOINT_OPERATIONS
    builds = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saver: Any = None
        self.stack = ExitStack()

    def _from_conn_string(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        self.saver = self.stack.enter_context(self._from_conn_string())

    def close(self) -> None:
        self.stack.close()

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        saver = self.saver
        configs = [thread_config(thread) for thread in keys]
        if op == "checkpoint_get":
            return saver.get_tuple, configs
        if op == "checkpoint_list_50":
            return (lambda config: list(saver.list(config, limit=50))), configs
        if op == "checkpoint_put":
            heads = {thread: saver.get_tuple(config).config for thread, config in zip(keys, configs, strict=True)}
            ids = count(spec.size)  # later than every built checkpoint
            templates = [checkpoint_of(n, n // spec.planners) for n in range(0, 256 * spec.planners, spec.planners)]
            metadata = checkpoint_metadata(1)

            def put(arg: tuple[str, dict[str, Any]]) -> None:
                thread, template = arg
                heads[thread] = saver.put(
                    heads[thread], {**template, "id": checkpoint_id(next(ids))}, metadata, template["channel_versions"]
                )

            return put, [(keys[i % len(keys)], template) for i, template in enumerate(templates)]
        raise KeyError(op)

    def fingerprint(self, op: str, result: Any) -> Any:
        if op == "checkpoint_get":
            return None if result is None else self._summary(result)
        return tuple(self._summary(t) for t in result)

    @staticmethod
    def _summary(t: Any) -> tuple[Any, ...]:
        parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        return t.config["configurable"]["checkpoint_id"], parent, t.checkpoint["channel_values"], t.metadata


class LangGraphSqlitePeer(CheckpointerContender):
    """LangGraph's own ``SqliteSaver.from_conn_string(path)`` (langgraph-checkpoint-sqlite) at its
    defaults: a stdlib sqlite3 connection shared under a lock, WAL (set by its ``setup``), and no
    synchronous setting, so SQLite's default FULL: every put is fsynced. Checkpoints live in a
    rowid table with its primary key (thread_id, checkpoint_ns, checkpoint_id) as an index; a put
    is one INSERT OR REPLACE and a commit."""

    name = "langgraph_sqlite"

    def _from_conn_string(self) -> Any:
        from langgraph.checkpoint.sqlite import SqliteSaver

        return SqliteSaver.from_conn_string(str(self.path))

    def build(self, spec: DataSpec, progress: Progress) -> None:
        with self._from_conn_string() as saver:
            saver.setup()  # its tables (what its first call does)
            serde = saver.serde
        conn = sqlite3.connect(self.path, isolation_level=None)
        with bulk(conn):
            conn.execute("BEGIN")
            for batch in checkpoint_batches(spec, progress):
                conn.executemany(
                    f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        # Its metadata column is the JSON as bytes, as its put() writes it.
                        (thread, "", cid, parent, *serde.dumps_typed(cp), json.dumps(meta, ensure_ascii=False).encode())
                        for thread, cid, parent, cp, meta in batch
                    ],
                )
            conn.execute("COMMIT")
        conn.close()


class AgentStateSaverContender(CheckpointerContender):
    """agentstate's drop-in for it, ``AgentStateSaver.from_conn_string(path)``
    (agentstate.integrations.langgraph), on a file of its own built with the same checkpoints, at
    agentstate's defaults (WAL, synchronous=NORMAL). Checkpoints live in a WITHOUT ROWID table
    clustered on (thread_id, checkpoint_ns, checkpoint_id); a put is one BEGIN IMMEDIATE
    transaction."""

    name = "agentstate_langgraph"

    def _from_conn_string(self) -> Any:
        from agentstate.integrations.langgraph import AgentStateSaver

        return AgentStateSaver.from_conn_string(str(self.path))

    def build(self, spec: DataSpec, progress: Progress) -> None:
        from agentstate.values import to_json

        with self._from_conn_string() as saver:  # agentstate's schema, migrated
            serde = saver.serde
        conn = apsw.Connection(str(self.path))

        def load() -> None:
            conn.execute("BEGIN")
            for batch in checkpoint_batches(spec, progress):
                conn.executemany(
                    f"INSERT INTO langgraph_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (thread, "", cid, parent, *serde.dumps_typed(cp), to_json("metadata", meta))
                        for thread, cid, parent, cp, meta in batch
                    ],
                )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")  # as agentstate's own build does (generate)

        bulk_load(conn, load)
        conn.close()
