"""The OpenAI Agents SDK session: each promise of the SDK's own sessions (order, limits, an
all-or-nothing add, an atomic pop, isolation, cancellation, many processes appending at once),
agentstate's storage of the items, the three kinds of connection it runs on, and two turns of
``Runner.run`` on the SDK's scripted model."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, cast

import pytest

# The openai-agents extra. Imported here so that a CI without it fails on collection, loudly.
from agents import Agent, RunConfig, RunContextWrapper, Runner, SessionSettings, SQLiteSession, TResponseInputItem
from agents.memory import SessionABC
from agents.testing import ScriptedModel, assistant_message

import agentstate
from agentstate import errors
from agentstate.agents import Agents
from agentstate.integrations.openai_agents import AgentStateSession
from agentstate.messages import MessageLog

Items = list[TResponseInputItem]


def user(text: str) -> TResponseInputItem:
    return cast(TResponseInputItem, {"role": "user", "content": text})


def items_of(*texts: str) -> Items:
    return [user(text) for text in texts]


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())  # type: ignore[arg-type]


def stored(path: Path, session_id: str) -> list[tuple[int, str, Any, Any]]:
    """(position, role, content decoded from JSON, metadata) of every message of the session's
    conversation, read through another connection."""
    conn = agentstate.connect(path)
    try:
        log = MessageLog(conn)
        return [(m.position, m.role, json.loads(m.content), m.metadata) for m in log.all("router", session_id)]
    finally:
        conn.close()


# Items of every kind the SDK stores, with unicode, nesting, numbers of every JSON type, and
# text that looks like SQL.
VARIED: Items = cast(
    Items,
    [
        {"role": "user", "content": "こんにちは 😊👍 Привет"},
        {"role": "system", "content": "Robert'); DROP TABLE router_messages;--"},
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello, ", "annotations": [], "logprobs": []},
                {"type": "output_text", "text": "Ada.", "annotations": [{"type": "url_citation", "start": 0}]},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Zürich"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21.5°C"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "think"}],
            "encrypted_content": None,
        },
        {
            "z": [1, -0.0, 1.5e300, 2**70, True, False, None, "", {"": {"nested": [[[]], {}]}}],
            "a": "key order is kept",
            "type": "x" * 65,  # too long for a role: stored under the role "item"
        },
        {"role": "user", "content": [{"type": "input_text", "text": '\u0000 and \t and \\ and "'}]},
    ],
)


# --- storage and order --------------------------------------------------------------------------


def test_items_come_back_exactly_in_order_and_are_the_conversations_messages(db_path: Path) -> None:
    async def main() -> Items:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(VARIED[:3])
            await session.add_items(VARIED[3:])
            return await session.get_items()

    got = run(main)
    assert got == VARIED
    assert json.dumps(got) == json.dumps(VARIED)  # key order too
    rows = stored(db_path, "conv-1")
    assert [row[0] for row in rows] == list(range(1, len(VARIED) + 1))
    assert [row[1] for row in rows] == [
        "user",
        "system",
        "assistant",
        "function_call",
        "function_call_output",
        "reasoning",
        "item",
        "user",
    ]
    assert [row[2] for row in rows] == VARIED  # the item, as JSON, is the message's content
    assert all(row[3] == {} for row in rows)  # and the metadata is empty


def test_a_conversation_made_beforehand_is_used_as_it_is(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    try:
        Agents(conn).create_conversation("conv-1", metadata={"user": "ada"})

        async def main() -> Items:
            async with AgentStateSession("conv-1", db_path) as session:
                await session.add_items(items_of("hi"))
                return await session.get_items()

        assert run(main) == items_of("hi")
        assert Agents(conn).get_conversation("conv-1").metadata == {"user": "ada"}
    finally:
        conn.close()


def test_reading_a_new_session_creates_nothing(db_path: Path) -> None:
    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            assert await session.get_items() == []
            assert await session.get_items(limit=5) == []
            assert await session.pop_item() is None
            await session.clear_session()

    run(main)
    conn = agentstate.connect(db_path)
    try:
        with pytest.raises(errors.NotFoundError):
            Agents(conn).get_conversation("conv-1")
    finally:
        conn.close()


# --- limits -------------------------------------------------------------------------------------


def test_limit_is_the_latest_n_oldest_first_and_none_falls_back_to_the_settings(db_path: Path) -> None:
    texts = [f"m{n}" for n in range(1, 8)]

    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(items_of(*texts))
            assert await session.get_items() == items_of(*texts)
            assert await session.get_items(limit=3) == items_of("m5", "m6", "m7")
            assert await session.get_items(limit=1) == items_of("m7")
            assert await session.get_items(limit=100) == items_of(*texts)
            assert await session.get_items(limit=0) == []
            with pytest.raises(errors.InvalidValueError):
                await session.get_items(limit=-1)
            with pytest.raises(errors.InvalidTypeError):
                await session.get_items(limit="2")  # type: ignore[arg-type]

        for settings in (SessionSettings(limit=2), {"limit": 2}):
            async with AgentStateSession("conv-1", db_path, session_settings=settings) as session:
                assert session.session_settings == SessionSettings(limit=2)
                assert await session.get_items() == items_of("m6", "m7")  # None: the settings' limit
                assert await session.get_items(limit=4) == items_of("m4", "m5", "m6", "m7")  # explicit wins
                assert await session.get_items(limit=0) == []
        async with AgentStateSession("conv-1", db_path, session_settings=SessionSettings(limit=0)) as session:
            assert await session.get_items() == []
        async with AgentStateSession("conv-1", db_path) as session:
            assert session.session_settings == SessionSettings()  # as the SDK's sessions default it

    run(main)


def test_a_long_session_reads_its_latest_items_in_pages(db_path: Path) -> None:
    count = 2500  # more than one page of MessageLog.all

    async def main() -> None:
        async with AgentStateSession("long", db_path) as session:
            await session.add_items(items_of(*(str(n) for n in range(count))))
            everything = await session.get_items()
            assert everything == items_of(*(str(n) for n in range(count)))
            assert await session.get_items(limit=50) == everything[-50:]

    run(main)


# --- add_items: all or nothing ------------------------------------------------------------------


class Opaque:
    pass


BAD_ITEMS: list[tuple[str, Any, type[errors.AgentStateError]]] = [
    ("not a dict", "hello", errors.InvalidTypeError),
    ("a list", [{"role": "user"}], errors.InvalidTypeError),
    ("an object", {"role": "user", "content": Opaque()}, errors.InvalidValueError),
    ("a set", {"role": "user", "content": {"a"}}, errors.InvalidValueError),
    ("NaN", {"role": "user", "score": float("nan")}, errors.InvalidValueError),
    ("infinity", {"role": "user", "score": float("inf")}, errors.InvalidValueError),
    ("a tuple", {"role": "user", "content": ("a", "b")}, errors.InvalidValueError),
    ("an int key", {"role": "user", "content": {1: "a"}}, errors.InvalidValueError),
    ("a lone surrogate", {"role": "user", "content": "\udc80"}, errors.InvalidValueError),
    ("bytes", {"role": "user", "content": b"hi"}, errors.InvalidValueError),
]


@pytest.mark.parametrize(("name", "bad", "error"), BAD_ITEMS, ids=[case[0] for case in BAD_ITEMS])
def test_a_batch_with_one_bad_item_stores_nothing(
    db_path: Path, name: str, bad: Any, error: type[errors.AgentStateError]
) -> None:
    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(items_of("before"))
            with pytest.raises(error, match="^item 1 "):  # the bad item named by its index
                await session.add_items([user("a"), bad, user("b")])
            assert await session.get_items() == items_of("before")

    run(main)


def test_a_batch_the_database_refuses_half_way_is_rolled_back_whole(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    try:
        conn.execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON router_messages "
            "WHEN json_extract(NEW.content, '$.content') = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
        )

        async def main() -> None:
            async with AgentStateSession("conv-1", db_path) as session:
                await session.add_items(items_of("before"))
                with pytest.raises(errors.IntegrityError):
                    await session.add_items(items_of("a", "b", "boom", "c"))
                assert await session.get_items() == items_of("before")

        run(main)
        assert [row[2] for row in stored(db_path, "conv-1")] == items_of("before")
    finally:
        conn.execute("DROP TRIGGER refuse_boom")
        conn.close()


def test_bad_arguments_raise_agentstate_errors(db_path: Path) -> None:
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSession(42)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidValueError):
        AgentStateSession("")
    with pytest.raises(errors.InvalidValueError):
        AgentStateSession("x" * 129, db_path)
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSession("s", 3.5)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidValueError):
        AgentStateSession("s", db_path.parent)  # a directory
    with pytest.raises(errors.InvalidValueError):
        AgentStateSession("s", db_path, session_settings={"limit": "many"})
    with pytest.raises(errors.InvalidValueError):
        AgentStateSession("s", db_path, session_settings={"size": 3})
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSession("s", db_path, session_settings=5)  # type: ignore[arg-type]

    async def main() -> None:
        async with AgentStateSession("s", db_path) as session:
            with pytest.raises(errors.InvalidTypeError):
                await session.add_items(user("not in a list"))  # type: ignore[arg-type]
            with pytest.raises(errors.InvalidTypeError):
                await session.add_items(None)  # type: ignore[arg-type]
            await session.add_items([])  # nothing to do
            assert await session.get_items() == []

    run(main)


# --- pop_item -----------------------------------------------------------------------------------


def test_pop_item_returns_the_newest_item_then_none(db_path: Path) -> None:
    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(VARIED[:3])
            assert await session.pop_item() == VARIED[2]
            assert await session.get_items() == VARIED[:2]
            assert await session.pop_item() == VARIED[1]
            assert await session.pop_item() == VARIED[0]
            assert await session.pop_item() is None
            await session.add_items(items_of("after"))
            assert await session.get_items() == items_of("after")

    run(main)
    assert [row[0] for row in stored(db_path, "conv-1")] == [4]  # a popped position is never reused


def test_sessions_popping_at_once_never_get_the_same_item(db_path: Path) -> None:
    count = 60
    texts = [f"m{n}" for n in range(count)]

    async def main() -> list[Any]:
        sessions = [AgentStateSession("conv-1", db_path) for _ in range(3)]  # a connection each
        try:
            await sessions[0].add_items(items_of(*texts))

            async def drain(session: AgentStateSession) -> list[Any]:
                popped = []
                while (item := await session.pop_item()) is not None:
                    popped.append(item)
                return popped

            return await asyncio.gather(*(drain(s) for s in sessions))
        finally:
            for session in sessions:
                await session.aclose()

    results = run(main)
    everything = [item["content"] for popped in results for item in popped]
    assert sorted(everything) == sorted(texts)  # each exactly once
    for popped in results:  # each popper took newer items before older ones
        positions = [texts.index(item["content"]) for item in popped]
        assert positions == sorted(positions, reverse=True)
    assert stored(db_path, "conv-1") == []


# --- isolation and clear_session ----------------------------------------------------------------


def test_sessions_with_different_ids_never_see_each_other(db_path: Path) -> None:
    async def main() -> None:
        async with AgentStateSession("a", db_path) as a, AgentStateSession("b", db_path) as b:
            await a.add_items(items_of("a1", "a2"))
            await b.add_items(items_of("b1"))
            assert await a.get_items() == items_of("a1", "a2")
            assert await b.get_items() == items_of("b1")
            assert await b.pop_item() == user("b1")
            assert await b.pop_item() is None
            assert await a.get_items() == items_of("a1", "a2")
            await b.add_items(items_of("b2"))
            await a.clear_session()
            assert await a.get_items() == []
            assert await b.get_items() == items_of("b2")

    run(main)


def test_clear_session_deletes_the_items_and_keeps_the_conversation(db_path: Path) -> None:
    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(items_of("a", "b", "c"))
            await session.clear_session()
            assert await session.get_items() == []
            assert await session.pop_item() is None
            await session.clear_session()  # again: nothing to do
            await session.add_items(items_of("d"))
            assert await session.get_items() == items_of("d")

    run(main)
    assert [row[0] for row in stored(db_path, "conv-1")] == [4]  # positions go on, never reused
    conn = agentstate.connect(db_path)
    try:
        assert Agents(conn).get_conversation("conv-1").id == "conv-1"
    finally:
        conn.close()


# --- cancellation -------------------------------------------------------------------------------


@pytest.fixture(params=["path", "async connection", "sync connection"])
def make_session(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Callable[[], Awaitable[AgentStateSession]]]:
    """A factory of sessions on ``db_path`` (called inside the event loop), each kind of
    connection; connections it opened are closed afterwards."""
    kind = request.param
    opened: list[Any] = []

    async def make() -> AgentStateSession:
        if kind == "path":
            return AgentStateSession("conv-1", db_path)
        if kind == "async connection":
            aconn = await agentstate.connect_async(db_path)
            opened.append(aconn)
            return AgentStateSession("conv-1", aconn)
        conn = agentstate.connect(db_path)
        opened.append(conn)
        return AgentStateSession("conv-1", conn)

    yield make
    for conn in opened:
        conn.close()


@pytest.mark.parametrize("operation", ["add", "pop", "clear"])
def test_a_cancelled_mutation_settles_before_the_cancellation_is_raised(
    make_session: Callable[[], Awaitable[AgentStateSession]], db_path: Path, operation: str
) -> None:
    async def main() -> None:
        session = await make_session()
        try:
            await session.add_items(items_of("first"))
            blocker = agentstate.connect(db_path)
            try:
                blocker.execute("BEGIN IMMEDIATE")  # hold the write lock: the mutation must wait for it
                if operation == "add":
                    mutation: asyncio.Future[Any] = asyncio.ensure_future(session.add_items(items_of("second")))
                elif operation == "pop":
                    mutation = asyncio.ensure_future(session.pop_item())
                else:
                    mutation = asyncio.ensure_future(session.clear_session())
                await asyncio.sleep(0.1)  # the event loop runs while the mutation waits for the lock
                mutation.cancel()
                await asyncio.sleep(0)
                mutation.cancel()  # twice, as the SDK's own test does
                await asyncio.sleep(0.1)
                assert not mutation.done()  # still waiting for the lock: not yet known, not yet raised
                blocker.execute("COMMIT")
                with pytest.raises(asyncio.CancelledError):
                    await mutation
                # Once CancelledError arrives, the write has finished: another connection sees it.
                expected = {"add": ["first", "second"], "pop": [], "clear": []}[operation]
                assert [row[2]["content"] for row in stored(db_path, "conv-1")] == expected
                assert await session.get_items() == items_of(*expected)
            finally:
                blocker.close()
        finally:
            await session.aclose()

    run(main)


# --- connections ----------------------------------------------------------------------------------


def test_every_kind_of_connection_serves_the_protocol(
    make_session: Callable[[], Awaitable[AgentStateSession]],
) -> None:
    async def main() -> None:
        session = await make_session()
        async with session:
            assert isinstance(session, SessionABC)
            await session.add_items(VARIED)
            assert await session.get_items(limit=2) == VARIED[-2:]
            assert await session.pop_item() == VARIED[-1]
            # Many tasks of one session at once: the connection takes their calls in turn.
            await asyncio.gather(*(session.add_items(items_of(f"t{n}-0", f"t{n}-1")) for n in range(20)))
            texts = [item.get("content") for item in await session.get_items()]
            for n in range(20):
                assert texts.index(f"t{n}-0") + 1 == texts.index(f"t{n}-1")
            await session.clear_session()
            assert await session.get_items() == []

    run(main)


def test_calls_run_on_the_event_loop_thread_only_where_the_connection_allows(db_path: Path) -> None:
    """On an async connection, short reads and single-transaction writes run on the event loop's
    thread (no thread hop; a write only when the lock is free at once: see
    agentstate.async_calls.write_call); with inline_reads=False and inline_writes=False, or on a sync
    connection, nothing does."""
    calls: list[tuple[int, str]] = []

    def on_query(name: str, seconds: float, rows: int) -> None:
        calls.append((threading.get_ident(), name))

    async def main() -> None:
        loop_thread = threading.get_ident()
        for conn, inline in (
            (await agentstate.connect_async(db_path, on_query=on_query), True),
            (await agentstate.connect_async(db_path, on_query=on_query, inline_reads=False, inline_writes=False), False),
            (agentstate.connect(db_path, on_query=on_query), False),
        ):
            calls.clear()
            try:
                async with AgentStateSession("conv-1", conn) as session:
                    await session.add_items(items_of("a", "b"))
                    await session.get_items()
                    await session.get_items(limit=1)
                    await session.pop_item()
                    await session.clear_session()
                    assert await session.get_items() == []
            finally:
                conn.close()
            here = {name for thread, name in calls if thread == loop_thread}
            assert calls
            if inline:
                assert {"messages.latest_router_messages", "messages.pop_last_router_messages"} <= here, here
                assert "messages.after_router_messages" not in here  # get_items() reads it all: the worker
            else:
                assert not here, here

    run(main)


def test_a_given_connection_stays_open_and_a_closed_session_refuses_calls(db_path: Path) -> None:
    async def main() -> None:
        aconn = await agentstate.connect_async(db_path)
        try:
            session = AgentStateSession("conv-1", aconn)
            await session.add_items(items_of("a"))
            await session.aclose()
            with pytest.raises(errors.AgentStateError, match="closed"):
                await session.get_items()
            assert await AgentStateSession("conv-1", aconn).get_items() == items_of("a")  # still open
        finally:
            await aconn.aclose()

        session = AgentStateSession("conv-1", db_path)
        assert await session.get_items() == items_of("a")
        session.close()  # the synchronous close, from async code
        with pytest.raises(errors.AgentStateError, match="closed"):
            await session.add_items(items_of("b"))

    run(main)
    with AgentStateSession("conv-1", db_path) as session:  # never used: nothing opened
        assert session.db_path == str(db_path)


def test_a_given_async_connection_refuses_another_event_loop(db_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        aconn = loop.run_until_complete(agentstate.connect_async(db_path))
        session = AgentStateSession("conv-1", aconn)

        async def elsewhere() -> None:
            with pytest.raises(errors.InvalidValueError, match="another event loop"):
                await session.get_items()

        asyncio.run(elsewhere())
        assert loop.run_until_complete(session.get_items()) == []
        loop.run_until_complete(aconn.aclose())
    finally:
        loop.close()


def test_a_connection_closed_under_the_session_raises_agentstate_errors(db_path: Path) -> None:
    async def main() -> None:
        aconn = await agentstate.connect_async(db_path)
        conn = agentstate.connect(db_path)
        sessions = [AgentStateSession("conv-1", aconn), AgentStateSession("conv-1", conn)]
        await aconn.aclose()
        conn.close()
        for session in sessions:
            with pytest.raises(errors.AgentStateError):
                await session.get_items()
            with pytest.raises(errors.AgentStateError):
                await session.add_items(items_of("x"))
            with pytest.raises(errors.AgentStateError):
                await session.pop_item()
            with pytest.raises(errors.AgentStateError):
                await session.clear_session()
        with pytest.raises(errors.AgentStateError):
            AgentStateSession("conv-1", conn)

    run(main)


def test_connections_of_the_wrong_kind_are_refused(db_path: Path) -> None:
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSession("s", object())  # type: ignore[arg-type]


def test_a_path_session_serves_each_event_loop_it_runs_on(db_path: Path) -> None:
    """asyncio.run() twice, and several threads each running its own loop, on one session."""
    session = AgentStateSession("conv-1", db_path)
    try:

        async def add(text: str) -> None:
            await session.add_items(items_of(text))

        asyncio.run(add("first run"))
        asyncio.run(add("second run"))  # the first loop is closed: a new connection serves this one
        workers = [threading.Thread(target=asyncio.run, args=(add(f"thread {n}"),)) for n in range(5)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        texts = [item.get("content") for item in asyncio.run(session.get_items())]
        assert texts[:2] == ["first run", "second run"]
        assert sorted(texts[2:]) == [f"thread {n}" for n in range(5)]
    finally:
        session.close()


def test_every_method_takes_the_sdks_wrapper_keyword(db_path: Path) -> None:
    wrapper: RunContextWrapper[Any] = RunContextWrapper(context={"tenant": "t1"})

    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(items_of("a", "b"), wrapper=wrapper)
            assert await session.get_items(wrapper=wrapper) == items_of("a", "b")
            assert await session.get_items(1, wrapper=wrapper) == items_of("b")
            assert await session.pop_item(wrapper=wrapper) == user("b")
            await session.clear_session(wrapper=wrapper)
            assert await session.get_items(wrapper=None) == []

    run(main)


# --- many processes -------------------------------------------------------------------------------

PROCESSES = 4
TURNS = 100


def append_turns(path: str, worker: int, start: Barrier) -> None:
    """In a child process: its own session on the shared id, appending turns of one to three items."""

    async def main() -> None:
        async with AgentStateSession("shared", path) as session:
            await session.get_items(limit=1)  # open the connection first
            start.wait()  # every process ready: append at the same moment
            for turn in range(TURNS):
                size = 1 + turn % 3
                await session.add_items([user(f"w{worker}-{turn}-{i}") for i in range(size)])

    asyncio.run(main())


@pytest.mark.slow
def test_processes_appending_to_one_session_lose_nothing_and_keep_their_order(db_path: Path) -> None:
    agentstate.connect(db_path).close()  # migrate once; the children race to create the conversation
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    children = [context.Process(target=append_turns, args=(str(db_path), w, start)) for w in range(PROCESSES)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0

    async def read() -> list[str]:
        async with AgentStateSession("shared", db_path) as session:
            return [cast(str, item.get("content")) for item in await session.get_items()]

    texts = run(read)
    for worker in range(PROCESSES):
        expected = [f"w{worker}-{turn}-{i}" for turn in range(TURNS) for i in range(1 + turn % 3)]
        assert [text for text in texts if text.startswith(f"w{worker}-")] == expected  # all, in order
    assert len(texts) == len(set(texts)) == PROCESSES * sum(1 + turn % 3 for turn in range(TURNS))
    for turn_start in range(len(texts)):  # a turn's items are stored together, never interleaved
        worker, turn, i = texts[turn_start].split("-")
        if i == "0":
            size = 1 + int(turn) % 3
            assert texts[turn_start : turn_start + size] == [f"{worker}-{turn}-{n}" for n in range(size)]


# --- the SDK's Runner --------------------------------------------------------------------------------


def test_a_second_runner_turn_sees_the_first_turns_history(db_path: Path) -> None:
    """Two turns of Runner.run, each in its own asyncio.run, on the SDK's scripted model: the
    model's second call gets the first turn (question and answer) before the new question."""
    model = ScriptedModel(
        [[assistant_message("Hello Ada", item_id="m1")], [assistant_message("You are Ada", item_id="m2")]]
    )
    agent = Agent(name="assistant", model=model)
    config = RunConfig(tracing_disabled=True)
    session = AgentStateSession("conv-1", db_path)
    try:
        first = asyncio.run(Runner.run(agent, "I am Ada", session=session, run_config=config))
        second = asyncio.run(Runner.run(agent, "Who am I?", session=session, run_config=config))
        history = asyncio.run(session.get_items())
    finally:
        session.close()
    model.assert_complete()
    assert (first.final_output, second.final_output) == ("Hello Ada", "You are Ada")
    first_call, second_call = model.calls
    assert first_call.input == [user("I am Ada")]
    seen = second_call.input
    assert isinstance(seen, list) and len(seen) == 3
    assert seen[0] == user("I am Ada")
    assert seen[1]["role"] == "assistant" and seen[1]["content"][0]["text"] == "Hello Ada"
    assert seen[2] == user("Who am I?")
    assert [item.get("role") for item in history] == ["user", "assistant", "user", "assistant"]
    rows = stored(db_path, "conv-1")
    assert [row[2] for row in rows] == history  # the conversation holds the items, in order


