"""Running the behavioural tests on both engines: SQLite (a file) and PostgreSQL (a database of
its own per test, copied from a migrated template on the session's throwaway server; see
scripts/postgres_server.py).

Tests take the ``db`` fixture (a connection) or ``db_url`` (what ``agentstate.connect`` takes, for
tests that open their own connections, in threads or other processes); both are parametrised
over :data:`ENGINES`. Their raw SQL checks go through :func:`rows` and :func:`scalar`, written
in the dialect both engines share with ``?`` placeholders.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from agentstate.postgres.handle import PostgresConnection

ENGINES = ("sqlite", "postgres")
TEMPLATE = "agentstate_template"
_names = itertools.count(1)


def fresh_database(server: Any, template: str | None) -> tuple[str, str]:
    """A new database (a copy of ``template``); returns its name and conninfo."""
    name = f"agentstate_test_{os.getpid()}_{next(_names)}"
    return name, server.create_database(name, template=template)


def is_postgres(conn: object) -> bool:
    return isinstance(conn, PostgresConnection)


def rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every row of a statement on either engine (on PostgreSQL, in this thread's transaction if
    one is open)."""
    if isinstance(conn, PostgresConnection):
        with conn.borrowed() as pg:
            cursor = pg.execute(sql.replace("%", "%%").replace("?", "%s"), params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def scalar(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row (None if there is none)."""
    found = rows(conn, sql, params)
    return found[0][0] if found else None
