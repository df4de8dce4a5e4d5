"""The ``agentstate`` command: look after a store from the terminal, cron or CI.

Every command but ``demo`` takes ``--json``: one compact line of JSON on stdout per run, so a
cron job's ``>> log`` is a file of JSON lines. Exit status: 0 success,
1 an error (one line on stderr saying what and what to do), 2 a usage error, 3 a check that
found problems (``check``, ``check-plans``). Long work shows progress on stderr when it is a
terminal. Only the standard library and apsw are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from agentstate import database, engine, errors, health, migrations, plans, queries, retention
from agentstate.backup import backup as copy_database
from agentstate.engine import DEFAULT_PATH
from agentstate.postgres import handle as postgres

OK, ERROR, USAGE, PROBLEMS = 0, 1, 2, 3

EPILOG = """exit status: 0 success, 1 error (the reason on stderr), 2 usage error, 3 problems found
by check or check-plans.  --json prints one line of JSON.  Run 'agentstate COMMAND --help'."""


# --- output --------------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: Callable[[], list[str]]) -> None:
    if args.json:
        print(json.dumps(data, separators=(",", ":")))  # one line per run: a log of runs is JSON lines
    else:
        print("\n".join(lines()))


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal (and not --quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.on = not quiet and sys.stderr.isatty()
        self.last = 0.0
        self.label = ""

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if not self.on or (time.monotonic() - self.last < 0.1 and done != total):
            return
        self.last = time.monotonic()
        if total:
            width = 30
            filled = int(width * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}"
        else:
            bar = f"{done:,}"
        if self.label and label != self.label:
            sys.stderr.write("\n")  # the previous phase's line stays
        sys.stderr.write(f"\r{label:<18} {bar}\033[K")
        self.label = label
        sys.stderr.flush()

    def end(self) -> None:
        if self.on and self.label:
            sys.stderr.write("\n")


def _require_file(path: str) -> None:
    if not Path(path).exists() and not path.startswith("file:"):
        raise errors.AgentStateError(f"{path}: no such database (create one with 'agentstate migrate {path}')")


def _in_wal_mode(path: str) -> bool:
    """Whether the file's header says WAL (bytes 18 and 19 are 2; 1 is a rollback journal)."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False  # a file: URI, say; SQLite opens it read-only and says what is wrong
    return header.startswith(engine.SQLITE_HEADER) and header[18:20] == b"\2\2"


@contextmanager
def _inspect(path: str) -> Iterator[engine.SyncConnection]:
    """A connection that reads the file at ``path`` and changes nothing in it or beside it.

    No journal-mode switch, no chmod, no writer-gate lock file, no background checkpointer, and
    no statement that writes (query_only also keeps the PRAGMA optimize of close from writing
    statistics). A file in WAL mode is opened read-write all the same, so that SQLite, when this is
    the last connection, removes the -wal and -shm files a reader needs, as it does for every
    connection; any other file (a rollback journal, an empty file) is opened read-only, which
    creates nothing at all.
    """
    _require_file(path)
    settings = engine.Settings(background_checkpoints=False, writer_gate=False)
    wal = _in_wal_mode(path)
    conn = engine.open_connection(path, readonly=not wal, settings=settings, create=False)
    try:
        with engine.translating(f"opening {path}"):
            if wal:
                conn.pragma("query_only", True)
        yield conn
    finally:
        conn.close()


def _is_agentstate(conn: engine.SyncConnection) -> bool:
    with engine.translating("reading the schema"):
        found = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'")
        return found.fetchall() != []


def _require_agentstate(conn: engine.SyncConnection, path: str) -> None:
    if not _is_agentstate(conn):
        raise errors.SchemaError(
            f"{path} is not an agentstate database (it holds no agentstate schema): "
            f"run 'agentstate migrate {path}' to create the schema"
        )


@contextmanager
def _open(path: str) -> Iterator[engine.SyncConnection]:
    """A connection to an existing store whose schema is up to date, for commands that write.

    The file is first looked at without changing it, so a file that is not an agentstate store
    is refused before a byte of it (its journal mode, say) is changed.
    """
    with _inspect(path) as conn:
        _require_agentstate(conn, path)
    conn = database.connect(path, migrate=False)
    try:
        yield conn
    finally:
        conn.close()


