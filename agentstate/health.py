"""Size and health of a store: what an operator looks at first (``agentstate stats``).

Everything is read in one read transaction, so the numbers agree with each other. Counting rows
reads whole (covering) indexes: a second or so at tens of millions of rows, on a reader, never
blocking writers. ``full=False`` skips those counts for a quick look (``agentstate status``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from agentstate import errors, migrations
from agentstate.engines import Connection, require_connection, require_sqlite
from agentstate.messages import STREAMS, Stream
from agentstate.runner import run
from agentstate.tasks import STATUSES
from agentstate.transactions import reading
from agentstate.values import parse_time, require_int, utc_now

logger = logging.getLogger("agentstate")

DEFAULT_SIZE_WARNING_MB = 100
SIZE_WARNING_ENV = "AGENTSTATE_SIZE_WARNING_MB"


@dataclass(frozen=True)
class StreamStats:
    """One message table: how many streams hold messages, and the largest of them."""

    streams: int
    largest: list[tuple[str, int]]


@dataclass(frozen=True)
class Stats:
    """A store's size and health at one moment (see :func:`stats`)."""

    path: str
    file_bytes: int
    wal_bytes: int
    page_size: int
    page_count: int
    freelist_pages: int
    """Pages free inside the file; retention and ``agentstate vacuum`` give them back."""
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


def size_warning_bytes() -> int:
    """``AGENTSTATE_SIZE_WARNING_MB`` (default 100) in bytes."""
    raw = os.environ.get(SIZE_WARNING_ENV, "").strip() or str(DEFAULT_SIZE_WARNING_MB)
    try:
        megabytes = float(raw)
    except ValueError:
        raise errors.InvalidValueError(f"{SIZE_WARNING_ENV}={raw!r} is not a number of megabytes") from None
    if not 0 < megabytes <= 1e9:  # NaN and infinity fail this too
        raise errors.InvalidValueError(f"{SIZE_WARNING_ENV}={raw!r} must be more than 0 and at most 1e9 (a petabyte)")
    return int(megabytes * 1_000_000)


def stats(
    conn: Connection, *, full: bool = True, largest: int = 5, warn_above_bytes: int | None = None
) -> Stats:
    """Measure the store behind ``conn``.

    :param full: also count every table's rows and each message table's streams.
    :param largest: how many of the largest streams to list per message table.
    :param warn_above_bytes: log a warning (and list it in ``warnings``) when the file and its
        WAL pass this size (default: ``AGENTSTATE_SIZE_WARNING_MB``, else 100 MB).
    """
    require_sqlite(conn, "stats()", "query pg_stat_user_tables and pg_total_relation_size")
    require_connection(conn, "stats()", sync_only=True)
    if not isinstance(full, bool):
        raise errors.InvalidTypeError("full must be True or False")
    largest = require_int("largest", largest, minimum=1)
    limit = size_warning_bytes() if warn_above_bytes is None else require_int("warn_above_bytes", warn_above_bytes, minimum=1)
    with reading(conn):
        page_size, page_count, freelist = run(conn, "stats.pages")
        per_planner: dict[str, dict[str, int]] = {}
        by_status = dict.fromkeys(STATUSES, 0)
        for planner, status, count in run(conn, "stats.tasks_by_planner_status"):
            per_planner.setdefault(planner, dict.fromkeys(STATUSES, 0))[status] = count
            by_status[status] += count
        now = utc_now()
        expired = run(conn, "stats.expired_leases", {"now": now})
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
        version = migrations.status(conn).version
    path = conn.filename
    file_bytes = os.path.getsize(path) if path and os.path.exists(path) else page_size * page_count
    wal_path = conn.filename_wal if path else ""
    wal_bytes = os.path.getsize(wal_path) if wal_path and os.path.exists(wal_path) else 0
    age = None if oldest is None else (parse_time(now) - parse_time(oldest)).total_seconds()
    result = Stats(
        path=path,
        file_bytes=file_bytes,
        wal_bytes=wal_bytes,
        page_size=page_size,
        page_count=page_count,
        freelist_pages=freelist,
        schema_version=version,
        tasks_by_status=by_status,
        tasks_by_planner=per_planner,
        expired_leases=expired,
        oldest_pending_at=oldest,
        oldest_pending_age_seconds=age,
        rows=rows,
        streams=streams,
    )
    if file_bytes + wal_bytes > limit:
        warning = (
            f"{path or 'the database'} holds {(file_bytes + wal_bytes) / 1e6:,.1f} MB, past the {limit / 1e6:,.0f} MB "
            "warning size: schedule retention ('agentstate cleanup'), or raise AGENTSTATE_SIZE_WARNING_MB"
        )
        result.warnings.append(warning)
        logger.warning("agentstate: %s", warning)
    return result
