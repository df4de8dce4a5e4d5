"""Removing messages from a stream (pop_last, clear) without ever reusing a position, reading a
whole stream, and get-or-create for conversations: what a framework's session needs. On SQLite
and PostgreSQL (``db``, ``db_url``), except the upgrade of an SQLite file made by migration 3."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

import agentstate
from agentstate import errors, migrations
from agentstate.agents import Agents
from agentstate.messages import MessageLog, NewMessage
from agentstate.sqlite import opening
from tests.engines import rows, scalar
from tests.messages_support import SPAWN, START_TIMEOUT_S, run_in_processes

ALL_MIGRATIONS = migrations.discover()


@pytest.fixture
def log(db: Any) -> MessageLog:
    Agents(db).create_conversation("c")
    return MessageLog(db)


def contents(log: MessageLog, stream_id: str = "c") -> list[str]:
    return [m.content for m in log.all("router", stream_id)]


def test_pop_last_returns_the_newest_message_and_none_when_empty(log: MessageLog) -> None:
    log.append_many("router", "c", [NewMessage("user", "one"), NewMessage("assistant", "two", {"k": 1})])
    popped = log.pop_last("router", "c")
    assert popped is not None and (popped.position, popped.content, popped.metadata) == (2, "two", {"k": 1})
    assert contents(log) == ["one"]
    assert log.pop_last("router", "c") is not None
    assert log.pop_last("router", "c") is None
    assert log.pop_last("router", "no-such-conversation") is None


@pytest.mark.parametrize("removal", ["pop_last", "clear", "manual delete"])
def test_a_position_is_never_handed_out_twice(log: MessageLog, db: Any, removal: str) -> None:
    """A reader that paged up to position 3 asks for what comes after it: with max(position)+1,
    a message appended after the newest was removed reused position 3, and the reader never saw it."""
    log.append_many("router", "c", [NewMessage("user", str(n)) for n in range(1, 4)])
    seen = log.after("router", "c", 0)[-1].position
    if removal == "pop_last":
        log.pop_last("router", "c")
    elif removal == "clear":
        log.clear("router", "c")
    else:
        rows(db, "DELETE FROM router_messages WHERE conversation_id = 'c' AND position = 3")
    appended = log.append("router", "c", role="user", content="new")
    assert appended.position == 4
    assert log.last_position("router", "c") == 4
    assert [m.content for m in log.after("router", "c", seen)] == ["new"]
    batch = log.append_many("router", "c", [NewMessage("user", "a"), NewMessage("user", "b")])
    assert [m.position for m in batch] == [5, 6]


def test_clear_can_delete_the_conversation_too_and_leaves_nothing_behind(log: MessageLog, db: Any) -> None:
    log.append("router", "c", role="user", content="hello")
    log.pop_last("router", "c")  # the stream now has a head row
    assert scalar(db, "SELECT count(*) FROM message_heads") == 1
    assert log.clear("router", "c", delete_owner=True) == 0
    with pytest.raises(errors.NotFoundError):
        Agents(db).get_conversation("c")
    assert scalar(db, "SELECT count(*) FROM message_heads") == 0
    with pytest.raises(errors.NotFoundError):
        log.clear("router", "c", delete_owner=True)
    with pytest.raises(errors.InvalidValueError, match="conversations only"):
        log.clear("planner", "p", delete_owner=True)


def test_deleting_owners_leaves_no_heads_behind(db: Any) -> None:
    agents, log = Agents(db), MessageLog(db)
    agents.create_conversation("c")
    agents.create_planner("p")
    task = agentstate.TaskManager(db, "p").create_task("t")
    for stream, key in (("router", "c"), ("planner", "p"), ("worker", task.worker_id)):
        log.append_many(stream, key, [NewMessage("user", "x"), NewMessage("user", "y")])  # type: ignore[arg-type]
        log.pop_last(stream, key)  # type: ignore[arg-type]
    assert scalar(db, "SELECT count(*) FROM message_heads") == 3
    agents.delete_conversation("c")
    agents.delete_planner("p", with_tasks=True)
    assert scalar(db, "SELECT count(*) FROM message_heads") == 0


def _pop_from_process(url: str, start: Barrier) -> list[int]:
    conn = agentstate.connect(url)
    try:
        log = MessageLog(conn)
        popped: list[int] = []
        start.wait(START_TIMEOUT_S)
        while (message := log.pop_last("router", "c")) is not None:
            popped.append(message.position)
        return popped
    finally:
        conn.close()


@pytest.mark.slow
def test_processes_popping_at_once_never_get_the_same_message(db_url: str) -> None:
    conn = agentstate.connect(db_url)
    try:
        Agents(conn).create_conversation("c")
        MessageLog(conn).append_many("router", "c", [NewMessage("user", str(n)) for n in range(400)])
    finally:
        conn.close()
    start = SPAWN.Barrier(4)
    popped = run_in_processes(_pop_from_process, [(db_url, start)] * 4, timeout_s=60)
    assert sorted(p for mine in popped for p in mine) == list(range(1, 401))  # each exactly once
    for mine in popped:
        assert mine == sorted(mine, reverse=True)  # newest first, as each process saw them


def test_all_reads_a_whole_stream_in_order_across_pages(log: MessageLog) -> None:
    log.append_many("router", "c", [NewMessage("user", str(n)) for n in range(7)])
    log.pop_last("router", "c")
    assert contents(log) == [str(n) for n in range(6)]
    assert [m.content for m in log.all("router", "c", page_size=2)] == [str(n) for n in range(6)]
    assert log.all("router", "unknown") == []
    with pytest.raises(errors.InvalidValueError):
        log.all("router", "c", page_size=0)


def test_get_or_create_conversation_creates_once_and_then_returns_it_as_stored(db: Any) -> None:
    agents = Agents(db)
    made = agents.get_or_create_conversation("s-1", metadata={"user": "ada"})
    assert made.metadata == {"user": "ada"}
    again = agents.get_or_create_conversation("s-1", status="paused", metadata={"user": "bob"})
    assert again == made  # as stored: the arguments apply to a new conversation only
    with pytest.raises(errors.DuplicateError):
        agents.create_conversation("s-1")


def _get_or_create_from_process(url: str, start: Barrier) -> str:
    conn = agentstate.connect(url)
    try:
        start.wait(START_TIMEOUT_S)
        return Agents(conn).get_or_create_conversation("shared", metadata={"by": "anyone"}).created_at
    finally:
        conn.close()


@pytest.mark.slow
def test_processes_racing_to_create_a_conversation_all_get_the_same_one(db_url: str) -> None:
    start = SPAWN.Barrier(4)
    created = run_in_processes(_get_or_create_from_process, [(db_url, start)] * 4, timeout_s=60)
    conn = agentstate.connect(db_url)
    try:
        assert set(created) == {Agents(conn).get_conversation("shared").created_at}
        assert scalar(conn, "SELECT count(*) FROM conversations") == 1
    finally:
        conn.close()


def test_a_populated_version_3_database_upgrades_and_keeps_every_message(db_path: Path) -> None:
    """SQLite-only: SQLite's migrations 1-3 and PRAGMA checks (PostgreSQL starts at its 0001)."""
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, tuple(m for m in ALL_MIGRATIONS if m.version <= 3))
        conn.execute("INSERT INTO conversations (id) VALUES ('c'), ('d')")
        for n in range(1, 6):
            conn.execute(
                "INSERT INTO router_messages (conversation_id, position, role, content) VALUES ('c', ?, 'user', ?)",
                (n, f"m{n}"),
            )
        conn.execute("INSERT INTO router_messages (conversation_id, position, role, content) VALUES ('d', 1, 'user', 'x')")
        before = list(conn.execute("SELECT * FROM router_messages ORDER BY conversation_id, position"))

        migrations.migrate(conn)

        assert list(conn.execute("SELECT * FROM router_messages ORDER BY conversation_id, position")) == before
        log = MessageLog(conn)
        assert log.pop_last("router", "c") is not None
        assert log.append("router", "c", role="user", content="after").position == 6
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
