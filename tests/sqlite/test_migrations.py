"""Migrations: fresh apply, re-apply, refusals, and concurrent appliers."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentstate
from agentstate import errors, migrations, schema_files
from agentstate.sqlite import opening

REAL = migrations.discover()


def copy_schema(tmp_path: Path) -> Path:
    folder = tmp_path / "schema"
    shutil.copytree(schema_files.schema_dir(), folder)
    return folder


def table_names(conn: apsw.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def test_fresh_apply_creates_every_table_and_records_it(db_path: Path) -> None:
    conn = opening.open_connection(db_path)
    try:
        applied = migrations.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in REAL]
        assert {
            "conversations",
            "routers",
            "planners",
            "workers",
            "router_planner_links",
            "router_messages",
            "planner_messages",
            "worker_messages",
            "task_events",
            "schema_migrations",
        } <= table_names(conn)
        rows = conn.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.name, m.sha256) for m in REAL]
        assert conn.pragma("user_version") == REAL[-1].version
    finally:
        conn.close()


def test_reapply_is_a_noop(db_path: Path) -> None:
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn)
        before = conn.execute("SELECT * FROM schema_migrations").fetchall()
        changes = conn.total_changes()
        assert migrations.migrate(conn) == []
        assert conn.execute("SELECT * FROM schema_migrations").fetchall() == before
        assert conn.total_changes() == changes
    finally:
        conn.close()


def test_pending_files_apply_in_order_each_with_its_row(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
        (folder / f"{len(REAL) + 1:04d}_add_note.sql").write_text("ALTER TABLE planners ADD COLUMN note TEXT;\n")
        (folder / f"{len(REAL) + 2:04d}_index_note.sql").write_text(
            "CREATE INDEX idx_planners_note ON planners(note);\n"
        )
        known = migrations.discover(folder)
        state = migrations.status(conn, known)
        assert [m.name for m in state.pending] == ["add_note", "index_note"]
        assert [m.name for m in migrations.migrate(conn, known)] == ["add_note", "index_note"]
        assert conn.pragma("user_version") == len(REAL) + 2
        assert migrations.status(conn, known).pending == ()
    finally:
        conn.close()


def test_failing_migration_leaves_nothing_behind(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
        (folder / f"{len(REAL) + 1:04d}_broken.sql").write_text(
            "CREATE TABLE half_done (x INTEGER);\nCREATE TABLE planners (oops INTEGER);\n"
        )
        with pytest.raises(errors.AgentStateError, match="broken.sql"):
            migrations.migrate(conn, migrations.discover(folder))
        assert "half_done" not in table_names(conn)
        assert conn.pragma("user_version") == len(REAL)
        assert len(conn.execute("SELECT * FROM schema_migrations").fetchall()) == len(REAL)
    finally:
        conn.close()


def test_edited_applied_file_is_refused_naming_it(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
        first = folder / REAL[0].filename
        first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
        with pytest.raises(
            errors.MigrationEditedError,
            match=rf"{REAL[0].filename} was previously applied but has been modified.*new numbered file",
        ):
            migrations.status(conn, migrations.discover(folder))
    finally:
        conn.close()


def test_crlf_checkout_is_not_an_edit(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
        first = folder / REAL[0].filename
        first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
        assert migrations.status(conn, migrations.discover(folder)).pending == ()
    finally:
        conn.close()


def test_missing_applied_file_is_refused(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    extra = folder / f"{len(REAL) + 1:04d}_extra.sql"
    extra.write_text("CREATE TABLE extra (x INTEGER);\n")
    later = folder / f"{len(REAL) + 2:04d}_later.sql"
    later.write_text("CREATE TABLE later (x INTEGER);\n")
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (len(REAL) + 2,))
        extra.unlink()
        later.rename(folder / f"{len(REAL) + 1:04d}_later.sql")  # renumbered: 'extra' is gone
        with pytest.raises(errors.MigrationMissingError, match=r"extra\.sql was applied.*missing.*restore"):
            migrations.status(conn, migrations.discover(folder))
    finally:
        conn.close()


def test_database_newer_than_code_is_refused(tmp_path: Path, db_path: Path) -> None:
    folder = copy_schema(tmp_path)
    (folder / f"{len(REAL) + 1:04d}_future.sql").write_text("CREATE TABLE future (x INTEGER);\n")
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, migrations.discover(folder))
    finally:
        conn.close()
    with pytest.raises(errors.SchemaTooNewError, match=r"future\.sql.*upgrade agentstate"):
        agentstate.connect(db_path)


def test_misnamed_and_duplicate_files_are_refused(tmp_path: Path) -> None:
    folder = copy_schema(tmp_path)
    (folder / "2_bad.sql").write_text("SELECT 1;")
    with pytest.raises(errors.MigrationFileError, match="2_bad.sql"):
        migrations.discover(folder)
    (folder / "2_bad.sql").unlink()
    (folder / f"{len(REAL):04d}_twin.sql").write_text("SELECT 1;")
    with pytest.raises(errors.MigrationFileError, match="twin.sql"):
        migrations.discover(folder)


def test_readonly_or_no_migrate_refuses_pending(db_path: Path) -> None:
    opening.open_connection(db_path).close()  # an empty database file: everything is pending
    with pytest.raises(errors.SchemaOutdatedError, match="agentstate migrate"):
        agentstate.connect(db_path, migrate=False)
    with pytest.raises(errors.SchemaOutdatedError):
        agentstate.connect(db_path, readonly=True)


def _apply(path: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    barrier.wait()
    try:
        conn = agentstate.connect(path)
        out.put(("ok", conn.pragma("user_version")))
        conn.close()
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", repr(exc)))


@pytest.mark.slow
def test_processes_applying_at_once_end_with_one_schema(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = 6
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_apply, args=(str(db_path), barrier, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == [("ok", REAL[-1].version)] * workers
    conn = agentstate.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM schema_migrations").get == len(REAL)
        assert conn.execute("PRAGMA integrity_check").get == "ok"
    finally:
        conn.close()


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=1, max_value=4))
def test_migrating_any_number_of_times_is_idempotent(times: int) -> None:
    conn = opening.open_connection(":memory:")
    try:
        for _ in range(times):
            migrations.migrate(conn)
        assert conn.execute("SELECT count(*) FROM schema_migrations").get == len(REAL)
        assert migrations.status(conn).pending == ()
    finally:
        conn.close()


def test_a_version_1_database_with_tasks_upgrades_in_place(db_path: Path) -> None:
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, REAL[:1])  # what the first release created
        conn.execute("INSERT INTO planners (planner_id) VALUES ('p')")
        # as the first release wrote it (today's create_task writes columns version 1 lacks)
        conn.execute("INSERT INTO workers (worker_id, planner_id, description) VALUES ('w', 'p', 'made on version 1')")
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'idx_workers_status'").get == 1
        with pytest.raises(errors.SchemaOutdatedError):
            agentstate.connect(db_path, migrate=False).close()

        applied = migrations.migrate(conn)

        assert [m.version for m in applied] == [m.version for m in REAL[1:]]
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'idx_workers_status'").get == 0
        task = agentstate.TaskManager(conn, "p").get_current_task()
        assert task is not None and (task.worker_id, task.description) == ("w", "made on version 1")
        assert conn.execute("PRAGMA integrity_check").get == "ok"
    finally:
        conn.close()


def test_a_populated_database_from_before_task_planning_upgrades_and_keeps_every_row(db_path: Path) -> None:
    """0008 rebuilds workers (a new status in its CHECK): every row of every table survives, with
    its events, messages and foreign keys, and the old tasks claim as before."""
    planning = next(m for m in REAL if m.name == "task_planning")
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, tuple(m for m in REAL if m.version < planning.version))
        populate_before_planning(conn)
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}

        assert migrations.migrate(conn)[0].name == "task_planning"

        for table, rows in before.items():
            after = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            if table == "workers":  # the same rows, the new columns at their defaults
                assert [row[:17] for row in after] == rows
                assert {row[17:] for row in after} == {(0, None, 0, None, 0)}
            elif table != "schema_migrations":
                assert after == rows, table
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        tm = agentstate.TaskManager(conn, "planner-0001")
        oldest = tm.get_current_task()
        claim = tm.claim("executor")
        assert oldest is not None and claim is not None and claim.worker_id == oldest.worker_id
        tm.complete(claim, result={"ok": True})
        assert tm.history(claim.worker_id)[-1].to_status == "completed"
    finally:
        conn.close()


def test_a_version_8_database_with_prerequisites_upgrades_and_still_counts_them_down(db_path: Path) -> None:
    """0009 marks the tasks something depends on (has_dependants): a completion counts its
    dependants down only then, so a store from before it must have its prerequisites marked, or
    their dependants would wait forever."""
    cheaper = next(m for m in REAL if m.name == "cheaper_claims")
    conn = opening.open_connection(db_path)
    try:
        migrations.migrate(conn, tuple(m for m in REAL if m.version < cheaper.version))
        agentstate.Agents(conn).create_planner("p")
        tm = agentstate.TaskManager(conn, "p")
        tm.create_task("first", worker_id="a")
        tm.create_task("needs a", worker_id="b", depends_on=["a"])
        tm.create_task("needs a and b", worker_id="c", depends_on=["a", "b"])
        tm.create_task("alone", worker_id="d", priority=-1)

        assert [m.name for m in migrations.migrate(conn)] == ["cheaper_claims"]

        marked = dict(conn.execute("SELECT worker_id, has_dependants FROM workers").fetchall())
        assert marked == {"a": 1, "b": 1, "c": 0, "d": 0}
        order = []
        while (claim := tm.claim("executor")) is not None:
            order.append(claim.worker_id)
            tm.complete(claim)
        assert order == ["a", "b", "c", "d"]  # by priority, each once its prerequisites are done
        assert tm.blocked() == []
        assert conn.execute("PRAGMA integrity_check").get == "ok"
    finally:
        conn.close()


def populate_before_planning(conn: apsw.Connection) -> None:
    """A few thousand rows of every kind, written as a version-7 store held them."""
    with agentstate.write(conn):
        conn.execute(
            """
            INSERT INTO planners (planner_id) VALUES ('planner-0000'), ('planner-0001'), ('planner-0002');
            INSERT INTO conversations (id) VALUES ('conv-1');
            """
        )
        conn.execute(
            """
            INSERT INTO workers (worker_id, planner_id, task_status, lease_owner, lease_expires_at, result,
                                 created_at, updated_at)
            WITH RECURSIVE n(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM n WHERE n < 1999)
            SELECT printf('task-%05d', n), printf('planner-%04d', n % 3),
                   CASE n % 5 WHEN 0 THEN 'pending' WHEN 1 THEN 'claimed' WHEN 2 THEN 'completed'
                              WHEN 3 THEN 'failed_validation' ELSE 'recorded' END,
                   CASE WHEN n % 5 = 1 THEN 'executor-1' END,
                   CASE WHEN n % 5 = 1 THEN '2099-01-01T00:00:00.000000Z' END,
                   CASE WHEN n % 5 IN (2, 3) THEN json_object('n', n) END,
                   strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n)),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n + 5))
            FROM n;
            INSERT INTO worker_messages (agent_id, position, role, content)
            SELECT worker_id, 1, 'assistant', 'output of ' || worker_id FROM workers WHERE task_status = 'completed';
            INSERT INTO router_messages (conversation_id, position, role, content) VALUES ('conv-1', 1, 'user', 'hi');
            """
        )
