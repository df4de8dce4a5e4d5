"""Schema v1: the guide's four query patterns run verbatim on their indexes, values round-trip at
SQLite's edges, and the file stays readable by Debian 12's SQLite 3.40 tools."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentstate
from agentstate import errors
from agentstate.tasks import TaskManager
from tests.datagen import populate
from tests.plans import plan_details

GUIDE_QUERIES = {
    "get_current_task": (
        "SELECT worker_id FROM workers \nWHERE planner_id = ? AND task_status = 'pending'",
        {"idx_workers_planner_status"},
    ),
    "get_completed_task": (
        "SELECT * FROM workers \nWHERE planner_id = ? AND task_status IN ('completed', 'failed_validation')",
        {"idx_workers_done", "idx_workers_planner_status"},
    ),
    "messages_by_agent": (
        "SELECT * FROM planner_messages WHERE agent_id = ? ORDER BY created_at",
        {"idx_planner_messages_agent_time"},
    ),
    "agent_lookup": ("SELECT * FROM planners WHERE planner_id = ?", {"sqlite_autoindex_planners_1"}),
}


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    conn = agentstate.connect(tmp_path_factory.mktemp("guide") / "guide.db")
    populate(conn, tasks=20_000, messages=20_000)
    yield conn
    conn.close()


@pytest.mark.parametrize("name", GUIDE_QUERIES)
def test_guide_query_patterns_run_verbatim_on_an_index(fresh_db: apsw.Connection, analyzed: Any, name: str) -> None:
    sql, indexes = GUIDE_QUERIES[name]
    for conn in (fresh_db, analyzed):
        conn.execute(sql, ("planner-0001",)).fetchall()
        details = plan_details(conn, sql)
        assert details and details[0].startswith("SEARCH "), details
        assert any(index in details[0] for index in indexes), details
        assert not any("TEMP B-TREE" in d for d in details), details


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    description=st.text(),
    # no lone surrogates: UTF-8 cannot hold them, and they are refused (tested in test_hostile_input)
    worker_id=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=128),
    context=JSON,
    criteria=JSON,
    max_attempts=st.integers(1, 2**63 - 1),
)
def test_task_columns_round_trip_at_the_edges(
    description: str, worker_id: str, context: Any, criteria: Any, max_attempts: int
) -> None:
    conn = agentstate.connect(":memory:")
    try:
        conn.execute("INSERT INTO planners (planner_id, metadata) VALUES (?, ?)", ("p", json.dumps(context)))
        tm = TaskManager(conn, "p")
        made = tm.create_task(
            description, worker_id=worker_id, task_context=context, acceptance_criteria=criteria,
            metadata={"nested": [context, criteria]}, max_attempts=max_attempts,
        )  # fmt: skip
        got = tm.get_task(worker_id)
        assert got == made
        # None means "not given": the column's default ({} or []) is stored
        expected = (description, {} if context is None else context, [] if criteria is None else criteria)
        assert (got.description, got.task_context, got.acceptance_criteria) == expected
        assert got.metadata == {"nested": [context, criteria]} and got.max_attempts == max_attempts
        assert json.loads(conn.execute("SELECT metadata FROM planners").get) == context  # type: ignore[arg-type]
    finally:
        conn.close()


def test_ids_with_nul_are_refused(fresh_db: apsw.Connection) -> None:
    fresh_db.execute("INSERT INTO planners (planner_id) VALUES ('p')")
    with pytest.raises(errors.InvalidValueError, match="NUL"):
        TaskManager(fresh_db, "p").create_task(worker_id="\x00a")


def test_integers_past_64_bits_are_refused(fresh_db: apsw.Connection) -> None:
    fresh_db.execute("INSERT INTO planners (planner_id) VALUES ('p')")
    with pytest.raises(errors.InvalidValueError, match="64 bits"):
        TaskManager(fresh_db, "p").create_task(max_attempts=2**63)


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("INSERT INTO planners (planner_id, metadata) VALUES ('p', '{not json')", errors.CheckConstraintError),
        (
            "INSERT INTO planners (planner_id, created_at) VALUES ('p', '2026-01-01 00:00:00')",
            errors.CheckConstraintError,
        ),
        ("INSERT INTO planners (planner_id, status) VALUES ('p', NULL)", errors.NotNullError),
        ("INSERT INTO router_planner_links (router_id, planner_id) VALUES ('ghost', 'ghost')", errors.ForeignKeyError),
        (
            "INSERT INTO planner_messages (agent_id, position, role, content) VALUES ('ghost', 1, 'user', 'hi')",
            errors.ForeignKeyError,
        ),
        ("INSERT INTO workers (worker_id, planner_id, attempts) VALUES ('w', 'ghost', 'many')", errors.IntegrityError),
    ],
)
def test_schema_constraints_raise_library_errors(fresh_db: apsw.Connection, sql: str, error: type[Exception]) -> None:
    with pytest.raises(error), agentstate.write(fresh_db):
        fresh_db.execute(sql)
    assert fresh_db.execute("SELECT count(*) FROM planners").get == 0


def _made_by_apply_script(tmp_path: Path) -> Path:
    path = tmp_path / "tools.db"
    script = Path(__file__).resolve().parents[2] / "scripts" / "apply_schema.py"
    subprocess.run([sys.executable, str(script), str(path)], check=True, capture_output=True)
    conn = agentstate.connect(path)
    try:
        conn.execute("INSERT INTO planners (planner_id) VALUES ('p')")
        tm = TaskManager(conn, "p")
        tm.create_task("inspect me", task_context={"k": "v"})
    finally:
        conn.close()
    return path


def test_sqlite_shell_shows_every_table_and_index(tmp_path: Path) -> None:
    shell = shutil.which("sqlite3")
    if shell is None:  # .ci/run installs it, so CI always runs this
        pytest.skip("needs the sqlite3 shell (Debian 12's is SQLite 3.40): apt-get install sqlite3")
    path = _made_by_apply_script(tmp_path)
    schema = subprocess.run([shell, str(path), ".schema"], check=True, capture_output=True, text=True).stdout
    for name in (
        "conversations", "routers", "planners", "workers", "router_planner_links", "router_messages",
        "planner_messages", "worker_messages", "idx_workers_planner_status", "idx_workers_pending",
        "idx_planner_messages_agent_time", "idx_worker_messages_agent_time", "idx_router_messages_conv_time",
        "idx_routers_status", "idx_planners_status", "idx_router_planner_links_router",
        "idx_router_planner_links_planner",
    ):  # fmt: skip
        assert name in schema, name
    check = subprocess.run(
        [shell, str(path), "PRAGMA integrity_check; SELECT task_status, description FROM workers;"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert check.split() == ["ok", "pending|inspect", "me"]


def test_stdlib_sqlite3_of_another_process_reads_and_writes_it(tmp_path: Path) -> None:
    path = _made_by_apply_script(tmp_path)
    # A separate process: the stdlib module bundles another SQLite; never mix both on one file in one process.
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA foreign_keys = ON');"
        "print(sqlite3.sqlite_version, c.execute('SELECT json_extract(task_context, \"$.k\") FROM workers').fetchone()[0]);"
        "c.execute(\"INSERT INTO planners (planner_id) VALUES ('from-stdlib')\"); c.commit()"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True).stdout
    assert out.split()[1] == "v"
    conn = agentstate.connect(path)
    try:
        assert conn.execute("SELECT created_at FROM planners WHERE planner_id = 'from-stdlib'").get
    finally:
        conn.close()
