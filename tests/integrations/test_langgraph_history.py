"""The LangGraph savers where they read across threads and along parent chains: ``list(None)``
(every thread: a bounded keyset walk, page by page), metadata exactly as SqliteSaver stores it,
and the delta-channel history, which the saver reads one query per channel and which ``prune``,
``delete_for_runs`` and ``copy_thread`` keep. On both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, empty_checkpoint
from langgraph.graph import END, START, StateGraph

from agentstate.integrations import _langgraph_history, langgraph
from agentstate.integrations.langgraph import PAGE, AgentStateSaver, AsyncAgentStateSaver
from tests.engines import rows, scalar


def thread(thread_id: str, **more: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **more}}


def keys(tuples: Iterator[CheckpointTuple] | list[CheckpointTuple]) -> list[tuple[str, str, str]]:
    """(checkpoint_id, thread_id, checkpoint_ns) of each: list(None)'s order, newest first."""
    return [
        (c["checkpoint_id"], c["thread_id"], c["checkpoint_ns"]) for c in (t.config["configurable"] for t in tuples)
    ]


@pytest.fixture
def saver(db_url: str) -> Iterator[AgentStateSaver]:
    with AgentStateSaver.from_conn_string(db_url) as opened:
        yield opened


def put_threads(saver: AgentStateSaver, threads: int, each: int) -> list[tuple[str, str, str]]:
    """``threads`` threads of ``each`` checkpoints, interleaved in time, in two namespaces, every
    seventh one with metadata {"rare": True}; returns every key, newest first."""
    configs = {(t, ns): thread(f"t{t}", checkpoint_ns=ns) for t in range(threads) for ns in ("", "sub")}
    for n in range(threads * each):
        where = (n % threads, "" if n % 3 else "sub")
        metadata = {"step": n, **({"rare": True} if n % 7 == 0 else {})}
        configs[where] = saver.put(configs[where], empty_checkpoint(), metadata, {})
    return sorted(
        (
            (r[2], r[0], r[1])
            for r in rows(saver.conn, "SELECT thread_id, checkpoint_ns, checkpoint_id FROM langgraph_checkpoints")
        ),
        reverse=True,
    )


def test_list_none_walks_every_thread_newest_first_in_bounded_pages(
    saver: AgentStateSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = put_threads(saver, 7, 50)
    saver.copy_thread("t1", "t1-copy")  # the same checkpoint ids in two threads, across page edges
    every = sorted(every + [(cid, "t1-copy", ns) for cid, t, ns in every if t == "t1"], reverse=True)
    pages: list[tuple[int, int]] = []
    page = langgraph._page

    def counted(conn: Any, serde: Any, listing: Any) -> Any:
        found = page(conn, serde, listing)
        pages.append((found.read, len(found.tuples)))
        return found

    monkeypatch.setattr(langgraph, "_page", counted)
    listing = saver.list(None)
    first = next(listing)
    assert pages == [(PAGE, PAGE)]  # a generator: one page read, not the table
    assert keys([first, *listing]) == every
    assert len(pages) == len(every) // PAGE + 1 and all(read <= PAGE for read, _ in pages)

    pages.clear()
    rare = [key for key, t in zip(every, saver.list(None), strict=True) if t.metadata.get("rare")]
    assert keys(saver.list(None, filter={"rare": True})) == rare
    assert all(read <= PAGE for read, _ in pages)  # rows the filter refuses are read a page at a time
    assert keys(saver.list(None, filter={"rare": True}, limit=3)) == rare[:3]
    assert keys(saver.list(None, limit=PAGE + 5)) == every[: PAGE + 5]
    assert keys(saver.list(None, limit=0)) == []
    before = every[150]
    older = [key for key in every if key[0] < before[0]]
    assert keys(saver.list(None, before=thread(before[1], checkpoint_id=before[0]))) == older
    assert (
        keys(saver.list(None, before=thread("x", checkpoint_id=before[0]), filter={"rare": True}, limit=4))
        == [key for key in rare if key[0] < before[0]][:4]
    )


def test_the_async_saver_lists_every_thread_too(db_url: str) -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        async with AsyncAgentStateSaver.from_conn_string(db_url) as asaver:
            for n in range(PAGE + 20):
                await asaver.aput(thread(f"a{n % 3}"), empty_checkpoint(), {"n": n % 4}, {})
            everything = [t async for t in asaver.alist(None)]
            filtered = [t async for t in asaver.alist(None, filter={"n": 2}, limit=10)]
            from_thread = await asyncio.to_thread(lambda: keys(asaver.list(None, filter={"n": 2}, limit=10)))
            assert from_thread == keys(filtered)
            return everything, filtered

    everything, filtered = asyncio.run(main())
    assert len(everything) == PAGE + 20 and keys(everything) == sorted(keys(everything), reverse=True)
    assert keys(filtered) == [k for k, t in zip(keys(everything), everything, strict=True) if t.metadata["n"] == 2][:10]


def test_metadata_is_stored_as_sqlite_saver_stores_it(saver: AgentStateSaver) -> None:
    """LangGraph's PostgresSaver drops the metadata key ``writes``; SqliteSaver keeps it, so do we."""
    config = {**thread("m", __private="no", user="ada"), "metadata": {"run_id": "run-1"}}
    metadata = {"source": "loop", "step": 1, "writes": {"node": {"foo": "bar"}}, "score": None}
    stored = saver.get_tuple(saver.put(config, empty_checkpoint(), metadata, {}))
    assert stored is not None and stored.metadata == {**metadata, "user": "ada", "run_id": "run-1"}
    assert len(list(saver.list(None, filter={"writes": {"node": {"foo": "bar"}}}))) == 1
    assert len(list(saver.list(None, filter={"writes.node.foo": "bar", "score": None}))) == 1


# --- the delta-channel history ----------------------------------------------------------------


def extend(state: list[str] | None, batches: Any) -> list[str]:
    return [*(state or []), *(item for batch in batches for item in batch)]


class Log(TypedDict):
    log: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=4)]
    other: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=3)]


