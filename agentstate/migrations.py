"""``agentstate.migrate()`` and ``agentstate.status()``: forward-only schema migrations, on either engine.

The files are ``schema/<engine>/NNNN_name.sql`` (:mod:`agentstate.schema_files` reads and
compares them); each engine applies them its own way: SQLite in one ``BEGIN IMMEDIATE`` per file
with foreign keys off around it (:mod:`agentstate.sqlite.migrations`), PostgreSQL under an
advisory lock with transactional DDL (:mod:`agentstate.postgres.migrations`). Applied files are
never edited: a database whose applied file changed, disappeared or comes from a newer
agentstate is refused with the file named.
"""

from __future__ import annotations

from collections.abc import Callable

from agentstate.engines import Connection, require_connection
from agentstate.schema_files import (
    AppliedMigration,
    Migration,
    MigrationStatus,
    checksum,
    discover,
    known_files,
)

__all__ = ["AppliedMigration", "Migration", "MigrationStatus", "checksum", "discover", "migrate", "status"]


def status(conn: Connection, known: tuple[Migration, ...] | None = None) -> MigrationStatus:
    """Applied and pending migrations, without writing anything.

    :param known: the files to compare with, as :func:`discover` returns them (default: the
        engine's own).
    :raises SchemaTooNewError, MigrationMissingError, MigrationEditedError: see their docs.
    :raises SchemaVersionMismatchError: SQLite's ``PRAGMA user_version`` disagrees with the bookkeeping.
    """
    engine = require_connection(conn, "status()")
    return engine.status(conn, None if known is None else known_files(known))


def migrate(
    conn: Connection,
    known: tuple[Migration, ...] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration in order and return the ones this call applied.

    Safe to run from several processes (and, on PostgreSQL, hosts) at once: the loser of a race
    finds the file applied and moves on. Applying twice is a no-op.

    :raises MigrationIntegrityError: a file left rows with dangling foreign keys (rolled back).
    """
    engine = require_connection(conn, "migrate()")
    return engine.migrate(conn, None if known is None else known_files(known), on_apply)
