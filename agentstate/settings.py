"""How connections are opened: the options connect() takes, shared by both engines."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from agentstate import errors
from agentstate.monitor import Monitor, QueryHook
from agentstate.values import require_int

Durability = Literal["normal", "full"]


# New database files hold users' conversations: private to their owner unless asked otherwise.
# SQLite gives the -wal and -shm files the main file's mode, so this covers all three.
DEFAULT_FILE_MODE = 0o600


@dataclass(frozen=True)
class Settings:
    """How connections are opened, on either engine (SQLite's pragmas.sql holds the defaults that
    these override; ``file_mode``, ``writer_gate`` and ``background_checkpoints`` are SQLite's only)."""

    durability: Durability = "normal"
    """``normal``: synchronous=NORMAL, a power cut may lose the last commits, never corrupts.
    ``full``: synchronous=FULL, every commit is on disk before it returns (slower appends)."""
    busy_timeout_ms: int | None = None
    """How long a writer waits for the write lock before :class:`DatabaseBusyError`
    (None: pragmas.sql's busy_timeout, 10 s)."""
    background_checkpoints: bool = True
    """Checkpoint the WAL on a background thread instead of inside a random writer's commit."""
    file_mode: int = DEFAULT_FILE_MODE
    """Permissions of a database file agentstate creates (and so of its -wal and -shm files)."""
    monitoring: bool = True
    """Time every named query for statistics, the slow-query log and hooks."""
    slow_query_ms: float | None = None
    """Log queries slower than this (None: ``AGENTSTATE_SLOW_QUERY_MS``, else 100; 0 logs all)."""
    on_query: tuple[QueryHook, ...] = ()
    """Called as ``hook(name, seconds, rows)`` after every named query."""
    writer_gate: bool = True
    """Queue write transactions in arrival order (:mod:`agentstate.sqlite.gate`) instead of only
    polling SQLite's lock: short tails under contention."""

    def __post_init__(self) -> None:
        if self.busy_timeout_ms is not None:
            # SQLite takes a C int of milliseconds.
            require_int("busy_timeout_ms", self.busy_timeout_ms, minimum=0)
            if self.busy_timeout_ms > 2**31 - 1:
                raise errors.InvalidValueError(f"busy_timeout_ms must be at most {2**31 - 1}, got {self.busy_timeout_ms}")
        require_int("file_mode", self.file_mode, minimum=0)
        Monitor(self.slow_query_ms, self.on_query)  # check them before any file is created
        if self.file_mode > 0o777:
            raise errors.InvalidValueError(f"file_mode must be permission bits such as 0o600, got {oct(self.file_mode)}")


DEFAULT_SIZE_WARNING_MB = 100
SIZE_WARNING_ENV = "AGENTSTATE_SIZE_WARNING_MB"


def size_warning_bytes() -> int:
    """``AGENTSTATE_SIZE_WARNING_MB`` (default 100) in bytes."""
    raw = os.environ.get(SIZE_WARNING_ENV, "").strip() or str(DEFAULT_SIZE_WARNING_MB)
    try:
        megabytes = float(raw)
    except ValueError:
        raise errors.InvalidValueError(f"{SIZE_WARNING_ENV}={raw!r} is not a number of megabytes") from None
    if not 0 < megabytes <= 1e9:  # NaN and infinity fail this too
        raise errors.InvalidValueError(f"{SIZE_WARNING_ENV}={raw!r} must be more than 0 and at most 1e9 (a petabyte)")
    return int(megabytes * 1_000_000)
