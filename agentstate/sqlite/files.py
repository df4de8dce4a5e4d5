"""The database file and the files SQLite puts beside it: which paths are acceptable, files
another user planted, the permissions of a new file, and why a file cannot be written."""

from __future__ import annotations

import contextlib
import os
import stat
from functools import cache

import apsw
import apsw.ext

from agentstate import errors


def database_path(path: object) -> str:
    """Check a ``connect()`` path: a str or path-like naming a file, ``:memory:`` or a ``file:`` URI."""
    if not isinstance(path, (str, os.PathLike)):
        raise errors.InvalidTypeError(f"path must be a str or a pathlib.Path, not {type(path).__name__}")
    try:
        filename = os.fspath(path)
    except TypeError as exc:
        raise errors.InvalidTypeError(f"path: {exc}") from None
    if not isinstance(filename, str):
        raise errors.InvalidTypeError(f"path must be text, not {type(filename).__name__}")
    if not filename:
        raise errors.InvalidValueError("path must not be empty (use ':memory:' for a private in-memory database)")
    if "\x00" in filename:
        raise errors.InvalidValueError(f"path {filename!r} contains a NUL character")
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidValueError(f"path {filename!r} is not valid Unicode (it holds a lone surrogate)") from None
    if os.path.isdir(filename):
        raise errors.InvalidValueError(f"path {filename!r} is a directory: give the database file's path inside it")
    if filename != ":memory:" and not filename.startswith("file:"):
        _require_short_enough(filename)
    return filename


# SQLite opens <name>-journal and <name>-wal beside the database: the longest suffix it adds.
_LONGEST_SUFFIX = len("-journal")


_NAME_MAX = 255  # bytes in one file name, on every file system Linux and macOS mount by default


def _require_short_enough(filename: str) -> None:
    """Refuse a name whose -journal or -wal file could not exist, before SQLite creates anything:
    otherwise SQLite creates the database file, then fails to open the journal with 'unable to
    open database file'."""
    name = len(os.path.basename(filename).encode())
    if name + _LONGEST_SUFFIX > _NAME_MAX:
        raise errors.InvalidValueError(
            f"the database's file name is {name} bytes: SQLite adds '-journal' and '-wal' to it, and a file "
            f"name may have {_NAME_MAX}, so it can be at most {_NAME_MAX - _LONGEST_SUFFIX}"
        )
    longest = _longest_path()
    full = len(os.path.abspath(filename).encode())
    if full + _LONGEST_SUFFIX > longest:
        raise errors.InvalidValueError(
            f"the database's full path is {full} bytes: SQLite's files beside it need '-journal' more and "
            f"SQLite takes paths of up to {longest} bytes, so it can be at most {longest - _LONGEST_SUFFIX}; "
            "use a shorter folder"
        )


@cache
def _longest_path() -> int:
    """The longest path the default VFS takes (SQLite's unix VFS: 512 bytes)."""
    default = apsw.vfs_names()[0]
    return next((int(d["mxPathname"]) for d in apsw.vfs_details() if d["zName"] == default), 512)


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def refuse_foreign_files(filename: str) -> None:
    """Refuse files another user planted where the database and SQLite's own files go.

    An empty (or headerless) database file that another user owns was made by them, not by
    SQLite for us: written to, it and its -wal and -shm (which SQLite gives the database's owner)
    stay theirs to read. A -wal, -shm or -journal file beside the database must belong to the
    database's owner (or to this user). A real database of another user's (a service's, shared
    through its group) is opened as it is.
    """
    if not filename:
        return  # a memory database
    me = os.geteuid()
    try:
        info = os.stat(filename)
    except FileNotFoundError:
        return
    if info.st_uid != me and stat.S_ISREG(info.st_mode) and not _has_sqlite_header(filename):
        raise errors.ForeignFileError(
            f"{filename} is an empty or non-SQLite file that belongs to user id {info.st_uid}, not to this "
            f"user ({me}): agentstate would write every conversation into a file that user can read. Delete it "
            "(or ask its owner to), or choose another path"
        )
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            side = os.lstat(filename + suffix)
            if side.st_uid not in (me, info.st_uid) or stat.S_ISLNK(side.st_mode):
                raise errors.ForeignFileError(
                    f"{filename}{suffix} belongs to user id {side.st_uid}, not to the database's owner "
                    f"({info.st_uid}){' and is a symbolic link' if stat.S_ISLNK(side.st_mode) else ''}: SQLite "
                    "would write the database's pages into it. Delete it while no process has the database open"
                )


def _has_sqlite_header(filename: str) -> bool:
    try:
        with open(filename, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return True  # unreadable: SQLite's own open reports that


def make_private(conn: apsw.Connection, mode: int) -> None:
    """Give a file SQLite has just created ``mode``, before its -wal and -shm files exist (they
    copy the main file's mode). An existing database keeps the permissions it has."""
    filename = conn.filename
    if not filename or conn.readonly("main"):
        return
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(filename)
        if info.st_size == 0 and stat.S_IMODE(info.st_mode) != mode and stat.S_ISREG(info.st_mode):
            os.chmod(filename, mode)


def why_not_writable(path: str) -> str | None:
    """What this user may not do to a database file or its folder, in words (None: nothing)."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return (
            f"{path} is not writable by this user (its mode is {stat.S_IMODE(os.stat(path).st_mode):o}): "
            "run as its owner, or open it with readonly=True"
            + ("" if os.access(folder, os.W_OK) else f" once its -shm file exists (the folder {folder} is not writable either)")
        )
    if not os.access(folder, os.W_OK):
        return (
            f"the folder {folder} is not writable by this user, and SQLite must create the database's -wal and "
            "-shm files there (even to read a WAL database, until they exist): run as the folder's owner, or let "
            "that user open the database first"
        )
    return None
