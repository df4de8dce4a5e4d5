"""The LangGraph checkpointers under real graphs: a compiled StateGraph resuming its thread, an
interrupt answered by another saver on the same file, many threads and processes writing at
once, pages of a long history, cancellation, and bad input (only AgentStateError escapes).
LangGraph's own conformance suite runs in test_langgraph_conformance.py."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import operator
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import apsw
import pytest

# The langgraph extra. Imported here so that a CI without it fails on collection, loudly.
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import agentstate
from agentstate import errors
from agentstate.integrations import langgraph as integration
from agentstate.integrations.langgraph import AgentStateSaver, AsyncAgentStateSaver


class Chat(TypedDict):
    log: Annotated[list[str], operator.add]
    turns: int


def reply(state: Chat) -> dict[str, Any]:
    return {"log": [f"reply to {state['log'][-1]}"], "turns": state.get("turns", 0) + 1}


def approve(state: Chat) -> dict[str, Any]:
    answer = interrupt(f"send {state['log'][-1]!r}?")
    return {"log": [f"sent, {answer}"], "turns": state.get("turns", 0) + 1}


def chat_graph(node: Any = reply) -> StateGraph[Chat]:
    builder = StateGraph(Chat)
    builder.add_node("reply", node)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder


def thread(thread_id: object, **more: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **more}}


def table_counts(path: Path) -> tuple[int, int]:
    conn = agentstate.connect(path)
    try:
        return (
            conn.execute("SELECT count(*) FROM langgraph_checkpoints").get,
            conn.execute("SELECT count(*) FROM langgraph_writes").get,
        )
    finally:
        conn.close()


# --- real graphs ----------------------------------------------------------------------------


def test_a_graph_resumes_its_thread_on_the_next_invocation_and_after_a_reopen(db_path: Path) -> None:
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        assert graph.invoke({"log": ["hello"]}, thread("conv-1")) == {"log": ["hello", "reply to hello"], "turns": 1}
        second = graph.invoke({"log": ["again"]}, thread("conv-1"))
        assert second == {"log": ["hello", "reply to hello", "again", "reply to again"], "turns": 2}
        assert graph.invoke({"log": ["other"]}, thread("conv-2"))["turns"] == 1  # threads do not mix

    with AgentStateSaver.from_conn_string(str(db_path)) as saver:  # a new connection: state is on disk
        graph = chat_graph().compile(checkpointer=saver)
        assert graph.get_state(thread("conv-1")).values == second
        history = list(graph.get_state_history(thread("conv-1")))
        ids = [h.config["configurable"]["checkpoint_id"] for h in history]
        assert ids == sorted(ids, reverse=True) and len(history) == 6  # newest first; 3 per invoke
        for newer, older in itertools.pairwise(history):
            assert newer.parent_config == older.config
        assert history[-1].parent_config is None
        # Time travel: fork from the state after the first invocation.
        forked = graph.invoke({"log": ["fork"]}, history[3].config)
        assert forked["log"] == ["hello", "reply to hello", "fork", "reply to fork"]


def test_an_async_graph_resumes_its_thread(db_path: Path) -> None:
    async def main() -> None:
        async with AsyncAgentStateSaver.from_conn_string(str(db_path)) as saver:
            graph = chat_graph().compile(checkpointer=saver)
            await graph.ainvoke({"log": ["hello"]}, thread(7))  # an int thread id is stored as text
            out = await graph.ainvoke({"log": ["again"]}, thread("7"))
            assert out == {"log": ["hello", "reply to hello", "again", "reply to again"], "turns": 2}
            assert (await graph.aget_state(thread(7))).values == out

    asyncio.run(main())
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:  # the sync saver reads the same rows
        assert chat_graph().compile(checkpointer=saver).get_state(thread("7")).values["turns"] == 2


def test_an_interrupted_graph_is_resumed_by_another_saver_on_the_file(db_path: Path) -> None:
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:
        graph = chat_graph(approve).compile(checkpointer=saver)
        paused = graph.invoke({"log": ["draft"]}, thread("t"))
        assert paused["__interrupt__"][0].value == "send 'draft'?"
        assert graph.get_state(thread("t")).next == ("reply",)

    async def resume() -> dict[str, Any]:
        async with AsyncAgentStateSaver.from_conn_string(str(db_path)) as saver:
            graph = chat_graph(approve).compile(checkpointer=saver)
            return await graph.ainvoke(Command(resume="approved"), thread("t"))

    assert asyncio.run(resume()) == {"log": ["draft", "sent, approved"], "turns": 1}


def test_the_sync_saver_serves_ainvoke_and_the_async_saver_serves_other_threads(db_path: Path) -> None:
    async def main() -> None:
        with AgentStateSaver.from_conn_string(str(db_path)) as saver:
            graph = chat_graph().compile(checkpointer=saver)
            assert (await graph.ainvoke({"log": ["a"]}, thread("sync")))["turns"] == 1
        async with AsyncAgentStateSaver.from_conn_string(str(db_path)) as asaver:
            graph = chat_graph().compile(checkpointer=asaver)
            # LangGraph's sync API from a worker thread while the loop runs, as AsyncSqliteSaver allows.
            out = await asyncio.to_thread(graph.invoke, {"log": ["b"]}, thread("sync"))
            assert out["log"] == ["a", "reply to a", "b", "reply to b"]
            assert len(await asyncio.to_thread(lambda: list(asaver.list(thread("sync"), limit=2)))) == 2
            with pytest.raises(errors.InvalidTypeError, match="other threads"):
                asaver.get_tuple(thread("sync"))  # on the loop's own thread it would wait for itself

    asyncio.run(main())


# --- many writers at once ---------------------------------------------------------------------


def run_graphs(path: str, worker: int, threads: int, turns: int) -> None:
    """In a child process: ``turns`` invocations on each of ``threads`` LangGraph threads."""
    with AgentStateSaver.from_conn_string(path) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for turn in range(turns):
            for t in range(threads):
                graph.invoke({"log": [f"{worker}/{t}/{turn}"]}, thread(f"w{worker}-t{t}"))


def expected_log(worker: int, t: int, turns: int) -> list[str]:
    return [line for turn in range(turns) for line in (f"{worker}/{t}/{turn}", f"reply to {worker}/{t}/{turn}")]


@pytest.mark.slow
def test_processes_writing_different_threads_at_once_lose_nothing(db_path: Path) -> None:
    processes, threads, turns = 4, 3, 10
    agentstate.connect(db_path).close()  # migrate once, before the children race to
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=run_graphs, args=(str(db_path), w, threads, turns)) for w in range(processes)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        for w in range(processes):
            for t in range(threads):
                state = graph.get_state(thread(f"w{w}-t{t}")).values
                assert state == {"log": expected_log(w, t, turns), "turns": turns}
    assert table_counts(db_path)[0] == processes * threads * turns * 3


@pytest.mark.slow
def test_threads_sharing_one_saver_lose_nothing(db_path: Path) -> None:
    threads, turns = 6, 15
    failures: list[BaseException] = []
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:
        graph = chat_graph().compile(checkpointer=saver)

        def work(t: int) -> None:
            try:
                for turn in range(turns):
                    graph.invoke({"log": [f"0/{t}/{turn}"]}, thread(f"w0-t{t}"))
            except BaseException as exc:
                failures.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not failures
        for t in range(threads):
            assert graph.get_state(thread(f"w0-t{t}")).values == {"log": expected_log(0, t, turns), "turns": turns}


# --- the protocol, directly ---------------------------------------------------------------------


@pytest.fixture
def saver(db_path: Path) -> Iterator[AgentStateSaver]:
    with AgentStateSaver.from_conn_string(str(db_path)) as saver:
        yield saver


def put_chain(saver: AgentStateSaver, thread_id: str, count: int, ns: str = "", **metadata: Any) -> list[str]:
    """``count`` checkpoints, each the parent of the next; returns their ids, oldest first."""
    config = thread(thread_id, checkpoint_ns=ns)
    ids = []
    for step in range(count):
        checkpoint = empty_checkpoint()
        config = saver.put(config, checkpoint, {"source": "loop", "step": step, **metadata}, {})
        ids.append(checkpoint["id"])
    return ids


def ids_of(tuples: Iterator[CheckpointTuple]) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


def test_a_long_history_is_listed_in_pages_newest_first(saver: AgentStateSaver) -> None:
    ids = put_chain(saver, "long", 2 * integration.PAGE + 50)
    newest_first = ids[::-1]
    assert ids_of(saver.list(thread("long"))) == newest_first
    assert ids_of(saver.list(thread("long"), limit=integration.PAGE + 1)) == newest_first[: integration.PAGE + 1]
    assert ids_of(saver.list(thread("long"), limit=0)) == []
    before = thread("long", checkpoint_id=ids[200])
    assert ids_of(saver.list(thread("long"), before=before, limit=150)) == ids[:200][::-1][:150]
    assert ids_of(saver.list(thread("long"), filter={"step": 7})) == [ids[7]]
    assert ids_of(saver.list(thread("long", checkpoint_id=ids[3]))) == [ids[3]]  # the one it names
    assert ids_of(saver.list(thread("long", checkpoint_id=ids[3]), filter={"step": 4})) == []


def test_a_config_without_a_namespace_lists_every_namespace_of_the_thread(saver: AgentStateSaver) -> None:
    root = put_chain(saver, "t", 2)
    child = put_chain(saver, "t", 2, ns="child:1")
    listed = list(saver.list({"configurable": {"thread_id": "t"}}))
    assert ids_of(iter(listed)) == sorted(root + child, reverse=True)
    assert {t.config["configurable"]["checkpoint_ns"] for t in listed} == {"", "child:1"}
    assert ids_of(saver.list(thread("t", checkpoint_ns="child:1"))) == child[::-1]


def test_metadata_filters_match_keys_and_dotted_paths_as_sqlite_saver_does(saver: AgentStateSaver) -> None:
    """A filter key is a path into the metadata, its parts split at dots (LangGraph's SqliteSaver's
    keys: letters, digits, '_', '-'); a missing key matches None."""
    [plain] = put_chain(saver, "f", 1, user="ada", score=1.5, flags={"a": 1, "x-1": "y"}, dotted=None)
    assert ids_of(saver.list(thread("f"), filter={"user": "ada", "score": 1.5})) == [plain]
    assert ids_of(saver.list(thread("f"), filter={"flags": {"a": 1, "x-1": "y"}})) == [plain]
    assert ids_of(saver.list(thread("f"), filter={"flags.a": 1, "flags.x-1": "y"})) == [plain]
    assert ids_of(saver.list(thread("f"), filter={"dotted": None, "missing": None})) == [plain]
    for miss in ({"user": "bob"}, {"score": "1.5"}, {"flags.a": 2}, {"flags.b": 1}, {"user": "ada", "step": 3}):
        assert ids_of(saver.list(thread("f"), filter=miss)) == [], miss


def test_deletes_prunes_and_copies_leave_no_writes_behind(saver: AgentStateSaver, db_path: Path) -> None:
    for name in ("a", "b"):
        for ns in ("", "child:1"):
            ids = put_chain(saver, name, 3, ns=ns, run_id=f"run-{name}")
            for checkpoint_id in ids:
                saver.put_writes(thread(name, checkpoint_ns=ns, checkpoint_id=checkpoint_id), [("ch", 1)], "task")
    assert table_counts(db_path) == (12, 12)
    saver.copy_thread("a", "c")
    assert table_counts(db_path) == (18, 18)
    saver.prune(["a"], strategy="keep_latest")  # the newest of each namespace, and its writes
    assert table_counts(db_path) == (14, 14)
    saver.delete_for_runs(["run-b"])  # b's own rows (c's copies came from run-a)
    assert table_counts(db_path) == (8, 8)
    saver.prune(["c"], strategy="delete")
    saver.delete_thread("a")
    assert table_counts(db_path) == (0, 0)


def test_channel_versions_grow_and_sort_as_text(saver: AgentStateSaver) -> None:
    versions = [saver.get_next_version(None, None)]
    for _ in range(20):
        versions.append(saver.get_next_version(versions[-1], None))
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert saver.get_next_version(9, None).startswith("0" * 30 + "10.")  # type: ignore[arg-type]


# --- cancellation --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_cancelled_put_finishes_before_the_cancellation_is_raised(kind: str, db_path: Path) -> None:
    async def main() -> None:
        async with AsyncAgentStateSaver.from_conn_string(str(db_path)) as asaver:
            with AgentStateSaver.from_conn_string(str(db_path)) as ssaver:
                saver = ssaver if kind == "sync" else asaver
                checkpoint = empty_checkpoint()
                put = asyncio.ensure_future(saver.aput(thread("c"), checkpoint, {}, {}))
                await asyncio.sleep(0)
                put.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await put
                assert table_counts(db_path) == (1, 0)  # committed: another connection sees it

    asyncio.run(main())


# --- bad input -------------------------------------------------------------------------------------


class Unreadable:
    """A serde whose stored values cannot be read back (a key rotated, a class removed)."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return "opaque", b"\x00"

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        raise RuntimeError("unknown format")


