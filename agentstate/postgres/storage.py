"""What a PostgreSQL store takes on the server: agentstate's tables, in the server's pages (for
:func:`agentstate.stats` and :func:`agentstate.cleanup`). SQLite's twin is
:mod:`agentstate.sqlite.storage`.

There is no file of the store's own here: the server keeps every database in files it owns, and
one write-ahead log for all of them. So the size is what agentstate's tables take (with their
indexes and TOAST), the WAL is not the store's (0), and no free pages wait to be given back (0):
autovacuum makes deleted rows' space reusable inside each table, and returns none to the file
system short of ``VACUUM FULL``. This module imports no driver (the runner runs the queries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentstate.engine import StorageFacts
from agentstate.postgres.handle import PostgresConnection


def storage(conn: PostgresConnection, run: Callable[..., Any]) -> StorageFacts:
    """The size facts of the store behind ``conn``; ``run`` is :func:`agentstate.runner.run` (the
    runner sits above the engines, so it is handed in). Call it inside a read transaction, so
    they come from the same snapshot as the rest."""
    page_size, page_count, freelist = run(conn, "stats.pages")
    now = run(conn, "stats.now")
    return StorageFacts(conn.pool.shown, page_size * page_count, 0, page_size, page_count, freelist, now)
