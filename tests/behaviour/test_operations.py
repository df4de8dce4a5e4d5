"""Operating a store: statistics, store-wide retention, deletes and online backup."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentstate
from agentstate import errors
from agentstate.agents import Agents
from agentstate.messages import MessageLog, NewMessage
from agentstate.sqlite import vacuum
from agentstate.tasks import TaskManager
from agentstate.values import format_time
from tests.dbdump import dump
from tests.engines import is_postgres, rows, scalar

DAY = 86400


def _ago(days: float) -> str:
    return format_time(int((time.time() - days * DAY) * 1_000_000))


def _recorded(conn: apsw.Connection, planner: str, n: int, *, size: int = 10) -> list[str]:
    tm = TaskManager(conn, planner)
    ids = [t.worker_id for t in tm.create_tasks([{"description": "x" * size} for _ in range(n)])]
    for claim in tm.claim_many("e", n):
        tm.complete(claim, result={"ok": True})
    for worker_id in ids:
        tm.record(worker_id)
    return ids


# --- stats ---------------------------------------------------------------------------------------


def test_stats_counts_what_the_store_holds(file_db: apsw.Connection) -> None:
    agents, log = Agents(file_db), MessageLog(file_db)
    agents.create_planner("p")
    agents.create_planner("q")
    agents.create_conversation("c")
    TaskManager(file_db, "p").create_tasks([{}, {}, {}])
    TaskManager(file_db, "q").create_tasks([{}])
    claim = TaskManager(file_db, "q").claim("e", lease_seconds=0.001)
    assert claim is not None
    time.sleep(0.005)
    log.append_many("router", "c", [NewMessage("user", str(i)) for i in range(4)])
    log.append("planner", "p", role="user", content="hi")
    found = agentstate.stats(file_db)
    assert found.tasks_by_status == {"pending": 3, "claimed": 1, "completed": 0, "failed_validation": 0, "recorded": 0, "cancelled": 0}
    assert found.tasks_by_planner["q"]["claimed"] == 1 and found.tasks_by_planner["p"]["pending"] == 3
    assert found.expired_leases == 1
    assert found.oldest_pending_age_seconds is not None and found.oldest_pending_age_seconds >= 0
    assert found.rows["workers"] == 4 and found.rows["router_messages"] == 4 and found.rows["planners"] == 2
    assert found.streams["router"].streams == 1 and found.streams["router"].largest == [("c", 4)]
    assert found.schema_version == len(agentstate.migrations.discover())
    assert found.file_bytes == Path(file_db.filename).stat().st_size and found.wal_bytes > 0
    assert found.page_count * found.page_size >= found.file_bytes - found.page_size
    payload = json.loads(json.dumps(found.to_dict()))
    assert {"file_bytes", "wal_bytes", "freelist_pages", "schema_version", "tasks_by_status"} <= set(payload)
    quick = agentstate.stats(file_db, full=False)
    assert quick.rows == {} and quick.tasks_by_status == found.tasks_by_status


def test_stats_warns_when_the_file_passes_its_size(file_db: apsw.Connection, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentstate"):
        assert agentstate.stats(file_db, warn_above_bytes=10**9).warnings == []
        found = agentstate.stats(file_db, warn_above_bytes=1000)
    assert found.warnings and "warning size" in found.warnings[0]
    assert any("warning size" in r.getMessage() for r in caplog.records)


def test_stats_on_both_engines(db: Any) -> None:
    """The same counts on either engine, and size facts that mean something on each: the file and
    its WAL on SQLite; on PostgreSQL, what agentstate's tables take on the server (no WAL of the
    store's own, no free pages waiting to be given back)."""
    agents, log = Agents(db), MessageLog(db)
    agents.create_planner("p")
    agents.create_planner("q")
    agents.create_conversation("c")
    TaskManager(db, "p").create_tasks([{}, {}, {}])
    TaskManager(db, "q").create_tasks([{}])
    claim = TaskManager(db, "q").claim("e", lease_seconds=0.001)
    assert claim is not None
    time.sleep(0.01)
    log.append_many("router", "c", [NewMessage("user", str(i)) for i in range(4)])
    found = agentstate.stats(db, warn_above_bytes=10**12)
    assert found.tasks_by_status == {"pending": 3, "claimed": 1, "completed": 0, "failed_validation": 0, "recorded": 0, "cancelled": 0}
    assert found.tasks_by_planner["q"]["claimed"] == 1 and found.tasks_by_planner["p"]["pending"] == 3
    assert found.expired_leases == 1 and found.warnings == []
    assert found.oldest_pending_age_seconds is not None and 0 <= found.oldest_pending_age_seconds < 60
    assert found.rows["workers"] == 4 and found.rows["router_messages"] == 4 and found.rows["planners"] == 2
    assert found.streams["router"].streams == 1 and found.streams["router"].largest == [("c", 4)]
    if is_postgres(db):
        from agentstate.postgres import migrations as postgres_migrations

        assert found.schema_version == len(postgres_migrations.discover())
    else:
        assert found.schema_version == len(agentstate.migrations.discover())
    assert found.page_size > 0 and found.page_count > 0 and found.file_bytes > 0
    if is_postgres(db):
        assert found.path == db.pool.shown and found.path.startswith("postgresql://")
        assert found.page_size == int(scalar(db, "SELECT current_setting('block_size')"))
        assert found.file_bytes == found.page_size * found.page_count
        ours = scalar(db, "SELECT pg_total_relation_size('workers') + pg_total_relation_size('router_messages')")
        assert ours <= found.file_bytes <= scalar(db, "SELECT pg_database_size(current_database())")
        assert found.wal_bytes == 0 and found.freelist_pages == 0
    else:
        assert found.path == db.filename and found.file_bytes == Path(db.filename).stat().st_size
        assert found.wal_bytes > 0
    assert {"file_bytes", "wal_bytes", "freelist_pages", "schema_version", "tasks_by_status"} <= set(
        json.loads(json.dumps(found.to_dict()))
    )
    quick = agentstate.stats(db, full=False)
    assert quick.rows == {} and quick.streams == {} and quick.tasks_by_status == found.tasks_by_status
    # The size follows what the store holds, and the warning names the store.
    log.append_many("router", "c", [NewMessage("user", os.urandom(1000).hex()) for _ in range(500)])
    grown = agentstate.stats(db, full=False, warn_above_bytes=1000)
    assert grown.file_bytes + grown.wal_bytes >= found.file_bytes + found.wal_bytes + 250_000
    assert len(grown.warnings) == 1 and grown.warnings[0].startswith(f"{found.path} holds ")


