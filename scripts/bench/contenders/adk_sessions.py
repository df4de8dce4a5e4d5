"""Google ADK session services: ADK's own ``SqliteSessionService`` and agentstate's drop-in for it,
``AgentStateSessionService`` (agentstate.integrations.adk), each through ADK's session-service
API, on a file of its own with the same sessions.

The data, whatever the data set's size: one session per key planner (session id = planner id,
app ``bench``, user ``user``), each of :data:`EVENTS` events: a user's and the assistant's turns
in turn (a text of 40-400 characters each, as a Runner stores them; every tenth carries a state
delta), one second apart. Both files hold the same events, with the same ids, bulk-loaded untimed
into each service's own tables (the sessions made through the service's own create_session).

- ``adk_get_session_50``: ``get_session(config=GetSessionConfig(num_recent_events=50))``: the
  session, its merged state and its latest 50 events, decoded.
- ``adk_append_event``: ``append_event`` of a new assistant event with a one-key state delta
  (``last_turn``), to a session loaded untimed; the Event is made in the timed call (ADK makes one
  per model turn), for every contender alike.

Durability: ``adk_sqlite`` runs ADK's SqliteSessionService at its defaults: a rollback journal
(it sets no journal mode) and SQLite's default synchronous=FULL; it opens a new aiosqlite
connection for each call and runs only ``PRAGMA foreign_keys = ON`` on it, so synchronous cannot
be set (a ``sqlite:///path?...`` query string becomes SQLite URI parameters, and SQLite has none
for synchronous). ``adk_sqlite_wal`` is the same service on a file put in WAL mode once before
(journal_mode=WAL is a property of the file, so it persists), still synchronous=FULL.
``agentstate_adk_full`` is agentstate with ``durability="full"`` (WAL, synchronous=FULL): the
drop-in at the same durability. ``agentstate_adk`` is agentstate at its default
(synchronous=NORMAL), which ADK's SqliteSessionService offers no way to match; ADK's other
service that stores in SQLite, ``DatabaseSessionService``, takes an SQLAlchemy engine, whose
connections can be given the pragmas: ``adk_database_normal`` is that service on an engine that
sets WAL and synchronous=NORMAL on every connection it opens.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import apsw

from bench.contenders.shared import Bound
from bench.data import CORPUS, DataSpec, Progress

ADK_OPERATIONS = ("adk_get_session_50", "adk_append_event")
EVENTS = 3_000
APP, USER = "bench", "user"
EPOCH = 1_700_000_000.0
STATE = '{"turn": 2990}'
"""Each session's stored state: the last state delta of its events."""


def keys_of(spec: DataSpec) -> list[str]:
    """The sessions: one per key planner the harness may ask for (the full budget's 32)."""
    return spec.key_planners(32)


