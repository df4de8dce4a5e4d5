"""A comparable snapshot of every row of every table, to prove a failed call changed nothing.

On PostgreSQL the tables are those of the connection's current schema (``public``), read on one
pooled connection (in this thread's transaction if one is open); every row comes back as a tuple,
as it does from SQLite (timestamps and JSON as agentstate's text). :func:`digest` is a cheaper
stand-in for comparing (one statement on PostgreSQL), for tests that compare thousands of times.
"""

from __future__ import annotations

from typing import Any

from tests.engines import is_postgres


def dump(conn: Any) -> dict[str, list[Any]]:
    if is_postgres(conn):
        return _dump_postgres(conn)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
    return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def postgres_tables(pg: Any) -> list[str]:
    """The tables of the current schema of a psycopg connection, by name."""
    found = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    tables = [row[0] for row in found.fetchall()]
    assert tables, "no tables found: a snapshot of nothing would prove nothing"
    return tables


def _dump_postgres(conn: Any) -> dict[str, list[Any]]:
    with conn.borrowed() as pg:
        tables = postgres_tables(pg)
        snapshot: dict[str, list[Any]] = {}
        for table in tables:
            snapshot[table] = sorted(
                (tuple(row) for row in pg.execute(f'SELECT * FROM "{table}"').fetchall()), key=repr
            )
        return snapshot


def digest(conn: Any) -> Any:
    """Something equal for equal contents, to compare: on PostgreSQL an md5 of each table's rows
    (as text, sorted) from one statement; on SQLite (in-process, cheap) the dump itself."""
    if not is_postgres(conn):
        return dump(conn)
    with conn.borrowed() as pg:
        tables = postgres_tables(pg)
        each = (
            f"(SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{t}\" t)" for t in tables
        )
        row = pg.execute(f"SELECT {', '.join(each)}").fetchone()
        return dict(zip(tables, row, strict=True))
