"""Every contender by name: what it is (the report's and --help's line), what makes it, which
operations it runs, whether it builds a database of its own, its durability, and the optional
packages it needs. The order here is the report's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.contenders.adk_sessions import (
    AdkDatabaseNormalPeer,
    AdkSqlitePeer,
    AdkSqliteWalPeer,
    AgentStateAdkContender,
    AgentStateAdkFullContender,
)
from bench.contenders.agentstate import (
    AgentstateContender,
    AsyncContender,
    FullDurabilityContender,
    PlannedContender,
    PostgresContender,
    UnmonitoredContender,
)
from bench.contenders.checkpointers import AgentStateSaverContender, LangGraphSqlitePeer
from bench.contenders.floor import Floor, WriteFloor, WriteFloorFull
from bench.contenders.orm import OrmBaseline
from bench.contenders.queues import HueyNoFsyncPeer, HueyPeer, LiteQueuePeer
from bench.contenders.raw_apsw import RawApsw
from bench.contenders.sessions import (
    AgentStateSessionContender,
    AgentStateSessionFullContender,
    OpenAISessionNormalPeer,
    OpenAISessionPeer,
)


@dataclass(frozen=True)
class ContenderInfo:
    name: str
    summary: str
    make: Callable[[Any], Any]
    """Makes the contender from its database: a file's Path, or (postgres) a postgresql:// URL."""
    operations: tuple[str, ...]
    builds: bool = True
    durability: str = "normal"
    """What a returned commit survives: "normal" (synchronous=NORMAL in WAL, or PostgreSQL's
    synchronous_commit=off: a crash of the process, not always a power cut), "full" (every commit
    fsynced), "off" (no fsync at all)."""
    needs: tuple[tuple[str, str, str], ...] = ()
    """(module, package, extra) for each optional package this contender imports: the module it
    imports, the distribution that provides it and the extra of pyproject.toml that installs it.
    A contender whose module does not import is left out of a default run (see
    :func:`select_contenders`)."""


PEERS = (
    "litequeue", "huey", "huey_nofsync", "openai_session", "openai_session_normal", "langgraph_sqlite", "adk_sqlite", "adk_sqlite_wal",
    "adk_database_normal",
)  # fmt: skip
PEER_DISTRIBUTIONS = (
    "litequeue", "huey", "openai-agents", "langgraph-checkpoint-sqlite", "langgraph-checkpoint", "google-adk",
)  # fmt: skip
"""The ``peers`` extra's packages (and langgraph-checkpoint, which agentstate's saver builds on too),
whose versions each report names."""
PAIRS = (
    ("agentstate_session_full", "openai_session"),
    ("agentstate_session", "openai_session_normal"),
    ("agentstate_langgraph", "langgraph_sqlite"),
    ("agentstate_adk_full", "adk_sqlite"),
    ("agentstate_adk_full", "adk_sqlite_wal"),
    ("agentstate_adk", "adk_database_normal"),
)
"""agentstate's drop-in for a framework's own SQLite backend, and that backend: compared on every
operation they share (issue 12's targets)."""


