"""Store-wide retention: one entry point that keeps a store from growing without end.

:func:`cleanup` runs up to three phases, each in short write transactions (``batch_size`` rows,
or a few dozen streams, at a time) so other processes' writes are never held up for long:

1. **tasks**: recorded tasks older than ``recorded_older_than_days`` (default 30, as the
   performance guide asks), with their events and worker messages;
2. **messages**: in every stream, messages older than ``messages_older_than_days`` and/or beyond
   the stream's last ``keep_last_messages``; a stream's last message always stays, so its
   positions never restart;
3. **events**: of every remaining task, all but its last ``keep_last_events`` events.

Then, on SQLite, the freed pages go back to the file system (``incremental_vacuum``, then a WAL
checkpoint that truncates): the file shrinks. On PostgreSQL the phases and their batches are the
same (``schema/postgres/queries/retention.sql``), but the space is the server's to reclaim:
autovacuum makes the deleted rows' space reusable inside each table and gives none back to the
file system, there is no WAL of the store's own to truncate, so ``pages_freed`` is 0 and the
tables' size (``file_bytes_after``) stays about where it was. A dry run counts exactly what the
real run would delete, phase by phase, and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agentstate import engine, errors
from agentstate.engines import Connection, engine_of, require_connection, translating
from agentstate.messages import STREAMS
from agentstate.runner import run
from agentstate.store_stats import storage_facts
from agentstate.transactions import reading, write
from agentstate.values import MAX_SECONDS, require_int, short, utc_after

DEFAULT_RECORDED_DAYS = 30.0
STREAMS_PER_TRANSACTION = 50

Progress = Callable[[str, int, "int | None"], None]
"""``progress(phase, done, total)``: called as work goes on (total None when unknown)."""


@dataclass
class CleanupReport:
    """What :func:`cleanup` deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    tasks_deleted: int = 0
    task_events_deleted: int = 0
    """Events that went with their tasks, plus those trimmed by ``keep_last_events``."""
    worker_messages_deleted: int = 0
    """Worker messages that went with their tasks."""
    messages_deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    """Per stream table, by age or ``keep_last_messages``."""
    pages_freed: int = 0
    """Free pages given back to the file system (SQLite); always 0 on PostgreSQL, where autovacuum
    makes the space reusable inside the tables instead."""
    file_bytes_before: int = 0
    """:attr:`Stats.file_bytes <agentstate.store_stats.Stats.file_bytes>` before the run: the file's size
    on SQLite, agentstate's tables' size on PostgreSQL."""
    file_bytes_after: int = 0
    """The same after the run (on PostgreSQL about the same as before: see :attr:`pages_freed`)."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MAX_DAYS = MAX_SECONDS // 86400
"""The longest age a rule takes, in days: 36,500 (100 years)."""


def _days(name: str, value: object) -> float | None:
    """An age in days: 0 (everything until now) to :data:`MAX_DAYS`, checked in days."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.InvalidTypeError(f"{name} must be a number of days, not {type(value).__name__}")
    if not 0 <= value <= MAX_DAYS:  # NaN and infinity fail this too
        raise errors.InvalidValueError(
            f"{name} must be a number of days from 0 (everything until now) to {MAX_DAYS:,} (100 years), got {short(value)}"
        )
    return float(value)


