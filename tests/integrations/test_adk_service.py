"""AgentStateSessionService beyond ADK's own tests (tests/integrations/test_adk.py): ADK's service
registry resolving both URI schemes, an offline Runner resuming a session after the file is
reopened, the stale-session check under concurrency (and the race in ADK's SqliteSessionService
it closes), two processes appending to one session, the bounded events read, the three kinds
of connection, and bad input."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from google.adk.agents import LlmAgent
from google.adk.cli.service_registry import ServiceRegistry, _register_services_from_yaml_config, get_service_registry
from google.adk.cli.utils.service_factory import create_session_service_from_options
from google.adk.errors._stale_session_error import StaleSessionError as AdkStaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError as AdkSessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types
from pydantic import Field

import agentstate
from agentstate import errors
from agentstate.integrations import _adk_operations
from agentstate.integrations.adk import (
    AgentStateSessionService,
    SessionExistsError,
    SessionNotFoundError,
    StaleSessionError,
    target,
)
from tests.engines import scalar


def uri_of(db_url: str) -> str:
    """The session service URI ``adk web --session_service_uri`` takes for a database."""
    return "agentstate+" + db_url if db_url.startswith("postgresql://") else "agentstate:///" + db_url


@pytest.fixture
def service(db_url: str) -> Iterator[AgentStateSessionService]:
    made = AgentStateSessionService(db_url)
    yield made
    asyncio.run(made.close())


# --- ADK's service registry ---------------------------------------------------------------------


def test_both_schemes_resolve_through_adks_registry(db_url: str, tmp_path: Path) -> None:
    """What ``adk web --session_service_uri ...`` does: ADK's own factory function and registry."""
    uri = uri_of(db_url)
    if not db_url.startswith("postgresql://"):
        uri = "agentstate:////" + db_url.lstrip("/")  # an absolute path: four slashes, as sqlite://

    async def main() -> None:
        made = create_session_service_from_options(base_dir=tmp_path, session_service_uri=uri)
        assert isinstance(made, AgentStateSessionService)
        async with made:
            await made.create_session(app_name="app", user_id="u", session_id="s", state={"k": 1})
        again = get_service_registry().create_session_service(uri, agents_dir=str(tmp_path))
        assert isinstance(again, AgentStateSessionService)
        async with again:
            got = await again.get_session(app_name="app", user_id="u", session_id="s")
            assert got is not None and got.state == {"k": 1}

    asyncio.run(main())
    conn = agentstate.connect(db_url)
    try:
        assert scalar(conn, "SELECT count(*) FROM adk_sessions WHERE session_id = 's'") == 1
    finally:
        conn.close()


def test_a_relative_uri_and_a_services_yaml_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = ServiceRegistry()
    _register_services_from_yaml_config(  # a services.yaml naming the class, as ADK documents
        {
            "services": [
                {
                    "scheme": "agentstate",
                    "type": "session",
                    "class": "agentstate.integrations.adk.AgentStateSessionService",
                }
            ]
        },
        registry,
    )
    made = registry.create_session_service("agentstate:///sessions.db?durability=full", agents_dir=str(tmp_path))
    assert isinstance(made, AgentStateSessionService)
    asyncio.run(made.close())
    assert (tmp_path / "sessions.db").exists()
    assert target("agentstate:///sessions.db") == ("sessions.db", {})
    assert target("agentstate+postgres://u@h/db?sslmode=disable") == ("postgresql://u@h/db?sslmode=disable", {})
    with pytest.raises(errors.InvalidValueError, match="three slashes"):
        target("agentstate://sessions.db")
    with pytest.raises(errors.UnknownFieldError, match="journal"):
        AgentStateSessionService(uri="agentstate:///x.db?journal=off")
    with pytest.raises(errors.UnknownFieldError, match="migrate"):
        AgentStateSessionService(uri="agentstate:///x.db?migrate=false")
    assert not (tmp_path / "x.db").exists()


# --- an offline Runner ----------------------------------------------------------------------------


class ScriptedLlm(BaseLlm):
    """A model that answers every request with the texts it was sent, counted: no network, no key."""

    seen: list[list[str]] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        texts = [part.text for content in llm_request.contents for part in content.parts or [] if part.text]
        self.seen.append(texts)
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=f"reply to {len(texts)}")]))


