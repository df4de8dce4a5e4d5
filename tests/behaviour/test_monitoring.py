"""Query monitoring on the one query path: statistics, the slow-query log, hooks, cardinality."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

import agentstate
from agentstate import errors, monitor, queries, runner
from agentstate.agents import Agents
from agentstate.tasks import TaskManager

# A genuinely slow statement: SQLite counts to two million (a few hundred milliseconds here).
SLOW = queries.Query(
    name="test.count_to",
    cardinality="value",
    sql="-- agentstate:test.count_to\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
    "SELECT count(*) FROM c",
    file=Path(__file__),
    line=1,
    doc="",
    uses=("none",),
)


@pytest.fixture
def slow_query(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(queries.registry(), SLOW.name, SLOW)
    yield SLOW.name


def _slow_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "agentstate" and r.getMessage().startswith("slow query")]


def test_the_slow_log_fires_above_the_threshold_and_not_below(
    slow_query: str, caplog: pytest.LogCaptureFixture
) -> None:
    fast_enough = agentstate.connect(":memory:", slow_query_ms=60_000)
    strict = agentstate.connect(":memory:", slow_query_ms=20)
    try:
        with caplog.at_level(logging.WARNING, logger="agentstate"):
            assert runner.run(fast_enough, slow_query, {"n": 2_000_000}) == 2_000_000
            assert _slow_logs(caplog) == []
            runner.run(strict, slow_query, {"n": 2_000_000})
        [record] = _slow_logs(caplog)
        text = record.getMessage()
        assert "test.count_to" in text and "threshold 20.000 ms" in text
        assert "{n: int}" in text, "parameters are described by shape"
        assert "2000000" not in text, "parameter values never reach the log"
        assert "plan:" in text and "SCAN" in text
        assert record.agentstate_seconds >= 0.02  # type: ignore[attr-defined]
    finally:
        fast_enough.close()
        strict.close()


def test_the_threshold_comes_from_the_environment_and_zero_logs_everything(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AGENTSTATE_SLOW_QUERY_MS", "0")
    conn = agentstate.connect(":memory:")
    try:
        with caplog.at_level(logging.WARNING, logger="agentstate"):
            Agents(conn).create_planner("p")
            TaskManager(conn, "p").get_current_task()
        names = [r.agentstate_query for r in _slow_logs(caplog)]  # type: ignore[attr-defined]
        assert names == ["agents.create_planners", "tasks.current_task"]
    finally:
        conn.close()
    monkeypatch.setenv("AGENTSTATE_SLOW_QUERY_MS", "soon")
    with pytest.raises(errors.InvalidValueError, match="AGENTSTATE_SLOW_QUERY_MS"):
        agentstate.connect(":memory:")


def test_statistics_count_calls_and_rows_per_query() -> None:
    monitor.reset_query_stats()
    conn = agentstate.connect(":memory:", slow_query_ms=60_000)
    try:
        Agents(conn).create_planner("p")
        tm = TaskManager(conn, "p")
        tm.create_tasks([{"description": str(i)} for i in range(5)])
        for _ in range(3):
            assert len(tm.list_tasks("pending", limit=4)) == 4
        tm.get_current_task()
        stats = agentstate.query_stats()
        # create_tasks is one executemany: one call, a row back per task (not the events its trigger wrote)
        assert (stats["tasks.create"].calls, stats["tasks.create"].rows) == (1, 5)
        assert (stats["tasks.list_by_status"].calls, stats["tasks.list_by_status"].rows) == (3, 12)
        assert (stats["tasks.current_task"].calls, stats["tasks.current_task"].rows) == (1, 1)
        listing = stats["tasks.list_by_status"]
        assert 0 < listing.p50_seconds <= listing.p99_seconds <= listing.max_seconds * 1.0001
        assert listing.max_seconds <= listing.total_seconds
        monitor.reset_query_stats()
        assert agentstate.query_stats() == {}
    finally:
        conn.close()


def test_monitoring_off_records_nothing() -> None:
    monitor.reset_query_stats()
    conn = agentstate.connect(":memory:", monitoring=False)
    try:
        Agents(conn).create_planner("p")
        assert agentstate.query_stats() == {}
    finally:
        conn.close()


def test_on_query_hooks_see_every_query_and_cannot_break_one(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, float, int]] = []
    conn = agentstate.connect(":memory:", on_query=lambda name, seconds, rows: seen.append((name, seconds, rows)))
    broken = agentstate.connect(":memory:", on_query=lambda *_: 1 / 0)
    try:
        Agents(conn).create_planner("p")
        assert TaskManager(conn, "p").get_current_task() is None
        assert [(name, rows) for name, _, rows in seen] == [("agents.create_planners", 1), ("tasks.current_task", 0)]
        assert all(seconds > 0 for _, seconds, _ in seen)
        with caplog.at_level(logging.ERROR, logger="agentstate"):
            Agents(broken).create_planner("p")  # the hook raises; the query still succeeds
        assert Agents(broken).get_planner("p").planner_id == "p"
        assert any("on_query hook" in r.getMessage() for r in caplog.records)
    finally:
        conn.close()
        broken.close()


def test_a_query_that_returns_more_rows_than_its_cardinality_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dataclasses.replace(runner.query("tasks.list_by_status"), name="test.wrong", cardinality="one")
    monkeypatch.setitem(queries.registry(), wrong.name, wrong)
    conn = agentstate.connect(":memory:")
    try:
        Agents(conn).create_planner("p")
        TaskManager(conn, "p").create_tasks([{}, {}])
        params = {"planner_id": "p", "status": "pending", "after_created_at": "", "after_worker_id": "", "limit": 10}
        with pytest.raises(errors.QueryCardinalityError, match="declared :one but returned more than one row"):
            runner.run(conn, wrong.name, params)
    finally:
        conn.close()


@pytest.mark.parametrize("query", sorted(queries.registry().values(), key=lambda q: q.name), ids=lambda q: q.name)
def test_every_declared_cardinality_fits_its_statement(fresh_db: apsw.Connection, query: queries.Query) -> None:
    """Static half of the check: a statement's kind and RETURNING clause match its header."""
    body = "\n".join(line for line in query.sql.splitlines() if not line.lstrip().startswith("--")).strip().upper()
    returns_rows = body.startswith(("SELECT", "WITH")) or " RETURNING " in body.replace("\n", " ")
    if query.cardinality == "exec":
        assert not returns_rows, f"{query.where}: {query.name} returns rows but is declared :exec"
    else:
        assert returns_rows, f"{query.where}: {query.name} returns no rows but is declared :{query.cardinality}"
    if query.cardinality == "returning":
        assert not body.startswith("SELECT"), f"{query.where}: a SELECT is :one, :many or :value, not :returning"
    if query.cardinality in ("one", "value") and body.startswith("SELECT"):
        aggregate = any(f"{fn}(" in body for fn in ("COUNT", "MAX", "MIN"))
        single = "LIMIT 1" in body or aggregate or " = :" in body or body.startswith("SELECT (SELECT")
        assert single, f"{query.where}: {query.name} is :{query.cardinality}; say why it returns one row"


def test_unknown_query_names_are_refused(fresh_db: apsw.Connection) -> None:
    with pytest.raises(errors.QueryFileError, match="no query named"):
        runner.run(fresh_db, "tasks.nope", {})


def test_scanning_queries_live_only_in_the_operators_file() -> None:
    for query in queries.registry().values():
        if query.scans:
            assert query.file.name == "stats.sql", f"{query.where}: only stats.sql may scan"


@pytest.mark.parametrize("threshold", [-1, float("nan"), float("inf"), 1.8e302, 10**400, "100", True])
def test_a_slow_query_threshold_out_of_range_is_refused(threshold: object, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidValueError, match="slow_query_ms"):
        agentstate.connect(tmp_path / "x.db", slow_query_ms=threshold)  # type: ignore[arg-type]
    assert not (tmp_path / "x.db").exists()
