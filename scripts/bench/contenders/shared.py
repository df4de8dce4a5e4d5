"""What the contenders share: an operation bound for timing, the result executors store, the
lease they take, and how a page of messages is fingerprinted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Bound = tuple[Callable[[Any], Any], list[Any]]
"""An operation ready to time: the function, and the argument of each call (cycled)."""

LEASE_SECONDS = 60
RESULT = {"ok": True, "summary": "done by the benchmark executor", "artifacts": ["out/report.md"]}


def message_fingerprint(contents: Sequence[str]) -> tuple[int, tuple[str, ...]]:
    """What a page of messages must agree on across contenders, whatever its order."""
    return len(contents), tuple(sorted(c[:40] for c in contents))


def chunked(items: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
