"""Every registered query's EXPLAIN QUERY PLAN: an index search on the index it names, no SCAN
of a table, no temp b-tree. Driven by the registry, so a new query cannot skip this test; run on
an empty database and on an ANALYZEd generated one, since statistics can change the plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

import agentstate
from agentstate import queries
from tests.datagen import populate
from tests.plans import plan_details, plan_problems

QUERIES = sorted(queries.registry().values(), key=lambda q: q.name)


@pytest.fixture(scope="module")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apsw.Connection]:
    path: Path = tmp_path_factory.mktemp("plans") / "generated.db"
    conn = agentstate.connect(path)
    populate(conn)
    yield conn
    conn.close()


@pytest.fixture(scope="module", params=["demo", "one planner"])
def small_optimized_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[apsw.Connection]:
    """A store of a few rows (the demo's, or a lone planner and empty tables) with the statistics
    ANALYZE records for it, as PRAGMA optimize does for every new store at close: plans chosen on
    such statistics must not scan either, or the scan stays in the plan as the store grows."""
    path: Path = tmp_path_factory.mktemp("plans") / "small.db"
    if request.param == "demo":
        from agentstate.demo import run

        run(path, tasks=3)
    conn = agentstate.connect(path)
    if request.param == "one planner":
        agentstate.Agents(conn).create_planner("p")
    conn.execute("ANALYZE")
    yield conn
    conn.close()


@pytest.fixture(autouse=True)
def no_leaked_connections() -> Iterator[None]:
    yield  # the module-scoped generated database outlives each test on purpose


def test_registry_is_not_empty() -> None:
    assert QUERIES, "no queries registered"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_plan_on_empty_database(fresh_db: apsw.Connection, query: queries.Query) -> None:
    details = plan_details(fresh_db, query.sql)
    assert not plan_problems(details, query.uses, bool(query.scans)), f"{query.where} {query.name}:\n" + "\n".join(details)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_plan_on_analyzed_generated_database(generated_db: apsw.Connection, query: queries.Query) -> None:
    details = plan_details(generated_db, query.sql)
    assert not plan_problems(details, query.uses, bool(query.scans)), f"{query.where} {query.name}:\n" + "\n".join(details)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_plan_on_a_small_optimized_database(small_optimized_db: apsw.Connection, query: queries.Query) -> None:
    details = plan_details(small_optimized_db, query.sql)
    assert not plan_problems(details, query.uses, bool(query.scans)), f"{query.where} {query.name}:\n" + "\n".join(details)
