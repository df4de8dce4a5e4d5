"""Several OS processes appending to the same streams at once: every acknowledged message is
stored exactly once, positions are unique and grow in commit order, nothing is lost."""

from __future__ import annotations

import multiprocessing
import random
from collections import defaultdict
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

import agentstate
from agentstate.agents import Agents
from agentstate.messages import Message, MessageLog, NewMessage, Stream

PROCESSES = 4
ROUNDS = 150
PLANNERS = ("p0", "p1", "p2")
CONVERSATIONS = ("c0", "c1")
SHARED_KEYS = [f"shared-{n}" for n in range(20)]

# (stream, stream_id, position, content, idempotency_key), as the appending process saw it acknowledged
Ack = tuple[str, str, int, str, str | None]


def append_from_process(path: str, worker: int, seed: int, start: Barrier, out: Queue[list[Ack]]) -> None:
    """Run in a child process: a random mix of single appends, batches, bulk loads and retries."""
    rng = random.Random(seed)
    conn = agentstate.connect(path)
    log = MessageLog(conn)
    acks: list[Ack] = []
    start.wait()  # all processes connected: start appending at the same moment

    def keep(stored: list[Message]) -> None:
        acks.extend((m.stream, m.stream_id, m.position, m.content, m.idempotency_key) for m in stored)

    try:
        for n in range(ROUNDS):
            stream: Stream = rng.choice(["planner", "router"])
            owners = PLANNERS if stream == "planner" else CONVERSATIONS
            owner = rng.choice(owners)
            roll = rng.random()
            if roll < 0.5:
                keep([log.append(stream, owner, role="user", content=f"w{worker}-{n}")])
            elif roll < 0.7:
                turn = [NewMessage("assistant", f"w{worker}-{n}-{i}", {"i": i}) for i in range(rng.randint(1, 20))]
                keep(log.append_many(stream, owner, turn))
            elif roll < 0.8:
                pairs = [(rng.choice(owners), NewMessage("user", f"w{worker}-{n}-bulk{i}")) for i in range(30)]
                keep(log.append_bulk(stream, pairs))
            else:
                # Every process retries the same keys: each must be stored once, in the planner p0.
                key = rng.choice(SHARED_KEYS)
                keep([log.append("planner", "p0", role="user", content=f"content of {key}", idempotency_key=key)])
    finally:
        conn.close()
    out.put(acks)


@pytest.mark.slow
def test_concurrent_appends_store_every_acknowledged_message_once(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    try:
        agents = Agents(conn)
        for planner in PLANNERS:
            agents.create_planner(planner)
        for conversation in CONVERSATIONS:
            agents.create_conversation(conversation)
    finally:
        conn.close()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    out: Queue[list[Ack]] = context.Queue()
    processes = [
        context.Process(target=append_from_process, args=(str(db_path), w, 1000 + w, start, out))
        for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    conn = agentstate.connect(db_path)
    try:
        stored: dict[tuple[str, str, int], tuple[str, str | None]] = {}
        for stream, table, key in (
            ("planner", "planner_messages", "agent_id"),
            ("router", "router_messages", "conversation_id"),
        ):
            for owner, position, content, idempotency_key in conn.execute(
                f"SELECT {key}, position, content, idempotency_key FROM {table}"
            ):
                stored[stream, owner, position] = (content, idempotency_key)
    finally:
        conn.close()

    acknowledged: dict[tuple[str, str, int], tuple[str, str | None]] = {}
    for acks in results:
        per_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
        for stream, owner, position, content, idempotency_key in acks:
            slot = (stream, owner, position)
            # Two processes may be told about the same message only through a shared key.
            if slot in acknowledged:
                assert idempotency_key is not None and acknowledged[slot] == (content, idempotency_key)
            acknowledged[slot] = (content, idempotency_key)
            if idempotency_key is None:
                per_stream[stream, owner].append(position)
        # One process commits one write after another, so its fresh positions only grow.
        for positions in per_stream.values():
            assert positions == sorted(positions) and len(set(positions)) == len(positions)

    assert stored == acknowledged  # nothing lost, nothing extra, nothing changed
    contents = [content for content, _ in stored.values()]
    assert len(contents) == len(set(contents))  # no message stored twice
    shared = [key for _, key in stored.values() if key is not None]
    assert len(shared) == len(set(shared))
    assert sum(len(acks) for acks in results) > PROCESSES * ROUNDS