# --- retention -----------------------------------------------------------------------------------

population = st.fixed_dictionaries(
    {
        "tasks": st.lists(st.tuples(st.sampled_from(["pending", "recorded"]), st.integers(0, 60), st.integers(0, 3)), max_size=12),
        "streams": st.lists(st.lists(st.integers(0, 40), max_size=8), max_size=4),
        "events": st.integers(0, 3),
    }
)
policy = st.fixed_dictionaries(
    {
        "recorded_older_than_days": st.sampled_from([None, 30, 10]),
        "messages_older_than_days": st.sampled_from([None, 20]),
        "keep_last_messages": st.sampled_from([None, 1, 3]),
        "keep_last_events": st.sampled_from([None, 1, 2]),
        "batch_size": st.sampled_from([1, 3, 1000]),
    }
)


def _populate(conn: apsw.Connection, shape: dict[str, Any]) -> None:
    """Tasks of given status and age with worker messages, planner streams of given message ages,
    and some tasks with long histories (release + claim cycles)."""
    agents, log = Agents(conn), MessageLog(conn)
    for n, (status, age, messages) in enumerate(shape["tasks"]):
        tm = TaskManager(conn, agents.create_planner(f"tasks-{n}").planner_id)  # one task each: claim takes it
        task = tm.create_task("t")
        log.append_many("worker", task.worker_id, [NewMessage("user", str(i)) for i in range(messages)])
        for _ in range(shape["events"]):
            claim = tm.claim("e")
            assert claim is not None
            tm.release(claim)
        if status == "recorded":
            claim = tm.claim("e")
            assert claim is not None
            tm.complete(claim)
            tm.record(task.worker_id)
            conn.execute("UPDATE workers SET updated_at = ? WHERE worker_id = ?", (_ago(age), task.worker_id))
    for n, ages in enumerate(shape["streams"]):
        stream = f"planner-{n}"
        agents.create_planner(stream)
        for i, age in enumerate(sorted(ages, reverse=True)):
            message = log.append("planner", stream, role="user", content=str(i))
            conn.execute(
                "UPDATE planner_messages SET created_at = ? WHERE agent_id = ? AND position = ?",
                (_ago(age), stream, message.position),
            )


def _counts(report: agentstate.CleanupReport) -> tuple[Any, ...]:
    return (report.tasks_deleted, report.task_events_deleted, report.worker_messages_deleted, report.messages_deleted)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=population, rules=policy)
