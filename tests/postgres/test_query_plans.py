"""Every registered PostgreSQL query searches the indexes its ``-- uses:`` line names, with no
sequential scan and no sort (agentstate/postgres/query_plans.py), on an ANALYZEd generated store of 50k
tasks and 50k messages per stream table (tests/postgres/datagen.py).

Registry-driven like tests/sqlite/test_query_plans.py, so a new query cannot skip it. Each query is
judged twice: its generic plan (what a prepared statement settles on, for any values) and its
custom plan for typical values (tests/postgres/samples.py: what an unprepared statement gets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from postgres_server import Server

from agentstate import errors, runner
from agentstate.postgres import connection
from agentstate.postgres import queries as pg_queries
from agentstate.postgres import query_plans as plans
from tests.postgres import samples
from tests.postgres.datagen import populate

QUERIES = sorted(pg_queries.registry().values(), key=lambda q: q.name)


@pytest.fixture(scope="module")
def generated(pg_server: Server, pg_template: str) -> Iterator[Any]:
    name = "agentstate_plans"
    conninfo = pg_server.create_database(name, template=pg_template)
    conn = connection.connect(conninfo)
    try:
        populate(conn)
        yield conn
    finally:
        conn.close()
        pg_server.drop_database(name)


def test_the_generated_store_is_large(generated: Any) -> None:
    rows = dict(runner.run(generated, "stats.table_rows"))
    assert rows["workers"] >= 50_000 and rows["task_events"] >= 50_000
    assert min(rows[t] for t in ("router_messages", "planner_messages", "worker_messages")) >= 50_000


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_generic_plan(generated: Any, query: pg_queries.Query) -> None:
    plan = plans.explain(generated, query)
    found = plans.problems(plan, query.uses, bool(query.scans))
    assert not found, f"{query.where} {query.name}: {found}\n{plans.render(plan)}"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_custom_plan_for_typical_values(generated: Any, query: pg_queries.Query) -> None:
    plan = plans.explain(generated, query, samples.values(query))
    found = plans.problems(plan, query.uses, bool(query.scans))
    assert not found, f"{query.where} {query.name}: {found}\n{plans.render(plan)}"


def test_the_judge_refuses_a_sequential_scan_and_a_sort(generated: Any) -> None:
    """The checks have teeth: an unindexed filter and an unindexed order are caught."""
    probe = pg_queries.Query(
        pg_queries.registry()["tasks.get"].block,
        pg_queries.convert("SELECT worker_id FROM workers WHERE description = :d ORDER BY updated_by"),
    )
    found = plans.problems(plans.explain(generated, probe), ("workers_pkey",))
    assert any(p.startswith("Seq Scan") for p in found), found
    assert any(p.startswith("Sort") for p in found), found
    assert any("workers_pkey not used" in p for p in found), found


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_runs_with_typical_values(generated: Any, query: pg_queries.Query) -> None:
    """Every statement runs with Python values of the kinds the managers bind (str, int, float,
    bool, bytes, None), in a transaction rolled back after; a key already taken is fine, a type
    PostgreSQL cannot take or a second row from a :one query is not."""
    with generated.transaction(force_rollback=True):
        try:
            with generated.transaction():  # a savepoint, so a refused key leaves the outer one usable
                runner.run(generated, query.name, samples.values(query))
        except (errors.DuplicateError, errors.ForeignKeyError, errors.CheckConstraintError, errors.NotNullError):
            pass  # psycopg's IntegrityError, as the runner translates it
