"""psycopg's exceptions as agentstate's (SQLite's are in :func:`agentstate.engine.translate`).

The same failure gets the same class on both engines: a unique key is a DuplicateError, a lock
that did not come in time a DatabaseBusyError, a value the column cannot take an
InvalidValueError. What only a network database has, a connection that broke, is a
:class:`~agentstate.errors.ConnectionLostError`.
"""

from __future__ import annotations

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg import errors as pg  # type: ignore[import-not-found, unused-ignore]

from agentstate import errors

_BUSY = (
    "another transaction held the rows or table this one needed past the lock timeout; keep "
    "write transactions short or raise connect(busy_timeout_ms=...)"
)
_CONFLICT = "PostgreSQL aborted this transaction to break a conflict with another one: retry the whole transaction"


def translate(exc: BaseException, context: str = "", *, committing: bool = False) -> errors.AgentStateError:
    """The agentstate error for a psycopg exception; the caller chains it with ``from exc``."""
    where = f"{context}: " if context else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pg.ForeignKeyViolation):
        return errors.ForeignKeyError(f"{where}{message} (a referenced row does not exist)")
    if isinstance(exc, pg.UniqueViolation):
        return errors.DuplicateError(f"{where}{message}")
    if isinstance(exc, pg.NotNullViolation):
        return errors.NotNullError(f"{where}{message}")
    if isinstance(exc, psycopg.IntegrityError):  # CHECK (23514) and the rest of class 23 (not subclasses of 23000)
        return errors.CheckConstraintError(f"{where}{message}")
    if isinstance(exc, (pg.LockNotAvailable, pg.QueryCanceled)):
        return errors.DatabaseBusyError(f"{where}{message}: {_BUSY}")
    if isinstance(exc, (pg.SerializationFailure, pg.DeadlockDetected)):
        return errors.SnapshotConflictError(f"{where}{message}: {_CONFLICT}")
    if isinstance(exc, pg.ReadOnlySqlTransaction):
        return errors.ReadOnlyError(f"{where}{message}: this connection was opened read-only")
    if isinstance(exc, pg.DiskFull):
        return errors.DiskFullError(f"{where}{message}: the server's disk is full")
    if isinstance(exc, psycopg.DataError):
        return errors.InvalidValueError(f"{where}a value PostgreSQL cannot store was given: {message}")
    if isinstance(exc, psycopg.ProgrammingError) and "cannot adapt" in message:
        return errors.InvalidTypeError(f"{where}a value of an unsupported type was given: {message}")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(
        exc, pg.InsufficientResources
    ):
        if committing:
            return errors.ConnectionLostError(
                f"{where}the connection broke while committing ({message}): the transaction may or may not "
                "have committed",
                outcome_unknown=True,
            )
        return errors.ConnectionLostError(f"{where}the connection to PostgreSQL broke ({message}); nothing was committed")
    return errors.AgentStateError(f"{where}{type(exc).__name__}: {message}")