def delta_graph() -> Any:
    builder = StateGraph(Log)
    builder.add_node("reply", lambda state: {"log": [f"reply {len(state['log'])}"], "other": ["x"]})
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder


def run_turns(saver: Any, thread_id: str, turns: range) -> Any:
    graph = delta_graph().compile(checkpointer=saver)
    for turn in turns:
        graph.invoke(
            {"log": [f"turn {turn}"]}, {**thread(thread_id), "metadata": {"run_id": f"{thread_id}-run-{turn}"}}
        )
    return graph


def expected_log(turns: int) -> list[str]:
    return [text for turn in range(turns) for text in (f"turn {turn}", f"reply {2 * turn + 1}")]


def history(saver: Any, config: Any) -> Any:
    return saver.get_delta_channel_history(config=config, channels=["log", "other", "absent"])


def count(saver: AgentStateSaver, thread_id: str) -> int:
    return int(scalar(saver.conn, "SELECT count(*) FROM langgraph_checkpoints WHERE thread_id = ?", (thread_id,)))


def test_the_history_is_langgraphs_own_walk_one_query_per_channel(
    saver: AgentStateSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_turns(saver, "d", range(6))
    names: list[str] = []
    run = _langgraph_history.run
    monkeypatch.setattr(
        _langgraph_history, "run", lambda conn, name, params: names.append(name) or run(conn, name, params)
    )
    for config in [t.config for t in saver.list(thread("d"))] + [thread("d"), thread("missing")]:
        names.clear()
        assert history(saver, config) == BaseCheckpointSaver.get_delta_channel_history(
            saver, config=config, channels=["log", "other", "absent"]
        )
        assert names == ["langgraph.channel_history"] * 3
    assert saver.get_delta_channel_history(config=thread("d"), channels=[]) == {}


def test_rows_stored_before_the_migration_are_read_from_their_blobs(saver: AgentStateSaver) -> None:
    """0005's rows have no channels/replays: the walk reads their blobs and goes on past them."""
    run_turns(saver, "old", range(5))
    configs = [t.config for t in saver.list(thread("old"))]
    before = [history(saver, config) for config in configs]
    rows(saver.conn, "UPDATE langgraph_checkpoints SET channels = NULL, replays = NULL")
    assert [history(saver, config) for config in configs] == before
    state = delta_graph().compile(checkpointer=saver).get_state(thread("old")).values
    saver.prune(["old"], strategy="keep_latest")
    assert (
        delta_graph().compile(checkpointer=saver).get_state(thread("old")).values
        == state
        == {"log": expected_log(5), "other": ["x"] * 5}
    )


def test_prune_keeps_the_ancestors_a_delta_channel_replays(saver: AgentStateSaver) -> None:
    """Failed before: keep_latest kept the newest checkpoint alone, so its DeltaChannels came
    back empty (LangGraph raises nothing: the walk finds no seed)."""
    graph = run_turns(saver, "p", range(7))
    state = graph.get_state(thread("p")).values
    assert state == {"log": expected_log(7), "other": ["x"] * 7}
    run_turns(saver, "plain", range(1))
    before = history(saver, thread("p"))
    total = count(saver, "p")
    saver.prune(["p"], strategy="keep_latest")
    assert history(saver, thread("p")) == before
    assert delta_graph().compile(checkpointer=saver).get_state(thread("p")).values == state
    assert 1 < count(saver, "p") < total  # the history back to each channel's snapshot, not all
    graph = run_turns(saver, "p", range(7, 8))  # and the thread goes on
    assert graph.get_state(thread("p")).values == {"log": expected_log(8), "other": ["x"] * 8}


def test_delete_for_runs_keeps_what_a_checkpoint_left_behind_replays(saver: AgentStateSaver) -> None:
    """Failed before: deleting the first turns' runs took the snapshots and writes the later
    turns' checkpoints replay."""
    run_turns(saver, "r", range(6))
    state = delta_graph().compile(checkpointer=saver).get_state(thread("r")).values
    configs = [t.config for t in saver.list(thread("r")) if not t.metadata["run_id"].endswith(("-0", "-1", "-2"))]
    before = [history(saver, config) for config in configs]
    total = count(saver, "r")
    saver.delete_for_runs([f"r-run-{turn}" for turn in range(3)])
    assert [history(saver, config) for config in configs] == before
    assert delta_graph().compile(checkpointer=saver).get_state(thread("r")).values == state
    assert count(saver, "r") < total  # what nothing replays went
    saver.delete_for_runs([f"r-run-{turn}" for turn in range(6)])
    assert count(saver, "r") == 0


def test_a_copied_thread_has_the_same_history(saver: AgentStateSaver) -> None:
    run_turns(saver, "src", range(5))
    saver.copy_thread("src", "dst")
    for config in [t.config for t in saver.list(thread("src"))]:
        copy = {"configurable": {**config["configurable"], "thread_id": "dst"}}
        assert history(saver, copy) == history(saver, config)
    assert delta_graph().compile(checkpointer=saver).get_state(thread("dst")).values == {
        "log": expected_log(5),
        "other": ["x"] * 5,
    }


def test_the_async_saver_reads_and_keeps_the_same_history(db_url: str) -> None:
    async def main() -> None:
        async with AsyncAgentStateSaver.from_conn_string(db_url) as asaver:
            graph = delta_graph().compile(checkpointer=asaver)
            for turn in range(6):
                await graph.ainvoke({"log": [f"turn {turn}"]}, thread("a"))
            configs = [t.config async for t in asaver.alist(thread("a"))]
            ours = [await asaver.aget_delta_channel_history(config=c, channels=["log", "other"]) for c in configs]
            assert ours == [
                await BaseCheckpointSaver.aget_delta_channel_history(asaver, config=c, channels=["log", "other"])
                for c in configs
            ]
            assert ours[0] == await asyncio.to_thread(
                lambda: asaver.get_delta_channel_history(config=configs[0], channels=["log", "other"])
            )
            await asaver.aprune(["a"])
            assert (await graph.aget_state(thread("a"))).values == {"log": expected_log(6), "other": ["x"] * 6}

    asyncio.run(main())


def test_ids_are_any_text(saver: AgentStateSaver) -> None:
    """Thread ids and channel names are bound, never spliced: quotes and JSON-path characters are data."""
    name = "t'\"$.[0]"
    config = saver.put(thread(name), {**empty_checkpoint(), "channel_values": {'c"h': 1}}, {}, {})
    child = saver.put(config, empty_checkpoint(), {"counters_since_delta_snapshot": {'c"h': [1, 1]}}, {})
    saver.put_writes(child, [('c"h', 2)], str(uuid.uuid4()))
    child2 = saver.put(
        child,
        {**empty_checkpoint(), "channel_versions": {'c"h': 2}},
        {"counters_since_delta_snapshot": {'c"h': [2, 2]}},
        {},
    )
    assert saver.get_delta_channel_history(config=child2, channels=['c"h'])['c"h']["seed"] == 1
    saver.prune([name])
    assert saver.get_delta_channel_history(config=child2, channels=['c"h'])['c"h']["seed"] == 1
