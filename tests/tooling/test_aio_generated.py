"""agentstate/aio.py is generated from the synchronous classes: it must match what the generator
writes today, so a method added or changed on the sync side cannot be missing on the async side;
and the Async classes must answer as the sync ones do, on a connect_async() handle to either
engine (SQLite's worker thread, PostgreSQL's thread pool)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import inspect
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agentstate
from agentstate import aio, errors
from agentstate.agents import Agents
from agentstate.messages import MessageLog, NewMessage
from agentstate.tasks import TaskManager
from tests import engines

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_async", ROOT / "scripts" / "gen_async.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_async"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_async_module_is_up_to_date() -> None:
    assert _generator().render() == (ROOT / "agentstate" / "aio.py").read_text(encoding="utf-8"), (
        "agentstate/aio.py is stale: run python scripts/gen_async.py"
    )


@pytest.mark.parametrize(
    ("sync", "async_"),
    [(TaskManager, aio.AsyncTaskManager), (MessageLog, aio.AsyncMessageLog), (Agents, aio.AsyncAgents)],
)
def test_every_public_method_has_an_awaitable_twin_with_the_same_signature(sync: type, async_: type) -> None:
    public = [name for name, _ in inspect.getmembers(sync, inspect.isfunction) if not name.startswith("_")]
    assert public
    for name in public:
        twin = getattr(async_, name)
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(getattr(sync, name)), name


def test_a_stale_module_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    stale = tmp_path / "aio.py"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1


# --- the Async classes run on either engine, and answer as the synchronous ones do ------------------

TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
PLANNER, ROUTER, CONV, OWNER = "planner-1", "router-1", "conv-1", "executor-1"
CLASSES = {"tm": TaskManager, "executor": TaskManager, "log": MessageLog, "agents": Agents}


def normal(value: Any) -> Any:
    """A result with its clock readings blanked (two databases never stamp the same times)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: normal(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__name__, fields)
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, str):
        return TIME.sub("<time>", value)
    return value


Call = Callable[..., Awaitable[Any]]


