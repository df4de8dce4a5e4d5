"""Judging PostgreSQL query plans against a query's ``-- uses:`` line (SQLite's: agentstate.sqlite.query_plans).

A registered query must search the indexes its ``-- uses:`` line names (``a | b``: either), with
no ``Seq Scan`` and no ``Sort`` or ``Incremental Sort`` (a sort means no index gave the order).
An operator's statistics query (``-- scans:``) may read whole tables and sort its small result.

Plans come from ``EXPLAIN (FORMAT JSON) EXECUTE`` of the statement ``PREPARE``\\ d with its
``$n`` placeholders: the *generic* plan (``plan_cache_mode = force_generic_plan``) is the one a
prepared statement settles on, for any values, so it must be good for all of them; a *custom*
plan for given values is the one PostgreSQL picks for an unprepared statement.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg import sql  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent

from agentstate.postgres.queries import Query

# An index named in any of these keys of a plan node is an index the plan searches.
_INDEX_KEYS = ("Index Name",)
_BAD_NODES = ("Seq Scan", "Sort", "Incremental Sort")
_statements = itertools.count(1)


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of one plan tree, depth-first (init plans and subplans included)."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def describe(node: dict[str, Any]) -> str:
    """One line for a node, for messages."""
    parts = [node.get("Node Type", "?")]
    for key in ("Relation Name", "Index Name", "Parent Relationship", "Subplan Name"):
        if key in node:
            parts.append(f"{key.lower()}={node[key]}")
    return " ".join(parts)


def explain(
    conn: psycopg.Connection[Any], query: Query, values: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The plan's nodes: generic when ``values`` is None, else the custom plan for those values.

    Runs inside a transaction it rolls back (EXPLAIN without ANALYZE executes nothing anyway).
    """
    name = f"agentstate_plan_{next(_statements)}"
    try:
        with conn.transaction(force_rollback=True):
            mode = "force_generic_plan" if values is None else "force_custom_plan"
            conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            conn.execute(f"PREPARE {name} AS {query.converted.numbered}".encode())
            statement = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}").format(sql.Identifier(name))
            if query.params:
                # EXECUTE's arguments cannot be bound parameters (a utility statement): NULLs for
                # the generic plan, else the values quoted by psycopg.
                args = (
                    [sql.NULL] * len(query.params) if values is None else [sql.Literal(values[p]) for p in query.params]
                )
                statement = sql.SQL("{}({})").format(statement, sql.SQL(", ").join(args))
            row = conn.execute(statement).fetchone()
    finally:
        with contextlib.suppress(psycopg.errors.InvalidSqlStatementName):
            conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
    assert row is not None
    document = row[0]
    if isinstance(document, str):  # a connection whose json loader gives text
        document = json.loads(document)
    return list(nodes(document[0]["Plan"]))


def indexes(plan: list[dict[str, Any]]) -> set[str]:
    """The indexes a plan searches, and those an ``ON CONFLICT`` checks."""
    found: set[str] = set()
    for node in plan:
        for key in _INDEX_KEYS:
            if key in node:
                found.add(node[key])
        found.update(node.get("Conflict Arbiter Indexes", []))
    return found


def problems(plan: list[dict[str, Any]], uses: tuple[str, ...], scans: bool = False) -> list[str]:
    """Why a plan is not acceptable: a sequential scan, a sort, or a promised index not used."""
    found: list[str] = []
    if not scans:
        found.extend(describe(node) for node in plan if node.get("Node Type") in _BAD_NODES)
    used = indexes(plan)
    for index in uses:
        if index == "none":
            continue
        choices = [choice.strip() for choice in index.split("|")]
        # "idx_x_" (a prefix, as SQLite's files write "idx_{stream}_") matches any index it starts.
        if not any(c in used or (c.endswith("_") and any(u.startswith(c) for u in used)) for c in choices):
            found.append(f"index {index} not used (used: {', '.join(sorted(used)) or 'none'})")
    return found


def check(conn: psycopg.Connection[Any], query: Query, values: Mapping[str, Any] | None = None) -> list[str]:
    """The problems of one registered query's plan on this database (empty when it is fine)."""
    return problems(explain(conn, query, values), query.uses, bool(query.scans))


def render(plan: list[dict[str, Any]]) -> str:
    return "\n".join(describe(node) for node in plan)
