"""The commands that read a store and change nothing: ``status``, ``stats``, ``check`` and
``check-plans``."""

from __future__ import annotations

import argparse

import apsw

from agentstate import errors, migrations, queries, store_stats
from agentstate.cli.files import inspect_file, open_store, require_agentstate
from agentstate.cli.output import OK, PROBLEMS, emit, mb
from agentstate.engines import translating
from agentstate.sqlite import query_plans


def status(args: argparse.Namespace) -> int:
    with inspect_file(args.path) as conn:
        require_agentstate(conn, args.path)
        pending = [m.filename for m in migrations.status(conn).pending]
        found = store_stats.stats(conn, full=False)
    data = {**found.to_dict(), "pending_migrations": pending}
    data.pop("rows"), data.pop("streams"), data.pop("tasks_by_planner")
    age = found.oldest_pending_age_seconds
    emit(args, data, lambda: [
        f"{args.path}: schema version {found.schema_version}"
        + (f", {len(pending)} migration(s) pending: run 'agentstate migrate'" if pending else ", up to date"),
        f"size      {mb(found.file_bytes)} + {mb(found.wal_bytes)} WAL, "
        f"{mb(found.freelist_pages * found.page_size)} free inside",
        "tasks     " + ", ".join(f"{status} {n:,}" for status, n in found.tasks_by_status.items()),
        f"leases    {found.expired_leases:,} expired (their executors died; the next claim takes them over)",
        "waiting   " + ("nothing pending" if age is None else f"oldest pending task waits {age:,.1f} s"),
        *found.warnings,
    ])  # fmt: skip
    return OK


def stats(args: argparse.Namespace) -> int:
    warn = None if args.warn_mb is None else max(1, int(args.warn_mb * 1_000_000))
    with inspect_file(args.path) as conn:
        require_agentstate(conn, args.path)
        found = store_stats.stats(conn, largest=args.largest, warn_above_bytes=warn)

    def lines() -> list[str]:
        out = [
            f"{found.path}: schema version {found.schema_version}",
            f"file      {mb(found.file_bytes)} ({found.page_count:,} pages of {found.page_size:,} B), "
            f"WAL {mb(found.wal_bytes)}, free {found.freelist_pages:,} pages",
            "rows      " + ", ".join(f"{table} {n:,}" for table, n in found.rows.items()),
            "tasks     " + ", ".join(f"{status} {n:,}" for status, n in found.tasks_by_status.items()),
            f"leases    {found.expired_leases:,} expired",
            f"pending   oldest {found.oldest_pending_at or '-'}",
        ]
        busiest = sorted(found.tasks_by_planner.items(), key=lambda kv: -sum(kv[1].values()))[: args.largest]
        for planner, counts in busiest:
            out.append(f"  planner {planner}: " + ", ".join(f"{s} {n:,}" for s, n in counts.items() if n))
        for stream, info in found.streams.items():
            largest = ", ".join(f"{key} ({n:,})" for key, n in info.largest)
            out.append(f"{stream + ' streams':<9} {info.streams:,}" + (f"; largest: {largest}" if largest else ""))
        return out + found.warnings

    emit(args, found.to_dict(), lines)
    return OK


def _integrity(conn: apsw.Connection) -> list[str]:
    """``PRAGMA integrity_check``'s findings, one line each (none when it says ok). On some damage
    SQLite raises SQLITE_CORRUPT after the lines that name it: those lines are kept."""
    lines: list[str] = []
    try:
        with translating("integrity_check"):
            for (text,) in conn.execute("PRAGMA integrity_check"):
                lines += [line for line in str(text).splitlines() if line != "*** in database main ***"]
    except errors.DatabaseCorruptError as exc:
        lines.append(f"integrity_check stopped: {exc.__cause__ or exc}")
    return [] if lines == ["ok"] else lines


def check(args: argparse.Namespace) -> int:
    try:
        version, problems = _check_file(args.path)
    except errors.DatabaseCorruptError as exc:
        if isinstance(exc.__cause__, apsw.NotADBError):
            raise  # not an SQLite file at all (or its header is gone): refused, exit 1
        # Damage where SQLite reads first (the schema): integrity_check cannot even start.
        version, problems = None, [f"integrity: {exc.__cause__ or exc}: SQLite cannot read the schema, so "
                                   "integrity_check cannot run; restore the file from a backup"]  # fmt: skip
    data = {"path": args.path, "ok": not problems, "schema_version": version, "problems": problems}
    emit(args, data, lambda: [f"{args.path}: {'ok' if not problems else f'{len(problems)} problem(s)'}", *problems])
    return OK if not problems else PROBLEMS


def _check_file(path: str) -> tuple[int | None, list[str]]:
    problems: list[str] = []
    version: int | None = None
    with inspect_file(path) as conn:
        require_agentstate(conn, path)
        problems += [f"integrity: {line}" for line in _integrity(conn)]
        try:
            with translating("foreign_key_check"):
                orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
            problems += [f"foreign key: {table} row {rowid} points at a missing {parent}"
                         for table, rowid, parent, _ in orphans]  # fmt: skip
        except errors.DatabaseCorruptError as exc:
            problems.append(f"foreign key: foreign_key_check stopped: {exc.__cause__ or exc}")
        try:
            state = migrations.status(conn)
            version = state.version
            if state.pending:
                problems.append(f"schema: {len(state.pending)} migration(s) pending: run 'agentstate migrate'")
        except (errors.SchemaError, errors.DatabaseCorruptError) as exc:
            problems.append(f"schema: {exc}")
    return version, problems


def check_plans(args: argparse.Namespace) -> int:
    results: dict[str, list[str]] = {}
    with open_store(args.path) as conn, translating("explaining queries"):
        for name, query in sorted(queries.registry().items()):
            results[name] = query_plans.check(conn, query)
    bad = {name: found for name, found in results.items() if found}
    data = {"path": args.path, "ok": not bad, "queries": len(results), "problems": bad}
    emit(args, data, lambda: [
        f"{args.path}: {len(results)} queries, " + ("every plan searches its index" if not bad else f"{len(bad)} with problems"),
        *(f"  {name}: {'; '.join(found)}" for name, found in bad.items()),
    ])  # fmt: skip
    return OK if not bad else PROBLEMS
