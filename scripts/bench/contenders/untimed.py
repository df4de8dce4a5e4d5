"""What goes around the libraries' APIs on SQLite files, untimed: the bulk loads (an apsw file, or
a stdlib sqlite3 one, without WAL or fsyncs), the peers' reading of the generated scratch table,
and the claim tests' bookkeeping on an apsw database (count what was finished and put it back to
pending; park a backlog)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import apsw

from bench.contenders.shared import chunked


def bulk_load(conn: apsw.Connection, load: Callable[[], None]) -> None:
    """Run a bulk load on an apsw connection without WAL or fsyncs, then switch the file to WAL."""
    if conn.pragma("journal_mode", "DELETE") != "delete":  # another connection still has the file open
        raise RuntimeError(f"cannot take {conn.filename} out of WAL mode for the bulk load: is it open elsewhere?")
    conn.pragma("synchronous", "OFF")
    conn.pragma("cache_size", "-262144")
    load()
    conn.pragma("journal_mode", "WAL")


@contextmanager
def bulk(conn: sqlite3.Connection) -> Iterator[None]:
    """A fast, non-durable load on a stdlib connection (no WAL, no fsync), then the file back in
    WAL mode: bulk_load for the peers' files."""
    if conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] != "delete":
        raise RuntimeError("cannot take the file out of WAL mode for the bulk load: is it open elsewhere?")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    yield
    conn.execute("PRAGMA journal_mode = WAL")


def scratch_rows(conn: sqlite3.Connection, table: str, columns: str, chunk: int = 50_000) -> Iterator[list[Any]]:
    """The scratch table's rows in generation order, a chunk at a time (1M rows do not fit at once)."""
    last = 0
    while rows := conn.execute(
        f"SELECT rowid, {columns} FROM temp.{table} WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, chunk)
    ).fetchall():
        last = rows[-1][0]
        yield [row[1:] for row in rows]


def reset_tasks(conn: apsw.Connection, ids: Sequence[str]) -> int:
    """The claim benchmark's bookkeeping on an apsw database: count the completed, reset them."""
    completed = 0
    with conn:
        for chunk in chunked(ids):
            marks = ",".join("?" * len(chunk))
            completed += conn.execute(
                f"SELECT count(*) FROM workers WHERE task_status = 'completed' AND worker_id IN ({marks})", tuple(chunk)
            ).fetchone()[0]
            conn.execute(
                f"UPDATE workers SET task_status = 'pending', result = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                f"attempts = 0, updated_by = NULL WHERE worker_id IN ({marks})",
                tuple(chunk),
            )
    return completed


PARKED_BY = "bench-backlog-parked"
"""The owner of the tasks the backlog test parks: no executor ever has this name."""


def park_pending(conn: apsw.Connection, keep: int) -> int:
    """The backlog test's set-up on an apsw database: all but the oldest ``keep`` pending tasks
    are parked (claimed by nobody, their lease far in the future, as the data set's claimed
    tasks are) until :func:`unpark_tasks`. Returns how many are left pending."""
    with conn:
        conn.execute(
            "UPDATE workers SET task_status = 'claimed', lease_owner = ?, lease_expires_at = '2999-12-31T00:00:00.000000Z' "
            "WHERE worker_id IN (SELECT worker_id FROM workers WHERE task_status = 'pending' "
            "ORDER BY created_at, worker_id LIMIT -1 OFFSET ?)",
            (PARKED_BY, keep),
        )
        return int(conn.execute("SELECT count(*) FROM workers WHERE task_status = 'pending'").fetchone()[0])


def unpark_tasks(conn: apsw.Connection) -> None:
    with conn:
        conn.execute(
            "UPDATE workers SET task_status = 'pending', lease_owner = NULL, lease_expires_at = NULL "
            "WHERE task_status = 'claimed' AND lease_owner = ?",
            (PARKED_BY,),
        )
