"""Judging query plans: what ``agentstate check-plans`` and the plan tests both ask of a query.

A registered query must search the indexes its ``-- uses:`` line names, with no ``SCAN`` of a
table and no temporary b-tree. An operator's statistics query (``-- scans:`` in its header)
reads a whole index on purpose: it may scan a covering index (or a table-valued pragma), never
the table itself.
"""

from __future__ import annotations

import apsw
import apsw.ext

from agentstate import queries


def plan_details(conn: apsw.Connection, sql: str) -> list[str]:
    """Every line of a statement's query plan, depth-first; parameters may stay unbound."""
    info = apsw.ext.query_info(conn, sql, explain_query_plan=True)
    lines: list[str] = []

    def walk(nodes: list[apsw.ext.QueryPlan] | None) -> None:
        for node in nodes or []:
            lines.append(node.detail)
            walk(node.sub)

    if info.query_plan is not None:
        walk(info.query_plan.sub)
    return lines


def plan_problems(details: list[str], uses: tuple[str, ...], scans: bool = False) -> list[str]:
    """Why a plan is not acceptable: a table SCAN, a temp b-tree, or a promised index not used."""
    problems = []
    # A CTE's own rows (a recursive walk's queue, say) are the query's, not a table's.
    ctes = {d.split()[1] for d in details if d.startswith(("CO-ROUTINE ", "MATERIALIZE "))}
    for detail in details:
        # json_each reads the bound list of ids, not a table.
        scan = detail.startswith("SCAN ") and detail != "SCAN CONSTANT ROW" and not detail.startswith("SCAN json_each ")
        scan = scan and detail.split()[1] not in ctes
        whole_index = " USING COVERING INDEX " in detail or " VIRTUAL TABLE " in detail
        if (scan and not (scans and whole_index)) or ("USE TEMP B-TREE" in detail and not scans):
            problems.append(detail)
    text = "\n".join(details)
    for index in uses:
        # "PRIMARY KEY" matches a WITHOUT ROWID key and an INTEGER PRIMARY KEY alike; "a | b" is
        # satisfied by either (a clustered key or a smaller covering index: both are searches).
        if index != "none" and not any(choice.strip() in text for choice in index.split("|")):
            problems.append(f"index {index} not used")
    return problems


def check(conn: apsw.Connection, query: queries.Query) -> list[str]:
    """The problems of one registered query's plan on this database (empty when it is fine)."""
    return plan_problems(plan_details(conn, query.sql), query.uses, bool(query.scans))
