"""Forward-only migrations of a PostgreSQL database from ``schema/postgres/NNNN_name.sql``.

The same files, names and refusals as SQLite's (:mod:`agentstate.schema_files` reads the
folder, and its comparison refuses a database whose applied file was edited, deleted, or comes from
a newer agentstate); the bookkeeping table ``schema_migrations`` holds version, name, sha256 and
the time it was applied. What differs is PostgreSQL's:

- Every migrator first takes a session advisory lock (:data:`LOCK_KEY`), so migrators started at
  once on many hosts take turns: the first applies, the others find nothing pending. Plain
  ``CREATE TABLE IF NOT EXISTS`` is not safe to race without it (two creators can collide on the
  catalog's unique indexes).
- DDL is transactional: each file runs in one transaction with its bookkeeping row, so a failure
  leaves all of a file or none of it; foreign keys are checked as rows are written, nothing to
  switch off. A file whose leading comments say ``-- transactional: false`` (for ``CREATE INDEX
  CONCURRENTLY``) runs outside a transaction, its row written right after; it must be safe to run
  twice.
- There is no ``PRAGMA user_version``: ``schema_migrations`` is the only record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent

from agentstate import errors
from agentstate.schema_files import AppliedMigration, Migration, MigrationStatus, compare, schema_dir
from agentstate.schema_files import discover as discover_files

# pg_advisory_lock(bigint): an arbitrary constant, "agentstate" in ASCII folded to 63 bits.
LOCK_KEY = 0x6167656E74737461

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT statement_timestamp()
)
"""


def folder() -> Path:
    return schema_dir("postgres")


def discover(where: Path | None = None) -> tuple[Migration, ...]:
    """The migration files of a folder (default: ``schema/postgres``), strict as SQLite's."""
    return discover_files(where or folder())


def _applied(conn: psycopg.Connection[Any]) -> tuple[AppliedMigration, ...]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return ()
    rows = conn.execute(
        "SELECT version, name, sha256, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
        "FROM schema_migrations ORDER BY version"
    ).fetchall()
    return tuple(AppliedMigration(int(v), n, s, a) for v, n, s, a in rows)


def status(conn: psycopg.Connection[Any], known: tuple[Migration, ...] | None = None) -> MigrationStatus:
    """Applied and pending migrations, without writing anything.

    :raises SchemaTooNewError, MigrationMissingError, MigrationEditedError: as SQLite's.
    """
    known = discover() if known is None else known
    with conn.transaction():
        applied = _applied(conn)
    return compare(applied, known)


def migrate(
    conn: psycopg.Connection[Any],
    known: tuple[Migration, ...] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration in order; return the ones this call applied.

    ``conn`` must have no transaction open (an autocommit connection, or an idle one). Safe to run
    from many processes and hosts at once (an advisory lock); applying twice is a no-op.
    """
    known = discover() if known is None else known
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise errors.SchemaError("migrate() needs a connection with no transaction open: commit or roll back first")
    applied_now: list[Migration] = []
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(BOOKKEEPING)
            # Refuse an edited, missing or newer file before applying anything.
            pending = compare(_applied(conn), known).pending
            for migration in pending:
                _apply(conn, migration)
                applied_now.append(migration)
                if on_apply:
                    on_apply(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.autocommit = autocommit
    return applied_now


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    record = "INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)"
    values = (migration.version, migration.name, migration.sha256)
    try:
        if migration.transactional:
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))  # no parameters: psycopg sends it as is
                conn.execute(record, values)
        else:
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute(record, values)
    except psycopg.Error as exc:
        raise errors.SchemaError(f"applying {migration.filename} failed (rolled back): {exc}") from exc
