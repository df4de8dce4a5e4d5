"""Giving space back after deletes: incremental vacuum in chunks, and truncating the WAL."""

from __future__ import annotations

import logging
import time

import apsw
import apsw.ext

from agentstate.engine import yield_lock
from agentstate.sqlite.translate import translate

# Pages incremental_vacuum frees per transaction: a few milliseconds of work, then other writers.
VACUUM_CHUNK_PAGES = 2048


def give_back_free_pages(conn: apsw.Connection) -> int:
    """``PRAGMA incremental_vacuum``: hand the file's free pages to the file system, a chunk per
    transaction so other writers get in between; returns how many. Best effort: it runs after
    deletes have committed, so a failure (a full disk, say) is logged and the deletes still
    count; the next vacuum tries again."""
    freed = 0
    try:
        while True:
            # One row per page freed: the pragma works only as far as its rows are read.
            chunk = len(conn.execute(f"PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES})").fetchall())
            freed += chunk
            if chunk < VACUUM_CHUNK_PAGES or not conn.get_autocommit():
                return freed
            yield_lock()
    except apsw.Error as exc:
        logging.getLogger("agentstate").warning(
            "agentstate: giving free pages back to the file system failed (%s); the deleted rows stay "
            "deleted, and 'agentstate vacuum' can try again",
            translate(exc),
        )
        return freed


def checkpoint_truncate(conn: apsw.Connection, attempts: int = 50) -> bool:
    """Copy the whole WAL into the database file and truncate the WAL (so space freed in the
    file reaches the disk); retried while the background checkpointer runs one of its own.
    False if readers kept it from finishing."""
    for _ in range(attempts):
        try:
            conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)  # raises BusyError if it cannot finish
            return True
        except (apsw.BusyError, apsw.LockedError):
            pass
        except apsw.Error as exc:
            raise translate(exc, "checkpointing the WAL") from exc
        time.sleep(0.02)
    return False
