"""WAL checkpoints on a background thread, off the writers' path.

By default SQLite makes whichever connection commits past 1000 WAL pages copy the WAL back into
the database before its commit returns: a stall of tens of milliseconds landing on a random
append. agentstate turns that off on its connections and instead lets a commit that crosses the
threshold wake one daemon thread per process and database file, which checkpoints (PASSIVE: it
never blocks readers or writers) on a connection of its own. The WAL stays bounded and no
writer waits for it.
"""

from __future__ import annotations

import contextlib
import os
import threading

import apsw

# Pages in the WAL after which a checkpoint is due (SQLite's own default threshold).
WAL_PAGES_THRESHOLD = 1000
# Past this many pages the checkpointer insists on a RESTART so the WAL cannot grow without end.
WAL_RESTART_PAGES = 16 * WAL_PAGES_THRESHOLD
# A checkpoint also runs this often while writes keep coming, so a quiet process still drains;
# after this many intervals without a commit the thread ends.
IDLE_INTERVAL_S = 1.0
IDLE_ROUNDS = 10


class Checkpointer:
    """The daemon thread that checkpoints one database file for this process.

    The thread ends after ``IDLE_ROUNDS`` quiet intervals and the next commit starts a new one,
    so a process that opened many databases does not keep a thread for each.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.pid = os.getpid()
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._active = True
        self._seen = 0  # WAL size, in pages, after the last commit
        self._due_at = WAL_PAGES_THRESHOLD
        self._ensure_running()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"agentstate-checkpoint:{self.filename}", daemon=True
                )
                self._thread.start()

    def wal_hook(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        """Installed with Connection.set_wal_hook: runs after each commit, must stay cheap."""
        self._active = True
        # Due once per WAL_PAGES_THRESHOLD new pages: while readers keep the WAL from restarting,
        # it only grows, and checkpointing after every commit would fsync the file nonstop.
        if pages < self._seen:  # the WAL restarted from its beginning
            self._due_at = WAL_PAGES_THRESHOLD
        self._seen = pages
        if pages >= WAL_RESTART_PAGES:
            # A steady writer appends while the background copy runs, so the WAL is never
            # completely copied and never starts over. Past the cap the writer finishes the copy
            # itself, right after its commit: the background thread has done nearly all of it,
            # and then the next transaction rewinds the WAL (journal_size_limit trims the file).
            with contextlib.suppress(apsw.BusyError, apsw.LockedError):
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        if pages >= self._due_at:
            self._due_at = pages + WAL_PAGES_THRESHOLD
            self._due.set()
            self._ensure_running()
        return apsw.SQLITE_OK

    def _run(self) -> None:
        quiet = 0
        while quiet < IDLE_ROUNDS:
            self._active = False
            due = self._due.wait(IDLE_INTERVAL_S)
            self._due.clear()
            self._checkpoint()
            quiet = 0 if due or self._active else quiet + 1

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint on a connection opened for it, so that between checkpoints this
        thread holds nothing open (closing the last connection leaves the file free to delete or
        to switch out of WAL)."""
        try:
            conn = apsw.Connection(self.filename, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_URI)
        except apsw.CantOpenError:
            return  # the file was deleted since: nothing left to checkpoint
        _background.add(id(conn))
        try:
            conn.set_busy_timeout(1000)
            conn.wal_autocheckpoint(0)
            # Busy or locked means another checkpoint is running; the next wake-up retries.
            with contextlib.suppress(apsw.BusyError, apsw.LockedError):
                # A connection that has read nothing has not opened the WAL yet, and its
                # checkpoints silently do nothing (they report (-1, -1)) until it does. Reading
                # the schema cookie opens it without parsing the schema (~0.1 ms, not ~1 ms).
                conn.execute("PRAGMA schema_version").fetchall()
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        finally:
            _background.discard(id(conn))
            conn.close()


def is_background(conn: apsw.Connection) -> bool:
    """True for the checkpointers' own connections (tests that count open connections skip them)."""
    return id(conn) in _background


_background: set[int] = set()
_checkpointers: dict[str, Checkpointer] = {}
_lock = threading.Lock()


def attach(conn: apsw.Connection) -> None:
    """Move this connection's automatic checkpoints to the process's background checkpointer."""
    filename = conn.filename
    if not filename or conn.readonly("main") or conn.pragma("journal_mode") != "wal":
        return  # :memory:, temporary and read-only databases have no WAL of ours to drain
    with _lock:
        checkpointer = _checkpointers.get(filename)
        if checkpointer is None or checkpointer.pid != os.getpid():  # threads do not survive fork
            checkpointer = _checkpointers[filename] = Checkpointer(filename)
    conn.wal_autocheckpoint(0)
    conn.set_wal_hook(checkpointer.wal_hook)
