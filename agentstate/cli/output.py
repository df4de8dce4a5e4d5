"""What a command prints: text lines or one line of JSON, sizes in MB, a progress line on stderr,
and the exit statuses it returns."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

OK, ERROR, USAGE, PROBLEMS = 0, 1, 2, 3


def emit(args: argparse.Namespace, data: dict[str, Any], lines: Callable[[], list[str]]) -> None:
    if args.json:
        print(json.dumps(data, separators=(",", ":")))  # one line per run: a log of runs is JSON lines
    else:
        print("\n".join(lines()))


def mb(size: float) -> str:
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