CONTENDERS = {
    info.name: info
    for info in (
        ContenderInfo(
            "orm_today",
            "baseline A: the guide's SQLAlchemy ORM as it stands (today's indexes, "
            "get_current_task loads the planner's workers and loops in Python; rollback journal, synchronous=FULL)",
            lambda p: OrmBaseline(p, indexed=False),
            OrmBaseline.operations,
            durability="full",
        ),
        ContenderInfo(
            "orm_indexed",
            "baseline B: the same ORM with the guide's recommended indexes, pragmas and filtered queries",
            lambda p: OrmBaseline(p, indexed=True),
            OrmBaseline.operations,
        ),
        ContenderInfo(
            "agentstate",
            "agentstate through its public API, at its default durability (synchronous=NORMAL)",
            AgentstateContender,
            AgentstateContender.operations,
        ),
        ContenderInfo(
            "postgres",
            'agentstate through the same public API on connect("postgresql://..."), a database of its own on a '
            "PostgreSQL server (by default a throwaway one with fsync and full_page_writes on, synchronous_commit off; "
            "the report lists the settings it ran with), the same data and operations",
            PostgresContender,
            PostgresContender.operations,
            needs=(("psycopg", "psycopg", "postgres"), ("psycopg_pool", "psycopg-pool", "postgres")),
        ),
        ContenderInfo(
            "agentstate_full",
            'agentstate with connect(durability="full") (every commit fsynced), on a file of its own '
            "built like agentstate's; the write operations",
            FullDurabilityContender,
            FullDurabilityContender.operations,
            durability="full",
        ),
        ContenderInfo(
            "agentstate_planned",
            "agentstate's data with 10% of the pending tasks delayed past the run and 10% waiting on a "
            "prerequisite that stays claimed, on a file of its own: what planning costs a claim",
            PlannedContender,
            PlannedContender.operations,
        ),
        ContenderInfo(
            "agentstate_async",
            "agentstate's asyncio API on agentstate's file, one event loop (what async adds per call)",
            AsyncContender,
            AsyncContender.operations,
            builds=False,
        ),
        ContenderInfo(
            "agentstate_unmonitored",
            "agentstate with query monitoring off, on agentstate's file (what monitoring costs)",
            UnmonitoredContender,
            UnmonitoredContender.operations,
            builds=False,
        ),
        ContenderInfo(
            "raw_apsw",
            "the guide's recommended layout in plain SQL on apsw (rowid tables; "
            "messages indexed on (agent_id, created_at))",
            RawApsw,
            RawApsw.operations,
        ),
        ContenderInfo(
            "floor",
            "bare apsw: a primary-key lookup of the row agentstate returns, and SELECT 1",
            Floor,
            Floor.operations,
            builds=False,
        ),
        ContenderInfo(
            "floor_write",
            "bare apsw on a file of its own (WAL, synchronous=NORMAL): each write BEGIN IMMEDIATE; UPDATE of one "
            "small row; COMMIT (a claim one, a complete another): what SQLite can do for a queue's writes",
            WriteFloor,
            WriteFloor.operations,
        ),
        ContenderInfo(
            "floor_write_full",
            "the same at synchronous=FULL (every commit fsynced)",
            WriteFloorFull,
            WriteFloorFull.operations,
            durability="full",
        ),
        ContenderInfo(
            "litequeue",
            "peer: litequeue at its defaults (WAL, synchronous=NORMAL): put to enqueue, pop to claim, "
            "done to complete; no lease, no result",
            LiteQueuePeer,
            LiteQueuePeer.operations,
            needs=(("litequeue", "litequeue", "peers"),),
        ),
        ContenderInfo(
            "huey",
            "peer: huey's SqliteHuey at its defaults (WAL, SQLite's default synchronous=FULL): calling the task "
            "to enqueue, huey.dequeue() to claim (deletes the task), huey.put_result() to complete",
            HueyPeer,
            HueyPeer.operations,
            durability="full",
            needs=(("huey", "huey", "peers"),),
        ),
        ContenderInfo(
            "huey_nofsync",
            "peer: the same huey with fsync=False (synchronous=OFF: an OS crash may lose or corrupt)",
            HueyNoFsyncPeer,
            HueyNoFsyncPeer.operations,
            durability="off",
            needs=(("huey", "huey", "peers"),),
        ),
        ContenderInfo(
            "openai_session",
            "peer: the OpenAI Agents SDK's SQLiteSession, one per stream, at its defaults (WAL, SQLite's "
            "default synchronous=FULL): add_items to append, get_items(limit=50); async, one event loop",
            OpenAISessionPeer,
            OpenAISessionPeer.operations,
            durability="full",
            needs=(("agents", "openai-agents", "peers"),),
        ),
        ContenderInfo(
            "openai_session_normal",
            "peer: the same SQLiteSession with synchronous=NORMAL (the SDK has no setting: a subclass sets the pragma "
            "in its private connection hook), at agentstate's default durability",
            OpenAISessionNormalPeer,
            OpenAISessionNormalPeer.operations,
            needs=(("agents", "openai-agents", "peers"),),
        ),
        ContenderInfo(
            "agentstate_session",
            "agentstate's AgentStateSession (agentstate.integrations.openai_agents), the drop-in for openai_session, "
            "one per stream, on a file of its own with the same messages, at agentstate's defaults "
            "(synchronous=NORMAL); async, one event loop",
            AgentStateSessionContender,
            AgentStateSessionContender.operations,
            needs=(("agents", "openai-agents", "openai-agents"),),
        ),
        ContenderInfo(
            "agentstate_session_full",
            'the same AgentStateSession on connect_async(path, durability="full") (synchronous=FULL, every commit '
            "fsynced): the drop-in for openai_session at its durability",
            AgentStateSessionFullContender,
            AgentStateSessionFullContender.operations,
            durability="full",
            needs=(("agents", "openai-agents", "openai-agents"),),
        ),
        ContenderInfo(
            "langgraph_sqlite",
            "peer: LangGraph's own SqliteSaver (langgraph-checkpoint-sqlite) from_conn_string at its defaults "
            "(WAL, SQLite's default synchronous=FULL: every put fsynced): get_tuple, list, put",
            LangGraphSqlitePeer,
            LangGraphSqlitePeer.operations,
            durability="full",
            needs=(("langgraph.checkpoint.sqlite", "langgraph-checkpoint-sqlite", "peers"),),
        ),
        ContenderInfo(
            "agentstate_langgraph",
            "agentstate's AgentStateSaver (agentstate.integrations.langgraph), the drop-in for langgraph_sqlite, "
            "from_conn_string on a file of its own with the same checkpoints, at agentstate's defaults "
            "(synchronous=NORMAL)",
            AgentStateSaverContender,
            AgentStateSaverContender.operations,
            needs=(("langgraph.checkpoint.base", "langgraph-checkpoint", "langgraph"),),
        ),
        ContenderInfo(
            "adk_sqlite",
            "peer: Google ADK's own SqliteSessionService at its defaults (a rollback journal, SQLite's default "
            "synchronous=FULL, a new aiosqlite connection per call): get_session(num_recent_events=50) of a "
            "3,000-event session, append_event; async, one event loop",
            AdkSqlitePeer,
            AdkSqlitePeer.operations,
            durability="full",
            needs=(("google.adk.sessions.sqlite_session_service", "google-adk", "google-adk"),),
        ),
        ContenderInfo(
            "adk_sqlite_wal",
            "peer: the same SqliteSessionService on a file put in WAL mode once (a file's journal mode persists; "
            "synchronous stays FULL: the service sets no pragma but foreign_keys)",
            AdkSqliteWalPeer,
            AdkSqliteWalPeer.operations,
            durability="full",
            needs=(("google.adk.sessions.sqlite_session_service", "google-adk", "google-adk"),),
        ),
        ContenderInfo(
            "adk_database_normal",
            "peer: Google ADK's DatabaseSessionService (SQLAlchemy, sqlite+aiosqlite) on an engine whose connections "
            "set WAL and synchronous=NORMAL as they open (DatabaseSessionService(db_engine=...): how ADK lets a user "
            "choose NORMAL)",
            AdkDatabaseNormalPeer,
            AdkDatabaseNormalPeer.operations,
            needs=(
                ("greenlet", "greenlet", "bench"),
                ("google.adk.sessions.database_session_service", "google-adk", "google-adk"),
            ),
        ),
        ContenderInfo(
            "agentstate_adk_full",
            "agentstate's AgentStateSessionService (agentstate.integrations.adk), the drop-in for adk_sqlite, on a "
            'file of its own with the same sessions, connect(durability="full") (WAL, synchronous=FULL); async',
            AgentStateAdkFullContender,
            AgentStateAdkFullContender.operations,
            durability="full",
            needs=(("google.adk.sessions", "google-adk", "google-adk"),),
        ),
        ContenderInfo(
            "agentstate_adk",
            "the same AgentStateSessionService at agentstate's default durability (synchronous=NORMAL), which "
            "ADK's SqliteSessionService has no way to set: the drop-in for adk_database_normal",
            AgentStateAdkContender,
            AgentStateAdkContender.operations,
            needs=(("google.adk.sessions", "google-adk", "google-adk"),),
        ),
    )
}
ORDER = list(CONTENDERS)
