"""Forward-only migrations of an SQLite database from ``schema/sqlite/NNNN_name.sql``.

(:mod:`agentstate.schema_files` finds the files and compares them with the record.) Each pending file runs in its own write
transaction together with its bookkeeping row (version, name, sha256, time) and
``PRAGMA user_version``, so a crash leaves either all of a file or none of it. Applied files are
never edited: a change is a new file, and a database whose applied file changed, disappeared or
comes from a newer agentstate is refused with the file named.

Files run the way SQLite's "Making Other Kinds Of Table Schema Changes" asks
(https://sqlite.org/lang_altertable.html): foreign keys are switched off *before* the
transaction, so a file may rebuild a table (create, copy, drop, rename) without the drop
cascading into its children; ``PRAGMA foreign_key_check`` runs before COMMIT and any orphaned row
rolls the file back; foreign keys are switched on again afterwards.

A file whose leading comments hold ``-- transactional: false`` (yoyo's directive) runs outside a
transaction, for the rare statement that cannot run inside one (``VACUUM``); its bookkeeping
row is written right after it. Such a file must be safe to run twice: a crash between the two
runs it again.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw

from agentstate import errors
from agentstate.schema_files import AppliedMigration, Migration, MigrationStatus, compare, known_files
from agentstate.sqlite.transactions import reading, write
from agentstate.sqlite.translate import translating
from agentstate.values import utc_now

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT;
"""


def _applied(conn: apsw.Connection) -> tuple[AppliedMigration, ...]:
    # A query, not conn.table_exists(): that reads the cached schema without starting the read
    # transaction's snapshot, so it could disagree with the reads after it.
    if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").fetchall():
        return ()
    rows = conn.execute("SELECT version, name, sha256, applied_at FROM schema_migrations ORDER BY version")
    return tuple(AppliedMigration(*row) for row in rows)


def _read_versions(conn: apsw.Connection) -> tuple[tuple[AppliedMigration, ...], int]:
    """The bookkeeping rows and user_version, from one snapshot: read apart, another process's
    migration could commit between the two reads and make them look inconsistent."""
    with reading(conn):
        applied = _applied(conn)
        version: int = conn.execute("SELECT user_version FROM pragma_user_version").fetchall()[0][0]  # type: ignore[assignment]
        return applied, version


def status(conn: apsw.Connection, known: tuple[Migration, ...] | None = None) -> MigrationStatus:
    """Applied and pending migrations, without writing anything.

    :raises SchemaTooNewError, MigrationMissingError, MigrationEditedError: see their docs.
    :raises SchemaVersionMismatchError: ``PRAGMA user_version`` disagrees with the bookkeeping.
    """
    known = known_files(known)
    with translating("reading schema_migrations"):
        applied, user_version = _read_versions(conn)
    state = compare(applied, known)
    if user_version != state.version:
        raise errors.SchemaVersionMismatchError(
            f"PRAGMA user_version is {user_version} but schema_migrations records schema version "
            f"{state.version}: another program changed this file's version (and perhaps its schema). "
            "Find out what wrote it; if the schema is agentstate's, set "
            f"'PRAGMA user_version = {state.version}' to open it again"
        )
    return state


def migrate(
    conn: apsw.Connection,
    known: tuple[Migration, ...] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration in order and return the ones this call applied.

    Safe to run from several processes at once: each file's check-and-apply holds the write
    lock, so the loser of a race finds the file applied and moves on. Applying twice is a no-op.

    :raises MigrationIntegrityError: a file left rows with dangling foreign keys (rolled back).
    """
    known = known_files(known)
    applied_now: list[Migration] = []
    if not status(conn, known).pending:
        return applied_now
    with translating("preparing to migrate"):
        if not conn.get_autocommit():
            raise errors.SchemaError("migrate() needs a connection with no transaction open: commit or roll back first")
        foreign_keys = conn.pragma("foreign_keys")
        # Off before BEGIN: inside a transaction this pragma does nothing, and a table rebuild's
        # DROP TABLE would cascade into every child row.
        conn.pragma("foreign_keys", 0)
    try:
        for migration in known:
            if _apply(conn, migration, known):
                applied_now.append(migration)
                if on_apply:
                    on_apply(migration)
    finally:
        with translating("switching foreign keys back on"):
            conn.pragma("foreign_keys", foreign_keys)
    return applied_now


def _apply(conn: apsw.Connection, migration: Migration, known: tuple[Migration, ...]) -> bool:
    """Apply one file if it is still pending; False if another process applied it first."""
    if not migration.transactional:
        with write(conn):
            if not _pending(conn, migration, known):
                return False
        with translating(f"applying {migration.filename} (outside a transaction)"):
            conn.execute(migration.sql)
    with write(conn):
        if not _pending(conn, migration, known):
            return False
        if migration.transactional:
            with translating(f"applying {migration.filename}"):
                conn.execute(migration.sql)
        _check_foreign_keys(conn, migration)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
            (migration.version, migration.name, migration.sha256, utc_now()),
        )
        # user_version takes no bound parameter; the value is an int from a file name.
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
    return True


def _pending(conn: apsw.Connection, migration: Migration, known: tuple[Migration, ...]) -> bool:
    """Inside the write lock: is this file still to apply?"""
    conn.execute(BOOKKEEPING)
    return migration in compare(_applied(conn), known).pending


def _check_foreign_keys(conn: apsw.Connection, migration: Migration) -> None:
    """Refuse a file that left rows pointing at rows that do not exist (the caller rolls back)."""
    orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
    if orphans:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in orphans})
        raise errors.MigrationIntegrityError(
            f"{migration.filename} left {len(orphans)} row(s) whose foreign keys point nowhere "
            f"({', '.join(tables)}); it was rolled back. Fix the file so every child row keeps its parent"
        )
