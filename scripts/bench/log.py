"""The run's clock, and its progress lines on stderr."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def elapsed() -> float:
    """Seconds since the run started."""
    return time.monotonic() - _T0


def log(message: str) -> None:
    print(f"[{elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)