def test_a_dry_run_counts_exactly_what_the_real_run_deletes(shape: dict[str, Any], rules: dict[str, Any]) -> None:
    conn = agentstate.connect(":memory:")
    try:
        _populate(conn, shape)
        before = dump(conn)
        dry = agentstate.cleanup(conn, dry_run=True, **rules)
        assert dump(conn) == before, "a dry run wrote something"
        real = agentstate.cleanup(conn, **rules)
        assert _counts(dry) == _counts(real)
        after = dump(conn)
        removed = {t: len(before[t]) - len(after[t]) for t in before}
        assert removed["workers"] == real.tasks_deleted
        assert removed["task_events"] == real.task_events_deleted
        assert removed["worker_messages"] == real.worker_messages_deleted + real.messages_deleted["worker"]
        assert removed["planner_messages"] == real.messages_deleted["planner"]
        # the policy, checked against the rows themselves
        days = rules["recorded_older_than_days"]
        if days is not None:
            cutoff = _ago(days)
            assert not [r for r in after["workers"] if r[2] == "recorded" and r[16] < cutoff]
        for stream in {r[0] for r in before["planner_messages"]}:
            kept = [r for r in after["planner_messages"] if r[0] == stream]
            last = max(r[1] for r in before["planner_messages"] if r[0] == stream)
            assert any(r[1] == last for r in kept), "a stream's last message must stay"
            if rules["keep_last_messages"] is not None:
                assert len(kept) <= max(rules["keep_last_messages"], 1)
        if rules["keep_last_events"] is not None:
            per_task: dict[str, int] = {}
            for event in after["task_events"]:
                per_task[event[1]] = per_task.get(event[1], 0) + 1
            assert max(per_task.values(), default=0) <= rules["keep_last_events"]
    finally:
        conn.close()


def test_cleanup_gives_the_space_back_to_the_file_system(file_db: apsw.Connection, db_path: Path) -> None:
    Agents(file_db).create_planner("p")
    ids = _recorded(file_db, "p", 400, size=3000)
    file_db.execute("UPDATE workers SET updated_at = ? WHERE task_status = 'recorded'", (_ago(31),))
    vacuum.checkpoint_truncate(file_db)
    size = db_path.stat().st_size
    seen: list[tuple[str, int, int | None]] = []
    report = agentstate.cleanup(file_db, batch_size=100, progress=lambda *a: seen.append(a))
    assert report.tasks_deleted == len(ids)
    assert report.pages_freed > 250
    assert db_path.stat().st_size < size - 250 * 4096, "the file did not shrink on disk"
    assert report.file_bytes_after == db_path.stat().st_size < report.file_bytes_before
    assert seen[-1] == ("tasks", 400, 400) and len(seen) >= 4


def test_cleanup_takes_zero_days_as_everything_until_now_and_checks_days_in_days(fresh_db: apsw.Connection) -> None:
    Agents(fresh_db).create_planner("p")
    _recorded(fresh_db, "p", 3)
    assert agentstate.cleanup(fresh_db, recorded_older_than_days=0, messages_older_than_days=0).tasks_deleted == 3
    for days in (36500.001, 1e9, 1e308, float("inf"), float("nan"), -1):
        with pytest.raises(errors.InvalidValueError) as refused:
            agentstate.cleanup(fresh_db, recorded_older_than_days=days)
        assert "days" in str(refused.value) and "seconds" not in str(refused.value)
        assert str(refused.value).endswith(f"got {days!r}")  # the value given, not it in seconds
    assert agentstate.cleanup(fresh_db, recorded_older_than_days=36500, messages_older_than_days=36500).tasks_deleted == 0


