"""Forward-only schema migrations from numbered .sql files.

A migration is ``schema/<engine>/NNNN_name.sql``. Each pending file runs in its own write
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

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import apsw

from agentstate import engine, errors
from agentstate.postgres.handle import PostgresConnection
from agentstate.values import utc_now

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NOT_TRANSACTIONAL = re.compile(r"^--\s*transactional:\s*false\s*$", re.IGNORECASE)

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT;
"""


@dataclass(frozen=True)
class Migration:
    """One numbered .sql file on disk."""

    version: int
    name: str
    path: Path
    sql: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def transactional(self) -> bool:
        """False when the file's leading comments say ``-- transactional: false``."""
        for line in self.sql.splitlines():
            text = line.strip()
            if text and not text.startswith("--"):
                break
            if _NOT_TRANSACTIONAL.match(text):
                return False
        return True


@dataclass(frozen=True)
class AppliedMigration:
    """One row of ``schema_migrations``."""

    version: int
    name: str
    sha256: str
    applied_at: str


@dataclass(frozen=True)
class MigrationStatus:
    """What is applied and what is pending; building it checks that the two agree."""

    applied: tuple[AppliedMigration, ...]
    pending: tuple[Migration, ...]

    @property
    def version(self) -> int:
        return max((m.version for m in self.applied), default=0)


