"""The one path from a registered query's name to its result.

Every named query in ``schema/<engine>/queries/`` runs through :func:`run` (or :func:`run_each`
for one statement over many parameter sets). This is the single place that

- looks the query up and returns what its cardinality promises (aiosql's idea): ``:one`` a row
  or None, ``:many`` a list of rows, ``:value`` the first column of the one row (or None),
  ``:returning`` the row a write returned (or None), ``:exec`` the number of rows changed; a
  ``:one``, ``:value`` or ``:returning`` query that returns more than one row raises
  :class:`~agentstate.errors.QueryCardinalityError`, so a wrong header cannot go unnoticed;
- times it and reports to the connection's :class:`~agentstate.monitor.Monitor` (statistics,
  slow-query log, hooks);
- turns the engine's exceptions into agentstate's.

The managers (tasks, messages, agents) never touch the driver: they name queries and bind
parameters. A second engine plugs in below this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter_ns
from typing import Any, Final

import apsw

from agentstate import engine, errors, plans, queries
from agentstate.monitor import Monitor

ONE: Final = "one"
MANY: Final = "many"
VALUE: Final = "value"
RETURNING: Final = "returning"
EXEC: Final = "exec"

_REGISTRY = queries.registry()
# Connections that are not agentstate's own (an apsw.Connection made by hand) still get
# statistics and the slow-query log, with the defaults.
_DEFAULT_MONITOR: Monitor | None = None


def _default_monitor() -> Monitor:
    global _DEFAULT_MONITOR
    if _DEFAULT_MONITOR is None:
        _DEFAULT_MONITOR = Monitor()
    return _DEFAULT_MONITOR


def query(name: str) -> queries.Query:
    """The registered query of this name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise errors.QueryFileError(f"no query named {name!r} in {engine.schema_dir() / 'queries'}") from None


def run(conn: apsw.Connection, name: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> Any:
    """Run the named query with ``params`` bound and return what its cardinality promises."""
    found = _REGISTRY.get(name) or query(name)
    monitor = getattr(conn, "monitor", None) if type(conn) is engine.Connection else _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    try:
        rows = conn.execute(found.sql, params).fetchall()
        changes = conn.changes() if found.cardinality == EXEC else 0
    except apsw.Error as exc:
        raise engine.translate(exc, name) from exc
    except (TypeError, OverflowError, UnicodeEncodeError) as exc:
        raise _unbindable(name, exc) from exc
    if monitor is not None:
        elapsed = perf_counter_ns() - start
        monitor.observe(name, elapsed, changes or len(rows), lambda: explain(conn, found.sql), params)
    return _shape(found, rows, changes)


def run_each(conn: apsw.Connection, name: str, params: Iterable[dict[str, Any] | tuple[Any, ...]]) -> Any:
    """Run the named query once per parameter set in one call (``executemany``): a list of every
    row returned for row-returning queries, the total rows changed for ``:exec``."""
    found = _REGISTRY.get(name) or query(name)
    monitor = getattr(conn, "monitor", None) if type(conn) is engine.Connection else _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    try:
        before = conn.total_changes()
        rows = conn.executemany(found.sql, params).fetchall()
        changes = conn.total_changes() - before
    except apsw.Error as exc:
        raise engine.translate(exc, name) from exc
    except (TypeError, OverflowError, UnicodeEncodeError) as exc:
        raise _unbindable(name, exc) from exc
    if monitor is not None:
        elapsed = perf_counter_ns() - start
        monitor.observe(name, elapsed, changes or len(rows), lambda: explain(conn, found.sql), "(many)")
    return changes if found.cardinality == EXEC else rows


def _unbindable(name: str, exc: Exception) -> errors.AgentStateError:
    """A value SQLite cannot take (the managers check arguments first; this is the backstop for
    values that arrive inside objects, such as a hand-made Claim or ``after=`` row)."""
    if isinstance(exc, TypeError):
        return errors.InvalidTypeError(f"{name}: a value of an unsupported type was given: {exc}")
    what = "an integer beyond 64 bits" if isinstance(exc, OverflowError) else "text with a lone surrogate"
    return errors.InvalidValueError(f"{name}: a value SQLite cannot store was given ({what}): {exc}")


def _shape(found: queries.Query, rows: list[Any], changes: int) -> Any:
    cardinality = found.cardinality
    if cardinality == MANY:
        return rows
    if cardinality == EXEC:
        return changes
    if len(rows) > 1:
        raise errors.QueryCardinalityError(
            f"{found.where}: query {found.name!r} is declared :{cardinality} but returned {len(rows)} rows; "
            "fix its header (or its SQL)"
        )
    if not rows:
        return None
    return rows[0][0] if cardinality == VALUE else rows[0]


def explain(conn: apsw.Connection, sql: str) -> str:
    """The ``EXPLAIN QUERY PLAN`` of a statement, one line per step, joined with ' | '."""
    return " | ".join(plans.plan_details(conn, sql))
