"""apsw's exceptions as agentstate's: each SQLite failure becomes the error class that names it,
with what to do about it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import apsw
import apsw.ext

from agentstate import errors
from agentstate.sqlite.files import why_not_writable


@contextlib.contextmanager
def translating(context: str = "") -> Iterator[None]:
    """Turn any apsw exception raised inside into the matching agentstate error."""
    try:
        yield
    except apsw.Error as exc:
        raise translate(exc, context) from exc


_BUSY_FIX = {
    apsw.SQLITE_BUSY_SNAPSHOT: (
        errors.SnapshotConflictError,
        "this transaction read the database, then another connection wrote before it could: it cannot "
        "write from an out-of-date snapshot, and waiting will not help. Roll back and retry the whole "
        "transaction, and start transactions that write with agentstate.write(conn) (BEGIN IMMEDIATE)",
    ),
    apsw.SQLITE_BUSY_RECOVERY: (
        errors.DatabaseBusyError,
        "another process is recovering the WAL after a crash; retry in a moment",
    ),
}


def translate(exc: apsw.Error, context: str = "", *, path: str = "") -> errors.AgentStateError:
    """The agentstate error for an apsw exception; the caller chains it with ``from exc``.

    :param path: the database file, when the error came from opening it (so a read-only or
        unopenable file can be explained by its permissions).
    """
    where = f"{context}: " if context else ""
    message = str(exc).removeprefix(f"{type(exc).__name__}: ")
    code = getattr(exc, "extendedresult", None)
    if isinstance(exc, apsw.ConstraintError):
        if code == apsw.SQLITE_CONSTRAINT_FOREIGNKEY:
            return errors.ForeignKeyError(f"{where}{message} (a referenced row does not exist)")
        if code in (apsw.SQLITE_CONSTRAINT_UNIQUE, apsw.SQLITE_CONSTRAINT_PRIMARYKEY):
            return errors.DuplicateError(f"{where}{message}")
        if code == apsw.SQLITE_CONSTRAINT_NOTNULL:
            return errors.NotNullError(f"{where}{message}")
        return errors.CheckConstraintError(f"{where}{message}")
    if isinstance(exc, apsw.BusyError) and code in _BUSY_FIX:
        kind, fix = _BUSY_FIX[code]
        return kind(f"{where}{message}: {fix}")
    if isinstance(exc, apsw.BusyError):
        return errors.DatabaseBusyError(
            f"{where}{message}: another connection held the write lock past the busy timeout; "
            "keep write transactions short or raise connect(busy_timeout_ms=...)"
        )
    if isinstance(exc, apsw.LockedError):
        return errors.DatabaseBusyError(
            f"{where}{message}: a table is locked by another statement on this same connection "
            "(an unfinished read, or a schema change under it); finish or close that cursor first"
        )
    if isinstance(exc, apsw.ConnectionClosedError):
        return errors.ConnectionClosedError(f"{where}the connection is closed: open a new one with agentstate.connect()")
    if isinstance(exc, apsw.ReadOnlyError):
        cause = why_not_writable(path) if path else None
        return errors.ReadOnlyError(f"{where}{message}: {cause or 'this connection was opened read-only'}")
    if isinstance(exc, apsw.NotADBError):
        return errors.DatabaseCorruptError(f"{where}{message}: the file is not an SQLite database")
    if isinstance(exc, apsw.CorruptError):
        return errors.DatabaseCorruptError(
            f"{where}{message}: the database file is damaged or truncated; restore it from a backup "
            "(PRAGMA integrity_check names the damage)"
        )
    if isinstance(exc, apsw.FullError):
        return errors.DiskFullError(f"{where}{message}: the disk or quota is full; free space and retry")
    if isinstance(exc, apsw.IOError):
        return errors.StorageError(
            f"{where}{message}: the operating system failed a read, write or sync of the database files"
        )
    if isinstance(exc, apsw.CantOpenError):
        cause = (why_not_writable(path) if path else None) or "check that the path exists and is writable"
        return errors.AgentStateError(f"{where}{message}: {cause}")
    return errors.AgentStateError(f"{where}{type(exc).__name__}: {message}")
