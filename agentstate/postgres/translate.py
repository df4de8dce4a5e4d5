"""psycopg's exceptions as agentstate's (SQLite's are in :func:`agentstate.sqlite.translate.translate`).

The same failure gets the same class on both engines: a unique key is a DuplicateError, a lock
that did not come in time a DatabaseBusyError, a value the column cannot take an
InvalidValueError. What only a network database has, a connection that broke, is a
:class:`~agentstate.errors.ConnectionLostError`.
"""

from __future__ import annotations

import re

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


# --- connecting --------------------------------------------------------------------------------

# What libpq says of each server a connect tried ('connection to server at "h" (addr), port 5432
# failed: ...' or 'connection to server on socket "/dir/.s.PGSQL.5432" failed: ...').
_ATTEMPT = re.compile(
    r'connection to server (?:at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+)'
    r'|on socket "(?P<socket>[^"]*)") failed: (?P<reason>[^\n]*)'
)
# A server's answers that waiting cannot change (SQLSTATE in the comment). psycopg gives no
# SQLSTATE for a failed connect, so these are the server's English messages: in another language
# a refusal is not recognised and is retried until the timeout, as before.
_REFUSALS = (
    (re.compile(r'database "[^"]*" does not exist'), "create the database, or fix its name in the URL"),  # 3D000
    (re.compile(r'role "[^"]*" does not exist'), "fix the user in the URL, or create the role"),  # 28000
    (re.compile(r'role "[^"]*" is not permitted to log in'), "ALTER ROLE ... LOGIN, or use another role"),  # 28000
    (re.compile(r"authentication failed for user"), "check the user and password (URL, PGPASSWORD or ~/.pgpass)"),  # 28P01
    (re.compile(r"no password supplied"), "give a password (URL, PGPASSWORD or ~/.pgpass)"),  # libpq
    (re.compile(r"no pg_hba\.conf entry|pg_hba\.conf rejects"), "the server's pg_hba.conf does not let this in"),  # 28000
    (re.compile(r"permission denied for database"), "GRANT CONNECT ON DATABASE to the role"),  # 42501
    (re.compile(r"is not currently accepting connections"), "the database does not allow connections"),  # 55000
)


def connect_failures(exc: BaseException) -> list[tuple[str, str]]:
    """``(host:port, reason)`` for each server a failed connect tried (a Unix socket's folder
    stands for the host), without repeats; one ``("", message)`` if libpq named none."""
    found: list[tuple[str, str]] = []
    for match in _ATTEMPT.finditer(str(exc)):
        host, port = match["host"], match["port"]
        if match["socket"]:
            folder, _, name = match["socket"].rpartition("/")
            host, port = folder or "/", name.rpartition(".")[2]
        item = (f"{host}:{port}", match["reason"].strip().removeprefix("FATAL:").strip())
        if item not in found:
            found.append(item)
    return found or [("", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)]


def refusal(exc: BaseException) -> errors.ConnectionRejectedError | None:
    """The server's refusal of a connection for good, or None when trying again may help."""
    for where, reason in connect_failures(exc):
        for pattern, fix in _REFUSALS:
            if pattern.search(reason):
                at = f" at {where}" if where else ""
                return errors.ConnectionRejectedError(f"PostgreSQL{at} refused the connection: {reason} ({fix})")
    return None


def _nothing_listens(reason: str) -> bool:
    return reason.startswith(("Connection refused", "No such file or directory"))  # TCP; a Unix socket


def nothing_listens(exc: BaseException) -> bool:
    """Whether no server listened at any address a failed connect tried (nothing answered)."""
    failures = connect_failures(exc)
    return all(where and _nothing_listens(reason) for where, reason in failures)


def connect_cause(exc: BaseException) -> str:
    """What a failed connect met, per server tried: ``127.0.0.1:5432: connection refused``."""
    said = []
    for where, reason in connect_failures(exc):
        if _nothing_listens(reason):  # the same to the caller whatever the socket: nothing listens
            reason = "connection refused" + ("" if reason.startswith("Connection") else f" ({reason.lower()})")
        said.append(f"{where}: {reason}" if where else reason)
    return "; ".join(said)
