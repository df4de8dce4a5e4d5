"""The ``demo`` command: :func:`agentstate.demo.run` on a file or a PostgreSQL URL."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentstate.cli.output import OK
from agentstate.engines import is_url


def run_demo(args: argparse.Namespace) -> int:
    from agentstate.demo import run

    run(args.db if is_url(args.db) else Path(args.db), tasks=args.tasks)
    return OK