def test_cleanup_on_both_engines(db: Any) -> None:
    """The same retention on either engine, in batches: a dry run counts exactly what the real run
    deletes, and the rows that go are those. On PostgreSQL no pages go back to the file system
    (autovacuum makes the space reusable inside the tables), and the report says 0."""
    agents, log = Agents(db), MessageLog(db)
    agents.create_planner("p")
    old, young = _recorded(db, "p", 5), _recorded(db, "p", 2)
    for worker_id in old + young:
        log.append_many("worker", worker_id, [NewMessage("user", f"w{i}") for i in range(3)])
    for worker_id in old:
        rows(db, "UPDATE workers SET updated_at = ? WHERE worker_id = ?", (_ago(40), worker_id))
    agents.create_conversation("c")
    log.append_many("router", "c", [NewMessage("user", str(i)) for i in range(7)])
    busy = TaskManager(db, "p")
    long_lived = busy.create_task("long-lived").worker_id
    for _ in range(4):
        claim = busy.claim("e")
        assert claim is not None
        busy.release(claim)
    before = dump(db)
    events_of_old = sum(1 for event in before["task_events"] if event[1] in old)
    rules: dict[str, Any] = {
        "recorded_older_than_days": 30,
        "keep_last_messages": 2,
        "keep_last_events": 1,
        "batch_size": 2,
    }
    dry = agentstate.cleanup(db, dry_run=True, **rules)
    assert dump(db) == before, "a dry run wrote something"
    seen: list[tuple[str, int, int | None]] = []
    real = agentstate.cleanup(db, progress=lambda *a: seen.append(a), **rules)
    assert _counts(dry) == _counts(real)
    assert real.tasks_deleted == 5 and real.worker_messages_deleted == 15
    assert real.messages_deleted == {"router": 5, "planner": 0, "worker": 2}  # the young tasks keep their last 2
    kept = [e for e in before["task_events"] if e[1] not in old]
    assert real.task_events_deleted == events_of_old + len(kept) - (len(young) + 1)  # one event left per task
    after = dump(db)
    assert {r[0] for r in after["workers"]} == {*young, long_lived}
    assert [r[1] for r in after["router_messages"]] == [6, 7]
    assert len([e for e in after["task_events"] if e[1] == long_lived]) == 1
    tables = ("workers", "task_events", "worker_messages", "router_messages")
    removed = {t: len(before[t]) - len(after[t]) for t in tables}
    assert removed == {
        "workers": real.tasks_deleted,
        "task_events": real.task_events_deleted,
        "worker_messages": real.worker_messages_deleted + real.messages_deleted["worker"],
        "router_messages": real.messages_deleted["router"],
    }
    assert seen[0][0] == "tasks" and ("tasks", 5, 5) in seen and seen[-1][0] == "events"
    assert real.file_bytes_before > 0 and real.file_bytes_after > 0
    if is_postgres(db):
        assert real.pages_freed == 0
    assert agentstate.cleanup(db, **rules).tasks_deleted == 0


# --- deletes -------------------------------------------------------------------------------------


def test_deleting_a_conversation_takes_its_messages(fresh_db: apsw.Connection) -> None:
    agents, log = Agents(fresh_db), MessageLog(fresh_db)
    agents.create_conversation("c")
    log.append_many("router", "c", [NewMessage("user", "a"), NewMessage("user", "b")])
    agents.delete_conversation("c")
    assert log.count("router", "c") == 0
    with pytest.raises(errors.NotFoundError):
        agents.delete_conversation("c")


def test_deleting_a_router_takes_its_links(fresh_db: apsw.Connection) -> None:
    agents = Agents(fresh_db)
    agents.create_router("r")
    agents.create_planner("p")
    agents.link("r", "p")
    agents.delete_router("r")
    assert agents.routers_of("p") == []


def test_a_planner_with_tasks_goes_only_when_asked_and_never_under_a_running_executor(fresh_db: apsw.Connection) -> None:
    agents, log = Agents(fresh_db), MessageLog(fresh_db)
    agents.create_planner("p")
    agents.create_planner("keep")
    tm = TaskManager(fresh_db, "p")
    tasks = tm.create_tasks([{} for _ in range(5)])
    log.append("worker", tasks[0].worker_id, role="user", content="w")
    log.append("planner", "p", role="user", content="p")
    TaskManager(fresh_db, "keep").create_task("stays")
    claim = tm.claim("e")
    assert claim is not None
    before = dump(fresh_db)
    with pytest.raises(errors.InUseError, match="with_tasks=True"):
        agents.delete_planner("p")
    with pytest.raises(errors.InUseError, match="claimed"):
        agents.delete_planner("p", with_tasks=True)
    assert dump(fresh_db) == before
    assert agents.delete_planner("p", with_tasks=True, force=True, batch_size=2) == 5
    with pytest.raises(errors.NotFoundError):
        agents.get_planner("p")
    after = dump(fresh_db)
    assert len(after["workers"]) == 1 and after["worker_messages"] == [] and after["planner_messages"] == []
    assert {e[1] for e in after["task_events"]} == {after["workers"][0][0]}


def test_clearing_a_stream_keeps_its_owner(fresh_db: apsw.Connection) -> None:
    agents, log = Agents(fresh_db), MessageLog(fresh_db)
    agents.create_planner("p")
    log.append_many("planner", "p", [NewMessage("user", str(i)) for i in range(3)])
    assert log.clear("planner", "p") == 3
    assert log.count("planner", "p") == 0 and agents.get_planner("p")
    assert log.clear("planner", "unknown") == 0


