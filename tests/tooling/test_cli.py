"""The apply script and the `agentstate` command, and the schema files inside a built wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import apsw
import pytest

import agentstate
import agentstate.cli
from agentstate import migrations

ROOT = Path(__file__).resolve().parents[2]
APPLY = [sys.executable, str(ROOT / "scripts" / "apply_schema.py")]
CLI = [sys.executable, "-m", "agentstate.cli"]
FIRST = migrations.discover()[0].filename


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [APPLY, [*CLI, "migrate"]], ids=["apply_schema.py", "agentstate migrate"])
def test_apply_reports_then_is_a_noop(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "db.sqlite"
    first = run([*command, str(path)])
    assert first.returncode == 0, first.stderr
    assert f"applied  {FIRST}" in first.stdout and "migrated to schema version" in first.stdout
    again = run([*command, str(path)])
    assert again.returncode == 0 and "nothing to apply" in again.stdout


def test_list_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    listed = run([*APPLY, "--list", str(path)])
    assert listed.returncode == 0 and f"pending  {FIRST}" in listed.stdout
    assert not path.exists()
    run([*APPLY, str(path)])
    before = path.read_bytes()
    listed = run([*APPLY, "--list", str(path)])
    assert listed.returncode == 0 and f"applied  {FIRST}" in listed.stdout and "0 pending" in listed.stdout
    assert path.read_bytes() == before


def test_refusal_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    run([*APPLY, str(path)])
    conn = agentstate.connect(path)
    conn.execute("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1")
    conn.close()
    for args in ([*APPLY, str(path)], [*APPLY, "--list", str(path)], [*CLI, "migrate", str(path)]):
        refused = run(args)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and FIRST in refused.stderr and "modified" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_help_reads_well() -> None:
    for args in ([*CLI, "--help"], [*CLI, "migrate", "--help"], [*CLI, "demo", "--help"], [*APPLY, "--help"]):
        shown = run(args)
        assert shown.returncode == 0 and "usage:" in shown.stdout


@pytest.mark.slow
def test_schema_files_work_from_a_built_wheel(tmp_path: Path) -> None:
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)])
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("agentstate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert f"agentstate/_schema/sqlite/{FIRST}" in names and "agentstate/py.typed" in names
        archive.extractall(tmp_path / "site")
    code = (
        "import agentstate, agentstate.schema_files as e; c = agentstate.connect(':memory:');"
        "print(agentstate.__file__); print(e.schema_dir()); print(c.pragma('user_version'))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    module, schema, version = out.stdout.split()
    assert module.startswith(str(tmp_path / "site")) and schema.startswith(str(tmp_path / "site"))
    assert int(version) == migrations.discover()[-1].version


# --- the operator's commands, each as a subprocess on a real file ----------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A file with recorded tasks, some of them a month old, and messages."""
    path = tmp_path / "ops.db"
    conn = agentstate.connect(path)
    try:
        agents, tm = agentstate.Agents(conn), agentstate.TaskManager(conn, "p")
        agents.create_planner("p")
        tasks = tm.create_tasks([{"description": "x" * 2000} for _ in range(60)])
        for claim in tm.claim_many("e", 60):
            tm.complete(claim, result={"ok": 1})
        for task in tasks:
            tm.record(task.worker_id)
        conn.execute("UPDATE workers SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE rowid % 2 = 0")
        tm.create_task("waiting")
        agentstate.MessageLog(conn).append("planner", "p", role="user", content="hi")
    finally:
        conn.close()
    return path


