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
import logging
import os
import threading
import time
import weakref

import apsw

from agentstate.settings import size_warning_bytes

logger = logging.getLogger("agentstate")

# Pages in the WAL after which a checkpoint is due (SQLite's own default threshold).
WAL_PAGES_THRESHOLD = 1000
# Past this many pages the checkpointer insists on a RESTART so the WAL cannot grow without end.
WAL_RESTART_PAGES = 16 * WAL_PAGES_THRESHOLD
# A checkpoint also runs this often while writes keep coming, so a quiet process still drains;
# after this many intervals without a commit the thread ends.
IDLE_INTERVAL_S = 1.0
IDLE_ROUNDS = 10
# After a failed checkpoint (a full disk, an I/O error) wait this long, doubling up to the cap.
BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
# While a process keeps writing, refresh the planner's statistics this often (PRAGMA optimize,
# as apsw.bestpractice advises for long-lived connections).
OPTIMIZE_INTERVAL_S = 3600.0


class Checkpointer:
    """The daemon thread that checkpoints one database file for this process.

    It checkpoints only after commits, and ends after ``IDLE_ROUNDS`` quiet intervals or as soon
    as the process's last connection to the file closes; the next commit starts a new one, so a
    process that opened many databases does not keep a thread for each.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.pid = os.getpid()
        self._due = threading.Event()
        self._lock = threading.Lock()
        # Held while a checkpoint connection is open: closing the last user waits for it.
        self._working = threading.Lock()
        self._thread: threading.Thread | None = None
        self._users: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()
        self._active = False  # a commit since the last checkpoint
        self._backoff = 0.0
        self._seen = 0  # WAL size, in pages, after the last commit
        self._due_at = WAL_PAGES_THRESHOLD
        self._optimized_at = time.monotonic()
        self._size_warned = False

    def _ensure_running(self) -> None:
        with self._lock:
            if self._users and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name=f"agentstate-checkpoint:{self.filename}", daemon=True
                )
                self._thread.start()

    def wal_hook(self, conn: apsw.Connection, dbname: str, pages: int) -> int:
        """Installed with Connection.set_wal_hook: runs after each commit, must stay cheap.

        The commit is already durable when this runs: whatever goes wrong here is logged and
        never raised, or the caller would see a committed write reported as failed.
        """
        try:
            self._after_commit(conn, pages)
        except Exception:
            logger.warning("agentstate: scheduling a WAL checkpoint of %s failed", self.filename, exc_info=True)
        return apsw.SQLITE_OK

    def _after_commit(self, conn: apsw.Connection, pages: int) -> None:
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
            # The transaction is over (SQLite has let its lock go before calling this hook), so
            # the writer gate is opened first: the copy takes tens of milliseconds, and writers
            # queued at the gate would wait for all of it although SQLite lets them write.
            gate = getattr(conn, "writer_gate", None)
            if gate is not None:
                gate.release()
            with contextlib.suppress(apsw.BusyError, apsw.LockedError):
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        if pages >= self._due_at:
            self._due_at = pages + WAL_PAGES_THRESHOLD
            self._due.set()
            self._ensure_running()

    def add_user(self, conn: apsw.Connection) -> None:
        with self._lock:
            self._users.add(conn)

    def remove_user(self, conn: apsw.Connection) -> None:
        """``conn`` is closing. If it was the last, stop the thread and wait for a checkpoint in
        progress, so that once the caller's close returns no connection of ours holds the file."""
        with self._lock:
            self._users.discard(conn)
            last = not self._users
        if last:
            self._due.set()  # wake the thread so it sees there is nobody left
            with self._working:
                pass

    def _run(self) -> None:
        quiet = 0
        while quiet < IDLE_ROUNDS and self._users:
            due = self._due.wait(max(IDLE_INTERVAL_S, self._backoff))
            self._due.clear()
            active, self._active = self._active, False
            if not (due or active):
                quiet += 1
                continue
            quiet = 0
            with self._working:
                if not self._users:
                    return  # the last connection closed while we waited
                self._checkpoint()

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint on a connection opened for it, so that between checkpoints this
        thread holds nothing open (closing the last connection leaves the file free to delete or
        to switch out of WAL). A failure is logged and retried later, ever less often."""
        try:
            conn = apsw.Connection(self.filename, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_URI)
        except apsw.CantOpenError:
            return  # the file was deleted since: nothing left to checkpoint
        except apsw.Error:
            self._failed()
            return
        _background.add(id(conn))
        try:
            conn.set_busy_timeout(1000)
            conn.wal_autocheckpoint(0)
            # A connection that has read nothing has not opened the WAL yet, and its
            # checkpoints silently do nothing (they report (-1, -1)) until it does. Reading
            # the schema cookie opens it without parsing the schema (~0.1 ms, not ~1 ms).
            conn.execute("PRAGMA schema_version").fetchall()
            conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            self._housekeeping(conn)
            if self._backoff:
                logger.info("agentstate: WAL checkpoints of %s work again", self.filename)
            self._backoff = 0.0
        except (apsw.BusyError, apsw.LockedError):
            pass  # another checkpoint is running; the next wake-up retries
        except apsw.Error:
            self._failed()
        finally:
            _background.discard(id(conn))
            conn.close()

    def _housekeeping(self, conn: apsw.Connection) -> None:
        """The chores of a long-running writer, on the checkpointer's own connection: statistics
        for the query planner now and then, and one warning when the file passes its size."""
        try:
            self._chores(conn)
        except Exception:
            logger.warning("agentstate: housekeeping of %s failed", self.filename, exc_info=True)

    def _chores(self, conn: apsw.Connection) -> None:
        if time.monotonic() - self._optimized_at >= OPTIMIZE_INTERVAL_S:
            self._optimized_at = time.monotonic()
            conn.execute("PRAGMA analysis_limit = 1000")
            # 0x10002: every table whose statistics are missing or stale, not only those this
            # (fresh) connection has queried; analysis_limit keeps each a few milliseconds.
            conn.execute("PRAGMA optimize = 0x10002").fetchall()
        if not self._size_warned:
            limit = size_warning_bytes()
            size = os.path.getsize(self.filename)
            if size > limit:
                self._size_warned = True
                logger.warning(
                    "agentstate: %s holds %.1f MB, past the %.0f MB warning size: schedule retention "
                    "('agentstate cleanup'), or raise AGENTSTATE_SIZE_WARNING_MB",
                    self.filename,
                    size / 1e6,
                    limit / 1e6,
                )

    def _failed(self) -> None:
        self._backoff = min(MAX_BACKOFF_S, max(BACKOFF_S, 2 * self._backoff))
        self._active = True  # the WAL still needs copying: try again after the back-off
        logger.warning(
            "agentstate: WAL checkpoint of %s failed; retrying in %.0f s (writes still succeed, the WAL grows meanwhile)",
            self.filename,
            self._backoff,
            exc_info=True,
        )


def is_background(conn: apsw.Connection) -> bool:
    """True for the checkpointers' own connections (tests that count open connections skip them)."""
    return id(conn) in _background


