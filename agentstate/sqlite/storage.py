"""What an SQLite store takes on disk: its file, its WAL and its pages (for :func:`agentstate.stats`
and :func:`agentstate.cleanup`). PostgreSQL's twin is :mod:`agentstate.postgres.storage`.

Here ``path`` is the database file ('' for an in-memory database); ``file_bytes`` its size on
disk (in memory: its pages' bytes); ``wal_bytes`` the ``-wal`` file's beside it (0 when there is
none); ``freelist_pages`` the pages free inside the file, which retention and ``agentstate
vacuum`` give back; ``now`` this process's clock (SQLite has none of its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import apsw

from agentstate.engine import StorageFacts
from agentstate.values import utc_now


def storage(conn: apsw.Connection, run: Callable[..., Any]) -> StorageFacts:
    """The file facts of the store behind ``conn``; ``run`` is :func:`agentstate.runner.run` (the
    runner sits above the engines, so it is handed in). Call it inside a read transaction, so the
    pages agree with the rest of the snapshot."""
    page_size, page_count, freelist = run(conn, "stats.pages")
    path = conn.filename
    file_bytes = os.path.getsize(path) if path and os.path.exists(path) else page_size * page_count
    wal_path = conn.filename_wal if path else ""
    wal_bytes = os.path.getsize(wal_path) if wal_path and os.path.exists(wal_path) else 0
    return StorageFacts(path, file_bytes, wal_bytes, page_size, page_count, freelist, utc_now())