async def program(call: Call) -> None:
    """Every public method of the three classes at least once (errors included), each result fed
    to the calls after it as an application would."""
    await call("agents", "create_planner", PLANNER, metadata={"model": "small"})
    await call("agents", "create_planner", PLANNER)  # DuplicateError
    await call("agents", "create_planner", "planner-2", status="paused")
    await call("agents", "create_router", ROUTER)
    await call("agents", "create_router", "router-2")
    await call("agents", "create_conversation", CONV, metadata={"user": "ada"})
    await call("agents", "get_or_create_conversation", "conv-2", status="closed")
    await call("agents", "get_or_create_conversation", CONV)
    await call("agents", "link", ROUTER, PLANNER)
    await call("agents", "link", ROUTER, "no-such-planner")  # ForeignKeyError / NotFoundError
    await call("agents", "planners_of", ROUTER)
    await call("agents", "routers_of", PLANNER)
    await call("agents", "unlink", ROUTER, "planner-2")
    for kind, key in (("conversation", CONV), ("router", ROUTER), ("planner", PLANNER)):
        await call("agents", f"get_{kind}", key)
        await call("agents", f"update_{kind}", key, status="paused", metadata={"v": 2})
        await call("agents", f"get_{kind}", "no-such-id")  # NotFoundError
    first = await call("agents", "list_conversations", "paused", limit=1)
    await call("agents", "list_conversations", "paused", after=first[0])
    routers = await call("agents", "list_routers", "active", limit=1)
    await call("agents", "list_routers", "active", after=routers[0])
    await call("agents", "list_planners", "paused")
    await call("agents", "list_planners", "active", limit=0)  # InvalidValueError

    await call("tm", "create_task", "first", worker_id="w-1", acceptance_criteria=["short"], metadata={"p": 1})
    await call(
        "tm",
        "create_tasks",
        [
            {"description": "second", "worker_id": "w-2"},
            {"description": "third", "worker_id": "w-3", "max_attempts": 1},
            {"description": "fourth", "worker_id": "w-4", "task_context": {"doc": "a.pdf"}},
        ],
    )
    await call("tm", "create_task", "twice", worker_id="w-1")  # DuplicateError
    await call("tm", "get_task", "w-1")
    await call("tm", "get_current_task")
    pending = await call("tm", "list_tasks", "pending", limit=1)
    await call("tm", "list_tasks", "pending", after=pending[0])
    claim = await call("executor", "claim", OWNER, lease_seconds=60)  # w-1
    claim = await call("executor", "heartbeat", claim, lease_seconds=120)
    await call("executor", "heartbeat", "w-1", claim.token - 1)  # StaleTokenError
    nxt = await call("executor", "complete_and_claim_next", claim, result={"summary": "done"})  # w-2
    await call("executor", "release", nxt)
    batch = await call("executor", "claim_many", OWNER, 2)  # w-2, w-3
    await call("executor", "complete_many", [(batch[0], {"ok": True})])
    await call("executor", "fail_validation", batch[1], reason="too long")
    await call("tm", "retry", "w-3")  # RetryLimitError: its only attempt was used
    fourth = await call("executor", "claim", OWNER)
    await call("executor", "fail_validation", fourth, reason={"why": "wrong"})
    await call("tm", "get_completed_task")
    await call("tm", "wait_completed", 0.05)
    await call("tm", "wait_completed", -1)  # InvalidValueError
    await call("tm", "retry", "w-4")
    again = await call("executor", "claim", OWNER)
    await call("executor", "complete", again, result=[1, 2])
    await call("executor", "complete", again)  # done already
    await call("tm", "retry", "w-1")  # InvalidTransitionError: completed, not failed
    await call("tm", "record", "w-1")
    await call("tm", "counts")
    await call("tm", "history", "w-2")
    await call("tm", "create_task", "fifth", worker_id="w-5", priority=2, idempotency_key="k5")
    await call("tm", "create_task", "sixth", worker_id="w-6", depends_on=["w-5"], delay_seconds=30)
    await call("tm", "create_task", "other", idempotency_key="k5")  # IdempotencyConflictError
    await call("tm", "create_task", "loop", worker_id="w-7", depends_on=["w-7"])  # DependencyError
    await call("tm", "blocked")
    await call("tm", "cancel", "w-5", reason="not needed")  # and w-6, which waits on it
    await call("tm", "cancel", "w-5")  # InvalidTransitionError: cancelled already
    await call("tm", "create_task", "seventh", worker_id="w-8")
    await call("tm", "cancel_all", reason="the user gave up")
    await call("executor", "claim", OWNER, wait_seconds=0.05)  # nothing left to claim: None after 50 ms
    await asyncio.sleep(0.01)
    await call("tm", "purge_recorded", older_than_seconds=0.005)
    await call("tm", "purge_recorded", older_than_seconds=-1)  # InvalidValueError

    await call("log", "append", "router", CONV, role="user", content="hello", metadata={"n": 1}, idempotency_key="k1")
    await call("log", "append", "router", CONV, role="user", content="hello", metadata={"n": 1}, idempotency_key="k1")
    await call("log", "append", "router", "no-such-conv", role="user", content="lost")  # NotFoundError
    await call("log", "append_many", "planner", PLANNER, [NewMessage("user", "a"), NewMessage("assistant", "b", [1])])
    await call(
        "log", "append_bulk", "router", [(CONV, NewMessage("assistant", "hi")), ("conv-2", NewMessage("user", "x"))]
    )
    await call("log", "latest", "router", CONV, 1)
    await call("log", "before", "router", CONV, 2)
    await call("log", "after", "router", CONV, 0, limit=5)
    await call("log", "between", "router", CONV, since="2000-01-01T00:00:00.000000Z", limit=5)
    await call("log", "get", "router", CONV, 1)
    await call("log", "get", "router", CONV, 99)  # NotFoundError
    await call("log", "count", "planner", PLANNER)
    await call("log", "last_position", "router", CONV)
    await call("log", "all", "router", CONV, page_size=1)
    await call("log", "trim", "router", CONV, keep_last=1)
    await call("log", "trim", "router", CONV)  # InvalidValueError: neither before= nor keep_last=
    await call("log", "pop_last", "planner", PLANNER)
    await call("log", "clear", "router", "conv-2", delete_owner=True)

    await call("agents", "delete_conversation", CONV)
    await call("agents", "delete_router", "router-2")
    await call("agents", "delete_planner", "planner-2")
    await call("agents", "delete_planner", PLANNER)  # InUseError: it has tasks
    await call("agents", "delete_planner", PLANNER, with_tasks=True, batch_size=1)


Transcript = list[tuple[str, Any]]


async def transcribe(objects: dict[str, Any], awaited: bool) -> tuple[Transcript, set[tuple[str, str]]]:
    """Run the program on ``objects`` (sync or Async instances); what each call returned or
    raised, and which methods ran."""
    transcript: Transcript = []
    ran: set[tuple[str, str]] = set()

    async def call(target: str, method: str, *args: Any, **kwargs: Any) -> Any:
        ran.add((CLASSES[target].__name__, method))
        try:
            result = getattr(objects[target], method)(*args, **kwargs)
            if awaited:
                result = await result
        except errors.AgentStateError as exc:
            transcript.append((f"{target}.{method}", f"raised {type(exc).__name__}"))
            return None
        transcript.append((f"{target}.{method}", normal(result)))
        return result

    await program(call)
    return transcript, ran