def cleanup(
    conn: Connection,
    *,
    recorded_older_than_days: float | None = DEFAULT_RECORDED_DAYS,
    messages_older_than_days: float | None = None,
    keep_last_messages: int | None = None,
    keep_last_events: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CleanupReport:
    """Apply the retention policy to the whole store (an SQLite file or a PostgreSQL database);
    see the module docs. None skips a rule; an age of 0 days takes everything until now (a
    stream's last message still stays).

    :param batch_size: rows per write transaction (other writers wait at most one batch).
    :param dry_run: count what would go, write nothing.
    :param progress: ``progress(phase, done, total)`` while it works.
    """
    require_connection(conn, "cleanup()", sync_only=True)
    recorded_days = _days("recorded_older_than_days", recorded_older_than_days)
    message_days = _days("messages_older_than_days", messages_older_than_days)
    keep_messages = None if keep_last_messages is None else require_int("keep_last_messages", keep_last_messages, minimum=1)
    keep_events = None if keep_last_events is None else require_int("keep_last_events", keep_last_events, minimum=1)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    if not isinstance(dry_run, bool):
        raise errors.InvalidTypeError("dry_run must be True or False")
    if progress is not None and not callable(progress):
        raise errors.InvalidTypeError(f"progress must be a callable(phase, done, total), not {type(progress).__name__}")
    with translating("cleanup"):
        return _run(conn, recorded_days, message_days, keep_messages, keep_events, batch_size, dry_run, progress)


def _run(
    conn: Connection,
    recorded_days: float | None,
    message_days: float | None,
    keep_messages: int | None,
    keep_events: int | None,
    batch_size: int,
    dry_run: bool,
    progress: Progress | None,
) -> CleanupReport:
    started = time.perf_counter()
    job = _Cleanup(conn, dry_run, batch_size, progress or (lambda *_: None))
    job.report.file_bytes_before = _file_bytes(conn)
    # '' sorts before every stored timestamp: the rule matches nothing.
    job.purged_before = "" if recorded_days is None else utc_after(-min(recorded_days * 86400, MAX_SECONDS))
    if recorded_days is not None:
        job.tasks()
    if message_days is not None or keep_messages is not None:
        before = "" if message_days is None else utc_after(-min(message_days * 86400, MAX_SECONDS))
        job.messages(before, -1 if keep_messages is None else keep_messages)
    if keep_events is not None:
        job.events(keep_events)
    if not dry_run:
        job.give_back_space()
    job.report.file_bytes_after = _file_bytes(conn)
    job.report.seconds = time.perf_counter() - started
    return job.report


def _file_bytes(conn: Connection) -> int:
    return storage_facts(conn).file_bytes


class _Cleanup:
    """One run of :func:`cleanup`: the phases share the report and the task cut-off."""

    def __init__(self, conn: Connection, dry_run: bool, batch_size: int, progress: Progress) -> None:
        self.conn = conn
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.progress = progress
        self.report = CleanupReport(dry_run=dry_run)
        self.purged_before = ""

    # --- 1. recorded tasks -------------------------------------------------------------------

    def tasks(self) -> None:
        report, params = self.report, {"before": self.purged_before}
        if self.dry_run:
            with reading(self.conn):
                report.tasks_deleted = run(self.conn, "retention.count_recorded", params)
                report.task_events_deleted += run(self.conn, "retention.count_recorded_events", params)
                report.worker_messages_deleted = run(self.conn, "retention.count_recorded_messages", params)
            self.progress("tasks", report.tasks_deleted, report.tasks_deleted)
            return
        total = run(self.conn, "retention.count_recorded", params)
        while True:
            with write(self.conn):
                batch = run(self.conn, "retention.recorded_batch", {**params, "limit": self.batch_size})
                ids = {"ids": json.dumps([row[0] for row in batch])}
                report.task_events_deleted += run(self.conn, "retention.count_events_of", ids)
                report.worker_messages_deleted += run(self.conn, "retention.count_messages_of", ids)
                report.tasks_deleted += run(self.conn, "retention.delete_tasks", ids)
            self.progress("tasks", report.tasks_deleted, total)
            if len(batch) < self.batch_size:
                return
            engine.yield_lock()

    def _purged(self, worker_id: str) -> bool:
        """In a dry run, a task the task phase would have deleted (the real run no longer sees it)."""
        return bool(self.dry_run and self.purged_before) and run(
            self.conn, "retention.is_purged_task", {"id": worker_id, "before": self.purged_before}
        ) is not None

    # --- 2. messages per stream --------------------------------------------------------------

    def messages(self, before: str, keep: int) -> None:
        for stream in STREAMS:
            table = f"{stream}_messages"
            deleted = self._per_key(
                f"retention.next_stream_{table}",
                lambda key: {"stream_id": key, "before": before, "keep": keep},
                f"retention.count_old_{table}",
                f"retention.delete_old_{table}",
                skip=self._purged if stream == "worker" else None,
                phase=f"{stream} messages",
            )
            self.report.messages_deleted[stream] = deleted

    # --- 3. event histories ------------------------------------------------------------------

    def events(self, keep: int) -> None:
        self.report.task_events_deleted += self._per_key(
            "retention.next_task_with_events",
            lambda key: {"id": key, "keep": keep},
            "retention.count_old_events",
            "retention.delete_old_events",
            skip=self._purged,
            phase="events",
        )

    def _per_key(
        self,
        next_key: str,
        params_of: Callable[[str], dict[str, Any]],
        count: str,
        delete: str,
        *,
        skip: Callable[[str], bool] | None,
        phase: str,
    ) -> int:
        """Walk every stream (or task) by key, counting (dry run) or deleting what the rule
        matches in each. A write transaction takes a few dozen keys, or ``batch_size`` rows of one
        key: a long stream is trimmed over several transactions, never in one."""
        deleted, seen, after = 0, 0, ""
        resume: str | None = None  # a key whose rows did not all fit in the last transaction
        while True:
            transaction = contextlib.nullcontext() if self.dry_run else write(self.conn)
            with transaction:
                budget = self.batch_size
                for _ in range(STREAMS_PER_TRANSACTION):
                    key = resume if resume is not None else run(self.conn, next_key, {"after": after})
                    if key is None:
                        self.progress(phase, seen, seen)
                        return deleted
                    if resume is None:
                        after, seen = key, seen + 1
                        if skip is not None and skip(key):
                            continue
                    resume = None
                    if self.dry_run:
                        deleted += run(self.conn, count, params_of(key))
                        continue
                    gone = run(self.conn, delete, {**params_of(key), "limit": budget})
                    deleted, budget = deleted + gone, budget - gone
                    if budget <= 0:
                        resume = key  # maybe more in this one: carry on in the next transaction
                        break
            self.progress(phase, seen, None)
            if not self.dry_run:
                engine.yield_lock()

    # --- the space -----------------------------------------------------------------------------

    def give_back_space(self) -> None:
        """Hand the freed pages to the file system and truncate the WAL: the file shrinks. Both are
        SQLite's steps (in memory, the checkpoint has nothing to do); on PostgreSQL they do nothing
        (0 pages), since autovacuum reclaims the space inside the tables."""
        self.report.pages_freed = engine_of(self.conn).give_back_free_pages(self.conn)
        with contextlib.suppress(errors.AgentStateError):  # the deletes stand; the WAL shrinks later
            engine_of(self.conn).checkpoint_truncate(self.conn)
