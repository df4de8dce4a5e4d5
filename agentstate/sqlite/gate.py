"""The writer gate: writers of one database file take turns in the order they arrive.

SQLite's write lock is not a queue. A writer that finds it taken sleeps and tries again (see
:func:`agentstate.sqlite.busy.patient_busy_handler`), while the writer that just committed, still on
its CPU, takes the lock straight back: under four busy executors most transactions wait for
nothing and a few wait for hundreds of milliseconds (p99.9 80 ms, max 0.5 s measured here).

The gate is a turnstile of two locks on a sidecar file, ``<database>-lock``, taken before
``BEGIN IMMEDIATE`` and let go after ``COMMIT``: a writer passes the turnstile, waits for the
gate, then opens the turnstile behind it. The writer that just finished cannot barge back in,
because the next one in line holds the turnstile while it waits, so the gate goes to the writer
that waited. The kernel wakes a blocked waiter the moment the lock is free (no polling), and
frees a dead process's locks, so a crash leaves nothing to clean up.

The locks are Linux's open file description locks (``F_OFD_SETLKW``) on bytes 0 and 1 of the
file: like ``flock`` they belong to one open file, not to the process, so two connections of
one process queue like two processes; unlike ``flock`` they lock a byte range, so one file
holds both. Where they do not exist there is no gate.

A blocked lock request cannot time out, and a holder that is stopped (SIGSTOP), or a program
that is not agentstate's locking the file, would keep a blocked writer forever. So the writer
does not block in the kernel itself: a stand-in thread of its gate does, while the writer waits
for it with a timeout, its connection's busy timeout; the time it spent counts against SQLite's
own wait that follows, so a write waits about its busy timeout in all. A gate that made a writer
give up is only tried, never waited for, until this connection gets it again. The holder bounds
its side too: a watchdog thread opens a gate held longer than its connection's busy timeout (a
transaction stuck in user code), so the writers behind go on to SQLite's lock, which ends in a
busy error as it always did. A thread never waits for a gate it already holds through another
connection. The gate only orders writers; SQLite's lock still makes them exclusive, so
connections that do not use it (the sqlite3 shell, an older agentstate) stay correct and simply
do not queue.

The file is created private (the database's mode, whatever the umask) and must be a regular
file owned by this user: one another user planted could be locked by them to stall every
writer, so such a file is not used (a warning; writers then queue in SQLite alone).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import stat
import struct
import threading
import time
import weakref

logger = logging.getLogger("agentstate")

SUFFIX = "-lock"
GATE, TURNSTILE = 0, 1  # the byte each lock covers
# A writer that came in through the line may come straight back for this long (an executor's
# next claim, say) before it queues again: a hand-off wakes a sleeping process, which cost more
# than the transaction itself (2 writers: 6,900 tasks/s strictly in turn, 9,700 with 1 ms
# slices; the slowest 0.1% stayed at 4 ms).
SLICE_S = 0.001
# How often the watchdog looks for a gate held too long.
WATCHDOG_INTERVAL_S = 0.5

_F_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_F_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)


def _request(kind: int, byte: int) -> bytes:
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for these locks), padding
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, byte, 1, 0)


_LOCK = {byte: _request(fcntl.F_WRLCK, byte) for byte in (GATE, TURNSTILE)}
_UNLOCK = {byte: _request(fcntl.F_UNLCK, byte) for byte in (GATE, TURNSTILE)}


def _lock(fd: int, byte: int) -> bool:
    """Write-lock one byte for this open file description, never waiting; False if someone else
    holds it."""
    try:
        fcntl.fcntl(fd, _F_SETLK, _LOCK[byte])  # type: ignore[arg-type]
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held elsewhere
        return False
    return True


def _unlock(fd: int, byte: int) -> None:
    fcntl.fcntl(fd, _F_SETLK, _UNLOCK[byte])  # type: ignore[arg-type]


class ForeignGateFile(OSError):
    """The gate file exists but is not a regular file of this user's: not to be trusted."""


