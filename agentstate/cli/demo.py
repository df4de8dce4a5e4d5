"""The ``demo`` command: :func:`agentstate.demo.run` on a file or a PostgreSQL URL."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentstate.cli.output import OK
from agentstate.postgres import handle as postgres


def run_demo(args: argparse.Namespace) -> int:
    from agentstate.demo import run

    run(args.db if postgres.is_url(args.db) else Path(args.db), tasks=args.tasks)
    return OK