def test_the_runners_session_settings_limit_the_history_it_reads(db_path: Path) -> None:
    model = ScriptedModel([[assistant_message(f"reply {n}", item_id=f"m{n}")] for n in range(3)])
    agent = Agent(name="assistant", model=model)

    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await Runner.run(agent, "one", session=session, run_config=RunConfig(tracing_disabled=True))
            await Runner.run(agent, "two", session=session, run_config=RunConfig(tracing_disabled=True))
            limited = RunConfig(tracing_disabled=True, session_settings=SessionSettings(limit=2))
            await Runner.run(agent, "three", session=session, run_config=limited)

    run(main)
    last = model.calls[-1].input
    assert isinstance(last, list) and len(last) == 3  # the latest two items, then the new input
    assert last[0] == user("two") and last[2] == user("three")


def test_a_message_that_is_not_an_item_is_named_when_read(db_path: Path) -> None:
    """The stream is the session's: a message other code appended whose content is not an item
    (plain text, or JSON that is not an object) is refused by name, not returned mangled."""

    async def main() -> None:
        async with AgentStateSession("conv-1", db_path) as session:
            await session.add_items(items_of("one"))
            conn = agentstate.connect(db_path)
            try:
                MessageLog(conn).append("router", "conv-1", role="user", content="1],[2")
            finally:
                conn.close()
            with pytest.raises(errors.InvalidValueError, match="message 2 of conversation 'conv-1' is not an SDK item"):
                await session.get_items()

    run(main)