@pytest.fixture(params=engines.ENGINES)
def twin_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, migrated databases on one engine: one for the sync classes, one for the Async."""
    if request.param == "sqlite":
        paths = (str(tmp_path / "sync.db"), str(tmp_path / "async.db"))
        for path in paths:
            agentstate.connect(path).close()
        yield paths
        return
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    names = [engines.fresh_database(server, template)[0] for _ in range(2)]
    try:
        yield server.url(names[0]), server.url(names[1])
    finally:
        for name in names:
            server.drop_database(name)


def objects_on(conn: Any, awaited: bool) -> dict[str, Any]:
    made = (
        (aio.AsyncTaskManager, aio.AsyncMessageLog, aio.AsyncAgents) if awaited else (TaskManager, MessageLog, Agents)
    )
    return {"tm": made[0](conn, PLANNER), "executor": made[0](conn), "log": made[1](conn), "agents": made[2](conn)}


def test_every_async_method_answers_as_its_sync_twin(twin_urls: tuple[str, str]) -> None:
    """The same program through the sync classes on one database and through the Async classes
    on a connect_async() handle to another: the same results (times aside) and the same errors,
    call by call; and the program calls every public method, so a new one cannot be left out."""
    sync_url, async_url = twin_urls

    async def both() -> tuple[Transcript, Transcript, set[tuple[str, str]]]:
        conn = agentstate.connect(sync_url)
        try:
            want, ran = await transcribe(objects_on(conn, awaited=False), awaited=False)
        finally:
            conn.close()
        aconn = await agentstate.connect_async(async_url)
        try:
            got, _ = await transcribe(objects_on(aconn, awaited=True), awaited=True)
        finally:
            await aconn.aclose()
        return want, got, ran

    want, got, ran = asyncio.run(both())
    public = {(cls.__name__, name) for cls in CLASSES.values() for name in _public(cls)}
    assert public <= ran, f"add calls of {sorted(public - ran)} to program()"
    raised = [outcome for _, outcome in want if isinstance(outcome, str) and outcome.startswith("raised")]
    assert len(raised) >= 10, f"the program's error calls did not fail: {want}"
    diffs = [f"{w[0]}: sync {w[1]!r}\n   async {g[1]!r}" for w, g in zip(want, got, strict=True) if w != g]
    assert not diffs, "the Async classes answered differently:\n" + "\n".join(diffs)


def _public(cls: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")]


def test_concurrent_awaits_on_one_async_handle(db_url: str) -> None:
    """Many coroutines on one connect_async() handle at once (on PostgreSQL, its thread pool and
    pooled connections): every append gets its own position, every task is claimed once."""

    async def go() -> tuple[list[int], list[str], list[int]]:
        conn = await agentstate.connect_async(db_url, pool_size=4)
        try:
            agents, log = aio.AsyncAgents(conn), aio.AsyncMessageLog(conn)
            tm, executor = aio.AsyncTaskManager(conn, PLANNER), aio.AsyncTaskManager(conn)
            await agents.create_planner(PLANNER)
            await agents.create_conversation(CONV)
            await tm.create_tasks([{"description": f"t{i}", "worker_id": f"w-{i}"} for i in range(8)])
            appended = await asyncio.gather(
                *(log.append("router", CONV, role="user", content=f"m{i}") for i in range(20))
            )
            claims = await asyncio.gather(*(executor.claim(f"executor-{i}") for i in range(12)))
            stored = await log.all("router", CONV)
            return (
                [m.position for m in appended],
                [c.worker_id for c in claims if c is not None],
                [m.position for m in stored],
            )
        finally:
            await conn.aclose()

    positions, claimed, stored = asyncio.run(go())
    assert sorted(positions) == list(range(1, 21)) == stored
    assert sorted(claimed) == sorted(f"w-{i}" for i in range(8))


def test_sync_and_async_handles_are_not_mixed_up(db_url: str) -> None:
    """An Async class refuses a connect() handle, and a sync class on a connect_async() handle
    refuses to block the event loop, with InvalidTypeError on both engines."""
    conn = agentstate.connect(db_url)
    try:
        for cls in (aio.AsyncTaskManager, aio.AsyncMessageLog, aio.AsyncAgents):
            with pytest.raises(errors.InvalidTypeError):
                cls(conn)
    finally:
        conn.close()

    async def go() -> None:
        aconn = await agentstate.connect_async(db_url)
        try:
            with pytest.raises(errors.InvalidTypeError):
                Agents(aconn).list_planners()
            with pytest.raises(errors.InvalidTypeError):
                TaskManager(aconn, PLANNER).get_current_task()
            assert await aio.AsyncAgents(aconn).list_planners() == []
        finally:
            await aconn.aclose()

    asyncio.run(go())
