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
parameters. PostgreSQL plugs in here too: given a
:class:`~agentstate.postgres.handle.PostgresConnection`, :func:`run` and :func:`run_each` run the
query of the same name from ``schema/postgres/queries/`` on it, with the same cardinalities,
statistics and error classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter_ns
from typing import Any, Final

import apsw

from agentstate import engine, errors, queries
from agentstate.monitor import Monitor, stats_for
from agentstate.postgres.handle import PostgresConnection

ONE: Final = "one"
MANY: Final = "many"
VALUE: Final = "value"
RETURNING: Final = "returning"
EXEC: Final = "exec"

# Fetching a second row to prove a :one query returned one costs ~5% of a primary-key read, so
# it is checked where it finds bugs: the test suite turns this on (tests/conftest.py).
CHECK_CARDINALITY = False

_REGISTRY = queries.registry()
_Connection = engine.Connection
# Connections that are not agentstate's own (an apsw.Connection made by hand) still get
# statistics and the slow-query log, with the defaults.
_DEFAULT_MONITOR: Monitor | None = None


class _Prepared:
    """A registered query, ready to run: its SQL, what it returns, and its statistics."""

    __slots__ = ("add", "kind", "query", "sql")

    def __init__(self, query: queries.Query) -> None:
        self.query = query
        self.sql = query.sql
        # The module's own string objects, so the hot path can compare with `is`.
        self.kind = {"one": ONE, "many": MANY, "value": VALUE, "returning": RETURNING, "exec": EXEC}[query.cardinality]
        self.add = stats_for(query.name).add


_PREPARED = {name: _Prepared(q) for name, q in _REGISTRY.items()}


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


def has(conn: Any, name: str) -> bool:
    """Whether this connection's engine has the named query: true for every query both engines
    share; for one marked ``-- only: <engine>``, only on that engine (a manager then runs the
    other engine's steps instead)."""
    if isinstance(conn, PostgresConnection):
        from agentstate.postgres import queries as pg_queries

        return name in pg_queries.registry()
    return name in _REGISTRY


def _prepared(name: str) -> _Prepared:
    """A query registered after import (tests add some) is prepared on first use."""
    prepared = _PREPARED[name] = _Prepared(query(name))
    return prepared


def run(conn: apsw.Connection, name: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> Any:
    """Run the named query with ``params`` bound and return what its cardinality promises."""
    if isinstance(conn, PostgresConnection):
        return _run_postgres(conn, name, params, False)
    prepared = _PREPARED.get(name) or _prepared(name)
    monitor = conn.monitor if type(conn) is _Connection else _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    kind = prepared.kind
    result: Any
    cursor: Any = None
    try:
        cursor = conn.execute(prepared.sql, params)
        if kind is MANY:
            result = cursor.fetchall()
            count = len(result)
        elif kind is EXEC:
            cursor.fetchall()
            result = count = conn.changes()
        else:
            row = cursor.fetchone()
            if CHECK_CARDINALITY and row is not None and cursor.fetchone() is not None:
                raise _too_many(prepared.query)
            count = row is not None
            result = row[0] if kind is VALUE and row is not None else row
    except apsw.Error as exc:
        raise engine.translate(exc, name) from exc
    except (TypeError, OverflowError, UnicodeEncodeError) as exc:
        raise _unbindable(name, exc) from exc
    except AttributeError as exc:
        if not getattr(conn, "is_async", False):
            raise
        engine.discard(cursor)  # an async connection used from outside its worker thread
        raise _wrong_mode(name) from exc
    if monitor is not None:
        ns = perf_counter_ns() - start
        prepared.add(ns, count)
        if ns >= monitor.report_above:
            monitor.report(name, ns, int(count), conn, prepared.sql, params)
    return result


def run_each(conn: apsw.Connection, name: str, params: Iterable[dict[str, Any] | tuple[Any, ...]]) -> Any:
    """Run the named query once per parameter set in one call (``executemany``): a list of every
    row returned for row-returning queries, the total rows changed for ``:exec``."""
    if isinstance(conn, PostgresConnection):
        return _run_postgres(conn, name, params, True)
    prepared = _PREPARED.get(name) or _prepared(name)
    monitor = conn.monitor if type(conn) is _Connection else _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    try:
        before = conn.total_changes()
        rows = conn.executemany(prepared.sql, params).fetchall()
        changes = conn.total_changes() - before
    except apsw.Error as exc:
        raise engine.translate(exc, name) from exc
    except (TypeError, OverflowError, UnicodeEncodeError) as exc:
        raise _unbindable(name, exc) from exc
    count = changes if prepared.kind is EXEC else len(rows)  # rows returned, not trigger writes
    if monitor is not None:
        ns = perf_counter_ns() - start
        prepared.add(ns, count)
        if ns >= monitor.report_above:
            monitor.report(name, ns, count, conn, prepared.sql, "(many)")
    return changes if prepared.kind is EXEC else rows


def _run_postgres(conn: PostgresConnection, name: str, params: Any, each: bool) -> Any:
    """:func:`run` (or, ``each``, :func:`run_each`) on PostgreSQL: the query of the same name,
    on this thread's transaction or a pooled connection."""
    import psycopg

    from agentstate.postgres import queries as pg_queries
    from agentstate.postgres.translate import translate

    if conn.is_async and not conn.on_worker():
        raise _wrong_mode(name)  # a synchronous class on an async handle would block the event loop
    found = pg_queries.query(name)
    add = stats_for(name).add
    monitor = conn.monitor
    start = perf_counter_ns() if monitor is not None else 0
    try:
        with conn.borrowed() as pg:
            result = (pg_queries.run_each if each else pg_queries.run)(pg, name, params)
        # What the statistics count: rows changed (:exec), rows returned (a list), or one row or none.
        count = result if found.cardinality == EXEC else len(result) if isinstance(result, list) else result is not None
    except psycopg.Error as exc:
        # A write outside a transaction commits as it runs: a broken connection leaves it unknown.
        unknown = found.cardinality in (EXEC, RETURNING) and not conn.in_transaction()
        raise translate(exc, name, committing=unknown) from exc
    except UnicodeEncodeError as exc:
        raise _unbindable(name, exc) from exc
    if monitor is not None:
        ns = perf_counter_ns() - start
        add(ns, int(count))
        if ns >= monitor.report_above:
            monitor.report(name, ns, int(count), conn, found.sql, "(many)" if each else params)
    return result


def _wrong_mode(name: str) -> errors.InvalidTypeError:
    return errors.InvalidTypeError(
        f"{name}: this connection is from connect_async(): use AsyncTaskManager, AsyncMessageLog or "
        "AsyncAgents with it (or a connection from connect() with the synchronous classes)"
    )


def _too_many(found: queries.Query) -> errors.QueryCardinalityError:
    return errors.QueryCardinalityError(
        f"{found.where}: query {found.name!r} is declared :{found.cardinality} but returned more than one row; "
        "fix its header (or its SQL)"
    )


def _unbindable(name: str, exc: Exception) -> errors.AgentStateError:
    """A value SQLite cannot take (the managers check arguments first; this is the backstop for
    values that arrive inside objects, such as a hand-made Claim or ``after=`` row)."""
    if isinstance(exc, TypeError):
        return errors.InvalidTypeError(f"{name}: a value of an unsupported type was given: {exc}")
    what = "an integer beyond 64 bits" if isinstance(exc, OverflowError) else "text with a lone surrogate"
    return errors.InvalidValueError(f"{name}: a value SQLite cannot store was given ({what}): {exc}")
