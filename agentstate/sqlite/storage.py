"""What an SQLite store takes on disk: its file, its WAL and its pages (for :func:`agentstate.stats`
and :func:`agentstate.cleanup`). PostgreSQL's twin is :mod:`agentstate.postgres.storage`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apsw

from agentstate.values import utc_now


@dataclass(frozen=True)
class StorageFacts:
    """An SQLite store's size, read in the caller's read transaction."""

    path: str
    """The database file ('' for an in-memory database)."""
    file_bytes: int
    """The file's size on disk (an in-memory database: its pages' bytes)."""
    wal_bytes: int
    """The ``-wal`` file's size beside it (0 when there is none)."""
    page_size: int
    page_count: int
    """Pages in the file."""
    freelist_pages: int
    """Pages free inside the file: retention and ``agentstate vacuum`` give them back."""
    now: str
    """Now on the clock that stamps the store's times: this process's (SQLite has none of its own)."""


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
