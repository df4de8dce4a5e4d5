"""Configuring a fresh SQLite connection: the pragmas of ``schema/sqlite/pragmas.sql`` (with
:class:`~agentstate.settings.Settings`' overrides), the SQLite version floor, apsw's safety
settings and agentstate's busy handler."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import apsw
import apsw.ext

from agentstate import errors
from agentstate.schema_files import schema_dir
from agentstate.settings import Settings
from agentstate.sqlite import wal_checkpoints
from agentstate.sqlite.busy import patient_busy_handler

# STRICT tables need 3.37, RETURNING 3.35, ON CONFLICT ... DO NOTHING with RETURNING 3.35.
MIN_SQLITE = (3, 37, 0)


# Pragmas stored in the database file: applied once, when agentstate creates the file.
FILE_PRAGMAS = frozenset({"auto_vacuum", "journal_mode"})


@dataclass(frozen=True)
class Pragma:
    """One line of pragmas.sql."""

    name: str
    value: str


_PRAGMA_LINE = re.compile(r"^PRAGMA\s+(\w+)\s*=\s*([\w-]+)\s*;\s*$", re.IGNORECASE)


def load_pragmas(path: Path | None = None) -> tuple[Pragma, ...]:
    """Parse ``pragmas.sql``: one ``PRAGMA name = value;`` per line, comments allowed."""
    return _parse_pragmas(path) if path is not None else _shipped_pragmas()


@cache
def _shipped_pragmas() -> tuple[Pragma, ...]:
    return _parse_pragmas(schema_dir() / "pragmas.sql")


def _parse_pragmas(path: Path) -> tuple[Pragma, ...]:
    pragmas = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        match = _PRAGMA_LINE.match(text)
        if not match:
            raise errors.SchemaError(f"{path}:{lineno}: expected 'PRAGMA name = value;', got {text!r}")
        pragmas.append(Pragma(match.group(1).lower(), match.group(2)))
    return tuple(pragmas)


def check_sqlite_version() -> None:
    """Refuse an SQLite library too old for the schema (STRICT tables, RETURNING)."""
    version = tuple(int(part) for part in apsw.sqlite_lib_version().split(".")[:3])
    if version < MIN_SQLITE:
        wanted = ".".join(map(str, MIN_SQLITE))
        raise errors.SchemaError(
            f"SQLite {apsw.sqlite_lib_version()} is too old: agentstate needs {wanted}+; "
            "upgrade apsw (pip install -U apsw), which bundles a current SQLite"
        )


def configure(conn: apsw.Connection, settings: Settings) -> None:
    """Apply agentstate's settings to a freshly opened connection."""
    # Before anything that reads the file: another process may be creating it right now.
    busy_timeout_ms = busy_timeout_of(settings)
    conn.set_busy_timeout(busy_timeout_ms)
    writable = not conn.readonly("main")
    # "New" means no schema yet, not an empty file: a process killed while creating the file
    # can leave its first page written before WAL was switched on (seen in the crash suite).
    empty = writable and conn.execute("SELECT count(*) FROM sqlite_schema").get == 0
    for pragma in pragmas_for(settings):
        if pragma.name not in FILE_PRAGMAS:
            conn.pragma(pragma.name, pragma.value)
        elif pragma.name == "journal_mode":
            # Setting the mode already in force still takes locks, so only when it differs.
            if writable and str(conn.pragma("journal_mode")).lower() not in (pragma.value.lower(), "memory"):
                _set_file_pragma(conn, pragma, busy_timeout_ms)
        elif empty:  # auto_vacuum can only change before the first table exists
            _set_file_pragma(conn, pragma, busy_timeout_ms)
    # Statements with a bound LIMIT were re-prepared on every call until the plan was pinned:
    # the query planner stability guarantee keeps one plan per statement in apsw's cache.
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_QPSG, 1)
    # Double-quoted strings are identifiers only (apsw.bestpractice.connection_dqs).
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    # Last: the busy_timeout pragma above installs SQLite's own handler, which this replaces.
    handler = patient_busy_handler(busy_timeout_ms)
    conn.set_busy_handler(handler)
    with contextlib.suppress(AttributeError):  # a plain apsw.Connection keeps no handler of ours
        conn.busy_handler = handler  # type: ignore[attr-defined]
    if settings.background_checkpoints:
        wal_checkpoints.attach(conn)


def _set_file_pragma(conn: apsw.Connection, pragma: Pragma, timeout_ms: int) -> None:
    """Set a file-level pragma while other processes may be creating the same file.

    Two connections that both hold a shared lock and want the exclusive one deadlock, and SQLite
    answers one of them BUSY at once, without waiting; so retry until the busy timeout.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            conn.pragma(pragma.name, pragma.value)
            return
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def pragmas_for(settings: Settings) -> list[Pragma]:
    """pragmas.sql with the settings' overrides (durability, busy timeout)."""
    overrides = {"synchronous": settings.durability.upper()}
    if settings.busy_timeout_ms is not None:
        overrides["busy_timeout"] = str(settings.busy_timeout_ms)
    return [Pragma(p.name, overrides.get(p.name, p.value)) for p in load_pragmas()]


def busy_timeout_of(settings: Settings) -> int:
    """The busy timeout in force, in milliseconds."""
    return int(next(p.value for p in pragmas_for(settings) if p.name == "busy_timeout"))
