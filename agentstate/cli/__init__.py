"""The ``agentstate`` command: look after a store from the terminal, cron or CI.

Every command but ``demo`` takes ``--json``: one compact line of JSON on stdout per run, so a
cron job's ``>> log`` is a file of JSON lines. Exit status: 0 success,
1 an error (one line on stderr saying what and what to do), 2 a usage error, 3 a check that
found problems (``check``, ``check-plans``). Long work shows progress on stderr when it is a
terminal. Only the standard library and apsw are needed.

Its parts: :mod:`~agentstate.cli.parser` (the commands, their flags and help),
:mod:`~agentstate.cli.inspecting` (``status``, ``stats``, ``check``, ``check-plans``),
:mod:`~agentstate.cli.maintenance` (``migrate``, ``cleanup``, ``backup``, ``vacuum``),
:mod:`~agentstate.cli.demo`, :mod:`~agentstate.cli.files` (opening the file a command works on)
and :mod:`~agentstate.cli.output` (text or JSON, progress, exit statuses).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from agentstate import errors
from agentstate.cli.output import ERROR, OK, PROBLEMS, USAGE, Progress
from agentstate.cli.parser import EPILOG, MAX_COUNT, MAX_DEMO_TASKS, MAX_WARN_MB, build_parser
from agentstate.engines import is_url


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentstate`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if is_url(getattr(args, "path", None)) and args.command != "migrate":
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


__all__ = [
    "EPILOG",
    "ERROR",
    "MAX_COUNT",
    "MAX_DEMO_TASKS",
    "MAX_WARN_MB",
    "OK",
    "PROBLEMS",
    "USAGE",
    "Progress",
    "build_parser",
    "main",
]
