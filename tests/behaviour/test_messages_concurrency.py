"""Several OS processes appending to the same streams at once, on SQLite and PostgreSQL: every
acknowledged message is stored exactly once, positions are unique and grow in commit order (a
reader following a stream with after() misses nothing), an idempotency key raced by every
process stores one message, nothing is lost."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from multiprocessing.synchronize import Barrier

import pytest

import agentstate
from agentstate.agents import Agents
from agentstate.messages import Message, MessageLog, NewMessage, Stream
from tests.engines import rows
from tests.messages_support import SPAWN, START_TIMEOUT_S, run_in_processes

PROCESSES = 4
ROUNDS = 150
PLANNERS = ("p0", "p1", "p2")
CONVERSATIONS = ("c0", "c1")
STREAMS: tuple[tuple[Stream, str], ...] = tuple(("planner", p) for p in PLANNERS) + tuple(
    ("router", c) for c in CONVERSATIONS
)
SHARED_KEYS = [f"shared-{n}" for n in range(20)]
TABLES = (("planner", "planner_messages", "agent_id"), ("router", "router_messages", "conversation_id"))

# (stream, stream_id, position, content, idempotency_key), as the appending process saw it acknowledged
Ack = tuple[str, str, int, str, str | None]


def shared(key: str) -> NewMessage:
    """The message every process appends under a shared key (the same each time: a retry)."""
    return NewMessage("user", f"content of {key}", None, key)


def append_from_process(url: str, worker: int, seed: int, start: Barrier) -> list[Ack]:
    """Run in a child process: a random mix of single appends, batches, bulk loads and retries."""
    rng = random.Random(seed)
    conn = agentstate.connect(url)
    log = MessageLog(conn)
    acks: list[Ack] = []
    start.wait(START_TIMEOUT_S)  # all processes connected: start appending at the same moment

    def keep(stored: list[Message]) -> None:
        acks.extend((m.stream, m.stream_id, m.position, m.content, m.idempotency_key) for m in stored)

    try:
        for n in range(ROUNDS):
            stream: Stream = rng.choice(["planner", "router"])
            owners = PLANNERS if stream == "planner" else CONVERSATIONS
            owner = rng.choice(owners)
            roll = rng.random()
            if roll < 0.45:
                keep([log.append(stream, owner, role="user", content=f"w{worker}-{n}")])
            elif roll < 0.6:
                turn = [NewMessage("assistant", f"w{worker}-{n}-{i}", {"i": i}) for i in range(rng.randint(1, 20))]
                keep(log.append_many(stream, owner, turn))
            elif roll < 0.7:
                pairs = [(rng.choice(owners), NewMessage("user", f"w{worker}-{n}-bulk{i}")) for i in range(30)]
                keep(log.append_bulk(stream, pairs))
            elif roll < 0.8:
                # A turn of the planner p0 with shared keys among fresh messages: the batch path
                # races the single appends below for the same keys.
                turn = [NewMessage("assistant", f"w{worker}-{n}-{i}") for i in range(rng.randint(0, 3))]
                turn += [shared(key) for key in rng.sample(SHARED_KEYS, rng.randint(1, 3))]
                rng.shuffle(turn)
                keep(log.append_many("planner", "p0", turn))
            else:
                # Every process retries the same keys: each must be stored once, in the planner p0.
                key = rng.choice(SHARED_KEYS)
                message = shared(key)
                keep([log.append("planner", "p0", role=message.role, content=message.content, idempotency_key=key)])
    finally:
        conn.close()
    return acks


def follow(url: str, done: threading.Event, seen: dict[tuple[str, str], list[tuple[int, str]]]) -> None:
    """Tail every stream with after(last position seen) until ``done``, then once more: a message
    committed at a position below one already read would never be seen."""
    conn = agentstate.connect(url)
    try:
        log = MessageLog(conn)
        while True:
            finished = done.is_set()
            for stream, owner in STREAMS:
                mine = seen[stream, owner]
                while page := log.after(stream, owner, mine[-1][0] if mine else 0, limit=100):
                    mine += [(m.position, m.content) for m in page]
            if finished:
                return
            done.wait(0.005)
    finally:
        conn.close()


@pytest.mark.slow
def test_concurrent_appends_store_every_acknowledged_message_once(db_url: str) -> None:
    conn = agentstate.connect(db_url)
    try:
        agents = Agents(conn)
        for planner in PLANNERS:
            agents.create_planner(planner)
        for conversation in CONVERSATIONS:
            agents.create_conversation(conversation)
    finally:
        conn.close()

    seen: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    done = threading.Event()
    failed: list[BaseException] = []

    def follower() -> None:
        try:
            follow(db_url, done, seen)
        except BaseException as exc:
            failed.append(exc)

    reader = threading.Thread(target=follower, name="follower")
    reader.start()
    try:
        start = SPAWN.Barrier(PROCESSES)
        results = run_in_processes(
            append_from_process, [(db_url, w, 1000 + w, start) for w in range(PROCESSES)], timeout_s=120
        )
    finally:
        done.set()
        reader.join(60)
    assert not reader.is_alive(), "the follower did not finish"
    assert not failed, failed

    conn = agentstate.connect(db_url)
    try:
        stored: dict[tuple[str, str, int], tuple[str, str | None]] = {}
        times: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for stream, table, key in TABLES:
            for owner, position, content, idempotency_key, created_at in rows(
                conn, f"SELECT {key}, position, content, idempotency_key, created_at FROM {table}"
            ):
                stored[stream, owner, position] = (content, idempotency_key)
                times[stream, owner].append((position, created_at))
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
    keys = [key for _, key in stored.values() if key is not None]
    assert len(keys) == len(set(keys)) == len(SHARED_KEYS)  # every shared key once, all raced
    assert sum(len(acks) for acks in results) > PROCESSES * ROUNDS

    # Positions commit in order: the follower, reading after the last position it had seen,
    # saw every message of every stream, once, in position order.
    for stream, owner in STREAMS:
        expected = sorted(
            (position, content) for (s, o, position), (content, _) in stored.items() if (s, o) == (stream, owner)
        )
        assert seen[stream, owner] == expected, (stream, owner)
        # Each message's time is taken once its position is: times follow positions.
        stamps = [created_at for _, created_at in sorted(times[stream, owner])]
        assert stamps == sorted(stamps), (stream, owner)


THREADS = 6
RACES = 20


def test_threads_racing_for_one_idempotency_key_store_one_message(db_url: str) -> None:
    """Threads with connections of their own append the same key at the same moment, some one
    message at a time, some in a batch: all are told of the one message stored."""
    conns = [agentstate.connect(db_url) for _ in range(THREADS)]
    try:
        Agents(conns[0]).create_conversation("c")
        barrier = threading.Barrier(THREADS)
        told: list[list[Message]] = [[] for _ in range(THREADS)]

        def race(n: int) -> None:
            log = MessageLog(conns[n])
            try:
                for r in range(RACES):
                    message = NewMessage("user", f"content {r}", {"r": r}, f"k{r}")
                    barrier.wait(30)
                    if (n + r) % 2:
                        stored = log.append(
                            "router", "c", role=message.role, content=message.content, metadata=message.metadata,
                            idempotency_key=message.idempotency_key,
                        )  # fmt: skip
                    else:
                        stored = log.append_many("router", "c", [message])[0]
                    told[n].append(stored)
            except BaseException:
                barrier.abort()
                raise

        threads = [threading.Thread(target=race, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
        assert all(len(mine) == RACES for mine in told), "a thread failed (see its exception above)"
        stored = MessageLog(conns[0]).all("router", "c")
        assert [m.idempotency_key for m in stored] == [f"k{r}" for r in range(RACES)]
        for r, message in enumerate(stored):
            assert all(mine[r] == message for mine in told), r
    finally:
        for conn in conns:
            conn.close()


BULK_THREADS = 4
BULK_LOADS = 100


def test_bulk_loads_naming_the_same_streams_in_any_order_all_commit(db_url: str) -> None:
    """Bulk loads over the same streams, each naming them in its own order, run at once: every
    one commits (on PostgreSQL a batch locks each stream's head, so the locks must be taken in
    one order, not the caller's, or two loads deadlock and one is aborted)."""
    owners = [f"c{n}" for n in range(4)]
    conns = [agentstate.connect(db_url) for _ in range(BULK_THREADS)]
    try:
        for owner in owners:
            Agents(conns[0]).create_conversation(owner)
        barrier = threading.Barrier(BULK_THREADS)
        failures: list[BaseException] = []

        def load(n: int) -> None:
            log, rng = MessageLog(conns[n]), random.Random(n)
            try:
                barrier.wait(30)
                for i in range(BULK_LOADS):
                    order = rng.sample(owners, len(owners))
                    log.append_bulk("router", [(o, NewMessage("user", f"t{n}-{i}-{o}")) for o in order])
            except BaseException as exc:
                failures.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=load, args=(n,)) for n in range(BULK_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
        assert not failures, failures
        log = MessageLog(conns[0])
        for owner in owners:
            stored = log.all("router", owner)
            assert len(stored) == BULK_THREADS * BULK_LOADS
            assert [m.position for m in stored] == list(range(1, len(stored) + 1))
    finally:
        for conn in conns:
            conn.close()
