"""Query monitoring: per-query statistics, the slow-query log and hooks for metrics systems.

Every named query runs through :func:`agentstate.runner.run`, which times it and reports here.
Statistics are kept per query name for the whole process (all connections), as a metrics system
would scrape them; thresholds and hooks are per connection (a :class:`Monitor`).

The slow-query log goes to the stdlib logger ``agentstate`` at WARNING: the query's registered
name, its duration, its parameters' shapes (types and lengths, never values: they hold users'
data) and its ``EXPLAIN QUERY PLAN``. The threshold is ``connect(slow_query_ms=...)``, else the
environment variable ``AGENTSTATE_SLOW_QUERY_MS``, else 100 ms; 0 logs every query.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agentstate import errors
from agentstate.values import short

logger = logging.getLogger("agentstate")

DEFAULT_SLOW_QUERY_MS = 100.0
MAX_SLOW_QUERY_MS = 86_400_000  # a day: anything longer means "never"; larger values overflow
SLOW_QUERY_ENV = "AGENTSTATE_SLOW_QUERY_MS"

QueryHook = Callable[[str, float, int], None]
"""``hook(name, seconds, rows)``, called after every named query on a connection that has it."""

# Percentiles come from the most recent calls of each query: enough for p99, and bounded memory.
WINDOW = 1024


class QueryStats:
    """Running totals for one named query (process-wide), and its most recent durations.

    The hot path appends the duration to a list (tens of nanoseconds); every ``WINDOW`` calls,
    or when someone reads the statistics, the list is folded into the totals with C-speed
    ``sum``/``max`` and kept as the window p50 and p99 are estimated from. Under threads a count
    can, rarely, be lost: these are monitoring figures, not accounting.
    """

    __slots__ = ("calls", "max_ns", "name", "pending", "recent", "rows", "total_ns")

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.rows = 0
        self.total_ns = 0
        self.max_ns = 0
        self.pending: list[int] = []
        self.recent: list[int] = []

    def add(self, ns: int, rows: int) -> None:
        self.rows += rows
        pending = self.pending
        pending.append(ns)
        if len(pending) >= WINDOW:
            self.fold()

    def fold(self) -> None:
        """Move the pending durations into the totals and the window."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.calls += len(pending)
        self.total_ns += sum(pending)
        self.max_ns = max(self.max_ns, max(pending))
        self.recent = pending if len(pending) >= WINDOW else (self.recent + pending)[-WINDOW:]

    def quantile(self, q: float) -> float:
        """Estimated seconds under which a fraction ``q`` of the recent calls finished."""
        self.fold()
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e9

    def snapshot(self) -> QuerySnapshot:
        self.fold()
        return QuerySnapshot(
            name=self.name,
            calls=self.calls,
            rows=self.rows,
            total_seconds=self.total_ns / 1e9,
            max_seconds=self.max_ns / 1e9,
            p50_seconds=self.quantile(0.50),
            p99_seconds=self.quantile(0.99),
        )


@dataclass(frozen=True)
class QuerySnapshot:
    """A copy of one query's statistics, as :func:`query_stats` returns them."""

    name: str
    calls: int
    rows: int
    total_seconds: float
    max_seconds: float
    p50_seconds: float
    """Over the last 1,024 calls (or fewer, if fewer ran)."""
    p99_seconds: float

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.calls if self.calls else 0.0


_stats: dict[str, QueryStats] = {}


def stats_for(name: str) -> QueryStats:
    """The statistics object of a query name (created on first use)."""
    found = _stats.get(name)
    if found is None:
        found = _stats[name] = QueryStats(name)
    return found


def query_stats() -> dict[str, QuerySnapshot]:
    """Statistics of every named query run in this process so far, by name."""
    return {name: snap for name, s in sorted(_stats.items()) if (snap := s.snapshot()).calls}


def reset_query_stats() -> None:
    """Start counting afresh (e.g. at the start of a sampling window)."""
    for found in _stats.values():
        found.__init__(found.name)  # type: ignore[misc]


def default_slow_query_ms() -> float:
    """``AGENTSTATE_SLOW_QUERY_MS`` if set, else 100."""
    raw = os.environ.get(SLOW_QUERY_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_SLOW_QUERY_MS
    try:
        value = float(raw)
    except ValueError:
        raise errors.InvalidValueError(f"{SLOW_QUERY_ENV}={raw!r} is not a number of milliseconds") from None
    if not 0 <= value <= MAX_SLOW_QUERY_MS:
        raise errors.InvalidValueError(f"{SLOW_QUERY_ENV}={raw!r} must be from 0 to {MAX_SLOW_QUERY_MS:,}")
    return value


class Monitor:
    """What one connection does with its queries' timings: the slow-query threshold and hooks."""

    __slots__ = ("hooks", "report_above", "slow_ns")

    def __init__(self, slow_query_ms: float | None = None, hooks: Iterable[QueryHook] = ()) -> None:
        ms = default_slow_query_ms() if slow_query_ms is None else slow_query_ms
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 <= ms <= MAX_SLOW_QUERY_MS:
            raise errors.InvalidValueError(
                f"slow_query_ms must be a number of milliseconds from 0 to {MAX_SLOW_QUERY_MS:,}, got {short(ms)}"
            )
        self.slow_ns = int(ms * 1_000_000)
        self.hooks = tuple(hooks)
        # One comparison on the hot path: with hooks, every query is reported.
        self.report_above = 0 if self.hooks else self.slow_ns
        for hook in self.hooks:
            if not callable(hook):
                raise errors.InvalidTypeError(f"on_query hooks must be callables, not {type(hook).__name__}")

    def report(self, name: str, ns: int, rows: int, params: Any, plan: Callable[[], str]) -> None:
        """A query ran past the threshold, or hooks want every query (statistics are counted by
        the runner itself: the common path stays a few attribute updates)."""
        if ns >= self.slow_ns:
            _log_slow(name, ns, rows, self.slow_ns, params, plan)
        for hook in self.hooks:
            try:
                hook(name, ns / 1e9, rows)
            except Exception:  # a metrics exporter must never fail the user's query
                logger.exception("agentstate: on_query hook %r failed for %s", hook, name)


def _log_slow(name: str, ns: int, rows: int, slow_ns: int, params: Any, explain: Callable[[], str]) -> None:
    if not logger.isEnabledFor(logging.WARNING):
        return
    try:
        plan = explain()  # the engine's, in one line
    except Exception as exc:  # the plan is a courtesy; the log line must still go out
        plan = f"(no plan: {exc})"
    logger.warning(
        "slow query %s: %.3f ms (threshold %.3f ms), %d row(s); params %s; plan: %s",
        name,
        ns / 1e6,
        slow_ns / 1e6,
        rows,
        shapes(params),
        plan,
        extra={"agentstate_query": name, "agentstate_seconds": ns / 1e9, "agentstate_rows": rows},
    )


def shapes(params: Any) -> str:
    """Parameters described by type and size only: ``{planner_id: str[9], limit: int}``."""
    if isinstance(params, dict):
        return "{" + ", ".join(f"{key}: {_shape(value)}" for key, value in params.items()) + "}"
    if isinstance(params, (list, tuple)):
        return "(" + ", ".join(_shape(value) for value in params) + ")"
    return _shape(params)


def _shape(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (str, bytes)):
        return f"{type(value).__name__}[{len(value)}]"
    return type(value).__name__
