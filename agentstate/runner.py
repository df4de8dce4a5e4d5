"""The one path from a registered query's name to its result, on either engine.

Every named query in ``schema/<engine>/queries/`` runs through :func:`run` (or :func:`run_each`
for one statement over many parameter sets). This is the single place that

- looks the query up in the connection's engine and returns what its cardinality promises
  (aiosql's idea): ``:one`` a row or None, ``:many`` a list of rows, ``:value`` the first column
  of the one row (or None), ``:returning`` the row a write returned (or None), ``:exec`` the
  number of rows changed; a ``:one``, ``:value`` or ``:returning`` query that returns more than
  one row raises :class:`~agentstate.errors.QueryCardinalityError` (checked where it finds
  bugs: see :data:`CHECK_CARDINALITY`);
- times it and reports to the connection's :class:`~agentstate.monitor.Monitor` (statistics,
  slow-query log, hooks);
- turns the engine's exceptions into agentstate's.

The managers (tasks, messages, agents) never touch a driver: they name queries and bind
parameters; the engine (:mod:`agentstate.engine`) runs the statement, and each cardinality is
read here, once, from the cursor it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter_ns
from typing import Any, Final

from agentstate import errors, queries
from agentstate.async_calls import discard
from agentstate.engine import Engine, WrongMode
from agentstate.engines import DEFAULT_ENGINE, engine_of
from agentstate.monitor import Monitor, stats_for
from agentstate.schema_files import schema_dir

ONE: Final = "one"
MANY: Final = "many"
VALUE: Final = "value"
RETURNING: Final = "returning"
EXEC: Final = "exec"

# Fetching a second row to prove a :one query returned one costs ~5% of a primary-key read, so
# it is checked where it finds bugs: the test suite turns this on (tests/conftest.py).
CHECK_CARDINALITY = False

# Connections that are not agentstate's own (an apsw.Connection made by hand) still get
# statistics and the slow-query log, with the defaults.
_DEFAULT_MONITOR: Monitor | None = None


class _Prepared:
    """A registered query, ready to run on one engine: its statement, what it returns, and its
    statistics."""

    __slots__ = ("add", "kind", "query", "sql", "statement", "writes")

    def __init__(self, engine: Engine, query: queries.Query) -> None:
        self.query = query
        self.sql = query.sql
        self.statement = engine.statement(query)
        # The module's own string objects, so the hot path can compare with `is`.
        self.kind = {"one": ONE, "many": MANY, "value": VALUE, "returning": RETURNING, "exec": EXEC}[query.cardinality]
        self.writes = self.kind is EXEC or self.kind is RETURNING
        self.add = stats_for(query.name).add


_PREPARED: dict[Engine, dict[str, _Prepared]] = {}


def _default_monitor() -> Monitor:
    global _DEFAULT_MONITOR
    if _DEFAULT_MONITOR is None:
        _DEFAULT_MONITOR = Monitor()
    return _DEFAULT_MONITOR


def query(name: str, engine: Engine = DEFAULT_ENGINE) -> queries.Query:
    """The registered query of this name (SQLite's, unless another engine is given)."""
    try:
        return engine.registry()[name]
    except KeyError:
        raise errors.QueryFileError(f"no query named {name!r} in {schema_dir(engine.name) / 'queries'}") from None


def has(conn: Any, name: str) -> bool:
    """Whether this connection's engine has the named query: true for every query both engines
    share; for one marked ``-- only: <engine>``, only on that engine (a manager then runs the
    other engine's steps instead)."""
    return name in engine_of(conn).registry()


def _prepared(engine: Engine, name: str) -> _Prepared:
    """A query is prepared for an engine on first use (tests register some after import)."""
    table = _PREPARED.setdefault(engine, {})
    prepared = table[name] = _Prepared(engine, query(name, engine))
    return prepared


def run(conn: Any, name: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> Any:
    """Run the named query with ``params`` bound and return what its cardinality promises."""
    engine = engine_of(conn)
    try:
        prepared = _PREPARED[engine][name]
    except KeyError:
        prepared = _prepared(engine, name)
    try:
        monitor = conn.monitor
    except AttributeError:
        monitor = _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    kind = prepared.kind
    result: Any
    cursor: Any = None
    try:
        cursor = engine.execute(conn, prepared.statement, params)
        if kind is MANY:
            result = cursor.fetchall()
            count = len(result)
        elif kind is EXEC:
            cursor.fetchall()
            result = count = engine.changes(conn, cursor)
        else:
            row = cursor.fetchone()
            if CHECK_CARDINALITY and row is not None and cursor.fetchone() is not None:
                raise _too_many(prepared.query)
            count = row is not None
            result = row[0] if kind is VALUE and row is not None else row
    except Exception as exc:
        raise _failure(engine, conn, prepared, exc, cursor) from exc
    if monitor is not None:
        _count(monitor, engine, conn, prepared, start, int(count), params)
    return result


def run_each(conn: Any, name: str, params: Iterable[dict[str, Any] | tuple[Any, ...]]) -> Any:
    """Run the named query once per parameter set in one call (``executemany``): a list of every
    row returned for row-returning queries, the total rows changed for ``:exec``."""
    engine = engine_of(conn)
    prepared = _PREPARED.get(engine, {}).get(name) or _prepared(engine, name)  # (not the hot path)
    monitor = conn.monitor if hasattr(conn, "monitor") else _default_monitor()
    start = perf_counter_ns() if monitor is not None else 0
    try:
        rows, changes = engine.execute_many(conn, prepared.statement, params)
    except Exception as exc:
        raise _failure(engine, conn, prepared, exc, None) from exc
    if monitor is not None:  # rows returned, not trigger writes
        _count(monitor, engine, conn, prepared, start, changes if prepared.kind is EXEC else len(rows), "(many)")
    return changes if prepared.kind is EXEC else rows


def _count(monitor: Monitor, engine: Engine, conn: Any, prepared: _Prepared, start: int, rows: int, params: Any) -> None:
    """A query's time into its statistics, and to the monitor's log and hooks when it asks."""
    ns = perf_counter_ns() - start
    prepared.add(ns, rows)
    if ns >= monitor.report_above:
        monitor.report(prepared.query.name, ns, rows, params, lambda: engine.explain(conn, prepared.sql))


def _failure(engine: Engine, conn: Any, prepared: _Prepared, exc: Exception, cursor: Any) -> errors.AgentStateError:
    """The agentstate error for what a statement raised (anything else is raised again as it is)."""
    name = prepared.query.name
    if isinstance(exc, engine.driver_errors):
        return engine.translate(exc, name, conn=conn, writes=prepared.writes)
    if isinstance(exc, (TypeError, OverflowError, UnicodeEncodeError)):
        return _unbindable(engine, name, exc)
    if isinstance(exc, WrongMode):
        return _wrong_mode(name)
    if isinstance(exc, AttributeError) and getattr(conn, "is_async", False):
        discard(cursor)  # an async connection used from outside its worker thread
        return _wrong_mode(name)
    raise exc


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


def _unbindable(engine: Engine, name: str, exc: Exception) -> errors.AgentStateError:
    """A value the engine cannot take (the managers check arguments first; this is the backstop
    for values that arrive inside objects, such as a hand-made Claim or ``after=`` row)."""
    if isinstance(exc, TypeError):
        return errors.InvalidTypeError(f"{name}: a value of an unsupported type was given: {exc}")
    what = "an integer beyond 64 bits" if isinstance(exc, OverflowError) else "text with a lone surrogate"
    return errors.InvalidValueError(f"{name}: a value {engine.label} cannot store was given ({what}): {exc}")
