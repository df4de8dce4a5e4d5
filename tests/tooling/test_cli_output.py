"""What the ``agentstate`` command prints: with --json, one compact JSON line per run (so a cron
job's ``>> log`` is a file of JSON lines); errors in one line that names the command's own flags
and says what failed (never SQLite's "not an error")."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import agentstate

CLI = [sys.executable, "-m", "agentstate.cli"]


def run(args: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, **options)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "ops.db"
    conn = agentstate.connect(path)
    try:
        agentstate.Agents(conn).create_planner("p")
        tm = agentstate.TaskManager(conn, "p")
        tm.create_tasks([{"description": "x" * 2000} for _ in range(200)])
        for claim in tm.claim_many("e", 200):
            tm.complete(claim)
        for task in tm.list_tasks("completed", limit=200):
            tm.record(task.worker_id)
        conn.execute("UPDATE workers SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE rowid % 2 = 0")
    finally:
        conn.close()
    return path


def _one_line(done: subprocess.CompletedProcess[str], status: int = 0) -> dict[str, object]:
    assert done.returncode == status, done.stderr
    assert done.stdout.endswith("\n") and done.stdout.count("\n") == 1, f"not one line: {done.stdout!r}"
    found = json.loads(done.stdout)
    assert isinstance(found, dict)
    return found


def test_every_json_output_is_one_compact_line(store: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.db"
    migrated = _one_line(run(["migrate", str(new), "--json"]))
    assert migrated["schema_version"] == len(agentstate.migrations.discover()) == len(migrated["applied"])  # type: ignore[arg-type]
    assert _one_line(run(["migrate", str(new), "--json"]))["applied"] == []
    assert _one_line(run(["migrate", str(store), "--list", "--json"]))["pending"] == []
    for command in (["status"], ["stats"], ["check"], ["check-plans"], ["vacuum"], ["vacuum", "--full"]):
        _one_line(run([*command, str(store), "--json"]))
    _one_line(run(["backup", str(store), str(tmp_path / "copy.db"), "--json"]))
    log = tmp_path / "cleanup.log"
    with open(log, "a") as out:  # the README's cron line: cleanup ... --json >> log
        for extra in (["--dry-run"], [], []):
            done = subprocess.run([*CLI, "cleanup", str(store), "--json", *extra], stdout=out, timeout=120)
            assert done.returncode == 0
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["tasks_deleted"] for r in runs] == [100, 100, 0]


def test_json_of_a_check_that_found_problems_is_one_line(store: Path) -> None:
    conn = agentstate.connect(store)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM planners")
    conn.close()
    found = _one_line(run(["check", str(store), "--json"]), status=3)
    assert found["ok"] is False


def test_migrate_json_is_one_line_on_either_engine(db_url: str) -> None:
    migrated = _one_line(run(["migrate", db_url, "--json"]))
    assert migrated["applied"] == [] and "password" not in json.dumps(migrated)
    listed = _one_line(run(["migrate", db_url, "--list", "--json"]))
    assert listed["pending"] == [] and listed["schema_version"] == migrated["schema_version"]


def test_backup_onto_an_existing_file_names_the_flag(store: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy.db"
    dest.write_text("precious")
    refused = run(["backup", str(store), str(dest)])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "--overwrite" in refused.stderr and "overwrite=True" not in refused.stderr
    assert dest.read_text() == "precious"
    assert run(["backup", str(store), str(dest), "--overwrite"]).returncode == 0


def _file_size_limit(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_backup_the_file_system_refuses_says_what_failed(store: Path, tmp_path: Path) -> None:
    """A write the OS refuses during the copy (here: past RLIMIT_FSIZE) reached the user as
    'not an error': apsw took the message from the destination connection, which had none."""
    dest = tmp_path / "copy.db"
    failed = run(["backup", str(store), str(dest)], preexec_fn=lambda: _file_size_limit(40 * 4096 + 100))
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert "not an error" not in failed.stderr and "disk I/O error" in failed.stderr, failed.stderr
    assert not dest.exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KiB tmpfs, when this process may mount one (root in a container, say)."""
    mount = tmp_path / f"tiny-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_backup_onto_a_full_disk_says_the_disk_is_full(store: Path, tiny_disk: Path) -> None:
    dest = tiny_disk / "copy.db"
    failed = run(["backup", str(store), str(dest)])
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert "not an error" not in failed.stderr and "database or disk is full" in failed.stderr, failed.stderr
    assert not dest.exists()