def _json(args: list[str]) -> dict[str, object]:
    done = run([*CLI, *args, "--json"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_status_and_stats_report_in_text_and_json(store: Path) -> None:
    status = _json(["status", str(store)])
    assert status["tasks_by_status"] == {"pending": 1, "claimed": 0, "completed": 0, "failed_validation": 0, "recorded": 60, "cancelled": 0}
    assert status["pending_migrations"] == [] and status["schema_version"] == len(migrations.discover())
    stats = _json(["stats", str(store)])
    for key in ("file_bytes", "wal_bytes", "freelist_pages", "schema_version", "tasks_by_status", "rows", "streams"):
        assert key in stats
    assert stats["rows"]["workers"] == 61  # type: ignore[index]
    text = run([*CLI, "stats", str(store), "--warn-mb", "0.001"])
    assert text.returncode == 0 and "warning size" in text.stdout and "planner p" in text.stdout


def test_cleanup_dry_run_then_real_run(store: Path) -> None:
    dry = _json(["cleanup", str(store), "--dry-run"])
    assert dry["tasks_deleted"] == 30 and dry["dry_run"] is True
    assert _json(["status", str(store)])["tasks_by_status"]["recorded"] == 60  # type: ignore[index]
    real = _json(["cleanup", str(store), "--recorded-older-than-days", "30", "--batch-size", "7"])
    assert {k: real[k] for k in ("tasks_deleted", "task_events_deleted")} == {
        k: dry[k] for k in ("tasks_deleted", "task_events_deleted")
    }
    assert real["file_bytes_after"] < real["file_bytes_before"]  # type: ignore[operator]
    assert _json(["status", str(store)])["tasks_by_status"]["recorded"] == 30  # type: ignore[index]


def test_backup_check_check_plans_and_vacuum(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    backup = _json(["backup", str(store), str(copy)])
    assert backup["dest"] == str(copy) and copy.stat().st_mode & 0o777 == 0o600
    again = run([*CLI, "backup", str(store), str(copy)])
    assert again.returncode == 1 and "exists" in again.stderr and again.stderr.count("\n") == 1
    check = _json(["check", str(copy)])
    assert check["ok"] is True and check["problems"] == []
    plans = _json(["check-plans", str(copy)])
    assert plans["ok"] is True and plans["queries"] == len(agentstate.queries.registry())
    vacuum = _json(["vacuum", str(store)])
    assert vacuum["wal_truncated"] is True
    assert run([*CLI, "vacuum", "--full", str(store)]).returncode == 0


def test_check_exits_3_on_damage_and_1_on_a_missing_file(store: Path, tmp_path: Path) -> None:
    conn = apsw.Connection(str(store))
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM planners")  # leaves every task pointing at nothing
    conn.close()
    damaged = run([*CLI, "check", str(store)])
    assert damaged.returncode == 3 and "foreign key" in damaged.stdout
    missing = run([*CLI, "status", str(tmp_path / "nope.db")])
    assert missing.returncode == 1 and "no such database" in missing.stderr


def test_check_plans_exits_3_when_a_plan_scans(store: Path) -> None:
    conn = apsw.Connection(str(store))
    conn.execute("DROP INDEX idx_workers_leases")
    conn.close()
    found = run([*CLI, "check-plans", str(store), "--json"])
    assert found.returncode == 3
    assert "tasks.claim_any" in json.loads(found.stdout)["problems"]


def test_every_command_has_help() -> None:
    parser = agentstate.cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"migrate", "status", "stats", "cleanup", "backup", "check", "check-plans", "vacuum", "demo"}
    for name in commands:
        shown = run([*CLI, name, "--help"])
        assert shown.returncode == 0 and "exit status" in shown.stdout


def test_import_agentstate_loads_nothing_but_apsw() -> None:
    code = (
        "import sys; before = set(sys.modules); import agentstate, agentstate.cli;"
        "new = {m.split('.')[0] for m in set(sys.modules) - before};"
        "print(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'agentstate'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['apsw']"


def test_cleanup_with_zero_days_takes_every_recorded_task(store: Path) -> None:
    """0 days: everything recorded until now (the flag refused it: 'must be more than 0')."""
    dry = _json(["cleanup", str(store), "--recorded-older-than-days", "0", "--dry-run"])
    assert dry["tasks_deleted"] == 60
    real = _json(["cleanup", str(store), "--recorded-older-than-days", "0", "--messages-older-than-days", "0"])
    assert real["tasks_deleted"] == 60
    assert _json(["status", str(store)])["tasks_by_status"]["recorded"] == 0  # type: ignore[index]