def checksum(text: str) -> str:
    """sha256 of a file's text with line endings normalised, so a CRLF checkout still matches."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def discover(folder: Path | None = None) -> tuple[Migration, ...]:
    """The migration files of a folder (default: the engine's), in version order.

    Strict about names, duplicates and gaps. The engine's own files are read once per process.
    """
    return _discover(folder) if folder is not None else _shipped()


@cache
def _shipped() -> tuple[Migration, ...]:
    return _discover(engine.schema_dir())


def _discover(folder: Path) -> tuple[Migration, ...]:
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        if path.name == "pragmas.sql":
            continue
        match = _FILE_NAME.match(path.name)
        if not match:
            raise errors.MigrationFileError(
                f"{path}: migration files are named NNNN_lowercase_name.sql (e.g. 0002_add_index.sql)"
            )
        version = int(match.group(1))
        if version in found:
            raise errors.MigrationFileError(f"{path}: version {version} is also {found[version].path.name}")
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match.group(2), path, sql, checksum(sql))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise errors.MigrationFileError(
            f"{folder}: migration versions must run 1, 2, 3, ... without gaps; found {versions}"
        )
    return tuple(found[v] for v in versions)


def _applied(conn: apsw.Connection) -> tuple[AppliedMigration, ...]:
    # A query, not conn.table_exists(): that reads the cached schema without starting the read
    # transaction's snapshot, so it could disagree with the reads after it.
    if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").fetchall():
        return ()
    rows = conn.execute("SELECT version, name, sha256, applied_at FROM schema_migrations ORDER BY version")
    return tuple(AppliedMigration(*row) for row in rows)


def _known(known: object) -> tuple[Migration, ...]:
    """The migrations to compare with: the engine's own, or what discover(folder) returned."""
    if known is None:
        return discover()
    if not isinstance(known, tuple) or not all(isinstance(m, Migration) for m in known):
        raise errors.InvalidTypeError("known must be the tuple that migrations.discover(folder) returns")
    return known


def _read_versions(conn: apsw.Connection) -> tuple[tuple[AppliedMigration, ...], int]:
    """The bookkeeping rows and user_version, from one snapshot: read apart, another process's
    migration could commit between the two reads and make them look inconsistent."""
    with engine.reading(conn):
        applied = _applied(conn)
        version: int = conn.execute("SELECT user_version FROM pragma_user_version").fetchall()[0][0]  # type: ignore[assignment]
        return applied, version


def _compare(applied: tuple[AppliedMigration, ...], known: tuple[Migration, ...]) -> MigrationStatus:
    on_disk = {m.version: m for m in known}
    latest = max(on_disk, default=0)
    for row in applied:
        if row.version > latest:
            raise errors.SchemaTooNewError(
                f"the database is at schema version {max(r.version for r in applied)} "
                f"(applied {row.version:04d}_{row.name}.sql) but this agentstate knows only up to {latest}: "
                "upgrade agentstate (pip install -U agentstate) before opening it"
            )
        migration = on_disk.get(row.version)
        if migration is None or migration.name != row.name:
            raise errors.MigrationMissingError(
                f"migration {row.version:04d}_{row.name}.sql was applied to this database but is missing "
                "from the schema folder: restore it from version control; applied files are never deleted"
            )
        if migration.sha256 != row.sha256:
            raise errors.MigrationEditedError(
                f"{migration.path.name} was previously applied but has been modified "
                f"(sha256 {row.sha256[:12]}... applied, {migration.sha256[:12]}... on disk): restore the "
                "applied text from version control and put the change in a new numbered file"
            )
    done = {row.version for row in applied}
    return MigrationStatus(applied, tuple(m for m in known if m.version not in done))


def status(conn: apsw.Connection | PostgresConnection, known: tuple[Migration, ...] | None = None) -> MigrationStatus:
    """Applied and pending migrations, without writing anything.

    :raises SchemaTooNewError, MigrationMissingError, MigrationEditedError: see their docs.
    :raises SchemaVersionMismatchError: ``PRAGMA user_version`` disagrees with the bookkeeping.
    """
    engine.require_connection(conn, "status()")
    if isinstance(conn, PostgresConnection):
        from agentstate.postgres import migrations as postgres

        if known is not None:
            known = _known(known)  # checked as on SQLite (None: PostgreSQL's own migrations)
        with conn.session() as session:
            return postgres.status(session, known)
    known = _known(known)
    with engine.translating("reading schema_migrations"):
        applied, user_version = _read_versions(conn)
    state = _compare(applied, known)
    if user_version != state.version:
        raise errors.SchemaVersionMismatchError(
            f"PRAGMA user_version is {user_version} but schema_migrations records schema version "
            f"{state.version}: another program changed this file's version (and perhaps its schema). "
            "Find out what wrote it; if the schema is agentstate's, set "
            f"'PRAGMA user_version = {state.version}' to open it again"
        )
    return state


def migrate(
    conn: apsw.Connection | PostgresConnection,
    known: tuple[Migration, ...] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration in order and return the ones this call applied.

    Safe to run from several processes at once: each file's check-and-apply holds the write
    lock, so the loser of a race finds the file applied and moves on. Applying twice is a no-op.

    :raises MigrationIntegrityError: a file left rows with dangling foreign keys (rolled back).
    """
    engine.require_connection(conn, "migrate()")
    if isinstance(conn, PostgresConnection):
        from agentstate.postgres import migrations as postgres

        if known is not None:
            known = _known(known)  # checked as on SQLite (None: PostgreSQL's own migrations)
        with conn.session() as session:
            return postgres.migrate(session, known, on_apply)
    known = _known(known)
    applied_now: list[Migration] = []
    if not status(conn, known).pending:
        return applied_now
    with engine.translating("preparing to migrate"):
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
        with engine.translating("switching foreign keys back on"):
            conn.pragma("foreign_keys", foreign_keys)
    return applied_now


def _apply(conn: apsw.Connection, migration: Migration, known: tuple[Migration, ...]) -> bool:
    """Apply one file if it is still pending; False if another process applied it first."""
    if not migration.transactional:
        with engine.write(conn):
            if not _pending(conn, migration, known):
                return False
        with engine.translating(f"applying {migration.filename} (outside a transaction)"):
            conn.execute(migration.sql)
    with engine.write(conn):
        if not _pending(conn, migration, known):
            return False
        if migration.transactional:
            with engine.translating(f"applying {migration.filename}"):
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
    return migration in _compare(_applied(conn), known).pending


def _check_foreign_keys(conn: apsw.Connection, migration: Migration) -> None:
    """Refuse a file that left rows pointing at rows that do not exist (the caller rolls back)."""
    orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
    if orphans:
        tables = sorted({f"{row[0]} -> {row[2]}" for row in orphans})
        raise errors.MigrationIntegrityError(
            f"{migration.filename} left {len(orphans)} row(s) whose foreign keys point nowhere "
            f"({', '.join(tables)}); it was rolled back. Fix the file so every child row keeps its parent"
        )