def event_json(n: int) -> tuple[str, float, str]:
    """The n-th event of every session: its id, timestamp and JSON as ADK dumps it."""
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    h = (n * 2654435761) % 4294967291
    start = h % 3_000
    text = CORPUS[start : start + 40 + (h // 100) % 360]
    role, author = ("user", "user") if n % 2 == 0 else ("model", "assistant")
    event = Event(
        id=f"event-{n:05d}",
        invocation_id=f"invocation-{n // 2:05d}",
        author=author,
        timestamp=EPOCH + n,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
        actions=EventActions(state_delta={"turn": n} if n % 10 == 0 else {}),
    )
    return event.id, event.timestamp, event.model_dump_json(exclude_none=True)


class AdkSessionContender:
    """An ADK session service through ADK's async API, on its own file, one event loop per
    process (the harness awaits and times each call)."""

    name = ""
    operations = ADK_OPERATIONS
    builds = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop: asyncio.AbstractEventLoop | None = None
        self.service: Any = None
        self.sessions: dict[str, Any] = {}

    def make_service(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.service = self.make_service()

    def close(self) -> None:
        if self.loop is not None:
            closing = getattr(self.service, "close", None)
            if closing is not None:
                self.loop.run_until_complete(closing())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def bind(self, op: str, keys: list[str], spec: DataSpec) -> Bound:
        from google.adk.events.event import Event
        from google.adk.events.event_actions import EventActions
        from google.adk.sessions.base_session_service import GetSessionConfig
        from google.genai import types

        service = self.service
        if op == "adk_get_session_50":
            config = GetSessionConfig(num_recent_events=50)
            return (lambda key: service.get_session(app_name=APP, user_id=USER, session_id=key, config=config)), keys
        if op == "adk_append_event":
            assert self.loop is not None
            for key in keys:  # untimed: the sessions the appends go to, as a Runner holds them
                self.sessions[key] = self.loop.run_until_complete(
                    service.get_session(
                        app_name=APP, user_id=USER, session_id=key, config=GetSessionConfig(num_recent_events=1)
                    )
                )
            content = types.Content(role="model", parts=[types.Part(text=CORPUS[:200])])
            turns = iter(range(EVENTS, 10**9))

            def append(key: str) -> Any:
                n = next(turns)
                event = Event(invocation_id=f"invocation-{n}", author="assistant", content=content,
                              actions=EventActions(state_delta={"last_turn": n}))  # fmt: skip
                return service.append_event(self.sessions[key], event)

            return append, keys
        raise KeyError(op)

    def fingerprint(self, op: str, result: Any) -> Any:
        return None if result is None else (result.id, tuple(e.id for e in result.events), result.state.get("turn"))


class AdkSqlitePeer(AdkSessionContender):
    """ADK's own ``SqliteSessionService(path)`` at its defaults (see the module): a rollback
    journal, synchronous=FULL, a new aiosqlite connection per call. Its sessions are made with its
    create_session; the events are inserted untimed into its ``events`` table, as its
    append_event stores them (``event_data`` is the event's JSON)."""

    name = "adk_sqlite"
    wal = False

    def make_service(self) -> Any:
        from google.adk.sessions.sqlite_session_service import SqliteSessionService

        return SqliteSessionService(str(self.path))

    def build(self, spec: DataSpec, progress: Progress) -> None:
        if self.wal:
            with sqlite3.connect(self.path) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
        service = self.make_service()
        keys = keys_of(spec)

        async def make() -> None:
            for key in keys:
                await service.create_session(app_name=APP, user_id=USER, session_id=key)

        asyncio.run(make())
        events = [event_json(n) for n in range(EVENTS)]
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")  # this connection only: the load is untimed
        conn.execute("BEGIN")
        for done, key in enumerate(keys):
            conn.executemany(
                "INSERT INTO events (id, app_name, user_id, session_id, invocation_id, timestamp, event_data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(eid, APP, USER, key, "", at, data) for eid, at, data in events],
            )
            progress(f"adk events {(done + 1) * EVENTS:,}/{len(keys) * EVENTS:,}")
        conn.execute("UPDATE sessions SET update_time = ?, state = ?", (EPOCH + EVENTS - 1, STATE))
        conn.execute("COMMIT")
        conn.close()


class AdkSqliteWalPeer(AdkSqlitePeer):
    """The same SqliteSessionService on a file put in WAL mode once, before it was built (a
    file's journal mode persists): synchronous is still SQLite's default, FULL."""

    name = "adk_sqlite_wal"
    wal = True


class AdkDatabaseNormalPeer(AdkSessionContender):
    """ADK's ``DatabaseSessionService`` (SQLAlchemy, ``sqlite+aiosqlite``) on an engine of its
    own whose connections run ``PRAGMA journal_mode = WAL`` and ``synchronous = NORMAL`` (and ADK's
    ``foreign_keys = ON``) as they open: the way ADK lets a user choose synchronous=NORMAL
    (``DatabaseSessionService(db_engine=...)``). Its sessions are made with its create_session; the
    events are added untimed through its own ORM rows (``StorageEvent.from_event``)."""

    name = "adk_database_normal"

    def _engine(self) -> Any:
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(f"sqlite+aiosqlite:///{self.path}")

        def pragmas(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        event.listen(engine.sync_engine, "connect", pragmas)
        return engine

    def make_service(self) -> Any:
        from google.adk.sessions.database_session_service import DatabaseSessionService

        self.engine = self._engine()
        return DatabaseSessionService(db_engine=self.engine)

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.engine.dispose())  # the service does not own it
        super().close()

    def build(self, spec: DataSpec, progress: Progress) -> None:
        from google.adk.events.event import Event
        from google.adk.sessions.database_session_service import DatabaseSessionService

        keys = keys_of(spec)
        events = [Event.model_validate_json(data) for _, _, data in (event_json(n) for n in range(EVENTS))]

        async def load() -> None:
            engine = self._engine()
            service = DatabaseSessionService(db_engine=engine)
            for done, key in enumerate(keys):
                session = await service.create_session(app_name=APP, user_id=USER, session_id=key, state={"turn": 2990})
                rows = service._get_schema_classes().StorageEvent  # its ORM class for an event row (schema known now)
                async with service.database_session_factory() as db:
                    db.add_all([rows.from_event(session, event) for event in events])
                    await db.commit()
                progress(f"adk events {(done + 1) * EVENTS:,}/{len(keys) * EVENTS:,}")
            await engine.dispose()

        asyncio.run(load())


class AgentStateAdkContender(AdkSessionContender):
    """agentstate's drop-in, ``AgentStateSessionService(path)`` (agentstate.integrations.adk), on a
    file of its own with the same sessions and events, at agentstate's default durability (WAL,
    synchronous=NORMAL). Each call runs on the service's connection thread."""

    name = "agentstate_adk"
    durability = "normal"

    def make_service(self) -> Any:
        from agentstate.integrations.adk import AgentStateSessionService

        return AgentStateSessionService(str(self.path), durability=self.durability)

    def build(self, spec: DataSpec, progress: Progress) -> None:
        import agentstate

        agentstate.connect(self.path).close()  # agentstate's schema, migrated
        keys = keys_of(spec)
        events = [event_json(n) for n in range(EVENTS)]
        conn = apsw.Connection(str(self.path))
        conn.pragma("synchronous", "OFF")  # this connection only: the load is untimed
        with conn:
            conn.execute("INSERT INTO adk_app_states (app_name, state, update_time) VALUES (?, '{}', ?)", (APP, EPOCH))
            conn.execute(
                "INSERT INTO adk_user_states (app_name, user_id, state, update_time) VALUES (?, ?, '{}', ?)",
                (APP, USER, EPOCH),
            )
            for done, key in enumerate(keys):
                session_key = conn.execute(
                    "INSERT INTO adk_sessions (app_name, user_id, session_id, state, create_time, update_time, revision, "
                    "events) VALUES (?, ?, ?, ?, ?, ?, 1, ?) RETURNING session_key",
                    (APP, USER, key, STATE, EPOCH, EPOCH + EVENTS - 1, EVENTS),
                ).get
                conn.executemany(
                    "INSERT INTO adk_events (session_key, timestamp, seq, event_id, event) VALUES (?, ?, ?, ?, ?)",
                    [(session_key, at, n + 1, eid, data) for n, (eid, at, data) in enumerate(events)],
                )
                progress(f"adk events {(done + 1) * EVENTS:,}/{len(keys) * EVENTS:,}")
        conn.execute("ANALYZE")
        conn.close()


class AgentStateAdkFullContender(AgentStateAdkContender):
    """The same, with ``durability="full"``: WAL, synchronous=FULL, as ADK's SqliteSessionService."""

    name = "agentstate_adk_full"
    durability = "full"