def test_connections_of_the_wrong_kind_are_refused(db_path: Path) -> None:
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSaver(str(db_path))  # type: ignore[arg-type]
    conn = agentstate.connect(db_path)
    try:
        with pytest.raises(errors.InvalidTypeError):
            AsyncAgentStateSaver(conn)  # type: ignore[arg-type]
    finally:
        conn.close()

    async def main() -> None:
        aconn = await agentstate.connect_async(db_path)
        try:
            with pytest.raises(errors.InvalidTypeError):
                AgentStateSaver(aconn)
        finally:
            await aconn.aclose()

    asyncio.run(main())


BAD_CALLS: list[tuple[str, Any, type[errors.AgentStateError]]] = [
    ("get_tuple", lambda s: s.get_tuple({}), errors.InvalidTypeError),
    ("no thread_id", lambda s: s.get_tuple({"configurable": {}}), errors.InvalidValueError),
    ("empty thread_id", lambda s: s.get_tuple(thread("")), errors.InvalidValueError),
    ("bool thread_id", lambda s: s.get_tuple(thread(True)), errors.InvalidTypeError),
    ("dict thread_id", lambda s: s.get_tuple(thread({"id": 1})), errors.InvalidTypeError),
    ("int namespace", lambda s: s.get_tuple(thread("t", checkpoint_ns=1)), errors.InvalidTypeError),
    ("surrogate", lambda s: s.get_tuple(thread("t", checkpoint_id="\udc80")), errors.InvalidValueError),
    ("filter key", lambda s: list(s.list(None, filter={"a') OR 1=1 --": 1})), errors.InvalidValueError),
    ("filter key type", lambda s: list(s.list(None, filter={1: 1})), errors.InvalidTypeError),
    ("filter", lambda s: list(s.list(thread("t"), filter="source")), errors.InvalidTypeError),
    ("limit", lambda s: list(s.list(thread("t"), limit=-1)), errors.InvalidValueError),
    ("limit type", lambda s: list(s.list(thread("t"), limit="2")), errors.InvalidTypeError),
    ("before", lambda s: list(s.list(thread("t"), before="id")), errors.InvalidTypeError),
    ("checkpoint", lambda s: s.put(thread("t"), {"v": 1}, {}, {}), errors.InvalidValueError),
    ("metadata", lambda s: s.put(thread("t"), empty_checkpoint(), None, {}), errors.InvalidTypeError),
    (
        "config metadata",
        lambda s: s.put({**thread("t"), "metadata": "x"}, empty_checkpoint(), {}, {}),
        errors.InvalidTypeError,
    ),
    (
        "NaN metadata",
        lambda s: s.put(thread("t"), empty_checkpoint(), {"score": float("nan")}, {}),
        errors.InvalidValueError,
    ),
    (
        "unserialisable value",
        lambda s: s.put(thread("t"), {**empty_checkpoint(), "channel_values": {"lock": threading.Lock()}}, {}, {}),
        errors.InvalidValueError,
    ),
    ("writes without checkpoint", lambda s: s.put_writes(thread("t"), [("ch", 1)], "task"), errors.InvalidValueError),
    ("writes", lambda s: s.put_writes(thread("t", checkpoint_id="x"), "ch", "task"), errors.InvalidTypeError),
    ("write pair", lambda s: s.put_writes(thread("t", checkpoint_id="x"), [("ch",)], "task"), errors.InvalidTypeError),
    ("task_id", lambda s: s.put_writes(thread("t", checkpoint_id="x"), [("ch", 1)], 5), errors.InvalidTypeError),
    (
        "unserialisable write",
        lambda s: s.put_writes(thread("t", checkpoint_id="x"), [("ch", 1), ("ch", threading.Lock())], "task"),
        errors.InvalidValueError,
    ),
    ("delete_thread", lambda s: s.delete_thread(None), errors.InvalidTypeError),
    ("run_ids", lambda s: s.delete_for_runs("run-1"), errors.InvalidTypeError),
    ("copy_thread", lambda s: s.copy_thread("a", ""), errors.InvalidValueError),
    ("strategy", lambda s: s.prune(["t"], strategy="oldest"), errors.InvalidValueError),
    ("thread_ids", lambda s: s.prune("t"), errors.InvalidTypeError),
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_a_specific_error_and_stores_nothing(
    saver: AgentStateSaver, db_path: Path, name: str, call: Any, error: type[errors.AgentStateError]
) -> None:
    with pytest.raises(error):
        call(saver)
    assert table_counts(db_path) == (0, 0)


def test_the_async_saver_raises_the_same_errors(db_path: Path) -> None:
    async def main() -> None:
        async with AsyncAgentStateSaver.from_conn_string(str(db_path)) as saver:
            with pytest.raises(errors.InvalidValueError):
                await saver.aget_tuple({"configurable": {}})
            with pytest.raises(errors.InvalidValueError):
                [t async for t in saver.alist(None, filter={"a b": 1})]
            with pytest.raises(errors.InvalidValueError):
                await saver.aput_writes(thread("t", checkpoint_id="x"), [("ch", threading.Lock())], "task")
            with pytest.raises(errors.InvalidValueError):
                await saver.aprune(["t"], strategy="oldest")

    asyncio.run(main())
    assert table_counts(db_path) == (0, 0)


def test_unreadable_rows_and_closed_connections_raise_agentstate_errors(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    saver = AgentStateSaver(conn, serde=Unreadable())
    config = saver.put(thread("t"), empty_checkpoint(), {}, {})
    with pytest.raises(errors.AgentStateError, match="another serde"):
        saver.get_tuple(config)
    conn.close()
    with pytest.raises(errors.AgentStateError) as raised:
        saver.get_tuple(config)
    assert isinstance(raised.value.__cause__, apsw.Error)


# --- parent chains that loop ---------------------------------------------------------------------

WALK_TIMEOUT_S = 10


def _stopped(config: Any) -> None:
    raise RuntimeError("stopped by the test: the walk ran over its time")


def within(seconds: float, call: Any, walker: Any = None) -> Any:
    """``call()`` in a thread of its own: its result, or a failure (not a hang) if it runs over.
    A ``walker`` (a saver whose parent walk ``call`` runs) is then stopped, its next get_tuple
    raising, so that its connection can be closed."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    runner.join(seconds)
    if runner.is_alive():
        if walker is not None:
            walker.get_tuple = _stopped
            runner.join(seconds)
        pytest.fail(f"still running after {seconds} s: the walk goes round the parent cycle forever")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def put_parent_cycle(saver: AgentStateSaver) -> tuple[str, str]:
    """Checkpoint A, B under A, then A put again under B (LangGraph's savers replace a re-put id):
    A's parent is B and B's is A. Each has a write to channel "x", and neither a value of "x", so
    a walk for "x" finds no seed to stop at."""
    a, b = empty_checkpoint(), empty_checkpoint()
    config_a = saver.put(thread("loop"), a, {"step": 0, "run_id": "run-1"}, {})
    saver.put_writes(config_a, [("x", "from a")], "task-a")
    config_b = saver.put(config_a, b, {"step": 1, "run_id": "run-1"}, {})
    saver.put_writes(config_b, [("x", "from b")], "task-b")
    assert saver.put(config_b, a, {"step": 2, "run_id": "run-1"}, {}) == config_a
    assert saver.get_tuple(config_a).parent_config == config_b  # type: ignore[union-attr]
    return a["id"], b["id"]


HISTORY_KINDS = ["sync", "sync saver, async call", "async", "async saver, sync call"]


@pytest.mark.parametrize("kind", HISTORY_KINDS)
def test_the_delta_history_walk_ends_on_a_checkpoint_put_under_its_own_child(kind: str, db_url: str) -> None:
    """get_delta_channel_history (and its async twin) walks a checkpoint's parents; on a loop it
    stops where the chain comes back (as LangGraph's SqliteSaver does), each checkpoint once."""
    with AgentStateSaver.from_conn_string(db_url) as setup:
        a, b = put_parent_cycle(setup)

    def histories(saver: Any) -> list[Any]:
        return [
            saver.get_delta_channel_history(config=thread("loop", checkpoint_id=target), channels=["x"])
            for target in (a, b)
        ]

    async def ahistories(saver: Any) -> list[Any]:
        return [
            await asyncio.wait_for(
                saver.aget_delta_channel_history(config=thread("loop", checkpoint_id=target), channels=["x"]),
                WALK_TIMEOUT_S,
            )
            for target in (a, b)
        ]

    if kind == "sync":
        with AgentStateSaver.from_conn_string(db_url) as saver:
            found = within(WALK_TIMEOUT_S, lambda: histories(saver), saver)
    elif kind == "sync saver, async call":
        with AgentStateSaver.from_conn_string(db_url) as saver:
            found = asyncio.run(ahistories(saver))
    else:

        async def main() -> list[Any]:
            async with AsyncAgentStateSaver.from_conn_string(db_url) as saver:
                if kind == "async":
                    return await ahistories(saver)
                return await asyncio.to_thread(within, WALK_TIMEOUT_S, lambda: histories(saver), saver)

        found = asyncio.run(main())
    # A's history: its parent B's write, then back at A (the target): the end. B's: A's write.
    assert found == [{"x": {"writes": [("task-b", "x", "from b")]}}, {"x": {"writes": [("task-a", "x", "from a")]}}]


def test_the_savers_own_calls_end_on_a_parent_cycle(db_url: str) -> None:
    """list and copy_thread never follow parents; prune and delete_for_runs follow them only for the
    channels a checkpoint replays, and end on a loop: a loop changes nothing."""
    with AgentStateSaver.from_conn_string(db_url) as saver:
        a, b = put_parent_cycle(saver)
        assert within(WALK_TIMEOUT_S, lambda: ids_of(saver.list(thread("loop")))) == [b, a]
        within(WALK_TIMEOUT_S, lambda: saver.copy_thread("loop", "copy"))
        assert ids_of(saver.list(thread("copy"))) == [b, a]
        within(WALK_TIMEOUT_S, lambda: saver.prune(["copy"], strategy="keep_latest"))
        assert ids_of(saver.list(thread("copy"))) == [b]
        within(WALK_TIMEOUT_S, lambda: saver.delete_for_runs(["run-1"]))
        assert ids_of(saver.list(thread("loop"))) == ids_of(saver.list(thread("copy"))) == []


def test_a_delta_channel_graph_resumes_and_its_history_is_langgraphs_own(db_url: str) -> None:
    """On a chain without a loop, the saver's walk gives what BaseCheckpointSaver's does, for every
    checkpoint of a graph whose state is a DeltaChannel (beta in LangGraph) with snapshots."""
    delta = pytest.importorskip("langgraph.channels.delta")

    def extend(state: list[str] | None, batches: Any) -> list[str]:
        return [*(state or []), *(item for batch in batches for item in batch)]

    # The functional form: its annotation is evaluated here, where `delta` is.
    Log = TypedDict("Log", {"log": Annotated[list[str], delta.DeltaChannel(extend, snapshot_frequency=3)]})  # noqa: UP013

    builder = StateGraph(Log)
    builder.add_node("reply", lambda state: {"log": [f"reply {len(state['log'])}"]})
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    expected = [text for turn in range(7) for text in (f"turn {turn}", f"reply {2 * turn + 1}")]
    with AgentStateSaver.from_conn_string(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        for turn in range(7):
            graph.invoke({"log": [f"turn {turn}"]}, thread("delta"))
        assert graph.get_state(thread("delta")).values == {"log": expected}
        configs = [t.config for t in saver.list(thread("delta"))]
        assert len(configs) == 21
        for config in configs:
            ours = saver.get_delta_channel_history(config=config, channels=["log"])
            assert ours == BaseCheckpointSaver.get_delta_channel_history(saver, config=config, channels=["log"])

    async def resume() -> Any:
        async with AsyncAgentStateSaver.from_conn_string(db_url) as asaver:
            return await builder.compile(checkpointer=asaver).ainvoke({"log": ["more"]}, thread("delta"))

    assert asyncio.run(resume()) == {"log": [*expected, "more", "reply 15"]}
