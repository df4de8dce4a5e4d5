"""The PostgreSQL migrator: the same bookkeeping and refusals as SQLite's, and safe to race."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

import agentstate
from agentstate import errors
from agentstate.migrations import checksum
from agentstate.postgres import connection, migrations
from agentstate.tasks import TaskManager


def copy_schema(tmp_path: Path) -> Path:
    folder = tmp_path / "schema"
    shutil.copytree(migrations.folder(), folder, ignore=shutil.ignore_patterns("queries"))
    return folder


def after_shipped(name: str) -> str:
    """A migration file name numbered one past the shipped ones."""
    return f"{len(migrations.discover()) + 1:04d}_{name}.sql"


def tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
    return {row[0] for row in rows}


def test_migrate_applies_every_file_once_and_records_it(pg_empty_url: str) -> None:
    with connection.connect(pg_empty_url) as conn:
        applied = migrations.migrate(conn)
        assert [m.filename for m in applied] == [m.filename for m in migrations.discover()]
        assert migrations.migrate(conn) == []
        rows = conn.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.name, m.sha256) for m in migrations.discover()]
        assert {
            "conversations",
            "routers",
            "planners",
            "workers",
            "task_events",
            "router_planner_links",
            "router_messages",
            "planner_messages",
            "worker_messages",
            "message_heads",
            "langgraph_checkpoints",
            "langgraph_writes",
            "adk_app_states",
            "adk_user_states",
            "adk_sessions",
            "adk_events",
            "schema_migrations",
        } <= tables(conn)
        status = migrations.status(conn)
        assert status.pending == () and status.version == len(applied)


def test_an_edited_applied_file_is_refused(pg_empty_url: str, tmp_path: Path) -> None:
    folder = copy_schema(tmp_path)
    with connection.connect(pg_empty_url) as conn:
        migrations.migrate(conn, migrations.discover(folder))
        first = sorted(folder.glob("0001_*.sql"))[0]
        first.write_text(first.read_text() + "\n-- an edit\n")
        with pytest.raises(errors.MigrationEditedError, match=first.name):
            migrations.migrate(conn, migrations.discover(folder))
        with pytest.raises(errors.MigrationEditedError):
            migrations.status(conn, migrations.discover(folder))


def test_a_missing_applied_file_and_a_newer_database_are_refused(pg_empty_url: str, tmp_path: Path) -> None:
    folder = copy_schema(tmp_path)
    with connection.connect(pg_empty_url) as conn:
        migrations.migrate(conn, migrations.discover(folder))
        extra = folder / after_shipped("add_column")
        extra.write_text("ALTER TABLE planners ADD COLUMN note text;\n")
        assert [m.filename for m in migrations.migrate(conn, migrations.discover(folder))] == [extra.name]
        renamed = folder / after_shipped("other_name")
        extra.rename(renamed)
        with pytest.raises(errors.MigrationMissingError, match=extra.stem):
            migrations.status(conn, migrations.discover(folder))
        renamed.unlink()
        with pytest.raises(errors.SchemaTooNewError):
            migrations.migrate(conn, migrations.discover(folder))


def test_a_failing_file_leaves_nothing_behind(pg_empty_url: str, tmp_path: Path) -> None:
    folder = copy_schema(tmp_path)
    broken = folder / after_shipped("broken")
    broken.write_text("CREATE TABLE half_done (x int);\nSELECT no_such_function();\n")
    with connection.connect(pg_empty_url) as conn:
        with pytest.raises(errors.SchemaError, match=broken.stem):
            migrations.migrate(conn, migrations.discover(folder))
        assert "half_done" not in tables(conn)
        # the shipped files stay applied
        assert migrations.status(conn, migrations.discover(folder)).version == len(migrations.discover())


def test_a_non_transactional_file_runs_outside_a_transaction(pg_empty_url: str, tmp_path: Path) -> None:
    folder = copy_schema(tmp_path)
    (folder / after_shipped("concurrent_index")).write_text(
        "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_planners_metadata ON planners USING gin (metadata);\n"
    )
    with connection.connect(pg_empty_url) as conn:
        applied = migrations.migrate(conn, migrations.discover(folder))
        assert [m.version for m in applied] == list(range(1, len(migrations.discover()) + 2))
        assert conn.execute("SELECT to_regclass('idx_planners_metadata') IS NOT NULL").fetchone() == (True,)


def test_concurrent_migrators_take_turns(pg_empty_url: str) -> None:
    """Six migrators at once on an empty database (without the advisory lock, their CREATE TABLE
    IF NOT EXISTS and CREATE TABLE statements collide): one applies, the others find it done."""
    start = threading.Barrier(6)
    applied: list[int] = []
    failures: list[BaseException] = []

    def migrator() -> None:
        try:
            with connection.connect(pg_empty_url) as conn:
                start.wait()
                applied.append(len(migrations.migrate(conn)))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=migrator) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert sorted(applied) == [0] * 5 + [len(migrations.discover())]
    with connection.connect(pg_empty_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(migrations.discover()),)


def test_checksums_are_the_sqlite_migrators() -> None:
    for migration in migrations.discover():
        assert migration.sha256 == checksum(migration.path.read_text(encoding="utf-8"))


def test_a_populated_database_from_before_task_planning_upgrades_and_keeps_every_row(
    pg_empty_url: str, pg_server: Any
) -> None:
    """0004 adds the planning columns, table and indexes in place: every row of every table
    survives, the new columns at their defaults, and the old tasks claim as before."""
    known = migrations.discover()
    planning = next(m for m in known if m.name == "task_planning")
    with connection.connect(pg_empty_url) as conn:
        conn.autocommit = True
        migrations.migrate(conn, tuple(m for m in known if m.version < planning.version))
        conn.execute("INSERT INTO planners (planner_id) VALUES ('planner-0'), ('planner-1'), ('planner-2')")
        conn.execute(
            """
            INSERT INTO workers (worker_id, planner_id, task_status, lease_owner, lease_expires_at, result,
                                 created_at, updated_at)
            SELECT format('task-%s', lpad(n::text, 5, '0')), format('planner-%s', n % 3),
                   (ARRAY['pending', 'claimed', 'completed', 'failed_validation', 'recorded'])[n % 5 + 1],
                   CASE WHEN n % 5 = 1 THEN 'executor-1' END,
                   CASE WHEN n % 5 = 1 THEN timestamptz '2099-01-01 00:00:00+00' END,
                   CASE WHEN n % 5 IN (2, 3) THEN jsonb_build_object('n', n) END,
                   timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => n),
                   timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => n + 5)
            FROM generate_series(0, 1999) AS n
            """
        )
        conn.execute(
            "INSERT INTO worker_messages (agent_id, position, role, content) "
            "SELECT worker_id, 1, 'assistant', 'output of ' || worker_id FROM workers WHERE task_status = 'completed'"
        )
        names = sorted(tables(conn) - {"schema_migrations"})
        before = {t: sorted(map(tuple, conn.execute(f'SELECT * FROM "{t}"').fetchall()), key=repr) for t in names}

        applied = [m.name for m in migrations.migrate(conn)]
        assert applied[0] == "task_planning" and applied == [m.name for m in migrations.discover()][3:]

        for table, rows in before.items():
            after = sorted(map(tuple, conn.execute(f'SELECT * FROM "{table}"').fetchall()), key=repr)
            if table == "workers":  # the same rows, four new columns at their defaults
                assert [row[:17] for row in after] == rows
                assert {row[17:] for row in after} == {(0, None, 0, None)}
            else:
                assert after == rows, table
        assert conn.execute("SELECT count(*) FROM task_dependencies").fetchone() == (0,)
    store = agentstate.connect(pg_server.url(conninfo_to_dict(pg_empty_url)["dbname"]))
    try:
        tm = TaskManager(store, "planner-1")
        oldest = tm.get_current_task()
        claim = tm.claim("executor")
        assert oldest is not None and claim is not None and claim.worker_id == oldest.worker_id
        assert tm.complete(claim, result={"ok": True}).task_status == "completed"
    finally:
        store.close()
