"""The .sql files agentstate ships: where they are, the numbered migrations among them, and how
a database's record of applied files compares with them (engine-neutral: each engine applies
them its own way, :mod:`agentstate.sqlite.migrations` and :mod:`agentstate.postgres.migrations`).

A migration is ``schema/<engine>/NNNN_name.sql``. Applied files are never edited: a change is a
new file, and a database whose applied file changed, disappeared or comes from a newer
agentstate is refused with the file named.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agentstate import errors

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NOT_TRANSACTIONAL = re.compile(r"^--\s*transactional:\s*false\s*$", re.IGNORECASE)

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


def discover(folder: Path | None = None, engine: str = "sqlite") -> tuple[Migration, ...]:
    """The migration files of a folder (default: the engine's own), in version order.

    Strict about names, duplicates and gaps. An engine's own files are read once per process.
    """
    return _discover(folder) if folder is not None else _shipped(engine)


@cache
def _shipped(engine: str) -> tuple[Migration, ...]:
    return _discover(schema_dir(engine))


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


def schema_dir(engine: str = "sqlite") -> Path:
    """The folder of an engine's .sql files, in a wheel or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schema" / engine, here.parent / "schema" / engine):
        if candidate.is_dir():
            return candidate
    raise errors.SchemaError(f"cannot find the {engine} schema files next to {here}; reinstall agentstate")


def known_files(known: object, engine: str = "sqlite") -> tuple[Migration, ...]:
    """The migrations to compare with: the engine's own (None), or what discover(folder) returned."""
    if known is None:
        return discover(engine=engine)
    if not isinstance(known, tuple) or not all(isinstance(m, Migration) for m in known):
        raise errors.InvalidTypeError("known must be the tuple that migrations.discover(folder) returns")
    return known


def compare(applied: tuple[AppliedMigration, ...], known: tuple[Migration, ...]) -> MigrationStatus:
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
