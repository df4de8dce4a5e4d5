"""The ``agentstate`` command: ``migrate`` a database, or run the ``demo`` workload."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agentstate import engine, errors, migrations
from agentstate.engine import DEFAULT_PATH


def _migrate(args: argparse.Namespace) -> int:
    path = Path(args.path)
    known = migrations.discover()
    if args.list:
        if not path.exists():
            print(f"{path}: no database yet; {len(known)} pending")
            for m in known:
                print(f"  pending  {m.filename}")
            return 0
        conn = engine.open_connection(path, readonly=True)
        try:
            state = migrations.status(conn, known)
        finally:
            conn.close()
        print(f"{path}: schema version {state.version}, {len(state.pending)} pending")
        for row in state.applied:
            print(f"  applied  {row.version:04d}_{row.name}.sql  {row.applied_at}  sha256 {row.sha256[:12]}")
        for m in state.pending:
            print(f"  pending  {m.filename}")
        return 0

    conn = engine.open_connection(path)
    try:
        applied = migrations.migrate(conn, known, on_apply=lambda m: print(f"applied  {m.filename}", flush=True))
        version = migrations.status(conn, known).version
    finally:
        conn.close()
    if applied:
        print(f"{path}: migrated to schema version {version} ({len(applied)} applied)")
    else:
        print(f"{path}: already at schema version {version}, nothing to apply")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from agentstate.demo import run

    run(Path(args.db), tasks=args.tasks)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentstate",
        description="The state store for multi-agent systems: tasks, agents and messages in one SQLite file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser(
        "migrate",
        help="apply pending schema migrations to a database (creating it if needed)",
        description="Apply pending schema migrations in order, each in its own transaction. "
        "Refuses a database whose applied migration files were edited or removed, or that is newer than this code.",
    )
    migrate.add_argument("path", metavar="PATH", help="the database file")
    migrate.add_argument("--list", action="store_true", help="show applied and pending migrations; write nothing")
    migrate.set_defaults(run=_migrate)

    demo = commands.add_parser(
        "demo",
        help="create a database and run a small multi-agent workload against it",
        description="Create (or reuse) a database and run a small router/planner/worker workload, printing each step.",
    )
    demo.add_argument("--db", default=DEFAULT_PATH, metavar="PATH", help=f"database file (default: {DEFAULT_PATH})")
    demo.add_argument("--tasks", type=int, default=20, metavar="N", help="tasks to create and run (default: 20)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentstate`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except errors.AgentStateError as exc:
        print(f"agentstate: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