# --- a file the SDK's own SQLiteSession wrote ---------------------------------------------------


def test_a_file_holding_an_sqlitesession_history_is_named_not_silently_empty(
    make_session: Callable[[], Awaitable[AgentStateSession]], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pointing the session at the file SQLiteSession used keeps none of its history (a session
    is an agentstate conversation): the first call logs a warning that says so, with the count
    and how to copy it; once the conversation has items, or for another id, there is none."""

    async def write_sdk_history() -> None:
        old = SQLiteSession("conv-1", str(db_path))
        try:
            await old.add_items(items_of("from the SDK", "its answer"))
        finally:
            old.close()

    async def main() -> None:
        await write_sdk_history()
        with caplog.at_level("WARNING", logger="agentstate"):
            session = await make_session()
            async with session:
                assert await session.get_items() == []
                assert await session.get_items() == []  # warned once per session, not per call
                warned = [r.getMessage() for r in caplog.records if "SQLiteSession" in r.getMessage()]
                assert len(warned) == 1, warned
                assert "2 item(s)" in warned[0] and "agent_messages" in warned[0] and "'conv-1'" in warned[0]
                assert "not carried over" in warned[0] and "add_items" in warned[0]
                await session.add_items(items_of("new"))
            caplog.clear()
            again = await make_session()
            async with again:
                assert await again.get_items() == items_of("new")
            other = AgentStateSession("conv-2", db_path)
            async with other:
                assert await other.get_items() == []
        assert not [r for r in caplog.records if "SQLiteSession" in r.getMessage()]

    run(main)


# --- the error classes the SDK's own tests expect (tests/memory/test_session.py, 0.24.0) --------


def test_a_closed_sessions_empty_add_raises_what_the_sdk_expects(db_path: Path) -> None:
    """SDK: test_sqlite_session_closed_rejects_empty_add_items (RuntimeError), still an AgentStateError."""
    session = AgentStateSession("closed", db_path)
    session.close()
    for call in (session.add_items([]), session.get_items()):
        with pytest.raises(RuntimeError, match="is closed") as caught:
            run(lambda call=call: call)
        assert isinstance(caught.value, errors.AgentStateError)


def test_an_unknown_settings_field_raises_what_the_sdk_expects(db_path: Path) -> None:
    """SDK: test_session_settings_rejects_unknown_dictionary_fields (TypeError naming the field)."""
    with pytest.raises(TypeError, match="Unknown session settings: limitt") as caught:
        AgentStateSession("bad-settings", db_path, session_settings={"limitt": 1})
    assert isinstance(caught.value, errors.AgentStateError)
    with pytest.raises(ValueError) as invalid:  # a value of the wrong kind stays a ValueError
        AgentStateSession("bad-settings", db_path, session_settings={"limit": "x"})
    assert isinstance(invalid.value, errors.InvalidValueError)
