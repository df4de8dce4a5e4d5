"""Defects that could lose, wipe or duplicate data, or break the error contract: one test each.

Each test here failed on the code before its fix (see the hardening issue's list, items 1-17).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import threading
import time
import unittest.mock
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import pytest

import agentstate
from agentstate import async_calls, engine, errors, migrations, schema_files
from agentstate.agents import Agents
from agentstate.messages import MessageLog
from agentstate.sqlite import wal_checkpoints as checkpoint
from agentstate.tasks import TaskManager
from agentstate.values import utc_now
from tests.dbdump import dump


@pytest.fixture
def planner_db(db_path: Path) -> Iterator[apsw.Connection]:
    conn = agentstate.connect(db_path)
    Agents(conn).create_planner("p")
    Agents(conn).create_planner("q")
    yield conn
    conn.close()


def _schema_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "schema"
    shutil.copytree(schema_files.schema_dir(), folder)
    return folder


def _next_file(folder: Path, name: str, sql: str) -> Path:
    version = len(migrations.discover(folder)) + 1
    path = folder / f"{version:04d}_{name}.sql"
    path.write_text(sql)
    return path


# --- 1. a migration that rebuilds a table keeps its children -----------------------------------


def _rebuild_workers_sql(conn: apsw.Connection) -> str:
    """SQLite's create-copy-drop-rename procedure for `workers`, as a migration file would do it,
    widening the status CHECK the way a new status would."""
    table = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'workers'").get
    assert isinstance(table, str)
    # a table SQLite has renamed before is stored as CREATE TABLE "workers"
    new_table = re.sub(r'CREATE TABLE "?workers"?', "CREATE TABLE workers_new", table, count=1)
    new_table = new_table.replace("'recorded'", "'recorded', 'archived'", 1)
    assert new_table != table
    others = [
        row[0]
        for row in conn.execute(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = 'workers' AND type IN ('index', 'trigger') AND sql IS NOT NULL"
        )
    ]
    # A trigger on another table whose body names workers (0009's trg_task_dependencies_added)
    # would make the RENAME fail while workers is gone: dropped first, re-created after.
    naming = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name != 'workers' AND sql LIKE '%workers%'"
    ).fetchall()
    assert naming, "the schema has no such trigger any more: this step can go"
    return "\n".join(
        [
            *(f"DROP TRIGGER {name};" for name, _ in naming),
            new_table + ";",
            "INSERT INTO workers_new SELECT * FROM workers;",
            "DROP TABLE workers;",
            "ALTER TABLE workers_new RENAME TO workers;",
            *(sql + ";" for sql in others),
            *(sql + ";" for _, sql in naming),
        ]
    )


def test_a_migration_that_rebuilds_workers_keeps_every_event_and_message(tmp_path: Path, db_path: Path) -> None:
    folder = _schema_folder(tmp_path)
    conn = agentstate.connect(db_path)
    try:
        Agents(conn).create_planner("p")
        task = TaskManager(conn, "p").create_task("t")
        MessageLog(conn).append("worker", task.worker_id, role="user", content="hello")
        _next_file(folder, "rebuild_workers", _rebuild_workers_sql(conn))
        before = (dump(conn)["task_events"], dump(conn)["worker_messages"])
        assert before[0] and before[1]
        migrations.migrate(conn, migrations.discover(folder))
        assert (dump(conn)["task_events"], dump(conn)["worker_messages"]) == before
        assert conn.pragma("foreign_keys") == 1, "foreign keys must be on again after the migration"
        conn.execute("UPDATE workers SET task_status = 'archived' WHERE worker_id = ?", (task.worker_id,))
    finally:
        conn.close()


def test_a_migration_that_orphans_rows_is_refused_and_rolled_back(tmp_path: Path, db_path: Path) -> None:
    folder = _schema_folder(tmp_path)
    conn = agentstate.connect(db_path)
    try:
        Agents(conn).create_planner("p")
        TaskManager(conn, "p").create_task("t")
        _next_file(folder, "orphan", "DELETE FROM planners;")
        before = dump(conn)
        with pytest.raises(errors.MigrationIntegrityError, match="workers"):
            migrations.migrate(conn, migrations.discover(folder))
        assert dump(conn) == before
        assert conn.pragma("foreign_keys") == 1
    finally:
        conn.close()


def test_a_no_transaction_migration_runs_outside_a_transaction(tmp_path: Path, db_path: Path) -> None:
    folder = _schema_folder(tmp_path)
    _next_file(folder, "vacuum", "-- transactional: false\nVACUUM;\n")
    conn = agentstate.connect(db_path)
    try:
        applied = migrations.migrate(conn, migrations.discover(folder))
        assert [m.name for m in applied] == ["vacuum"]
        assert migrations.status(conn, migrations.discover(folder)).pending == ()
        assert conn.pragma("user_version") == len(migrations.discover(folder))
    finally:
        conn.close()


# --- 2. the WAL hook never fails a commit ---------------------------------------------------------


def test_a_failing_wal_hook_does_not_report_a_committed_write_as_failed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = agentstate.connect(db_path)
    try:

        def no_threads(self: checkpoint.Checkpointer) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        monkeypatch.setattr(checkpoint.Checkpointer, "_ensure_running", no_threads)
        for hooked in checkpoint._checkpointers.values():
            hooked._due_at = 0  # the next commit is due for a checkpoint
        with caplog.at_level(logging.WARNING, logger="agentstate"):
            Agents(conn).create_planner("p")  # must not raise
        assert Agents(conn).get_planner("p").planner_id == "p"
        assert any("checkpoint" in r.getMessage() for r in caplog.records)
    finally:
        conn.close()


# --- 3. write() and async connections ------------------------------------------------------------


def test_write_refuses_an_async_connection_and_write_async_commits(db_path: Path) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            with pytest.raises(errors.InvalidTypeError, match="write_async"), agentstate.write(conn):  # type: ignore[arg-type]
                pass
            async with agentstate.write_async(conn):
                await conn.execute("INSERT INTO planners (planner_id) VALUES ('a')")
            with pytest.raises(errors.DuplicateError):
                async with agentstate.write_async(conn):
                    await conn.execute("INSERT INTO planners (planner_id) VALUES ('b')")
                    await conn.execute("INSERT INTO planners (planner_id) VALUES ('a')")
            rows = await (await conn.execute("SELECT planner_id FROM planners ORDER BY 1")).fetchall()
            assert rows == [("a",)]
            assert await async_calls.run_async(conn, conn.get_autocommit)  # type: ignore[arg-type]
        finally:
            await conn.aclose()

    asyncio.run(main())


# --- 4. a connection used after fork -------------------------------------------------------------


def test_a_forked_child_cannot_use_its_parents_connection(planner_db: apsw.Connection) -> None:
    before = dump(planner_db)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happened, then leave without running any cleanup
        outcome = "wrote"
        try:
            TaskManager(planner_db, "p").create_task("from the child")
        except errors.WrongProcessError as exc:
            outcome = f"refused: {exc}"
        except BaseException as exc:
            outcome = f"other: {exc!r}"
        os.write(write, outcome.encode()[:4000])
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        outcome = pipe.read()
    os.waitpid(pid, 0)
    assert outcome.startswith("refused"), outcome
    assert "fork" in outcome and str(os.getpid()) in outcome
    assert dump(planner_db) == before
    TaskManager(planner_db, "p").create_task("the parent still can")


# --- 5 and 6. retention gives the space back, and stays in its planner -------------------------


def _checkpoint(conn: apsw.Connection) -> None:
    """A TRUNCATE checkpoint, retried while the background checkpointer runs one of its own."""
    for _ in range(100):
        try:
            conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
            return
        except apsw.BusyError:
            time.sleep(0.01)
    raise AssertionError("could not checkpoint")


def _recorded_tasks(conn: apsw.Connection, planner: str, n: int, size: int) -> None:
    tm = TaskManager(conn, planner)
    tm.create_tasks([{"description": "x" * size} for _ in range(n)])
    executor = TaskManager(conn, planner)
    while (claim := executor.claim("e")) is not None:
        executor.complete(claim, result={"ok": True})
    while (task := tm.get_completed_task()) is not None:
        tm.record(task.worker_id)


def test_purge_recorded_hands_every_freed_page_back(planner_db: apsw.Connection, db_path: Path) -> None:
    _recorded_tasks(planner_db, "p", 300, 4000)
    _checkpoint(planner_db)
    pages_before, size_before = planner_db.pragma("page_count"), db_path.stat().st_size
    time.sleep(0.002)
    assert TaskManager(planner_db, "p").purge_recorded(older_than_seconds=0.001) == 300
    assert planner_db.pragma("freelist_count") == 0
    assert planner_db.pragma("page_count") < pages_before - 250
    _checkpoint(planner_db)
    assert db_path.stat().st_size < size_before - 250 * 4096


def test_a_planners_purge_deletes_only_its_own_tasks(planner_db: apsw.Connection) -> None:
    _recorded_tasks(planner_db, "p", 5, 10)
    _recorded_tasks(planner_db, "q", 7, 10)
    time.sleep(0.002)
    assert TaskManager(planner_db, "p").purge_recorded(older_than_seconds=0.001) == 5
    assert TaskManager(planner_db, "q").counts()["recorded"] == 7
    assert TaskManager(planner_db).purge_recorded(older_than_seconds=0.001) == 7  # no planner: store-wide


# --- 7. poison tasks end, and a release is not an attempt ---------------------------------------


def test_a_task_whose_executors_keep_dying_stops_being_handed_out(planner_db: apsw.Connection) -> None:
    tm = TaskManager(planner_db, "p")
    task = tm.create_task("poison", max_attempts=2)
    for _ in range(2):
        claim = tm.claim("doomed", lease_seconds=0.001)
        assert claim is not None and claim.worker_id == task.worker_id
        time.sleep(0.005)  # the executor died: its lease runs out
    assert tm.claim("next", lease_seconds=0.001) is None
    dead = tm.get_task(task.worker_id)
    assert dead.task_status == "failed_validation"
    assert dead.attempts == 2
    assert "lease" in str(dead.result)
    assert tm.get_completed_task() == dead  # the planner hears of it, and may record it
    assert tm.history(task.worker_id)[-1].to_status == "failed_validation"


def test_release_does_not_use_up_an_attempt(planner_db: apsw.Connection) -> None:
    tm = TaskManager(planner_db, "p")
    task = tm.create_task("t", max_attempts=1)
    for _ in range(5):
        claim = tm.claim("polite")
        assert claim is not None
        tm.release(claim)
    assert tm.get_task(task.worker_id).attempts == 0
    claim = tm.claim("last")
    assert claim is not None and claim.task.attempts == 1


def test_the_dead_letter_sweep_is_scoped_to_the_claiming_planner(planner_db: apsw.Connection) -> None:
    p, q = TaskManager(planner_db, "p"), TaskManager(planner_db, "q")
    task = q.create_task("q's poison", max_attempts=1)
    assert q.claim("doomed", lease_seconds=0.001) is not None
    time.sleep(0.005)
    assert p.claim("other") is None
    assert q.get_task(task.worker_id).task_status == "claimed"  # p's claim left q's task alone
    assert TaskManager(planner_db).claim("any") is None
    assert q.get_task(task.worker_id).task_status == "failed_validation"


# --- 8. time ranges only take timestamps that sort ----------------------------------------------


def test_between_refuses_or_normalises_timestamps_that_do_not_sort(planner_db: apsw.Connection) -> None:
    log = MessageLog(planner_db)
    log.append("planner", "p", role="user", content="hi")
    assert len(log.between("planner", "p", since=datetime(999, 1, 1, tzinfo=UTC))) == 1
    assert len(log.between("planner", "p", since="1999-01-01T00:00:00.000000Z")) == 1
    with pytest.raises(errors.InvalidValueError, match="2024-1-5"):
        log.between("planner", "p", since="2024-1-5T10:00:00.0Z")
    with pytest.raises(errors.InvalidValueError):
        log.between("planner", "p", until="2024-01-05T10:00:00Z")


# --- 9. idempotency compares JSON exactly ---------------------------------------------------------


@pytest.mark.parametrize(("first", "retry"), [({"ok": 1}, {"ok": True}), ({"n": 1}, {"n": 1.0}), ([0], [False])])
def test_an_idempotent_retry_must_carry_the_same_json(planner_db: apsw.Connection, first: Any, retry: Any) -> None:
    log = MessageLog(planner_db)
    log.append("planner", "p", role="user", content="c", metadata=first, idempotency_key="k")
    with pytest.raises(errors.IdempotencyConflictError):
        log.append("planner", "p", role="user", content="c", metadata=retry, idempotency_key="k")
    same_keys_other_order = {"b": 2, "a": 1}
    log.append("planner", "p", role="user", content="c", metadata={"a": 1, "b": 2}, idempotency_key="k2")
    assert log.append("planner", "p", role="user", content="c", metadata=same_keys_other_order, idempotency_key="k2")


# --- 10. a manual UPDATE is not attributed to the last executor -----------------------------------


def test_a_manual_requeue_is_recorded_as_manual_at_its_own_time(planner_db: apsw.Connection) -> None:
    tm = TaskManager(planner_db, "p")
    task = tm.create_task("t")
    claim = tm.claim("executor-1")
    assert claim is not None
    time.sleep(0.002)
    before = utc_now()
    planner_db.execute(
        "UPDATE workers SET task_status = 'pending', lease_owner = NULL, lease_expires_at = NULL WHERE worker_id = ?",
        (task.worker_id,),
    )
    event = tm.history(task.worker_id)[-1]
    assert (event.from_status, event.to_status) == ("claimed", "pending")
    assert event.actor is None
    assert event.at >= before[:23] + "000Z"  # SQLite's clock, in the trigger, counts milliseconds


# --- 11. times are stamped under the write lock ---------------------------------------------------


def _hold_the_lock(path: Path, seconds: float) -> tuple[threading.Thread, list[str]]:
    """Another connection holds the write lock for ``seconds``; returns when it holds it."""
    released: list[str] = []
    holding = threading.Event()

    def hold() -> None:
        other = agentstate.connect(path)
        try:
            other.execute("BEGIN IMMEDIATE")
            holding.set()
            time.sleep(seconds)
            released.append(utc_now())
            other.execute("COMMIT")
        finally:
            other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait()
    return thread, released


@pytest.mark.parametrize("step", ["create", "record", "retry", "heartbeat", "complete"])
def test_times_are_stamped_after_the_lock_is_taken(planner_db: apsw.Connection, db_path: Path, step: str) -> None:
    tm = TaskManager(planner_db, "p")
    task = tm.create_task("t")
    claim = tm.claim("e", lease_seconds=60)
    assert claim is not None
    if step == "record":
        tm.complete(claim)
    elif step == "retry":
        tm.fail_validation(claim)
    thread, released = _hold_the_lock(db_path, 0.3)
    started = time.time()
    if step == "create":
        stamp = tm.create_task("late").created_at
    elif step == "record":
        stamp = tm.record(task.worker_id).updated_at
    elif step == "retry":
        stamp = tm.retry(task.worker_id).updated_at
    elif step == "heartbeat":
        lease = tm.heartbeat(claim, lease_seconds=60).lease_expires_at
        # the lease runs 60 s from when it was granted, not from when the call began waiting
        assert lease >= agentstate.values.format_time(int((started + 60.25) * 1_000_000))
        stamp = tm.get_task(task.worker_id).updated_at
    else:
        stamp = tm.complete(claim).updated_at
    thread.join()
    assert stamp >= released[0]


# --- 12. a user_version that disagrees with schema_migrations -------------------------------------


def test_a_user_version_that_disagrees_with_the_bookkeeping_is_refused(db_path: Path) -> None:
    agentstate.connect(db_path).close()
    plain = apsw.Connection(str(db_path))
    plain.execute("PRAGMA user_version = 41")
    plain.close()
    latest = len(migrations.discover())
    with pytest.raises(errors.SchemaVersionMismatchError, match=rf"41.*{latest}|{latest}.*41"):
        agentstate.connect(db_path)


# --- 13. the error contract ----------------------------------------------------------------------


def test_huge_durations_are_refused_not_overflowed(planner_db: apsw.Connection) -> None:
    tm = TaskManager(planner_db, "p")
    tm.create_task("t")
    with pytest.raises(errors.InvalidValueError, match="lease_seconds"):
        tm.claim("e", lease_seconds=1e12)
    with pytest.raises(errors.InvalidValueError, match="older_than_seconds"):
        tm.purge_recorded(older_than_seconds=1e12)


def test_a_misspelled_task_field_is_named(planner_db: apsw.Connection) -> None:
    with pytest.raises(errors.InvalidValueError, match="descripton"):
        TaskManager(planner_db, "p").create_tasks([{"descripton": "typo"}])


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda tm, log: tm.create_tasks(None), errors.InvalidTypeError),
        (lambda tm, log: tm.complete_many(None), errors.InvalidTypeError),
        (lambda tm, log: tm.complete_many([tm.claim("e")]), errors.InvalidTypeError),
        (lambda tm, log: log.append_many("planner", "p", None), errors.InvalidTypeError),
        (lambda tm, log: log.append_bulk("planner", None), errors.InvalidTypeError),
        (lambda tm, log: Agents(tm.conn).list_planners("active", after="x"), errors.InvalidTypeError),
        (lambda tm, log: tm.get_task("\ud800"), errors.InvalidValueError),
        (lambda tm, log: log.append("planner", "p", role="user", content="\ud800"), errors.InvalidValueError),
        (lambda tm, log: log.append("planner", "p", role="user", content="c", metadata={"k": "\udfff"}), errors.InvalidValueError),
        (lambda tm, log: tm.create_task("\ud800"), errors.InvalidValueError),
        (lambda tm, log: Agents(tm.conn).create_planner("x", status="\ud800"), errors.InvalidValueError),
    ],
)
def test_bad_arguments_raise_agentstate_errors_and_change_nothing(
    planner_db: apsw.Connection, call: Any, exc: type[Exception]
) -> None:
    tm, log = TaskManager(planner_db, "p"), MessageLog(planner_db)
    tm.create_task("t")
    before = dump(planner_db)
    with pytest.raises(exc):
        call(tm, log)
    assert planner_db.get_autocommit()
    after = dump(planner_db)
    # the claim in one of the calls is part of the call under test's setup
    after.pop("task_events"), before.pop("task_events"), after.pop("workers"), before.pop("workers")
    assert after == before


def test_complete_and_claim_next_by_id_without_an_owner_says_what_to_pass(planner_db: apsw.Connection) -> None:
    TaskManager(planner_db, "p").create_task("t")
    executor = TaskManager(planner_db)
    claim = executor.claim("e")
    assert claim is not None
    with pytest.raises(errors.InvalidValueError, match="Claim|actor"):
        executor.complete_and_claim_next(claim.worker_id, claim.token)


def test_a_stale_snapshot_is_told_apart_from_a_busy_lock(db_path: Path) -> None:
    agentstate.connect(db_path).close()
    a, b = agentstate.connect(db_path), agentstate.connect(db_path)
    try:
        a.execute("BEGIN")  # a deferred transaction that reads first
        assert a.execute("SELECT count(*) FROM planners").get == 0
        Agents(b).create_planner("meanwhile")
        with pytest.raises(errors.SnapshotConflictError, match="retry") as caught, agentstate.write(a):
            a.execute("INSERT INTO planners (planner_id) VALUES ('late')")
        assert "busy timeout" not in str(caught.value)
        a.execute("ROLLBACK")
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        (0, {}),
        (b"x.db", {}),
        ("bad\x00name.db", {}),
        ("bad\ud800name.db", {}),
        ("ok.db", {"busy_timeout_ms": "x"}),
        ("ok.db", {"busy_timeout_ms": 2**70}),
        ("ok.db", {"busy_timeout_ms": -1}),
    ],
)
def test_connect_refuses_bad_arguments_clearly(tmp_path: Path, path: Any, kwargs: dict[str, Any]) -> None:
    os.chdir(tmp_path)
    with pytest.raises((errors.InvalidTypeError, errors.InvalidValueError)):
        agentstate.connect(path, **kwargs)


def test_reads_of_a_corrupt_file_raise_agentstate_errors(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    Agents(conn).create_planner("p")
    TaskManager(conn, "p").create_tasks([{"description": "x" * 500} for _ in range(200)])
    pages = [row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name LIKE '%workers%'")]
    page_size = conn.pragma("page_size")
    conn.close()
    with open(db_path, "r+b") as f:  # trash the task table's and its indexes' pages, not the schema
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(os.urandom(page_size))
    conn = agentstate.connect(db_path)
    try:
        tm = TaskManager(conn, "p")
        refused = 0
        for call in (tm.get_current_task, lambda: tm.list_tasks("pending"), tm.counts, lambda: tm.history("x")):
            try:
                call()
            except errors.DatabaseCorruptError:
                refused += 1
            except errors.NotFoundError:
                pass  # an index search that missed the damage
        assert refused, "every read of the trashed pages succeeded: the test did not corrupt them"
    finally:
        conn.close()


def test_not_a_database_a_truncated_file_and_a_directory_are_clear_errors(tmp_path: Path, db_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 200)
    with pytest.raises(errors.DatabaseCorruptError, match="not an SQLite database|not a database"):
        agentstate.connect(text)
    agentstate.connect(db_path).close()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(db_path.read_bytes()[:6000])
    with pytest.raises(errors.DatabaseCorruptError):
        conn = agentstate.connect(truncated)
        try:
            TaskManager(conn, "p").counts()
            Agents(conn).list_planners()
        finally:
            conn.close()
    with pytest.raises(errors.AgentStateError, match="directory"):
        agentstate.connect(tmp_path)


# --- 14. connect_async cleans up after a failure -------------------------------------------------


def test_connect_async_leaks_nothing_when_it_fails(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 200)

    async def main() -> None:
        with pytest.raises(errors.AgentStateError):
            await agentstate.connect_async(text)

    threads = set(threading.enumerate())
    asyncio.run(main())
    time.sleep(0.1)
    # New threads only: one of an earlier test's (the gate's watchdog, say) may end meanwhile.
    assert set(threading.enumerate()) - threads == set()
    assert [c for c in apsw.connections() if c.filename == str(text)] == []


# --- 15. private files ------------------------------------------------------------------------


def test_new_database_files_are_private_whatever_the_umask(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        conn = agentstate.connect(db_path)
        Agents(conn).create_planner("p")
        try:
            for path in (db_path, Path(conn.filename_wal), Path(str(db_path) + "-shm")):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            conn.close()
        shared = db_path.with_name("shared.db")
        agentstate.connect(shared, file_mode=0o640).close()
        assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    finally:
        os.umask(old)


# --- the crash suite's find: a file killed while being created ----------------------------------


def test_a_file_whose_creation_was_killed_before_wal_gets_wal_on_the_next_connect(db_path: Path) -> None:
    import sqlite3  # an independent writer leaves exactly what a killed connect() can leave

    half_made = sqlite3.connect(db_path)
    half_made.execute("PRAGMA auto_vacuum = INCREMENTAL")
    half_made.execute("PRAGMA user_version = 0")
    half_made.commit()
    half_made.close()
    conn = agentstate.connect(db_path)
    try:
        assert conn.pragma("journal_mode") == "wal"
        assert conn.pragma("auto_vacuum") == 2
    finally:
        conn.close()


# --- 17. closing the last connection leaves the file free ----------------------------------------


def test_closing_the_last_connection_leaves_the_file_free(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    for i in range(checkpoint.WAL_PAGES_THRESHOLD + 200):  # enough to wake the checkpointer
        Agents(conn).create_planner(f"p{i}", metadata={"pad": "x" * 2000})
    conn.close()
    deadline = time.monotonic() + 2.5  # longer than the checkpointer's idle interval
    while time.monotonic() < deadline:
        assert [c for c in apsw.connections() if c.filename == str(db_path)] == []
        time.sleep(0.01)
    plain = apsw.Connection(str(db_path))
    try:  # no busy timeout at all: nothing may hold the file
        assert plain.pragma("journal_mode", "DELETE") == "delete"
    finally:
        plain.close()


# --- the review's finds -------------------------------------------------------------------------


def test_cancelling_write_async_while_it_waits_for_the_lock_leaves_no_transaction_open(db_path: Path) -> None:
    async def main() -> None:
        holder = agentstate.connect(db_path)
        conn = await agentstate.connect_async(db_path)
        try:
            holder.execute("BEGIN IMMEDIATE")

            async def write() -> None:
                async with agentstate.write_async(conn):
                    await conn.execute("INSERT INTO planners (planner_id) VALUES ('never')")

            task = asyncio.ensure_future(write())
            await asyncio.sleep(0.2)  # waiting in BEGIN IMMEDIATE on the worker thread
            task.cancel()
            await asyncio.sleep(0.05)
            holder.execute("COMMIT")  # now the BEGIN goes through, after the cancellation
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await async_calls.run_async(conn, conn.get_autocommit)  # type: ignore[arg-type]
            Agents(holder).create_planner("after")  # the lock is free again
        finally:
            await conn.aclose()
            holder.close()

    asyncio.run(main())


def test_sync_and_async_classes_refuse_the_other_kind_of_connection(db_path: Path) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            with pytest.raises(errors.InvalidTypeError, match="connect_async"):
                TaskManager(conn, "p").get_task("x")  # type: ignore[arg-type]
            with pytest.raises(errors.InvalidTypeError, match="connect_async"):
                MessageLog(conn).latest("planner", "p")  # type: ignore[arg-type]
            with pytest.raises(errors.InvalidTypeError):
                agentstate.stats(conn)  # type: ignore[arg-type]
        finally:
            await conn.aclose()

    asyncio.run(main())
    sync = agentstate.connect(db_path)
    try:
        with pytest.raises(errors.InvalidTypeError, match="connect_async"):
            agentstate.AsyncTaskManager(sync)  # type: ignore[arg-type]
    finally:
        sync.close()


def test_a_size_warning_threshold_that_is_not_finite_is_refused(
    file_db: apsw.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTSTATE_SIZE_WARNING_MB", "inf")
    with pytest.raises(errors.InvalidValueError, match="AGENTSTATE_SIZE_WARNING_MB"):
        agentstate.stats(file_db)


def test_deleting_a_planner_never_takes_a_task_claimed_between_its_batches(fresh_db: apsw.Connection) -> None:
    agents = Agents(fresh_db)
    agents.create_planner("p")
    tm = TaskManager(fresh_db, "p")
    tm.create_tasks([{} for _ in range(15)])
    claimed: list[Any] = []
    original = engine.yield_lock

    def claim_between_batches() -> None:  # another executor claims while the delete pauses
        if not claimed:
            claimed.append(TaskManager(fresh_db, "p").claim("executor"))
        original()

    with (
        unittest.mock.patch.object(engine, "yield_lock", claim_between_batches),
        pytest.raises(errors.InUseError, match="claimed"),
    ):
        agents.delete_planner("p", with_tasks=True, batch_size=10)
    claim = claimed[0]
    assert claim is not None
    assert tm.complete(claim).task_status == "completed"  # the executor's work was not deleted
    assert agents.get_planner("p")


def test_a_cancelled_async_call_settles_first_and_a_cancelled_claim_is_released(db_path: Path) -> None:
    """The caller that sees CancelledError can trust the file: the call finished first, and a
    claim it will never see does not hold its task until the lease runs out."""

    async def main() -> None:
        holder = agentstate.connect(db_path)
        conn = await agentstate.connect_async(db_path)
        try:
            await agentstate.AsyncAgents(conn).create_planner("p")
            atm = agentstate.AsyncTaskManager(conn, "p")
            task = await atm.create_task("t")
            for call in (lambda: atm.claim("exec-1"), lambda: atm.claim_many("exec-1", 5)):
                holder.execute("BEGIN IMMEDIATE")
                pending = asyncio.ensure_future(call())
                await asyncio.sleep(0.1)  # waiting for the lock on the worker thread
                pending.cancel()
                holder.execute("COMMIT")  # the claim goes through after the cancellation
                with pytest.raises(asyncio.CancelledError):
                    await pending
                after = await atm.get_task(task.worker_id)
                assert (after.task_status, after.attempts) == ("pending", 0), after
            log = agentstate.AsyncMessageLog(conn)
            holder.execute("BEGIN IMMEDIATE")
            pending = asyncio.ensure_future(log.append("planner", "p", role="user", content="late"))
            await asyncio.sleep(0.1)
            pending.cancel()
            holder.execute("COMMIT")
            with pytest.raises(asyncio.CancelledError):
                await pending
            # settled before CancelledError: the append is already visible to the next reader
            assert [m.content for m in MessageLog(holder).latest("planner", "p", 5)] == ["late"]
        finally:
            await conn.aclose()
            holder.close()

    asyncio.run(main())


def test_a_cancelled_async_write_that_then_fails_still_delivers_the_cancellation(db_path: Path) -> None:
    async def main() -> None:
        holder = agentstate.connect(db_path)
        conn = await agentstate.connect_async(db_path, busy_timeout_ms=300)
        try:
            await agentstate.AsyncAgents(conn).create_planner("p")
            atm = agentstate.AsyncTaskManager(conn, "p")
            holder.execute("BEGIN IMMEDIATE")  # held past the busy timeout: the write will fail
            pending = asyncio.ensure_future(atm.create_task("t"))
            await asyncio.sleep(0.1)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError) as caught:
                await pending
            assert isinstance(caught.value.__cause__, errors.DatabaseBusyError)
            holder.execute("ROLLBACK")
        finally:
            await conn.aclose()
            holder.close()

    asyncio.run(main())


def test_a_release_that_fails_after_a_cancelled_claim_does_not_keep_the_others_held(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TaskManager.release
    calls: list[str] = []

    def flaky_release(self: TaskManager, claim: Any, token: Any = None) -> Any:
        calls.append(claim.worker_id)
        if len(calls) == 1:
            raise errors.DatabaseBusyError("simulated: the lock was held past the busy timeout")
        return original(self, claim, token)

    monkeypatch.setattr(TaskManager, "release", flaky_release)

    async def main() -> None:
        holder = agentstate.connect(db_path)
        conn = await agentstate.connect_async(db_path)
        try:
            await agentstate.AsyncAgents(conn).create_planner("p")
            atm = agentstate.AsyncTaskManager(conn, "p")
            await atm.create_tasks([{}, {}, {}])
            holder.execute("BEGIN IMMEDIATE")
            pending = asyncio.ensure_future(atm.claim_many("exec-1", 3))
            await asyncio.sleep(0.1)
            pending.cancel()
            holder.execute("COMMIT")
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert len(calls) == 3
            assert (await atm.counts())["claimed"] == 1  # only the one whose release failed
        finally:
            await conn.aclose()
            holder.close()

    asyncio.run(main())
