"""Every exception agentstate raises, under one base class.

Messages say what happened, to which row or file, and what to do about it. When SQLite was the
cause, the original apsw exception is chained (``raise ... from exc``) so nothing is lost.
"""

from __future__ import annotations


class AgentStateError(Exception):
    """Base class of every error agentstate raises."""


# --- schema and migrations -------------------------------------------------------------------


class SchemaError(AgentStateError):
    """The database schema and the code disagree, or a schema file is malformed."""


class MigrationFileError(SchemaError):
    """A migration file on disk is misnamed or duplicates another's version."""


class MigrationEditedError(SchemaError):
    """A migration that was already applied has been changed on disk since."""


class MigrationMissingError(SchemaError):
    """A migration recorded as applied is no longer on disk."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer agentstate than this one."""


class SchemaOutdatedError(SchemaError):
    """The database has pending migrations and this connection may not apply them."""


class SchemaVersionMismatchError(SchemaError):
    """``PRAGMA user_version`` disagrees with ``schema_migrations``: another program changed the file."""


class MigrationIntegrityError(SchemaError):
    """A migration left rows whose foreign keys point nowhere; it was rolled back."""


class QueryFileError(SchemaError):
    """A named-query .sql file is malformed (duplicate name, empty block, bad header)."""


class QueryCardinalityError(SchemaError):
    """A query returned more rows than its header's cardinality allows (a bug in its .sql file)."""


# --- database state ----------------------------------------------------------------------------


class DatabaseBusyError(AgentStateError):
    """Another connection held the write lock for longer than the busy timeout."""


class SnapshotConflictError(DatabaseBusyError):
    """A transaction that began by reading tried to write after another connection wrote: retry it."""


class ConnectionLostError(AgentStateError):
    """PostgreSQL only: the server could not be reached, or the connection broke mid-call (a
    restart, a failover). ``outcome_unknown`` is True when it broke while a COMMIT was on its way:
    the transaction may or may not have committed. agentstate retries what is safe to retry
    (reads, claims, appends with an idempotency key, anything that surely did not commit) until
    ``connect(failover_timeout_s=...)`` runs out; this is raised for the rest."""

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class ConnectionRejectedError(AgentStateError):
    """PostgreSQL only: the server answered and refused the connection (no such database or
    role, a wrong password, no pg_hba.conf entry). Waiting cannot help, so it is not retried: fix
    the URL, or the server's roles and pg_hba.conf."""


class DatabaseCorruptError(AgentStateError):
    """The file is damaged, truncated, or not an SQLite database at all."""


class StorageError(AgentStateError):
    """The operating system failed a read, write or sync of the database files."""


class DiskFullError(StorageError):
    """The disk (or a quota) is full; nothing of the failed write was committed."""


class WrongProcessError(AgentStateError):
    """A connection was used in a process other than the one that opened it (after ``os.fork``)."""


class ReadOnlyError(AgentStateError):
    """A write was attempted through a read-only connection, or the files (or their folder) are
    not writable by this user."""


class ConnectionClosedError(AgentStateError):
    """The connection was closed: open a new one."""


class SessionClosedError(AgentStateError, RuntimeError):
    """A framework session (:class:`~agentstate.integrations.openai_agents.AgentStateSession`)
    was used after ``close()``: the ``RuntimeError`` the framework's own sessions raise."""


class StaleSessionError(AgentStateError, ValueError):
    """A framework session object is older than the stored session (another writer appended to it
    since it was loaded): nothing was written; reload the session and try again. The ADK session
    service raises its subclass that is also ADK's own ``StaleSessionError``."""


class ForeignFileError(AgentStateError):
    """A file agentstate would create or write beside the database (or an empty database file)
    belongs to another user, who could read or stall what is written to it: refused, untouched."""


class InUseError(AgentStateError):
    """A row cannot be deleted while others depend on it (a planner with tasks, say)."""


class NotFoundError(AgentStateError, LookupError):
    """No row has the id that was asked for."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key


class IntegrityError(AgentStateError):
    """SQLite refused a row because it breaks a constraint of the schema."""


class ForeignKeyError(IntegrityError):
    """A row refers to a row that does not exist (or is still referred to)."""


class CheckConstraintError(IntegrityError):
    """A value is outside what the schema allows (a CHECK constraint failed)."""


class DuplicateError(IntegrityError):
    """A row with the same unique key already exists."""


class NotNullError(IntegrityError):
    """A required value was missing."""


# --- caller input ------------------------------------------------------------------------------


class InvalidValueError(AgentStateError, ValueError):
    """An argument has the right type but a value agentstate cannot store (e.g. not JSON)."""


class InvalidTypeError(AgentStateError, TypeError):
    """An argument has the wrong Python type."""


class UnknownFieldError(InvalidValueError, InvalidTypeError):
    """Settings that name a field there is none of (an OpenAI Agents ``session_settings`` dict):
    an :class:`InvalidValueError`, and the ``TypeError`` the framework's own sessions raise."""


# --- task lifecycle ------------------------------------------------------------------------------


class InvalidTransitionError(AgentStateError):
    """The task is not in a status from which this transition is allowed."""

    def __init__(self, worker_id: str, status: str, action: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"cannot {action} task {worker_id!r}: it is {status!r}, "
            f"and {action} needs {' or '.join(repr(s) for s in allowed)}"
        )
        self.worker_id = worker_id
        self.status = status
        self.action = action


class RetryLimitError(InvalidTransitionError):
    """A failed task has used all its attempts and may not be retried again."""

    def __init__(self, worker_id: str, attempts: int, max_attempts: int) -> None:
        AgentStateError.__init__(
            self,
            f"cannot retry task {worker_id!r}: it used {attempts} of its {max_attempts} attempts; "
            "record it, or create a new task",
        )
        self.worker_id = worker_id
        self.status = "failed_validation"
        self.action = "retry"


class StaleTokenError(AgentStateError):
    """The fencing token is not the task's current one: the lease was lost to another owner."""


class TaskCancelledError(StaleTokenError):
    """The task was cancelled by its planner while its executor held it: stop working on it
    (a StaleTokenError too: an executor loses the task either way, and nothing is written)."""


class DependencyError(InvalidValueError):
    """A task's ``depends_on`` names no task of its planner, the task itself, a cancelled task, or
    makes a cycle; nothing was created."""


# --- messages ----------------------------------------------------------------------------------


class IdempotencyConflictError(AgentStateError):
    """An idempotency key was reused for a message with different content."""