def _open_sidecar(path: str, mode: int) -> int:
    """Open the gate file, creating it with exactly ``mode`` (like the database, whatever the
    umask); an existing one keeps its permissions, but must be a regular file this user owns
    (never followed through a symbolic link)."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        created = True
    except FileExistsError:
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ForeignGateFile(f"{path} is a symbolic link") from None
            raise
        created = False
    try:
        if created:
            os.fchmod(fd, mode)
        else:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ForeignGateFile(f"{path} is not a regular file")
            if info.st_uid != os.geteuid():
                raise ForeignGateFile(
                    f"{path} belongs to user id {info.st_uid}, not to this user ({os.geteuid()}): "
                    "whoever owns it could stall every writer by locking it. Delete it (it is empty; "
                    "agentstate makes a private one) while no process has the database open"
                )
    except OSError:
        os.close(fd)
        raise
    return fd


class WriterGate:
    """The gate of one connection, on an open file description of its own."""

    def __init__(self, database: str, mode: int, max_hold_s: float) -> None:
        self._fd = _open_sidecar(database + SUFFIX, mode)
        self.ident = os.fstat(self._fd)[1:3]  # (inode, device): one gate file, whatever the path
        self.max_hold_s = max_hold_s
        self._lock = threading.Lock()  # between the owner and the watchdog
        self._held_since: float | None = None
        self._slice_started = -1e9
        self._closed = False
        self._distrusted = False  # a wait for it timed out: try it, never wait for it, until it is had again
        self._stand_in: _StandIn | None = None
        with _registry_lock:
            _gates.add(self)

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the gate, waiting in line for it for up to ``max_hold_s`` (``wait=False``: only
        if nobody writes and nobody is in line). False (go on without it) when it was not taken:
        it stayed busy that long (or, without ``wait``, was busy at all); this thread already
        holds the same file's gate through another connection; or the lock request failed."""
        if self._held_since is not None or self._closed:
            return self._held_since is not None
        held = _held_here()
        if self.ident in held:
            return False
        try:
            now = time.monotonic()
            # Within its slice a connection goes straight back in if the gate is free; else it
            # queues, and its new slice starts when it gets in.
            if not (now - self._slice_started < SLICE_S and _lock(self._fd, GATE)):
                if not self._pass() and not (wait and not self._distrusted and self._wait_in_line(now)):
                    return False
                now = self._slice_started = time.monotonic()
        except OSError:
            if wait:
                logger.warning("agentstate: the writer gate failed; writing without it", exc_info=True)
            return False
        self._distrusted = False
        with self._lock:
            self._held_since = now
        held.add(self.ident)
        _watchdog.ensure_running()
        return True

    def release(self) -> None:
        """Let the next writer in."""
        _held_here().discard(self.ident)
        with self._lock:
            if self._held_since is None:
                return
            self._held_since = None
            try:
                _unlock(self._fd, GATE)
            except OSError:  # a closed or broken gate file: nobody can be waiting on it
                return  # (not contextlib.suppress: this runs after every write transaction)

    def close(self) -> None:
        """Let go of the gate and close its file."""
        self.release()
        with _registry_lock:
            _gates.discard(self)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._stand_in is not None and self._stand_in.stop():
                return  # it is still in line on the file, and closes it when it leaves
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def _pass(self) -> bool:
        """Through the turnstile to the gate, then open the turnstile behind, if nobody is in
        line and nobody writes (three system calls)."""
        if not _lock(self._fd, TURNSTILE):
            return False
        try:
            return _lock(self._fd, GATE)
        finally:
            _unlock(self._fd, TURNSTILE)

    def _wait_in_line(self, since: float) -> bool:
        """Wait in line through this gate's stand-in until ``max_hold_s`` after ``since``; False,
        and the gate distrusted, if that ran out (the stand-in stays in line, and lets the gate
        go at once when it gets it)."""
        if self._stand_in is None:
            self._stand_in = _StandIn(self._fd, self._lock)
        if self._stand_in.wait(since + self.max_hold_s - time.monotonic()):
            return True
        self._distrusted = True
        logger.warning(
            "agentstate: the writer gate of %s stayed taken for %.1f s (a writer that is stopped or "
            "hung, or another program locking the file); writing without it until it is free",
            self._name(),
            self.max_hold_s,
        )
        return False

    def open_if_stuck(self, now: float) -> None:
        """The watchdog's check: open the gate held past ``max_hold_s`` (the transaction goes on
        under SQLite's lock; the writers behind it wait there instead, and time out there)."""
        with self._lock:
            since = self._held_since
            if since is None or now - since <= self.max_hold_s:
                return
            self._held_since = None
            with contextlib.suppress(OSError):
                _unlock(self._fd, GATE)
        logger.warning(
            "agentstate: a write transaction on %s has been open for over %.1f s; the writers "
            "queued behind it now wait on SQLite's lock and time out there",
            self._name(),
            self.max_hold_s,
        )

    def _name(self) -> str:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/self/fd/{self._fd}").removesuffix(SUFFIX)
        return "the database"


class _Turn:
    """One writer's wait, as its stand-in sees it."""

    __slots__ = ("abandoned", "done", "granted")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()  # released when the stand-in has the gate (or failed)
        self.granted = False
        self.abandoned = False


