"""The commands that change a store: ``migrate`` (SQLite or PostgreSQL), ``cleanup``, ``backup``
and ``vacuum``."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentstate import errors, migrations, retention
from agentstate.backup import backup as copy_database
from agentstate.cli.files import inspect_file, is_agentstate, open_store, require_file
from agentstate.cli.output import OK, Progress, emit, mb
from agentstate.engines import engine_of, is_url, open_unmigrated, translating


def _announce(args: argparse.Namespace) -> Callable[[migrations.Migration], None] | None:
    """A line per migration as it is applied, in text mode (--json prints one line at the end)."""
    return None if args.json else lambda m: print(f"applied  {m.filename}", flush=True)


def _show_list(args: argparse.Namespace, where: dict[str, Any], state: migrations.MigrationStatus | None,
               note: str = "") -> int:  # fmt: skip
    """``migrate --list``: what is applied and what is pending (``state`` None: a file not there yet)."""
    version = 0 if state is None else state.version
    applied: list[dict[str, Any]] = [] if state is None else [
        {"version": r.version, "name": r.name, "applied_at": r.applied_at, "sha256": r.sha256} for r in state.applied
    ]  # fmt: skip
    pending = [m.filename for m in (migrations.discover() if state is None else state.pending)]
    prefix = f"{where['path']}: " if "path" in where else ""
    emit(args, {**where, "schema_version": version, "applied": applied, "pending": pending}, lambda: [
        f"{prefix}schema version {version}{note}, {len(pending)} pending",
        *(f"  applied  {r['version']:04d}_{r['name']}.sql  {r['applied_at']}  sha256 {r['sha256'][:12]}" for r in applied),
        *(f"  pending  {name}" for name in pending),
    ])  # fmt: skip
    return OK


def _show_applied(args: argparse.Namespace, where: dict[str, Any], version: int, applied: list[migrations.Migration]) -> int:
    prefix = f"{where['path']}: " if "path" in where else ""
    emit(args, {**where, "schema_version": version, "applied": [m.filename for m in applied]}, lambda: [
        f"{prefix}migrated to schema version {version} ({len(applied)} applied)" if applied else
        f"{prefix}already at schema version {version}, nothing to apply"
    ])  # fmt: skip
    return OK


def _migrate_postgres(args: argparse.Namespace) -> int:
    """``agentstate migrate URL``: the same, on PostgreSQL (an advisory lock serialises migrators).
    The output never shows the URL, which may hold a password."""
    where = {"engine": "postgresql"}
    conn = open_unmigrated(args.path)
    try:
        if args.list:
            return _show_list(args, where, migrations.status(conn))
        applied = migrations.migrate(conn, on_apply=_announce(args))
        version = migrations.status(conn).version
    finally:
        conn.close()
    return _show_applied(args, where, version, applied)


def migrate(args: argparse.Namespace) -> int:
    if is_url(args.path):
        return _migrate_postgres(args)
    path = Path(args.path)
    where = {"path": str(path)}
    known = migrations.discover()
    if args.list:
        if not path.exists():
            return _show_list(args, where, None)
        with inspect_file(args.path) as conn:
            state = migrations.status(conn, known)
            foreign = not is_agentstate(conn)
        return _show_list(args, where, state, " (not an agentstate database yet)" if foreign else "")
    store = open_unmigrated(path)
    try:
        applied = migrations.migrate(store, known, on_apply=_announce(args))
        version = migrations.status(store, known).version
    finally:
        store.close()
    return _show_applied(args, where, version, applied)


def cleanup(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    with open_store(args.path) as conn:
        report = retention.cleanup(
            conn,
            recorded_older_than_days=None if args.keep_recorded else args.recorded_older_than_days,
            messages_older_than_days=args.messages_older_than_days,
            keep_last_messages=args.keep_last_messages,
            keep_last_events=args.keep_last_events,
            batch_size=args.batch_size,
            dry_run=args.dry_run,
            progress=progress,
        )
    progress.end()
    verb = "would delete" if report.dry_run else "deleted"
    emit(args, report.to_dict(), lambda: [
        f"{args.path}: {verb} {report.tasks_deleted:,} recorded task(s) with {report.task_events_deleted:,} event(s) "
        f"and {report.worker_messages_deleted:,} worker message(s)",
        f"messages  {verb} " + ", ".join(f"{s} {n:,}" for s, n in report.messages_deleted.items()),
        f"space     {mb(report.file_bytes_before)} -> {mb(report.file_bytes_after)} "
        f"({report.pages_freed:,} pages given back) in {report.seconds:.1f} s",
    ])  # fmt: skip
    return OK


def backup(args: argparse.Namespace) -> int:
    require_file(args.path)
    dest = Path(args.dest)
    if not args.overwrite and dest.exists() and not dest.samefile(args.path):
        # before the API's own refusal, which names its parameter (overwrite=True), not the flag
        raise errors.InvalidValueError(f"{dest} exists: choose a new file, or pass --overwrite to replace it")
    progress = Progress(args.quiet)
    with open_store(args.path) as conn:
        report = copy_database(
            conn, args.dest, overwrite=args.overwrite, progress=lambda done, total: progress("backup", done, total)
        )
    progress.end()
    emit(args, report.to_dict(), lambda: [
        f"{args.path} -> {report.dest}: {report.pages:,} pages, {mb(report.bytes)}, schema version "
        f"{report.schema_version}, in {report.seconds:.1f} s",
    ])  # fmt: skip
    return OK


def vacuum(args: argparse.Namespace) -> int:
    with open_store(args.path) as conn:
        before = os.path.getsize(conn.filename)
        started = time.perf_counter()
        if args.full:
            with translating("VACUUM"):
                conn.execute("VACUUM")
            freed = 0
        else:
            freed = engine_of(conn).give_back_free_pages(conn)
        truncated = engine_of(conn).checkpoint_truncate(conn)
        after = os.path.getsize(conn.filename)
    data = {"path": args.path, "full": args.full, "pages_freed": freed, "file_bytes_before": before,
            "file_bytes_after": after, "wal_truncated": truncated, "seconds": time.perf_counter() - started}  # fmt: skip
    emit(args, data, lambda: [
        f"{args.path}: {mb(before)} -> {mb(after)}" + ("" if truncated else " (readers kept the WAL from being truncated)"),
    ])  # fmt: skip
    return OK
