"""``agentstate.connect("postgresql://...")``: the handle, its options, and what it refuses.

The behaviour of the managers on it is tested by the suites parametrised over both engines
(tests/behaviour/test_tasks.py and the others, through the ``db`` fixture); this file covers what only the
PostgreSQL handle has: the URL, the pool and its options, read-only sessions, a server that is
not there, threads sharing one handle, the async handle, and the command line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
from postgres_server import Server

import agentstate
from agentstate import errors
from agentstate.postgres import migrations
from agentstate.postgres.handle import PostgresConnection


@pytest.fixture
def url(pg_server: Server, pg_template: str) -> Any:
    from tests.engines import fresh_database

    name, _ = fresh_database(pg_server, pg_template)
    yield pg_server.url(name)
    pg_server.drop_database(name)


def test_a_url_opens_a_pooled_handle_with_the_options_given(url: str) -> None:
    conn = agentstate.connect(url, pool_size=3, application_name="planner-7", statement_timeout_ms=5000)
    try:
        assert isinstance(conn, PostgresConnection)
        assert conn.pool.max_size == 3
        with conn.session() as session:
            names = session.execute("SHOW application_name").fetchone()[0]
            timeout = session.execute("SHOW statement_timeout").fetchone()[0]
            lock = session.execute("SHOW lock_timeout").fetchone()[0]
            zone = session.execute("SHOW TimeZone").fetchone()[0]
        assert (names, timeout, lock, zone) == ("planner-7", "5s", "10s", "UTC")
        assert agentstate.status(conn).pending == ()
        assert "password" not in repr(conn)
    finally:
        conn.close()


def test_the_schema_is_migrated_once_and_checked_when_not_migrating(pg_server: Server) -> None:
    name = "agentstate_handle_empty"
    pg_server.create_database(name)
    try:
        with pytest.raises(errors.SchemaOutdatedError, match="0001_initial.sql"):
            agentstate.connect(pg_server.url(name), migrate=False)
        with pytest.raises(errors.SchemaOutdatedError):
            agentstate.connect(pg_server.url(name), readonly=True)
        conn = agentstate.connect(pg_server.url(name))
        try:
            assert agentstate.status(conn).version == migrations.discover()[-1].version  # every file, applied
            assert agentstate.migrate(conn) == []
        finally:
            conn.close()
    finally:
        pg_server.drop_database(name)


def test_a_readonly_handle_refuses_writes_and_changes_nothing(url: str) -> None:
    conn = agentstate.connect(url, readonly=True)
    try:
        with pytest.raises(errors.ReadOnlyError):
            agentstate.Agents(conn).create_planner("p")
        assert agentstate.Agents(conn).list_planners() == []
    finally:
        conn.close()


def test_a_server_that_is_not_there_fails_fast_with_a_clear_error(tmp_path: Any) -> None:
    begin = time.monotonic()
    with pytest.raises(errors.ConnectionLostError, match="could not connect"):
        agentstate.connect(f"postgresql:///nothing?host={tmp_path}&port=1", connect_timeout_s=0.5)
    assert time.monotonic() - begin < 10


def test_a_lock_held_past_the_busy_timeout_is_a_database_busy_error(url: str) -> None:
    conn = agentstate.connect(url, busy_timeout_ms=200)
    blocker = psycopg.connect(url.replace("postgresql://", "postgresql://", 1), autocommit=False)
    try:
        agentstate.Agents(conn).create_planner("p")
        blocker.execute("SELECT * FROM planners WHERE planner_id = 'p' FOR UPDATE")
        with pytest.raises(errors.DatabaseBusyError):
            agentstate.Agents(conn).update_planner("p", status="paused")
        blocker.rollback()
        assert agentstate.Agents(conn).update_planner("p", status="paused").status == "paused"
    finally:
        blocker.close()
        conn.close()


def test_threads_share_one_handle_each_in_its_own_transaction(url: str) -> None:
    conn = agentstate.connect(url, pool_size=4)
    try:
        agentstate.Agents(conn).create_planner("p")
        tasks = agentstate.TaskManager(conn, "p")
        tasks.create_tasks([{"description": f"t{i}"} for i in range(200)])
        claimed: list[str] = []
        lock = threading.Lock()

        def work(owner: str) -> None:
            while (claim := tasks.claim(owner)) is not None:
                tasks.complete(claim, result={"by": owner})
                with lock:
                    claimed.append(claim.worker_id)

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 200
        assert tasks.counts()["completed"] == 200
    finally:
        conn.close()


def test_the_async_handle_runs_the_async_classes(url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(url)
        try:
            agents = agentstate.AsyncAgents(conn)
            await agents.create_planner("p")
            await agents.create_conversation("c")
            tasks = agentstate.AsyncTaskManager(conn, "p")
            await tasks.create_task("one")
            claims = await asyncio.gather(*(tasks.claim(f"w{i}") for i in range(4)))
            assert sum(c is not None for c in claims) == 1
            log = agentstate.AsyncMessageLog(conn)
            await asyncio.gather(*(log.append("router", "c", role="user", content=str(i)) for i in range(20)))
            assert [m.position for m in await log.latest("router", "c", 50)] == list(range(1, 21))
            with pytest.raises(errors.InvalidTypeError, match="write_async"):
                async with agentstate.write_async(conn):
                    pass
            with pytest.raises(errors.InvalidTypeError):
                agentstate.TaskManager(conn, "p").get_current_task()  # the sync class on an async handle
        finally:
            await conn.aclose()

    asyncio.run(main())


def test_bad_options_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(errors.InvalidValueError):
        agentstate.connect(url, pool_size=0)
    with pytest.raises(errors.InvalidTypeError):
        agentstate.connect(url, application_name=5)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidValueError):
        agentstate.connect(url, connect_timeout_s=-1)


def test_the_command_line_migrates_and_runs_the_demo_on_a_url(pg_server: Server) -> None:
    name = "agentstate_handle_cli"
    pg_server.create_database(name)
    url = pg_server.url(name)
    command = [sys.executable, "-m", "agentstate.cli"]
    try:
        listed = subprocess.run([*command, "migrate", url, "--list"], capture_output=True, text=True, timeout=60)
        assert "pending  0001_initial.sql" in listed.stdout, listed.stderr
        applied = subprocess.run([*command, "migrate", url], capture_output=True, text=True, timeout=60)
        assert "applied  0001_initial.sql" in applied.stdout, applied.stderr
        demo = subprocess.run([*command, "demo", "--db", url, "--tasks", "4"], capture_output=True, text=True, timeout=60)
        assert demo.returncode == 0 and "recorded 4 tasks" in demo.stdout, demo.stderr
        refused = subprocess.run([*command, "stats", url], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "works on SQLite files" in refused.stderr
    finally:
        pg_server.drop_database(name)


def test_run_each_of_no_parameter_sets_returns_nothing(url: str) -> None:
    """executemany of an empty list left psycopg with no result to fetch (the LangGraph
    conformance suite's copy_thread of an empty thread found it: ProgrammingError)."""
    from agentstate import runner

    conn = agentstate.connect(url)
    try:
        assert runner.run_each(conn, "langgraph.writes", []) == []
        assert runner.run_each(conn, "langgraph.delete_thread_writes", []) == 0
    finally:
        conn.close()


def test_the_openai_agents_session_runs_on_a_url_and_on_a_handle(url: str) -> None:
    from agentstate.integrations.openai_agents import AgentStateSession

    async def main() -> None:
        async with AgentStateSession("s1", url) as session:
            await session.add_items([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
            assert await session.get_items(limit=1) == [{"role": "assistant", "content": "yo"}]
            assert await session.pop_item() == {"role": "assistant", "content": "yo"}
        conn = await agentstate.connect_async(url)
        try:
            session = AgentStateSession("s1", conn)
            assert await session.get_items() == [{"role": "user", "content": "hi"}]
            await session.add_items([{"role": "user", "content": "again"}])
            assert [m.position for m in await agentstate.AsyncMessageLog(conn).latest("router", "s1", 50)] == [1, 3]
            await session.clear_session()
            assert await session.get_items() == []
        finally:
            await conn.aclose()

    asyncio.run(main())


def test_a_backup_of_an_sqlite_file_refuses_a_postgresql_handle(url: str, tmp_path: Any) -> None:
    conn = agentstate.connect(url)
    try:
        with pytest.raises(errors.InvalidTypeError, match="pg_dump"):
            agentstate.backup(conn, tmp_path / "copy.db")
        with pytest.raises(errors.InvalidTypeError, match="pg_dump"):
            agentstate.backup(url, tmp_path / "copy.db")
        assert not (tmp_path / "copy.db").exists()
    finally:
        conn.close()


def test_stats_and_cleanup_run_on_a_handle_of_one_pooled_connection(url: str) -> None:
    """Both run on a PostgreSQL handle (they refused it once); nothing in them needs a second
    pooled connection while their own transaction holds the first (the schema version is read
    on one of its own, so it is read before the snapshot), so a pool of one does not wait out
    connect_timeout_s."""
    conn = agentstate.connect(url, pool_size=1, connect_timeout_s=2)
    try:
        agentstate.Agents(conn).create_planner("p")
        tm = agentstate.TaskManager(conn, "p")
        task = tm.create_task("t")
        claim = tm.claim("e")
        assert claim is not None
        tm.complete(claim)
        tm.record(task.worker_id)
        found = agentstate.stats(conn)
        assert found.schema_version >= 1 and found.tasks_by_status["recorded"] == 1
        assert found.wal_bytes == 0 and found.freelist_pages == 0 and found.file_bytes > 0
        assert agentstate.cleanup(conn, recorded_older_than_days=0, dry_run=True).tasks_deleted == 1
        report = agentstate.cleanup(conn, recorded_older_than_days=0, keep_last_events=1)
        assert report.tasks_deleted == 1 and report.pages_freed == 0
        assert agentstate.stats(conn, full=False).tasks_by_status["recorded"] == 0
    finally:
        conn.close()


def test_stats_and_cleanup_refuse_an_async_handle(url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(url)
        try:
            with pytest.raises(errors.InvalidTypeError, match="connect_async"):
                agentstate.stats(conn)  # type: ignore[arg-type]
            with pytest.raises(errors.InvalidTypeError, match="connect_async"):
                agentstate.cleanup(conn)  # type: ignore[arg-type]
        finally:
            await conn.aclose()

    asyncio.run(main())


def test_stats_measures_a_wait_on_the_servers_clock(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server stamps created_at, so the oldest pending task's age is measured on its clock:
    a host whose clock runs an hour fast still reports the real wait."""
    conn = agentstate.connect(url)
    try:
        agentstate.Agents(conn).create_planner("p")
        agentstate.TaskManager(conn, "p").create_task("t")
        real = time.time_ns
        monkeypatch.setattr(time, "time_ns", lambda: real() + 3600 * 10**9)
        found = agentstate.stats(conn)
        monkeypatch.undo()
        assert found.oldest_pending_age_seconds is not None and 0 <= found.oldest_pending_age_seconds < 600
    finally:
        conn.close()


def test_a_pop_racing_an_append_pops_the_message_committed_before_it(url: str) -> None:
    """A pop that starts while an append holds its stream's head must wait and pop that message,
    as on SQLite (where the pop waits for the write lock). Read under its own statement's
    snapshot, the pop took the message before it: the newest message survived a pop_last."""
    conn = agentstate.connect(url)
    try:
        agentstate.Agents(conn).create_conversation("c")
        log = agentstate.MessageLog(conn)
        log.append("router", "c", role="user", content="older")
        appending, popped = threading.Event(), []

        def append_slowly() -> None:
            with agentstate.write(conn):
                log.append("router", "c", role="user", content="newer")
                appending.set()
                time.sleep(0.5)  # the pop arrives while this transaction holds the head

        writer = threading.Thread(target=append_slowly)
        writer.start()
        assert appending.wait(10)
        popped.append(log.pop_last("router", "c"))
        writer.join(10)
        assert popped[0] is not None and popped[0].content == "newer"
        assert [m.content for m in log.latest("router", "c", 10)] == ["older"]
    finally:
        conn.close()


@pytest.mark.parametrize("bad", ["postgresql:///db?nosuchoption=1", "postgresql://%zz@/db", "postgresql:///db?host"])
def test_a_malformed_url_is_refused_at_once(bad: str) -> None:
    begin = time.monotonic()
    with pytest.raises(errors.InvalidValueError, match="not a valid PostgreSQL URL"):
        agentstate.connect(bad, connect_timeout_s=5)
    assert time.monotonic() - begin < 2  # not retried until the connect timeout


def test_queries_are_timed_and_slow_ones_logged(url: str, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, int]] = []
    conn = agentstate.connect(url, slow_query_ms=0, on_query=lambda name, seconds, rows: seen.append((name, rows)))
    try:
        with caplog.at_level("WARNING", logger="agentstate"):
            agentstate.Agents(conn).list_planners()
        assert ("agents.list_planners", 0) in seen
        assert agentstate.query_stats()["agents.list_planners"].calls >= 1
        line = next(r.getMessage() for r in caplog.records if "agents.list_planners" in r.getMessage())
        assert "see EXPLAIN on the server" in line and "no plan" not in line
    finally:
        conn.close()


def test_a_forked_child_cannot_use_its_parents_handle(url: str) -> None:
    import os

    conn = agentstate.connect(url)
    try:
        agentstate.Agents(conn).create_planner("p")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what using the parent's handle raised, then leave at once
            try:
                agentstate.Agents(conn).list_planners()
                answer = b"no error"
            except errors.WrongProcessError:
                answer = b"WrongProcessError"
            except BaseException as exc:  # anything else is the failure to report
                answer = type(exc).__name__.encode()
            os.write(write, answer)
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        assert os.read(read, 100) == b"WrongProcessError"
        os.close(read)
        assert [p.planner_id for p in agentstate.Agents(conn).list_planners()] == ["p"]  # the parent's still works
    finally:
        conn.close()


def test_a_closed_handle_refuses_calls_with_an_agentstate_error(url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(url)
        tasks = agentstate.AsyncAgents(conn)
        await tasks.list_planners()  # the handle's threads exist
        await conn.aclose()
        with pytest.raises(errors.AgentStateError, match="closed"):
            await tasks.list_planners()

    asyncio.run(main())
    conn = agentstate.connect(url)
    conn.close()
    with pytest.raises(errors.AgentStateError, match="closed"):
        agentstate.Agents(conn).list_planners()