class _StandIn:
    """A thread that stands in line for one gate, blocked in the kernel's lock requests (which
    cannot time out), while its writer waits for it with a timeout. The lock belongs to the
    gate's open file description, not to a thread, so what the stand-in takes the writer holds.

    Measured against polling the locks (50 µs doubling to 1 ms) and against the writer blocking
    itself, unbounded (scripts/bench_writers.py, 2/4/8 executors, two runs each on a quiet
    2-core VM): p99.9 4.5-7.6 / 6.4-7.6 / 14-25 ms here, 5.1-5.2 / 19-20 / 97-101 ms polling,
    4.7-8.1 / 7.3-21 / 48-49 ms unbounded, at 0.8-1.0x the unbounded throughput (a hand-off
    wakes two threads instead of one).
    """

    def __init__(self, fd: int, owner_lock: threading.Lock) -> None:
        self._fd = fd
        self._owner_lock = owner_lock  # the gate's: a turn is granted or abandoned under it
        self._turns: queue.SimpleQueue[_Turn | None] = queue.SimpleQueue()
        self._in_line = False
        self._stopping = False
        threading.Thread(target=self._run, name="agentstate-writer-gate-line", daemon=True).start()

    def stop(self) -> bool:
        """End the thread (the gate is closing; under the gate's lock). True if it is still in
        line, blocked on the file: it then closes the file itself when it gets out, so the
        descriptor's number cannot be reused under it meanwhile."""
        self._stopping = True
        self._turns.put(None)
        return self._in_line

    def wait(self, timeout: float) -> bool:
        """Stand in line for up to ``timeout`` seconds; True when the gate is held."""
        if self._in_line or timeout <= 0:
            return False  # a turn given up on is still in line: write without the gate
        turn = _Turn()
        self._in_line = True
        self._turns.put(turn)
        if turn.done.acquire(timeout=timeout):
            return turn.granted
        with self._owner_lock:
            turn.abandoned = not turn.granted
            return turn.granted

    def _run(self) -> None:
        while True:
            turn = self._turns.get()
            if turn is None:
                return
            try:
                fcntl.fcntl(self._fd, _F_SETLKW, _LOCK[TURNSTILE])  # type: ignore[arg-type]
                try:
                    fcntl.fcntl(self._fd, _F_SETLKW, _LOCK[GATE])  # type: ignore[arg-type]
                finally:
                    _unlock(self._fd, TURNSTILE)
                with self._owner_lock:
                    if turn.abandoned:
                        _unlock(self._fd, GATE)  # nobody waits for it any more
                    else:
                        turn.granted = True
            except OSError:  # the lock request failed: the writer goes on without the gate
                pass
            finally:
                with self._owner_lock:
                    self._in_line = False
                    if self._stopping:
                        with contextlib.suppress(OSError):
                            os.close(self._fd)  # the gate closed while this was in line
                turn.done.release()
            if self._stopping:
                return


class _Watchdog:
    """One daemon thread per process, alive while gates exist."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        # Every write transaction asks: a field test, not Thread.is_alive() (a lock round trip).
        # The thread clears the field itself as it ends, under the registry lock.
        if self._thread is not None:
            return
        with _registry_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agentstate-writer-gate", daemon=True)
                try:
                    self._thread.start()
                except RuntimeError:  # no thread (interpreter shutting down): gates are then unbounded
                    self._thread = None

    def _run(self) -> None:
        try:
            while True:
                time.sleep(WATCHDOG_INTERVAL_S)
                with _registry_lock:
                    gates = list(_gates)
                    if not gates:
                        self._thread = None
                        return
                now = time.monotonic()
                for gate in gates:
                    gate.open_if_stuck(now)
        except BaseException:
            with _registry_lock:
                self._thread = None  # the next acquire starts another
            raise


_registry_lock = threading.Lock()
_gates: weakref.WeakSet[WriterGate] = weakref.WeakSet()
_watchdog = _Watchdog()
_local = threading.local()


def _held_here() -> set[tuple[int, int]]:
    """The gate files this thread holds, through any connection."""
    held: set[tuple[int, int]] | None = getattr(_local, "held", None)
    if held is None:
        held = _local.held = set()
    return held


def open_gate(database: str, mode: int, max_hold_s: float) -> WriterGate | None:
    """The gate for a writable connection to ``database`` (None: no sidecar could be opened,
    e.g. a read-only folder, or the system has no such locks; writers then queue only in
    SQLite's busy handler)."""
    if _F_SETLK is None:
        return None
    try:
        return WriterGate(database, mode, max_hold_s)
    except ForeignGateFile as exc:
        logger.warning("agentstate: no writer gate for %s: %s; writers will poll SQLite's lock", database, exc)
        return None
    except OSError as exc:
        logger.info("agentstate: no writer gate for %s (%s); writers will poll SQLite's lock", database, exc)
        return None


def _forget_inherited_gates() -> None:
    """In a forked child: close the parent's gate files. The child cannot use the parent's
    connections, and a lock held through an inherited descriptor would outlive the parent."""
    for gate in list(_gates):
        gate._closed, gate._held_since = True, None
        with contextlib.suppress(OSError):
            os.close(gate._fd)
    _gates.clear()
    _watchdog._thread = None
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_forget_inherited_gates)