_background: set[int] = set()
_checkpointers: dict[str, Checkpointer] = {}
_lock = threading.Lock()


def _forget_after_fork() -> None:
    """In a forked child: the parent's threads are gone and its locks may have been held mid-use."""
    global _lock
    _lock = threading.Lock()
    _checkpointers.clear()
    _background.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def attach(conn: apsw.Connection) -> None:
    """Move this connection's automatic checkpoints to the process's background checkpointer."""
    filename = conn.filename
    if not filename or conn.readonly("main") or conn.pragma("journal_mode") != "wal":
        return  # :memory:, temporary and read-only databases have no WAL of ours to drain
    with _lock:
        checkpointer = _checkpointers.get(filename)
        if checkpointer is None:
            checkpointer = _checkpointers[filename] = Checkpointer(filename)
        checkpointer.add_user(conn)
        _attached[conn] = checkpointer
    conn.wal_autocheckpoint(0)
    conn.set_wal_hook(checkpointer.wal_hook)


_attached: weakref.WeakKeyDictionary[apsw.Connection, Checkpointer] = weakref.WeakKeyDictionary()


def detach(conn: apsw.Connection) -> None:
    """``conn`` is about to close: see :meth:`Checkpointer.remove_user`."""
    if os.getpid() != getattr(conn, "pid", os.getpid()):
        return  # a forked child's inherited connection: the parent's checkpointer is not ours
    with _lock:
        checkpointer = _attached.pop(conn, None)
    if checkpointer is not None:
        checkpointer.remove_user(conn)
