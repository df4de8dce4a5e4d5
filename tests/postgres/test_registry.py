"""The PostgreSQL registry against SQLite's: the same names, the same cardinalities, parameters the
SQLite callers already pass (or a documented few more), and a placeholder conversion that leaves
literals, identifiers, comments and casts alone. No server needed."""

from __future__ import annotations

import pytest

from agentstate import messages, queries
from agentstate.postgres import queries as pg_queries

SQLITE = queries.registry()
POSTGRES = pg_queries.registry()

# Parameters a PostgreSQL statement needs that its SQLite twin does not take: leases run from
# the server's clock, so a claim or heartbeat needs the lease's length, not its end.
EXTRA_PARAMS = {
    "tasks.claim_for_planner": {"lease_seconds", "lease_backoff_seconds"},
    "tasks.claim_any": {"lease_seconds", "lease_backoff_seconds"},
    "tasks.heartbeat": {"lease_seconds"},
    "tasks.create": {"delay_seconds"},
    "tasks.retry": {"delay_seconds"},
}
# Parameters SQLite's statements take that PostgreSQL's ignore: the client's clock.
CLIENT_CLOCK = {"now", "lease_expires_at", "created_at", "available_at", "reclaim_before"}


def sqlite_params(name: str) -> set[str]:
    return set(pg_queries.convert(SQLITE[name].sql).names)


# Queries one engine has on purpose, each marked "-- only: <engine>: what the other does" in its
# file: a fusion of steps the other runs as several statements, or the server's clock (stats()
# measures ages on it; SQLite's times come from the process's clock).
FUSED = {
    name: query.block.only for name, query in POSTGRES.items() if query.block.only
} | {name: query.only for name, query in SQLITE.items() if query.only}
SHARED = sorted(set(POSTGRES) & set(SQLITE))


def test_the_two_registries_name_the_same_queries() -> None:
    only_sqlite = sorted(set(SQLITE) - set(POSTGRES) - set(FUSED))
    only_postgres = sorted(set(POSTGRES) - set(SQLITE) - set(FUSED))
    assert not only_sqlite and not only_postgres, (
        f"queries only in schema/sqlite: {only_sqlite}; only in schema/postgres: {only_postgres} "
        "(a query one engine has on purpose says '-- only: <engine>: what the other does')"
    )


def test_a_query_one_engine_has_on_purpose_is_marked_and_only_there() -> None:
    assert FUSED == {
        "tasks.finish_and_claim_any": "postgres",
        "tasks.finish_and_claim_for_planner": "postgres",
        "stats.now": "postgres",
    }
    for name, engine in FUSED.items():
        assert name in (POSTGRES if engine == "postgres" else SQLITE)
        assert name not in (SQLITE if engine == "postgres" else POSTGRES), f"{name} is marked only: {engine}"


def test_the_fused_claim_binds_what_its_steps_bind() -> None:
    """finish_and_claim_* take the parameters of tasks.finish and of the claim they fuse."""
    for fused, claim in (("tasks.finish_and_claim_any", "tasks.claim_any"),
                         ("tasks.finish_and_claim_for_planner", "tasks.claim_for_planner")):  # fmt: skip
        steps = set(POSTGRES["tasks.finish"].params) | set(POSTGRES[claim].params)
        assert set(POSTGRES[fused].params) == steps, fused


@pytest.mark.parametrize("name", SHARED)
def test_same_cardinality(name: str) -> None:
    assert POSTGRES[name].cardinality == SQLITE[name].cardinality, POSTGRES[name].where


@pytest.mark.parametrize("name", SHARED)
def test_parameters_are_what_the_sqlite_callers_pass(name: str) -> None:
    """The managers bind SQLite's parameter names: PostgreSQL may ignore the client's clock, and
    needs nothing else but the few listed extras (which callers then add for both engines)."""
    wanted = set(POSTGRES[name].params)
    given = sqlite_params(name)
    assert wanted - given == EXTRA_PARAMS.get(name, set()), f"{POSTGRES[name].where}: needs {sorted(wanted - given)}"
    assert given - wanted <= CLIENT_CLOCK, f"{POSTGRES[name].where}: ignores {sorted(given - wanted - CLIENT_CLOCK)}"


def test_the_batch_insert_binds_a_row_tuple_in_row_fields_order() -> None:
    """MessageLog's batch path binds stored-row tuples positionally (messages.ROW_FIELDS)."""
    for table in ("router_messages", "planner_messages", "worker_messages"):
        query = POSTGRES[f"messages.insert_{table}"]
        assert query.params == messages.ROW_FIELDS
        row = ("c-1", 3, "user", "hi", "{}", None, "2026-01-01T00:00:00.000000Z")
        assert query.bind(row) == dict(zip(messages.ROW_FIELDS, row, strict=True))


def test_every_postgres_query_names_the_indexes_it_uses() -> None:
    for query in POSTGRES.values():
        assert query.uses, query.where
        for index in query.uses:
            assert "sqlite_autoindex" not in index and index != "PRIMARY KEY", f"{query.where}: {index} is SQLite's"


def test_scans_only_in_stats() -> None:
    assert {q.name.split(".")[0] for q in POSTGRES.values() if q.scans} <= {"stats"}


def test_convert_rewrites_parameters_only_outside_literals_comments_and_casts() -> None:
    sql = (
        "-- agentstate:x.y  :not_a_param 100%\n"
        "SELECT :a::text, ':b', E'\\':c', \"col:d\", $$ :e $$, $tag$ :f $tag$, /* :g /* nested :h */ */ "
        "x % 2, :a, :i_2 FROM t WHERE y = :b2"
    )
    converted = pg_queries.convert(sql)
    assert converted.names == ("a", "i_2", "b2")
    assert converted.numbered == (
        "-- agentstate:x.y  :not_a_param 100%\n"
        "SELECT $1::text, ':b', E'\\':c', \"col:d\", $$ :e $$, $tag$ :f $tag$, /* :g /* nested :h */ */ "
        "x % 2, $1, $2 FROM t WHERE y = $3"
    )
    assert converted.pyformat == (
        "-- agentstate:x.y  :not_a_param 100%%\n"
        "SELECT %(a)s::text, ':b', E'\\':c', \"col:d\", $$ :e $$, $tag$ :f $tag$, /* :g /* nested :h */ */ "
        "x %% 2, %(a)s, %(i_2)s FROM t WHERE y = %(b2)s"
    )


def test_bind_takes_a_mapping_or_a_sequence() -> None:
    query = POSTGRES["tasks.get"]
    assert query.bind({"worker_id": "w", "unused": 1}) == {"worker_id": "w"}
    assert query.bind(("w",)) == {"worker_id": "w"}
    with pytest.raises(Exception, match="worker_id"):
        query.bind({})
    with pytest.raises(Exception, match="takes 1 parameters"):
        query.bind(("w", "x"))
