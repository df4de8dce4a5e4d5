"""What the ``agentstate`` command does to the files it is pointed at.

The read commands (status, stats, check, migrate --list) leave every file exactly as they found
it: its bytes, its permissions, its journal mode, and no new file beside it. A file that is not
an agentstate store is refused in one line that says to run migrate; the write commands refuse
it the same way before they change a byte. A damaged page is a problem ``check`` reports (exit 3,
integrity_check's own lines), and a failed backup says what failed.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

import agentstate

CLI = [sys.executable, "-m", "agentstate.cli"]
READ_COMMANDS = [["status"], ["stats"], ["check"], ["migrate", "--list"]]
WRITE_COMMANDS = [["cleanup"], ["cleanup", "--dry-run"], ["check-plans"], ["vacuum"], ["backup", "--dest"]]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _snapshot(path: Path) -> tuple[bytes, int, list[str], bytes]:
    """The file's bytes, its permission bits, the folder's listing, and the header's journal
    mode bytes (18 and 19: 1 rollback journal, 2 WAL)."""
    data = path.read_bytes()
    return data, stat.S_IMODE(path.stat().st_mode), sorted(p.name for p in path.parent.iterdir()), data[18:20]


def _plain(folder: Path) -> Path:
    """A database of another program, made by Python's sqlite3 module (journal_mode=delete)."""
    folder.mkdir()
    path = folder / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 100,)] * 200)
    conn.commit()
    conn.close()
    path.chmod(0o644)
    return path


def _empty(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "empty.db"
    path.touch()
    path.chmod(0o644)
    return path


def _store(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "store.db"
    conn = agentstate.connect(path)
    try:
        agentstate.Agents(conn).create_planner("p")
        tm = agentstate.TaskManager(conn, "p")
        tm.create_tasks([{"description": "x" * 500} for _ in range(50)])
        for claim in tm.claim_many("e", 20):
            tm.complete(claim)
    finally:
        conn.close()
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.mark.parametrize("make", [_plain, _empty], ids=["plain sqlite3 file", "0-byte file"])
def test_read_commands_leave_a_foreign_file_as_it_was_and_say_to_migrate(tmp_path: Path, make: object) -> None:
    path = make(tmp_path / "files")  # type: ignore[operator]
    before = _snapshot(path)
    for command in READ_COMMANDS:
        done = run([*command, str(path)])
        assert _snapshot(path) == before, f"{' '.join(command)} changed the file or left files beside it"
        if command == ["migrate", "--list"]:  # what migrate would do: all of it
            assert done.returncode == 0, done.stderr
            assert "schema version 0" in done.stdout and done.stderr == ""
            continue
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert f"agentstate migrate {path}" in done.stderr and "not an agentstate database" in done.stderr
        assert "SQLError" not in done.stderr and "stats." not in done.stderr
    if before[0]:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        conn.close()


def test_write_commands_refuse_a_foreign_file_before_changing_it(tmp_path: Path) -> None:
    path = _plain(tmp_path / "files")
    before = _snapshot(path)
    for command in WRITE_COMMANDS:
        args = [command[0], str(path), str(tmp_path / "copy.db")] if command[-1] == "--dest" else [*command, str(path)]
        done = run(args)
        assert _snapshot(path) == before, f"{' '.join(command)} changed the file or left files beside it"
        assert done.returncode == 1 and done.stderr.count("\n") == 1, (command, done.stderr)
        assert f"agentstate migrate {path}" in done.stderr
        assert not (tmp_path / "copy.db").exists()


def test_read_commands_leave_an_agentstate_store_as_it_was(tmp_path: Path) -> None:
    path = _store(tmp_path / "files")
    before = _snapshot(path)
    assert before[3] == b"\x02\x02"  # WAL
    for command in [*READ_COMMANDS, ["stats", "--json"], ["check", "--json"]]:
        done = run([*command, str(path)])
        assert done.returncode == 0, (command, done.stderr)
        assert _snapshot(path) == before, f"{' '.join(command)} changed the file or left files beside it"
    stats = json.loads(run(["stats", str(path), "--json"]).stdout)
    assert stats["tasks_by_status"]["completed"] == 20 and stats["rows"]["workers"] == 50


def test_read_commands_on_a_store_in_use_see_its_uncheckpointed_writes(tmp_path: Path) -> None:
    path = _store(tmp_path / "files")
    conn = agentstate.connect(path)
    try:
        agentstate.TaskManager(conn, "p").create_task("in the WAL only")
        status = json.loads(run(["status", str(path), "--json"]).stdout)
        assert status["tasks_by_status"]["pending"] == 31
        assert run(["check", str(path)]).returncode == 0
    finally:
        conn.close()


def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database at all\n" * 300)
    before = _snapshot(path)
    for command in READ_COMMANDS:
        done = run([*command, str(path)])
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not an SQLite database" in done.stderr
        assert _snapshot(path) == before


def _damage_a_leaf_page(path: Path, table: str) -> int:
    """Overwrite the middle of one of ``table``'s leaf pages with garbage; returns its number."""
    conn = apsw.Connection(str(path))
    try:
        page_size = conn.pragma("page_size")
        pages = [p for p, in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (table,))]
    finally:
        conn.close()
    assert len(pages) > 3 and not Path(f"{path}-wal").exists()
    page = pages[len(pages) // 2]
    with open(path, "r+b") as file:
        file.seek((page - 1) * page_size)
        file.write(b"\xff" * 200)
    return page


def test_check_reports_a_damaged_page_in_integrity_checks_own_words(tmp_path: Path) -> None:
    path = _store(tmp_path / "files")
    page = _damage_a_leaf_page(path, "workers")
    done = run(["check", str(path)])
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert f"page {page}" in done.stdout.lower() and "btreeInitPage" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr
    found = json.loads(run(["check", str(path), "--json"]).stdout)
    assert found["ok"] is False and any(f"page {page}" in p.lower() for p in found["problems"])


def test_check_reports_a_damaged_schema_page_as_a_problem(tmp_path: Path) -> None:
    path = _store(tmp_path / "files")
    with open(path, "r+b") as file:  # page 1 after the file header: sqlite_schema's b-tree
        file.seek(100)
        file.write(b"\x05" * 300)
    done = run(["check", str(path)])
    assert done.returncode == 3 and "malformed" in done.stdout and done.stderr == "", (done.stdout, done.stderr)