# --- commands ------------------------------------------------------------------------------------


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
    _emit(args, {**where, "schema_version": version, "applied": applied, "pending": pending}, lambda: [
        f"{prefix}schema version {version}{note}, {len(pending)} pending",
        *(f"  applied  {r['version']:04d}_{r['name']}.sql  {r['applied_at']}  sha256 {r['sha256'][:12]}" for r in applied),
        *(f"  pending  {name}" for name in pending),
    ])  # fmt: skip
    return OK


def _show_applied(args: argparse.Namespace, where: dict[str, Any], version: int, applied: list[migrations.Migration]) -> int:
    prefix = f"{where['path']}: " if "path" in where else ""
    _emit(args, {**where, "schema_version": version, "applied": [m.filename for m in applied]}, lambda: [
        f"{prefix}migrated to schema version {version} ({len(applied)} applied)" if applied else
        f"{prefix}already at schema version {version}, nothing to apply"
    ])  # fmt: skip
    return OK


def _migrate_postgres(args: argparse.Namespace) -> int:
    """``agentstate migrate URL``: the same, on PostgreSQL (an advisory lock serialises migrators).
    The output never shows the URL, which may hold a password."""
    where = {"engine": "postgresql"}
    with postgres.PostgresConnection(args.path, pool_size=1) as conn:
        if args.list:
            return _show_list(args, where, migrations.status(conn))
        applied = migrations.migrate(conn, on_apply=_announce(args))
        version = migrations.status(conn).version
    return _show_applied(args, where, version, applied)


def _migrate(args: argparse.Namespace) -> int:
    if postgres.is_url(args.path):
        return _migrate_postgres(args)
    path = Path(args.path)
    where = {"path": str(path)}
    known = migrations.discover()
    if args.list:
        if not path.exists():
            return _show_list(args, where, None)
        with _inspect(args.path) as conn:
            state = migrations.status(conn, known)
            foreign = not _is_agentstate(conn)
        return _show_list(args, where, state, " (not an agentstate database yet)" if foreign else "")
    conn = engine.open_connection(path)
    try:
        applied = migrations.migrate(conn, known, on_apply=_announce(args))
        version = migrations.status(conn, known).version
    finally:
        conn.close()
    return _show_applied(args, where, version, applied)


def _status(args: argparse.Namespace) -> int:
    with _inspect(args.path) as conn:
        _require_agentstate(conn, args.path)
        pending = [m.filename for m in migrations.status(conn).pending]
        found = health.stats(conn, full=False)
    data = {**found.to_dict(), "pending_migrations": pending}
    data.pop("rows"), data.pop("streams"), data.pop("tasks_by_planner")
    age = found.oldest_pending_age_seconds
    _emit(args, data, lambda: [
        f"{args.path}: schema version {found.schema_version}"
        + (f", {len(pending)} migration(s) pending: run 'agentstate migrate'" if pending else ", up to date"),
        f"size      {_mb(found.file_bytes)} + {_mb(found.wal_bytes)} WAL, "
        f"{_mb(found.freelist_pages * found.page_size)} free inside",
        "tasks     " + ", ".join(f"{status} {n:,}" for status, n in found.tasks_by_status.items()),
        f"leases    {found.expired_leases:,} expired (their executors died; the next claim takes them over)",
        "waiting   " + ("nothing pending" if age is None else f"oldest pending task waits {age:,.1f} s"),
        *found.warnings,
    ])  # fmt: skip
    return OK


def _stats(args: argparse.Namespace) -> int:
    warn = None if args.warn_mb is None else max(1, int(args.warn_mb * 1_000_000))
    with _inspect(args.path) as conn:
        _require_agentstate(conn, args.path)
        found = health.stats(conn, largest=args.largest, warn_above_bytes=warn)

    def lines() -> list[str]:
        out = [
            f"{found.path}: schema version {found.schema_version}",
            f"file      {_mb(found.file_bytes)} ({found.page_count:,} pages of {found.page_size:,} B), "
            f"WAL {_mb(found.wal_bytes)}, free {found.freelist_pages:,} pages",
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

    _emit(args, found.to_dict(), lines)
    return OK


def _cleanup(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    with _open(args.path) as conn:
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
    _emit(args, report.to_dict(), lambda: [
        f"{args.path}: {verb} {report.tasks_deleted:,} recorded task(s) with {report.task_events_deleted:,} event(s) "
        f"and {report.worker_messages_deleted:,} worker message(s)",
        f"messages  {verb} " + ", ".join(f"{s} {n:,}" for s, n in report.messages_deleted.items()),
        f"space     {_mb(report.file_bytes_before)} -> {_mb(report.file_bytes_after)} "
        f"({report.pages_freed:,} pages given back) in {report.seconds:.1f} s",
    ])  # fmt: skip
    return OK


def _backup(args: argparse.Namespace) -> int:
    _require_file(args.path)
    dest = Path(args.dest)
    if not args.overwrite and dest.exists() and not dest.samefile(args.path):
        # before the API's own refusal, which names its parameter (overwrite=True), not the flag
        raise errors.InvalidValueError(f"{dest} exists: choose a new file, or pass --overwrite to replace it")
    progress = Progress(args.quiet)
    with _open(args.path) as conn:
        report = copy_database(
            conn, args.dest, overwrite=args.overwrite, progress=lambda done, total: progress("backup", done, total)
        )
    progress.end()
    _emit(args, report.to_dict(), lambda: [
        f"{args.path} -> {report.dest}: {report.pages:,} pages, {_mb(report.bytes)}, schema version "
        f"{report.schema_version}, in {report.seconds:.1f} s",
    ])  # fmt: skip
    return OK


def _integrity(conn: engine.SyncConnection) -> list[str]:
    """``PRAGMA integrity_check``'s findings, one line each (none when it says ok). On some damage
    SQLite raises SQLITE_CORRUPT after the lines that name it: those lines are kept."""
    lines: list[str] = []
    try:
        with engine.translating("integrity_check"):
            for (text,) in conn.execute("PRAGMA integrity_check"):
                lines += [line for line in str(text).splitlines() if line != "*** in database main ***"]
    except errors.DatabaseCorruptError as exc:
        lines.append(f"integrity_check stopped: {exc.__cause__ or exc}")
    return [] if lines == ["ok"] else lines


def _check(args: argparse.Namespace) -> int:
    try:
        version, problems = _check_file(args.path)
    except errors.DatabaseCorruptError as exc:
        if isinstance(exc.__cause__, apsw.NotADBError):
            raise  # not an SQLite file at all (or its header is gone): refused, exit 1
        # Damage where SQLite reads first (the schema): integrity_check cannot even start.
        version, problems = None, [f"integrity: {exc.__cause__ or exc}: SQLite cannot read the schema, so "
                                   "integrity_check cannot run; restore the file from a backup"]  # fmt: skip
    data = {"path": args.path, "ok": not problems, "schema_version": version, "problems": problems}
    _emit(args, data, lambda: [f"{args.path}: {'ok' if not problems else f'{len(problems)} problem(s)'}", *problems])
    return OK if not problems else PROBLEMS


def _check_file(path: str) -> tuple[int | None, list[str]]:
    problems: list[str] = []
    version: int | None = None
    with _inspect(path) as conn:
        _require_agentstate(conn, path)
        problems += [f"integrity: {line}" for line in _integrity(conn)]
        try:
            with engine.translating("foreign_key_check"):
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


def _check_plans(args: argparse.Namespace) -> int:
    results: dict[str, list[str]] = {}
    with _open(args.path) as conn, engine.translating("explaining queries"):
        for name, query in sorted(queries.registry().items()):
            results[name] = plans.check(conn, query)
    bad = {name: found for name, found in results.items() if found}
    data = {"path": args.path, "ok": not bad, "queries": len(results), "problems": bad}
    _emit(args, data, lambda: [
        f"{args.path}: {len(results)} queries, " + ("every plan searches its index" if not bad else f"{len(bad)} with problems"),
        *(f"  {name}: {'; '.join(found)}" for name, found in bad.items()),
    ])  # fmt: skip
    return OK if not bad else PROBLEMS


def _vacuum(args: argparse.Namespace) -> int:
    with _open(args.path) as conn:
        before = os.path.getsize(conn.filename)
        started = time.perf_counter()
        if args.full:
            with engine.translating("VACUUM"):
                conn.execute("VACUUM")
            freed = 0
        else:
            freed = engine.give_back_free_pages(conn)
        truncated = engine.checkpoint_truncate(conn)
        after = os.path.getsize(conn.filename)
    data = {"path": args.path, "full": args.full, "pages_freed": freed, "file_bytes_before": before,
            "file_bytes_after": after, "wal_truncated": truncated, "seconds": time.perf_counter() - started}  # fmt: skip
    _emit(args, data, lambda: [
        f"{args.path}: {_mb(before)} -> {_mb(after)}" + ("" if truncated else " (readers kept the WAL from being truncated)"),
    ])  # fmt: skip
    return OK


def _demo(args: argparse.Namespace) -> int:
    from agentstate.demo import run

    run(args.db if postgres.is_url(args.db) else Path(args.db), tasks=args.tasks)
    return OK


# --- the parser ----------------------------------------------------------------------------------


MAX_COUNT = 2**63 - 1
"""The most a count flag takes: what SQLite's 64-bit integers (and the Python API) take."""
MAX_DEMO_TASKS = 100_000
"""The demo builds its tasks in memory: a bound that keeps it a demo."""
MAX_WARN_MB = 1_000_000_000
"""A petabyte, as AGENTSTATE_SIZE_WARNING_MB allows."""


def _number(kind: type[int] | type[float], low: int, high: int, unit: str, *, above: bool = False,
            low_note: str = "", high_note: str = "") -> Callable[[str], Any]:  # fmt: skip
    """An argparse type: a number of ``unit`` from ``low`` (or more than it, ``above``) to ``high``.

    Checked while the arguments are parsed, so a bad one is a usage error (exit 2) in the flag's
    own unit. A whole number may be written ``1e3``; NaN and infinity are out of every range.
    """
    whole = kind is int

    def parse(text: str) -> Any:
        try:
            number: float = int(text) if whole else float(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if whole else ''}number of {unit}") from None
            if whole and number.is_integer():
                number = int(number)
        if not (low < number if above else low <= number) or not number <= high:  # NaN fails both
            bounds = f"more than {low:,} and at most" if above else f"from {low:,}{low_note} to"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bounds} {high:,} {unit}{high_note}")
        if whole and not isinstance(number, int):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {unit}")
        return number

    return parse


_days = _number(float, 0, retention.MAX_DAYS, "days", low_note=" (everything until now)", high_note=" (100 years)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentstate",
        description="The state store for multi-agent systems: tasks, agents and messages in one SQLite file.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], summary: str, text: str, *, json_out: bool = True,
                path: bool = True) -> argparse.ArgumentParser:  # fmt: skip
        sub = commands.add_parser(name, help=summary, description=text, epilog=EPILOG)
        if path:
            sub.add_argument("path", metavar="PATH", help="the database file" + (
                " (or a postgresql:// URL)" if name == "migrate" else ""))  # fmt: skip
        if json_out:
            sub.add_argument("--json", action="store_true", help="print one line of JSON instead of text")
        sub.add_argument("--quiet", action="store_true", help="no progress display")
        sub.set_defaults(run=run)
        return sub

    migrate = command(
        "migrate", _migrate, "apply pending schema migrations (creating the database if needed)",
        "Apply pending schema migrations in order, each in its own transaction. Refuses a database whose "
        "applied migration files were edited or removed, or that is newer than this code.",
    )  # fmt: skip
    migrate.add_argument("--list", action="store_true", help="show applied and pending migrations; write nothing")

    command("status", _status, "schema, size, queue depth per status and expired leases (quick)",
            "A quick look: schema version and pending migrations, file and WAL size, tasks per status, "
            "expired leases and the oldest pending task. Reads indexes only.")  # fmt: skip

    stats = command("stats", _stats, "everything status says, plus rows per table and stream sizes",
                    "Size and health in full: file, WAL and free pages, rows per table, tasks per status and "
                    "planner, expired leases, the oldest pending task, stream counts and the largest streams. "
                    "Counting rows reads whole indexes (about a second per ten million rows), never blocking writers.")  # fmt: skip
    stats.add_argument("--largest", type=_number(int, 1, MAX_COUNT, "streams"), default=5, metavar="N", help="list the N largest streams and planners (default 5)")
    stats.add_argument("--warn-mb", type=_number(float, 0, MAX_WARN_MB, "MB", above=True, high_note=" (a petabyte)"), metavar="MB",
                       help="warn when the file passes MB (default: $AGENTSTATE_SIZE_WARNING_MB, else 100)")  # fmt: skip

    cleanup = command("cleanup", _cleanup, "retention: delete old recorded tasks, old messages and long histories",
                      "Delete recorded tasks older than N days with their events and worker messages (and, if asked, "
                      "old messages per stream and long task histories) in short transactions, then give the freed "
                      "space back to the file system. --dry-run counts what would go and writes nothing.")  # fmt: skip
    cleanup.add_argument("--recorded-older-than-days", type=_days, default=retention.DEFAULT_RECORDED_DAYS,
                         metavar="DAYS", help="delete tasks recorded more than DAYS ago (default 30; 0: every recorded task)")  # fmt: skip
    cleanup.add_argument("--keep-recorded", action="store_true", help="delete no tasks (only the rules below)")
    cleanup.add_argument("--messages-older-than-days", type=_days, metavar="DAYS",
                         help="delete messages older than DAYS from every stream (its last message stays)")  # fmt: skip
    cleanup.add_argument("--keep-last-messages", type=_number(int, 1, MAX_COUNT, "messages"), metavar="N", help="keep only each stream's last N messages")
    cleanup.add_argument("--keep-last-events", type=_number(int, 1, MAX_COUNT, "events"), metavar="N", help="keep only each task's last N events")
    cleanup.add_argument("--batch-size", type=_number(int, 1, MAX_COUNT, "rows"), default=1000, metavar="N",
                         help="rows per write transaction (default 1000): other writers wait at most one batch")  # fmt: skip
    cleanup.add_argument("--dry-run", action="store_true", help="count what would be deleted; write nothing")

    copy = command("backup", _backup, "copy the database, online, to a new private file",
                   "Copy one consistent snapshot of the database to DEST while other processes keep writing. "
                   "DEST is created with permissions 0600.")  # fmt: skip
    copy.add_argument("dest", metavar="DEST", help="the new file")
    copy.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")

    command("check", _check, "integrity, foreign keys and schema checksums (exit 3 on problems)",
            "Run PRAGMA integrity_check and foreign_key_check, and compare the applied migrations with the "
            "files this agentstate ships. Exit status 3 when anything is wrong.")  # fmt: skip
    command("check-plans", _check_plans, "every query's plan on this database (exit 3 on a scan or sort)",
            "Explain every registered query against this database, with its real statistics, and fail (exit 3) "
            "if one scans a table, sorts in a temporary b-tree, or misses the index it names.")  # fmt: skip
    vacuum = command("vacuum", _vacuum, "give free pages back to the file system",
                     "Hand the file's free pages back to the file system and truncate the WAL. --full rebuilds "
                     "the whole file instead (VACUUM: compacts it, but holds the write lock while it runs).")  # fmt: skip
    vacuum.add_argument("--full", action="store_true", help="rebuild the whole file (VACUUM)")

    demo = command("demo", _demo, "create a database and run a small multi-agent workload against it",
                   "Create (or reuse) a database and run a small router/planner/worker workload, printing each step.",
                   json_out=False, path=False)  # fmt: skip
    demo.add_argument("--db", default=DEFAULT_PATH, metavar="PATH",
                      help=f"database file, or a postgresql:// URL (default: {DEFAULT_PATH})")  # fmt: skip
    demo.add_argument("--tasks", type=_number(int, 1, MAX_DEMO_TASKS, "tasks"), default=20, metavar="N",
                      help=f"tasks to create and run (default: 20, at most {MAX_DEMO_TASKS:,})")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentstate`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if postgres.is_url(getattr(args, "path", None)) and args.command != "migrate":
        print(f"agentstate: error: '{args.command}' works on SQLite files; on PostgreSQL, the server's own tools "
              "(pg_dump, VACUUM, pg_stat_*) do this job", file=sys.stderr)  # fmt: skip
        return ERROR
    try:
        status: int = args.run(args)
        return status
    except errors.AgentStateError as exc:
        print(f"agentstate: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("agentstate: interrupted (every finished batch is committed)", file=sys.stderr)
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
