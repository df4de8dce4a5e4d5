"""Online backup through SQLite's backup API, while other processes keep writing.

The copy is one consistent snapshot: the source connection holds a read transaction for the
whole copy, so every transaction committed before the backup began is in it and none that
commits during it is half in it. In WAL mode that read transaction never blocks writers (they
append to the WAL meanwhile), and the copy never restarts. The new file is created private
(``0600``) before a byte is written to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import apsw

from agentstate import errors, migrations
from agentstate.engines import Connection, connect, is_sqlite, require_connection, require_sqlite, translating
from agentstate.settings import DEFAULT_FILE_MODE
from agentstate.sqlite.files import database_path
from agentstate.values import require_int

Progress = Callable[[int, int], None]
"""``progress(pages_copied, pages_total)``."""


@dataclass(frozen=True)
class BackupReport:
    """What :func:`backup` wrote."""

    dest: str
    pages: int
    bytes: int
    schema_version: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup(
    source: Connection | str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    pages_per_step: int = 1024,
    progress: Progress | None = None,
    file_mode: int = DEFAULT_FILE_MODE,
) -> BackupReport:
    """Copy the database behind ``source`` (a connection, or a path) to the new file ``dest``.

    :param overwrite: replace ``dest`` if it exists (else that is an error).
    :param pages_per_step: pages copied between progress reports.
    :param file_mode: permissions of the new file (default ``0o600``).
    :raises InvalidValueError: ``dest`` exists (and ``overwrite`` is False), or is the source.
    """
    step = min(require_int("pages_per_step", pages_per_step, minimum=1), 2**31 - 1)  # SQLite takes a C int
    require_int("file_mode", file_mode, minimum=0)
    if file_mode > 0o777:
        raise errors.InvalidValueError(f"file_mode must be permission bits such as 0o600, got {oct(file_mode)}")
    if not isinstance(overwrite, bool):
        raise errors.InvalidTypeError("overwrite must be True or False")
    if progress is not None and not callable(progress):
        raise errors.InvalidTypeError(f"progress must be a callable(copied, total), not {type(progress).__name__}")
    require_sqlite(source, "backup()", "use pg_dump or pg_basebackup")
    target = Path(database_path(dest))
    if is_sqlite(source):
        require_connection(source, "backup()", sync_only=True)
        with translating("backup"):
            return _backup(cast(apsw.Connection, source), target, overwrite, step, progress, file_mode)
    conn = cast(apsw.Connection, connect(cast("str | os.PathLike[str]", source), migrate=False))
    try:
        with translating("backup"):
            return _backup(conn, target, overwrite, step, progress, file_mode)
    finally:
        conn.close()


def _backup(
    source: apsw.Connection, target: Path, overwrite: bool, step: int, progress: Progress | None, mode: int
) -> BackupReport:
    started = time.perf_counter()
    if source.filename and Path(source.filename).resolve() == target.resolve():
        raise errors.InvalidValueError(f"cannot back {target} up onto itself")
    _create_private(target, overwrite, mode)
    try:
        return _copy(source, target, step, progress, started)
    except BaseException:
        target.unlink(missing_ok=True)  # no half-written copy left behind
        raise


def _copy(source: apsw.Connection, target: Path, step: int, progress: Progress | None, started: float) -> BackupReport:
    own = source.get_autocommit()
    with translating(f"backing up to {target}"):
        if own:  # one snapshot for the whole copy: writers go on in the WAL meanwhile
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        try:
            copy = apsw.Connection(str(target))
            try:
                pages = 0
                with copy.backup("main", source, "main") as job:
                    while not job.done:
                        try:
                            job.step(step)
                        except apsw.Error as exc:
                            _in_sqlite_words(exc)
                            raise
                        pages = job.page_count
                        if progress is not None:
                            progress(pages - job.remaining, pages)
            finally:
                copy.close()
            version = migrations.status(source).version
        finally:
            if own and not source.get_autocommit():
                source.execute("COMMIT")
    return BackupReport(str(target), pages, target.stat().st_size, version, time.perf_counter() - started)


# sqlite3_errstr() of the primary result codes a copy can fail with (apsw does not expose it).
_SQLITE_WORDS = {
    apsw.SQLITE_FULL: "database or disk is full",
    apsw.SQLITE_IOERR: "disk I/O error",
    apsw.SQLITE_CORRUPT: "database disk image is malformed",
    apsw.SQLITE_NOTADB: "file is not a database",
    apsw.SQLITE_CANTOPEN: "unable to open database file",
    apsw.SQLITE_READONLY: "attempt to write a readonly database",
    apsw.SQLITE_PERM: "access permission denied",
    apsw.SQLITE_NOMEM: "out of memory",
    apsw.SQLITE_BUSY: "database is locked",
    apsw.SQLITE_LOCKED: "database table is locked",
}


def _in_sqlite_words(exc: apsw.Error) -> None:
    """Give a failed backup step's exception SQLite's words for what failed.

    apsw takes the message of a failed step from the destination connection, which recorded no
    error of its own (the backup object holds it): SQLite's text for "no error", "not an error".
    A full disk read "not an error: the disk or quota is full".
    """
    message = str(exc).removeprefix(f"{type(exc).__name__}: ")
    if message in ("", "not an error"):
        code = getattr(exc, "result", -1)
        exc.args = (_SQLITE_WORDS.get(code) or apsw.mapping_result_codes.get(code, f"SQLite error {code}"),)


def _create_private(target: Path, overwrite: bool, mode: int) -> None:
    """Create the empty destination with ``mode``, whatever the umask, or refuse an existing one."""
    try:
        if target.exists():
            if not overwrite:
                raise errors.InvalidValueError(f"{target} exists: choose a new file, or pass overwrite=True")
            for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm"), Path(f"{target}-journal")):
                leftover.unlink(missing_ok=True)
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except OSError as exc:
        raise errors.AgentStateError(f"cannot create {str(target)[:200]}: {exc.strerror}") from exc
    os.fchmod(fd, mode)
    os.close(fd)