# --- backup --------------------------------------------------------------------------------------


def _append_forever(path: str, started: Any, stop: Any) -> None:
    conn = agentstate.connect(path)
    try:
        log = MessageLog(conn)
        started.set()
        i = 0
        while not stop.is_set():
            log.append("planner", "p", role="user", content=f"during {i}", metadata={"pad": "x" * 500})
            i += 1
    finally:
        conn.close()


@pytest.fixture
def busy_store(db_path: Path) -> Iterator[tuple[Path, Any]]:
    """A store with data and another process appending to it without pause."""
    conn = agentstate.connect(db_path)
    Agents(conn).create_planner("p")
    MessageLog(conn).append_many("planner", "p", [NewMessage("user", f"before {i}", {"pad": "y" * 500}) for i in range(3000)])
    conn.close()
    ctx = multiprocessing.get_context("spawn")
    started, stop = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_append_forever, args=(str(db_path), started, stop))
    writer.start()
    assert started.wait(60)
    yield db_path, stop
    stop.set()
    writer.join(60)


@pytest.mark.slow
def test_a_backup_under_a_concurrent_writer_is_one_consistent_private_copy(busy_store: tuple[Path, Any], tmp_path: Path) -> None:
    path, stop = busy_store
    conn = agentstate.connect(path)
    try:
        committed = MessageLog(conn).last_position("planner", "p")  # before the backup begins
        watcher = agentstate.connect(path)
        progress: list[tuple[int, int]] = []

        first_step: list[int] = []

        def step(copied: int, total: int) -> None:
            if not progress:  # mid-copy: the writer must be able to commit meanwhile
                first_step.append(MessageLog(watcher).last_position("planner", "p"))
                deadline = time.monotonic() + 30
                while MessageLog(watcher).last_position("planner", "p") <= committed + 10:
                    assert time.monotonic() < deadline, "the backup blocked the writer"
                    time.sleep(0.01)
            progress.append((copied, total))

        old = os.umask(0o022)
        try:
            report = agentstate.backup(conn, tmp_path / "copy.db", pages_per_step=64, progress=step)
        finally:
            os.umask(old)
            watcher.close()
    finally:
        conn.close()
    stop.set()
    copy = tmp_path / "copy.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert len(progress) > 3 and progress[-1][0] == progress[-1][1] == report.pages
    plain = apsw.Connection(str(copy))
    try:
        assert plain.execute("PRAGMA integrity_check").get == "ok"
        positions = [r[0] for r in plain.execute("SELECT position FROM planner_messages ORDER BY position")]
        assert positions == list(range(1, len(positions) + 1)), "the copy is not one snapshot"
        # everything committed before the backup began, nothing the writer added while it ran
        assert committed <= len(positions) <= first_step[0]
    finally:
        plain.close()
    opened = agentstate.connect(copy, migrate=False)
    try:
        assert agentstate.status(opened).version == report.schema_version == len(agentstate.migrations.discover())
    finally:
        opened.close()


def test_a_backup_refuses_to_overwrite_and_leaves_nothing_on_failure(file_db: apsw.Connection, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    target.write_text("precious")
    with pytest.raises(errors.InvalidValueError, match="exists"):
        agentstate.backup(file_db, target)
    assert target.read_text() == "precious"
    with pytest.raises(errors.InvalidValueError, match="itself"):
        agentstate.backup(file_db, file_db.filename, overwrite=True)
    agentstate.backup(file_db, target, overwrite=True)
    assert target.stat().st_size > len("precious")


def test_a_long_stream_is_trimmed_over_many_short_transactions(db_url: str) -> None:
    deletes: list[int] = []

    def seen(name: str, seconds: float, rows: int) -> None:
        if name == "retention.delete_old_planner_messages":
            deletes.append(rows)

    conn = agentstate.connect(db_url, on_query=seen)
    try:
        Agents(conn).create_planner("long")
        MessageLog(conn).append_many("planner", "long", [NewMessage("user", str(i)) for i in range(1000)])
        report = agentstate.cleanup(conn, recorded_older_than_days=None, keep_last_messages=1, batch_size=100)
        assert report.messages_deleted["planner"] == 999
        assert sum(deletes) == 999 and max(deletes) <= 100 and len(deletes) >= 10
        assert [m.content for m in MessageLog(conn).latest("planner", "long", 5)] == ["999"]
    finally:
        conn.close()
