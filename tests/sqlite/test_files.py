"""What agentstate does with the files it finds: a file another user planted is refused, a name
too long for SQLite's own files is refused before anything is created, and a closed connection
says so in agentstate's own error, however often it is closed.

The ownership tests need root (they make files owned by ``nobody``), as CI runs them.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

import agentstate
from agentstate import errors
from agentstate.agents import Agents
from agentstate.tasks import TaskManager

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file in ``folder``: (owner, mode, size)."""
    return {p.name: (p.lstat().st_uid, stat.S_IMODE(p.lstat().st_mode), p.lstat().st_size) for p in folder.iterdir()}


@pytest.fixture
def sticky_folder(tmp_path: Path) -> Path:
    """A folder like /tmp: anyone may create files in it, only their owner may delete them."""
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


@needs_root
@pytest.mark.parametrize("content", [b"", b"not an SQLite header, just some bytes"])
def test_a_file_another_user_planted_is_refused_and_left_alone(sticky_folder: Path, content: bytes) -> None:
    """Before, an empty 0666 file owned by nobody was used as if new: chmodded to 0600 but still
    owned by nobody, with -wal and -shm owned by nobody too, so that user could read every
    conversation written to it."""
    path = sticky_folder / "agents.db"
    path.write_bytes(content)
    os.chown(path, NOBODY, NOBODY)
    os.chmod(path, 0o666)
    before = snapshot(sticky_folder)
    with pytest.raises(errors.ForeignFileError, match="agents.db.*belongs to user id 65534") as raised:
        agentstate.connect(path)
    assert "delete it" in str(raised.value).lower()
    assert snapshot(sticky_folder) == before


@needs_root
def test_a_wal_file_another_user_planted_beside_our_database_is_refused(sticky_folder: Path) -> None:
    """SQLite writes every commit into an existing -wal file: one planted by another user would
    hand them what is written."""
    path = sticky_folder / "agents.db"
    agentstate.connect(path).close()
    wal = Path(f"{path}-wal")
    wal.touch()
    os.chown(wal, NOBODY, NOBODY)
    os.chmod(wal, 0o666)
    with pytest.raises(errors.ForeignFileError, match="agents.db-wal"):
        agentstate.connect(path)
    assert wal.stat().st_size == 0


@needs_root
def test_another_users_database_is_opened_as_it_is(tmp_path: Path) -> None:
    """A real agentstate database shared between users (a service's group, say) is not foreign:
    only an empty or headerless file is."""
    path = tmp_path / "service.db"
    agentstate.connect(path).close()
    for name in (path, Path(f"{path}-lock")):
        os.chown(name, NOBODY, NOBODY)
    conn = agentstate.connect(path)
    try:
        Agents(conn).create_planner("p")
    finally:
        conn.close()


def test_a_database_of_our_own_that_is_empty_is_used(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    conn = agentstate.connect(path)
    try:
        Agents(conn).create_planner("p")
    finally:
        conn.close()


@pytest.mark.parametrize("length", [248, 255])
def test_a_file_name_too_long_for_the_wal_is_refused_and_leaves_nothing(tmp_path: Path, length: int) -> None:
    """SQLite names its files ``<name>-journal`` and ``<name>-wal``: past 247 bytes those pass the
    file system's 255. Before: 'check that the path exists and is writable', and a 0-byte file."""
    with pytest.raises(errors.InvalidValueError, match=rf"file name is {length} bytes.*at most 247"):
        agentstate.connect(tmp_path / ("a" * length))
    assert list(tmp_path.iterdir()) == []


def test_a_path_too_long_for_sqlite_is_refused(tmp_path: Path) -> None:
    folder = tmp_path
    while len(str(folder)) < 520:
        folder = folder / ("d" * 100)
    folder.mkdir(parents=True)
    with pytest.raises(errors.InvalidValueError, match="path is .* bytes.*at most 504"):
        agentstate.connect(folder / "x.db")
    assert list(folder.iterdir()) == []


def test_the_longest_name_allowed_works(tmp_path: Path) -> None:
    conn = agentstate.connect(tmp_path / ("a" * 247))
    try:
        Agents(conn).create_planner("p")
    finally:
        conn.close()


def test_closing_twice_and_using_a_closed_connection_raise_agentstates_error(db_url: str) -> None:
    """The same on both engines. Before: the second close() raised apsw.ConnectionClosedError on
    SQLite (PostgreSQL: a no-op), and a call after it the base AgentStateError on PostgreSQL."""
    conn = agentstate.connect(db_url)
    conn.close()
    conn.close()  # a no-op, as on PostgreSQL
    with pytest.raises(errors.ConnectionClosedError, match="closed"):
        TaskManager(conn, None).claim("executor")
    with pytest.raises(errors.ConnectionClosedError):
        Agents(conn).create_planner("p")


def test_an_async_connection_after_aclose(db_url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_url)
        agents = agentstate.AsyncAgents(conn)
        await agents.create_planner("p")
        await conn.aclose()
        await conn.aclose()
        with pytest.raises(errors.ConnectionClosedError, match="closed"):
            await agents.get_planner("p")
        with pytest.raises(errors.ConnectionClosedError, match="closed"):
            await agents.create_planner("q")

    asyncio.run(main())


def as_nobody(call) -> str:  # type: ignore[no-untyped-def]
    """Run ``call`` in a forked child that has become ``nobody``; what it returned, as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no connection of the parent's is used here
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = str(call())
        except BaseException as exc:
            answer = f"{type(exc).__name__}: {exc}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return answer


@needs_root
@pytest.mark.parametrize("readonly", [True, False])
def test_a_database_in_a_folder_this_user_cannot_write_says_so(readonly: bool) -> None:
    """Without a -shm file and a folder to make one in, SQLite cannot read a WAL database even
    read-only; before, the error said the connection 'was opened read-only', which nobody had
    asked for (``readonly=False``), or gave no cause."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own folders are 0700: nobody could not look
    try:
        os.chmod(folder, 0o755)
        path = folder / "agents.db"
        agentstate.connect(path).close()
        os.chmod(path, 0o644)

        def attempt() -> str:
            try:
                agentstate.connect(path, readonly=readonly).close()
                return "opened"
            except errors.AgentStateError as exc:
                return f"{type(exc).__name__}: {exc}"

        answer = as_nobody(attempt)
    finally:
        shutil.rmtree(folder)
    assert "opened read-only" not in answer, answer
    assert answer.startswith("ReadOnlyError") and "folder" in answer and str(folder) in answer, answer
