"""The ``agentstate`` command's arguments: every command, its flags and its help, and the number
types that range-check a flag while the arguments are parsed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from agentstate import retention
from agentstate.cli import inspecting, maintenance
from agentstate.cli.demo import run_demo
from agentstate.engines import DEFAULT_PATH

EPILOG = """exit status: 0 success, 1 error (the reason on stderr), 2 usage error, 3 problems found
by check or check-plans.  --json prints one line of JSON.  Run 'agentstate COMMAND --help'."""

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
        "migrate", maintenance.migrate, "apply pending schema migrations (creating the database if needed)",
        "Apply pending schema migrations in order, each in its own transaction. Refuses a database whose "
        "applied migration files were edited or removed, or that is newer than this code.",
    )  # fmt: skip
    migrate.add_argument("--list", action="store_true", help="show applied and pending migrations; write nothing")

    command("status", inspecting.status, "schema, size, queue depth per status and expired leases (quick)",
            "A quick look: schema version and pending migrations, file and WAL size, tasks per status, "
            "expired leases and the oldest pending task. Reads indexes only.")  # fmt: skip

    stats = command("stats", inspecting.stats, "everything status says, plus rows per table and stream sizes",
                    "Size and health in full: file, WAL and free pages, rows per table, tasks per status and "
                    "planner, expired leases, the oldest pending task, stream counts and the largest streams. "
                    "Counting rows reads whole indexes (about a second per ten million rows), never blocking writers.")  # fmt: skip
    stats.add_argument("--largest", type=_number(int, 1, MAX_COUNT, "streams"), default=5, metavar="N", help="list the N largest streams and planners (default 5)")
    stats.add_argument("--warn-mb", type=_number(float, 0, MAX_WARN_MB, "MB", above=True, high_note=" (a petabyte)"), metavar="MB",
                       help="warn when the file passes MB (default: $AGENTSTATE_SIZE_WARNING_MB, else 100)")  # fmt: skip

    cleanup = command("cleanup", maintenance.cleanup, "retention: delete old recorded tasks, old messages and long histories",
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

    copy = command("backup", maintenance.backup, "copy the database, online, to a new private file",
                   "Copy one consistent snapshot of the database to DEST while other processes keep writing. "
                   "DEST is created with permissions 0600.")  # fmt: skip
    copy.add_argument("dest", metavar="DEST", help="the new file")
    copy.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")

    command("check", inspecting.check, "integrity, foreign keys and schema checksums (exit 3 on problems)",
            "Run PRAGMA integrity_check and foreign_key_check, and compare the applied migrations with the "
            "files this agentstate ships. Exit status 3 when anything is wrong.")  # fmt: skip
    command("check-plans", inspecting.check_plans, "every query's plan on this database (exit 3 on a scan or sort)",
            "Explain every registered query against this database, with its real statistics, and fail (exit 3) "
            "if one scans a table, sorts in a temporary b-tree, or misses the index it names.")  # fmt: skip
    vacuum = command("vacuum", maintenance.vacuum, "give free pages back to the file system",
                     "Hand the file's free pages back to the file system and truncate the WAL. --full rebuilds "
                     "the whole file instead (VACUUM: compacts it, but holds the write lock while it runs).")  # fmt: skip
    vacuum.add_argument("--full", action="store_true", help="rebuild the whole file (VACUUM)")

    demo = command("demo", run_demo, "create a database and run a small multi-agent workload against it",
                   "Create (or reuse) a database and run a small router/planner/worker workload, printing each step.",
                   json_out=False, path=False)  # fmt: skip
    demo.add_argument("--db", default=DEFAULT_PATH, metavar="PATH",
                      help=f"database file, or a postgresql:// URL (default: {DEFAULT_PATH})")  # fmt: skip
    demo.add_argument("--tasks", type=_number(int, 1, MAX_DEMO_TASKS, "tasks"), default=20, metavar="N",
                      help=f"tasks to create and run (default: 20, at most {MAX_DEMO_TASKS:,})")  # fmt: skip
    return parser
