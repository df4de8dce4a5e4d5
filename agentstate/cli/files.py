"""Opening the database file a command works on: to look at it without changing anything in it
or beside it, or, for a command that writes, as an agentstate store whose schema is up to date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import apsw

from agentstate import errors
from agentstate.engines import connect, translating
from agentstate.settings import Settings
from agentstate.sqlite.files import SQLITE_HEADER
from agentstate.sqlite.opening import open_connection


def require_file(path: str) -> None:
    if not Path(path).exists() and not path.startswith("file:"):
        raise errors.AgentStateError(f"{path}: no such database (create one with 'agentstate migrate {path}')")


def _in_wal_mode(path: str) -> bool:
    """Whether the file's header says WAL (bytes 18 and 19 are 2; 1 is a rollback journal)."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False  # a file: URI, say; SQLite opens it read-only and says what is wrong
    return header.startswith(SQLITE_HEADER) and header[18:20] == b"\2\2"


@contextmanager
def inspect_file(path: str) -> Iterator[apsw.Connection]:
    """A connection that reads the file at ``path`` and changes nothing in it or beside it.

    No journal-mode switch, no chmod, no writer-gate lock file, no background checkpointer, and
    no statement that writes (query_only also keeps the PRAGMA optimize of close from writing
    statistics). A file in WAL mode is opened read-write all the same, so that SQLite, when this is
    the last connection, removes the -wal and -shm files a reader needs, as it does for every
    connection; any other file (a rollback journal, an empty file) is opened read-only, which
    creates nothing at all.
    """
    require_file(path)
    settings = Settings(background_checkpoints=False, writer_gate=False)
    wal = _in_wal_mode(path)
    conn = open_connection(path, readonly=not wal, settings=settings, create=False)
    try:
        with translating(f"opening {path}"):
            if wal:
                conn.pragma("query_only", True)
        yield conn
    finally:
        conn.close()


def is_agentstate(conn: apsw.Connection) -> bool:
    with translating("reading the schema"):
        found = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'")
        return found.fetchall() != []


def require_agentstate(conn: apsw.Connection, path: str) -> None:
    if not is_agentstate(conn):
        raise errors.SchemaError(
            f"{path} is not an agentstate database (it holds no agentstate schema): "
            f"run 'agentstate migrate {path}' to create the schema"
        )


@contextmanager
def open_store(path: str) -> Iterator[apsw.Connection]:
    """A connection to an existing store whose schema is up to date, for commands that write.

    The file is first looked at without changing it, so a file that is not an agentstate store
    is refused before a byte of it (its journal mode, say) is changed.
    """
    with inspect_file(path) as conn:
        require_agentstate(conn, path)
    conn = cast(apsw.Connection, connect(path, migrate=False))  # a path: SQLite's
    try:
        yield conn
    finally:
        conn.close()