async def one_turn(db: str, text: str) -> tuple[list[str], ScriptedLlm]:
    model = ScriptedLlm(model="scripted")
    async with AgentStateSessionService(db) as sessions:  # opened anew: the file is all that carries over
        if await sessions.get_session(app_name="app", user_id="u", session_id="chat") is None:
            await sessions.create_session(app_name="app", user_id="u", session_id="chat", state={"user:name": "Ada"})
        runner = Runner(agent=LlmAgent(name="assistant", model=model, output_key="last_reply"), app_name="app",
                        session_service=sessions)  # fmt: skip
        message = types.Content(role="user", parts=[types.Part(text=text)])
        events = [e async for e in runner.run_async(user_id="u", session_id="chat", new_message=message)]
    return [part.text or "" for e in events if e.content for part in e.content.parts or []], model


def test_a_runner_resumes_a_session_after_the_file_is_reopened(db_url: str) -> None:
    replies, _ = asyncio.run(one_turn(db_url, "hello"))
    assert replies == ["reply to 1"]
    replies, model = asyncio.run(one_turn(db_url, "again"))
    assert replies == ["reply to 3"] and model.seen == [["hello", "reply to 1", "again"]]

    async def stored() -> Session | None:
        async with AgentStateSessionService(db_url) as sessions:
            return await sessions.get_session(app_name="app", user_id="u", session_id="chat")

    session = asyncio.run(stored())
    assert session is not None
    assert [(e.author, e.content.parts[0].text) for e in session.events if e.content and e.content.parts] == [
        ("user", "hello"), ("assistant", "reply to 1"), ("user", "again"), ("assistant", "reply to 3"),
    ]  # fmt: skip
    assert session.state == {"user:name": "Ada", "last_reply": "reply to 3"}


# --- the stale-session check ---------------------------------------------------------------------


