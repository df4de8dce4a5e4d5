"""Helpers to read and judge ``EXPLAIN QUERY PLAN`` output through apsw.ext.query_info."""

from __future__ import annotations

import apsw
import apsw.ext


def plan_details(conn: apsw.Connection, sql: str) -> list[str]:
    """Every line of the query plan, depth-first; parameters may stay unbound."""
    info = apsw.ext.query_info(conn, sql, explain_query_plan=True)
    lines: list[str] = []

    def walk(nodes: list[apsw.ext.QueryPlan] | None) -> None:
        for node in nodes or []:
            lines.append(node.detail)
            walk(node.sub)

    if info.query_plan is not None:
        walk(info.query_plan.sub)
    return lines


def plan_problems(details: list[str], uses: tuple[str, ...]) -> list[str]:
    """Why a plan is not acceptable: a table SCAN, a temp b-tree, or a promised index not used."""
    problems = [d for d in details if (d.startswith("SCAN ") and d != "SCAN CONSTANT ROW") or "USE TEMP B-TREE" in d]
    text = "\n".join(details)
    for index in uses:
        # "PRIMARY KEY" matches a WITHOUT ROWID key and an INTEGER PRIMARY KEY alike
        if index != "none" and index not in text:
            problems.append(f"index {index} not used")
    return problems
