"""Size and health of a store: what an operator looks at first (``agentstate stats``).

Everything but the schema version is read in one read transaction, so the numbers agree with
each other. Counting rows reads whole (covering) indexes: a second or so at tens of millions of
rows, on a reader, never blocking writers. ``full=False`` skips those counts for a quick look
(``agentstate status``). It works on both engines: the size facts are each engine's own
(:mod:`agentstate.sqlite.storage`, :mod:`agentstate.postgres.storage`); see :class:`Stats`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from agentstate import errors, migrations
from agentstate.engine import StorageFacts
from agentstate.engines import Connection, engine_of, require_connection
from agentstate.messages import STREAMS, Stream
from agentstate.runner import run
from agentstate.settings import size_warning_bytes
from agentstate.tasks import STATUSES
from agentstate.transactions import reading
from agentstate.values import parse_time, require_int

logger = logging.getLogger("agentstate")



@dataclass(frozen=True)
class StreamStats:
    """One message table: how many streams hold messages, and the largest of them."""

    streams: int
    largest: list[tuple[str, int]]


@dataclass(frozen=True)
class Stats:
    """A store's size and health at one moment (see :func:`stats`).

    The size fields are the file's on SQLite. PostgreSQL keeps the store in files of the server's
    own, with one WAL for all its databases, so there they mean:

    - ``path``: the server and database, as a URL without user or password;
    - ``file_bytes``: what agentstate's tables take on the server, with their indexes and TOAST
      (``pg_total_relation_size``; ``pg_database_size`` would add the catalogs and anything else
      in the database); the size warning is about this;
    - ``wal_bytes``: 0 (the server's WAL is not the store's own);
    - ``page_size``: the server's ``block_size`` (8192 by default);
    - ``page_count``: the pages of ``file_bytes`` (``file_bytes == page_size * page_count``);
    - ``freelist_pages``: 0 (autovacuum makes deleted rows' space reusable inside each table and
      gives none back to the file system; there is nothing for ``agentstate vacuum`` to return).

    Ages (``oldest_pending_age_seconds``) and expired leases are measured on the clock that
    stamps the store's times: this process's on SQLite, the server's on PostgreSQL.
    """

    path: str
    """The database file ('' in memory); on PostgreSQL, the URL without user or password."""
    file_bytes: int
    """The file's size (in memory: its pages' bytes); on PostgreSQL, agentstate's tables' size."""
    wal_bytes: int
    """The ``-wal`` file's size; 0 on PostgreSQL."""
    page_size: int
    page_count: int
    freelist_pages: int
    """Pages free inside the file; retention and ``agentstate vacuum`` give them back (0 on PostgreSQL)."""
    schema_version: int
    tasks_by_status: dict[str, int]
    tasks_by_planner: dict[str, dict[str, int]]
    expired_leases: int
    """Claimed tasks whose lease ran out: their executors died (the next claim takes them over)."""
    oldest_pending_at: str | None
    oldest_pending_age_seconds: float | None
    rows: dict[str, int] = field(default_factory=dict)
    """Rows per table (``full=True`` only)."""
    streams: dict[Stream, StreamStats] = field(default_factory=dict)
    """Per message stream table (``full=True`` only)."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what ``agentstate stats --json`` prints)."""
        return dataclasses.asdict(self)




def storage_facts(conn: Connection) -> StorageFacts:
    """The size facts of this connection's engine, in the caller's transaction if one is open
    (:func:`stats`, and :func:`agentstate.cleanup` before and after)."""
    return engine_of(conn).storage(conn, run)


def stats(
    conn: Connection, *, full: bool = True, largest: int = 5, warn_above_bytes: int | None = None
) -> Stats:
    """Measure the store behind ``conn`` (an SQLite file or a PostgreSQL database: see :class:`Stats`).

    :param full: also count every table's rows and each message table's streams.
    :param largest: how many of the largest streams to list per message table.
    :param warn_above_bytes: log a warning (and list it in ``warnings``) when the store passes
        this size (``file_bytes + wal_bytes``; default: ``AGENTSTATE_SIZE_WARNING_MB``, else 100 MB).
    """
    require_connection(conn, "stats()", sync_only=True)
    if not isinstance(full, bool):
        raise errors.InvalidTypeError("full must be True or False")
    largest = require_int("largest", largest, minimum=1)
    limit = size_warning_bytes() if warn_above_bytes is None else require_int("warn_above_bytes", warn_above_bytes, minimum=1)
    # Before the snapshot: on PostgreSQL it reads on a pooled connection of its own.
    version = migrations.status(conn).version
    with reading(conn):
        size = storage_facts(conn)
        per_planner: dict[str, dict[str, int]] = {}
        by_status = dict.fromkeys(STATUSES, 0)
        for planner, status, count in run(conn, "stats.tasks_by_planner_status"):
            per_planner.setdefault(planner, dict.fromkeys(STATUSES, 0))[status] = count
            by_status[status] += count
        expired = run(conn, "stats.expired_leases", {"now": size.now})
        oldest = run(conn, "stats.oldest_pending")
        rows = dict(run(conn, "stats.table_rows")) if full else {}
        streams = (
            {
                stream: StreamStats(
                    run(conn, f"stats.stream_count_{stream}_messages"),
                    [tuple(r) for r in run(conn, f"stats.largest_streams_{stream}_messages", {"limit": largest})],
                )
                for stream in STREAMS
            }
            if full
            else {}
        )
    age = None if oldest is None else (parse_time(size.now) - parse_time(oldest)).total_seconds()
    # In Stats' field order: the size fields (not now, the clock the ages were measured on), then the counts.
    result = Stats(*size[:-1], version, by_status, per_planner, expired, oldest, age, rows, streams)
    total = size.file_bytes + size.wal_bytes
    if total > limit:
        warning = (
            f"{size.path or 'the database'} holds {total / 1e6:,.1f} MB, past the {limit / 1e6:,.0f} MB "
            "warning size: schedule retention ('agentstate cleanup', or agentstate.cleanup()), or raise AGENTSTATE_SIZE_WARNING_MB"
        )
        result.warnings.append(warning)
        logger.warning("agentstate: %s", warning)
    return result