def test_adks_sqlite_service_forked_a_session_appended_twice_at_once_ours_refuses_the_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two SqliteSessionService objects on one file, each with a copy of the same session, append
    while another connection holds the write lock. ADK before 2.15 checks for a stale session
    before its write transaction begins: both checks pass, both appends succeed and the copies
    fork. ADK 2.15 takes the write lock first (BEGIN IMMEDIATE), as we do: the second raises. The
    same two appends through AgentStateSessionService: one wins, the other raises
    StaleSessionError and writes nothing, whichever ADK is installed."""
    path = str(tmp_path / "adk.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # so a waiting writer waits (rollback mode would fail it)
    reached: list[str] = []  # per append: where it stopped to wait for the write lock
    execute = aiosqlite.Connection.execute

    def spying(self: aiosqlite.Connection, sql: str, parameters: Any = None) -> Any:
        statement = sql.lstrip()
        if statement.startswith("INSERT INTO events"):  # reached only after the stale check passed
            reached.append("checked")
        elif statement.upper().startswith("BEGIN IMMEDIATE"):  # the lock first, then the check
            reached.append("locking")
        return execute(self, sql, parameters)

    monkeypatch.setattr(aiosqlite.Connection, "execute", spying)

    async def adk() -> list[Any]:
        first, second = SqliteSessionService(path), SqliteSessionService(path)
        made = await first.create_session(app_name="app", user_id="u", session_id="s")
        await second.get_session(app_name="app", user_id="u", session_id="s")  # its schema check, before the lock
        copies = [made.model_copy(deep=True), made.model_copy(deep=True)]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
        appends = [
            asyncio.ensure_future(
                service.append_event(copy, Event(author=f"w{n}", timestamp=made.last_update_time + 1 + n))
            )
            for n, (service, copy) in enumerate(zip((first, second), copies, strict=True))
        ]
        deadline = time.monotonic() + 30
        while len(reached) < 2:  # both wait for the lock now, at their INSERT or their BEGIN
            assert not any(a.done() for a in appends), [a.exception() for a in appends if a.done()]
            assert time.monotonic() < deadline, f"the appends reached only {reached}"
            await asyncio.sleep(0.001)
        waited_at = list(reached)
        blocker.rollback()
        blocker.close()
        results = await asyncio.gather(*appends, return_exceptions=True)
        stored = await first.get_session(app_name="app", user_id="u", session_id="s")
        assert stored is not None
        events = [e.author for e in stored.events]
        return [waited_at, results, events, [[e.author for e in c.events] for c in copies]]

    waited_at, results, stored, copies = asyncio.run(adk())
    failures = [r for r in results if isinstance(r, BaseException)]
    if waited_at == ["checked", "checked"]:  # ADK < 2.15: both checks passed outside the lock
        assert not failures  # both appends "succeeded"
        assert sorted(stored) == ["w0", "w1"] and copies == [["w0"], ["w1"]]  # each copy saw only its own
    else:  # ADK >= 2.15: the check under the lock, as ours
        assert waited_at == ["locking", "locking"]
        assert len(failures) == 1 and isinstance(failures[0], AdkStaleSessionError), results
        assert len(stored) == 1

    async def ours() -> list[Any]:
        db = str(tmp_path / "agentstate.db")
        async with AgentStateSessionService(db) as first, AgentStateSessionService(db) as second:
            made = await first.create_session(app_name="app", user_id="u", session_id="s")
            copies = [made.model_copy(deep=True), made.model_copy(deep=True)]
            results = await asyncio.gather(
                *[service.append_event(copy, Event(author=f"w{n}", timestamp=made.last_update_time + 1 + n))
                  for n, (service, copy) in enumerate(zip((first, second), copies, strict=True))],
                return_exceptions=True,
            )  # fmt: skip
            stored = await first.get_session(app_name="app", user_id="u", session_id="s")
            assert stored is not None
            return [results, [e.author for e in stored.events]]

    results, stored = asyncio.run(ours())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], StaleSessionError)
    assert isinstance(failures[0], AdkStaleSessionError) and isinstance(failures[0], errors.AgentStateError)
    assert len(stored) == 1


def test_a_session_deleted_and_made_again_makes_old_copies_stale(service: AgentStateSessionService) -> None:
    async def main() -> None:
        old = await service.create_session(app_name="app", user_id="u", session_id="s")
        await service.delete_session(app_name="app", user_id="u", session_id="s")
        await service.create_session(app_name="app", user_id="u", session_id="s")
        with pytest.raises(StaleSessionError):
            await service.append_event(old, Event(author="user"))

    asyncio.run(main())


# --- two processes appending to one session ----------------------------------------------------

APPENDS = 15


def append_events(db: str, writer: int, start: Any) -> None:
    """A child: append APPENDS events to the shared session, reloading it whenever another
    writer came first (what a caller of ADK does with StaleSessionError)."""

    async def main() -> None:
        async with AgentStateSessionService(db) as sessions:
            start.wait()
            for n in range(APPENDS):
                while True:
                    session = await sessions.get_session(app_name="app", user_id="u", session_id="shared",
                                                         config=GetSessionConfig(num_recent_events=1))  # fmt: skip
                    assert session is not None
                    event = Event(author=f"w{writer}", invocation_id=f"w{writer}-{n}", timestamp=time.time(),
                                  actions=EventActions(state_delta={f"w{writer}": n, "user:last": writer}))  # fmt: skip
                    try:
                        await sessions.append_event(session, event)
                        break
                    except StaleSessionError:
                        continue

    asyncio.run(main())


@pytest.mark.slow
def test_two_processes_appending_to_one_session_lose_nothing_and_keep_their_order(db_url: str) -> None:
    async def make() -> None:
        async with AgentStateSessionService(db_url) as sessions:
            await sessions.create_session(app_name="app", user_id="u", session_id="shared")

    asyncio.run(make())
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    children = [context.Process(target=append_events, args=(db_url, w, start)) for w in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0

    async def read() -> Session | None:
        async with AgentStateSessionService(db_url) as sessions:
            return await sessions.get_session(app_name="app", user_id="u", session_id="shared")

    session = asyncio.run(read())
    assert session is not None and len(session.events) == 2 * APPENDS
    for writer in range(2):
        mine = [e.invocation_id for e in session.events if e.author == f"w{writer}"]
        assert mine == [f"w{writer}-{n}" for n in range(APPENDS)]  # all, in order
        assert session.state[f"w{writer}"] == APPENDS - 1
    assert session.state["user:last"] == int(session.events[-1].author[1:])


# --- reads ---------------------------------------------------------------------------------------


def test_get_session_reads_the_latest_events_as_one_bounded_range(db_url: str) -> None:
    """3,000 events: num_recent_events=50 runs one events query that returns 50 rows; 0 runs none."""
    seen: list[tuple[str, int]] = []
    conn = agentstate.connect(db_url, on_query=lambda name, seconds, rows: seen.append((name, rows)))

    async def main() -> None:
        service = AgentStateSessionService(conn)
        session = await service.create_session(app_name="app", user_id="u", session_id="long")
        for n in range(3_000):
            await service.append_event(session, Event(author="user", invocation_id=str(n), timestamp=1_000 + n))
        seen.clear()
        latest = await service.get_session(app_name="app", user_id="u", session_id="long",
                                           config=GetSessionConfig(num_recent_events=50))  # fmt: skip
        assert latest is not None and [e.invocation_id for e in latest.events] == [str(n) for n in range(2_950, 3_000)]
        assert [(name, rows) for name, rows in seen if name.startswith("adk.")] == [
            ("adk.session", 1),
            ("adk.events", 50),
        ]
        seen.clear()
        none = await service.get_session(app_name="app", user_id="u", session_id="long",
                                         config=GetSessionConfig(num_recent_events=0))  # fmt: skip
        assert none is not None and none.events == [] and none.last_update_time == latest.last_update_time
        assert [name for name, _ in seen if name.startswith("adk.")] == ["adk.session"]
        since = await service.get_session(app_name="app", user_id="u", session_id="long",
                                          config=GetSessionConfig(after_timestamp=3_990))  # fmt: skip
        assert since is not None and [e.timestamp for e in since.events] == [3_990.0 + n for n in range(10)]
        await service.close()  # a connection it was given stays open

    try:
        asyncio.run(main())
        assert scalar(conn, "SELECT count(*) FROM adk_events") == 3_000
    finally:
        conn.close()


def test_events_come_back_in_timestamp_order_ties_in_append_order(service: AgentStateSessionService) -> None:
    async def main() -> list[str | None]:
        session = await service.create_session(app_name="app", user_id="u")
        for name, at in (("c", 30.0), ("a", 10.0), ("b1", 20.0), ("b2", 20.0), ("b3", 20.0)):
            session._storage_update_marker = None  # appended out of time order on purpose
            session.last_update_time = 1e12
            await service.append_event(session, Event(author="user", invocation_id=name, timestamp=at))
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        return [e.invocation_id for e in got.events]

    assert asyncio.run(main()) == ["a", "b1", "b2", "b3", "c"]


def test_list_sessions_pages_through_many_sessions_in_order(service: AgentStateSessionService) -> None:
    count = 2 * _adk_operations.PAGE + 30

    async def main() -> None:
        for n in range(count):
            made = await service.create_session(app_name="app", user_id=f"user-{n % 3}", session_id=f"s{n:04}")
            await service.append_event(made, Event(author="user", timestamp=5_000 + n // 7))  # ties of seven
        every = (await service.list_sessions(app_name="app")).sessions
        assert len(every) == count
        assert [(s.last_update_time, s.user_id, s.id) for s in every] == sorted(
            (s.last_update_time, s.user_id, s.id) for s in every
        )
        mine = (await service.list_sessions(app_name="app", user_id="user-1")).sessions
        assert [s.id for s in mine] == [f"s{n:04}" for n in range(count) if n % 3 == 1]

    asyncio.run(main())


def test_it_runs_on_every_kind_of_connection(db_url: str) -> None:
    async def use(service: AgentStateSessionService) -> None:
        session = await service.create_session(app_name="app", user_id="u", state={"app:a": 1, "user:b": 2, "c": 3})
        await service.append_event(session, Event(author="user", actions=EventActions(state_delta={"c": 4})))
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got == session and got.state == {"app:a": 1, "user:b": 2, "c": 4}
        await service.delete_session(app_name="app", user_id="u", session_id=session.id)
        await service.close()

    sync = agentstate.connect(db_url)
    try:
        asyncio.run(use(AgentStateSessionService(sync)))
        assert scalar(sync, "SELECT count(*) FROM adk_events") == 0  # still open: the caller's
    finally:
        sync.close()

    async def on_async() -> None:
        conn = await agentstate.connect_async(db_url)
        try:
            await use(AgentStateSessionService(conn))
        finally:
            await conn.aclose()

    asyncio.run(on_async())


# --- bad input: a specific error, the builtin ADK's callers catch, and nothing written -----------


def counts(db_url: str) -> tuple[int, ...]:
    conn = agentstate.connect(db_url)
    try:
        return tuple(
            scalar(conn, f"SELECT count(*) FROM {t}") for t in ("adk_sessions", "adk_events", "adk_app_states")
        )
    finally:
        conn.close()


def test_bad_input_raises_and_writes_nothing(service: AgentStateSessionService, db_url: str) -> None:
    async def main() -> None:
        session = await service.create_session(app_name="app", user_id="u", session_id="s", state={"k": 1})
        before = counts(db_url)
        for state, kind in (
            ({"k": lambda: 1}, errors.InvalidValueError),
            ({"app:k": object()}, errors.InvalidValueError),
            ({"k": float("nan")}, errors.InvalidValueError),
            ({1: "x"}, errors.InvalidTypeError),
            (["k"], errors.InvalidTypeError),
        ):
            with pytest.raises(kind):
                await service.create_session(app_name="app", user_id="u", session_id="t", state=state)  # type: ignore[arg-type]
            if isinstance(state, dict) and all(isinstance(key, str) for key in state):  # EventActions checks keys
                with pytest.raises(kind):
                    await service.append_event(session, Event(author="user", actions=EventActions(state_delta=state)))
        with pytest.raises(ValueError):  # InvalidValueError is a ValueError, as ADK's callers expect
            await service.append_event(
                session, Event(author="user", actions=EventActions(state_delta={"temp:t": 1, "k": object()}))
            )
        assert "temp:t" not in session.state and session.events == []  # refused before anything was applied
        for kwargs, kind in (
            ({"app_name": 1, "user_id": "u"}, errors.InvalidTypeError),
            ({"app_name": "", "user_id": "u"}, errors.InvalidValueError),
            ({"app_name": "app", "user_id": "u" * 129}, errors.InvalidValueError),
            ({"app_name": "app", "user_id": "u", "session_id": 7}, errors.InvalidTypeError),
        ):
            with pytest.raises(kind):
                await service.create_session(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await service.get_session(app_name="app", user_id="u", session_id="s", config={"num_recent_events": 1})  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidTypeError):
            await service.append_event({"id": "s"}, Event(author="user"))  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidTypeError):
            await service.append_event(session, {"author": "user"})  # type: ignore[arg-type]
        with pytest.raises(SessionExistsError) as exists:
            await service.create_session(app_name="app", user_id="u", session_id="s")
        assert isinstance(exists.value, AlreadyExistsError) and isinstance(exists.value, errors.DuplicateError)
        for unknown in (("app", "u", "nope"), ("app", "nobody", "s"), ("other", "u", "s")):
            ghost = Session(app_name=unknown[0], user_id=unknown[1], id=unknown[2])
            with pytest.raises(SessionNotFoundError) as missing:
                await service.append_event(ghost, Event(author="user"))
            assert isinstance(missing.value, AdkSessionNotFoundError) and isinstance(missing.value, ValueError)
            assert await service.get_session(app_name=unknown[0], user_id=unknown[1], session_id=unknown[2]) is None
            await service.delete_session(app_name=unknown[0], user_id=unknown[1], session_id=unknown[2])  # no-op
        assert counts(db_url) == before
        got = await service.get_session(app_name="app", user_id="u", session_id="s")
        assert got is not None and got.state == {"k": 1} and got.events == []
        await service.close()
        with pytest.raises(errors.SessionClosedError):
            await service.get_session(app_name="app", user_id="u", session_id="s")

    asyncio.run(main())
    with pytest.raises(errors.InvalidTypeError):
        AgentStateSessionService(3.5)  # type: ignore[arg-type]
    with pytest.raises(errors.UnknownFieldError):
        AgentStateSessionService(db_url, journal="off")
