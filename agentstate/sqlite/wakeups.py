"""SQLite's doorbell for waiting claims: every commit, from any process, writes to the database's
WAL file, so a waiter asks the kernel to tell it when that file is written (Linux's inotify: no
polling, no cost to writers, nothing in the database). Where inotify is missing (macOS,
Windows) or its per-user limit is reached, the waiter polls the WAL file's size and time every
``POLL_S`` instead, a ``stat`` call that never touches the database.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
from functools import cache

_IN_MODIFY = 0x00000002  # <sys/inotify.h>: the watched file was written (or truncated)


class InotifyWakeups:
    """Rings when the watched file is written: a non-blocking inotify descriptor."""

    def __init__(self, path: str) -> None:
        libc = _libc()
        if libc is None:
            raise OSError(errno.ENOSYS, "inotify is not available")
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch failed for {path}")
        self._fd: int | None = fd

    def fileno(self) -> int | None:
        return self._fd

    def rang(self) -> bool:
        if self._fd is None:
            return False
        rang = False
        while True:
            try:
                if not os.read(self._fd, 4096):
                    return rang
            except BlockingIOError:
                return rang
            rang = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PollingWakeups:
    """Rings when the watched file's size, time or inode changed since the last look (the
    fallback: a waiter calls :meth:`rang` every ``POLL_S``). A file that does not exist (an
    in-memory database) never rings: the waiter then wakes only on its timers."""

    POLL_S = 0.005

    def __init__(self, path: str) -> None:
        self._path = path
        self._seen = self._look()

    def _look(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino

    def fileno(self) -> int | None:
        return None

    def rang(self) -> bool:
        now = self._look()
        rang, self._seen = now != self._seen, now
        return rang

    def close(self) -> None:
        pass


def open_wakeups(database: str) -> InotifyWakeups | PollingWakeups:
    """The doorbell of the database file ``database`` (its ``-wal`` file is what writers write)."""
    wal = f"{database}-wal" if database else ""
    if wal and os.path.exists(wal):
        try:
            return InotifyWakeups(wal)
        except OSError:  # no inotify here, or the user's inotify instances are used up
            pass
    return PollingWakeups(wal)


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        return None
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc
