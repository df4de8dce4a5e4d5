"""The writer gate (agentstate/sqlite/gate.py): writers queue in arrival order, and nothing about the
queue can hang a writer or outlive a process.

Each test states what would go wrong without the mechanism it checks; none asserts a duration
beyond generous bounds that only a hang would cross.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import agentstate
from agentstate import errors
from agentstate.agents import Agents
from agentstate.sqlite import connection as sqlite_connection
from agentstate.sqlite import gate
from agentstate.transactions import write

pytestmark = pytest.mark.skipif(not hasattr(fcntl, "F_OFD_GETLK"), reason="the gate needs open file description locks")


def held(db_path: Path, byte: int) -> bool:
    """Whether anyone holds one of the gate's two locks, asked through a descriptor of our own."""
    fd = os.open(str(db_path) + gate.SUFFIX, os.O_RDWR)
    try:
        request = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, request)
        return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


def wait_until(condition, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


def test_the_writer_that_waited_goes_before_the_one_that_just_finished(db_path: Path) -> None:
    """Without the gate the committer, still running, takes SQLite's lock straight back while the
    waiter sleeps in the busy handler: that is how a few writers starved for 0.5 s."""
    first = agentstate.connect(db_path)
    second = agentstate.connect(db_path)
    first.execute("CREATE TABLE log (who TEXT NOT NULL)")
    order: list[str] = []

    def waiter() -> None:
        with write(second):
            second.execute("INSERT INTO log VALUES ('waiter')")

    try:
        with write(first):
            first.execute("INSERT INTO log VALUES ('first')")
            thread = threading.Thread(target=waiter)
            thread.start()
            # The waiter is in line once it holds the turnstile (waiting for the gate behind it).
            wait_until(lambda: held(db_path, gate.TURNSTILE), "the waiter queues")
            time.sleep(2 * gate.SLICE_S)  # past first's slice: no coming straight back in now
        with write(first):  # straight back in, as an executor loop does
            first.execute("INSERT INTO log VALUES ('first again')")
        thread.join(10)
        order = [row[0] for row in first.execute("SELECT who FROM log ORDER BY rowid")]
    finally:
        first.close()
        second.close()
    assert order == ["first", "waiter", "first again"]


def test_a_transaction_stuck_past_the_busy_timeout_cannot_hang_the_writers_behind_it(db_path: Path) -> None:
    """A blocked lock request has no timeout of its own: without the watchdog, a writer queued
    behind a transaction that never ends would wait forever instead of getting a busy error."""
    stuck = agentstate.connect(db_path, busy_timeout_ms=200)
    behind = agentstate.connect(db_path, busy_timeout_ms=200)
    outcome: list[BaseException | None] = []

    def queue_behind() -> None:
        try:
            Agents(behind).create_planner("p")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    try:
        with write(stuck):
            thread = threading.Thread(target=queue_behind, daemon=True)
            thread.start()
            thread.join(15)  # the transaction stays open all this time
            assert not thread.is_alive(), "the writer behind a stuck transaction hung"
    finally:
        stuck.close()
        behind.close()
    assert len(outcome) == 1 and isinstance(outcome[0], errors.DatabaseBusyError)


def test_a_thread_never_waits_for_a_gate_it_holds_through_another_connection(db_path: Path) -> None:
    """Nested writes on two connections in one thread: the inner one cannot queue behind the
    outer (only the watchdog would end that wait, after the outer's long busy timeout), so it
    gets SQLite's answer at once, a busy error after its own short timeout."""
    outer = agentstate.connect(db_path, busy_timeout_ms=60_000)
    inner = agentstate.connect(db_path, busy_timeout_ms=100)
    outcome: list[BaseException | None] = []

    def nested() -> None:
        with write(outer):
            try:
                Agents(inner).create_planner("p")
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    try:
        thread = threading.Thread(target=nested, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the inner write queued behind its own thread's gate"
        assert len(outcome) == 1 and isinstance(outcome[0], errors.DatabaseBusyError)
        Agents(inner).create_planner("p")  # and afterwards the gate is free for it
    finally:
        if not thread.is_alive():
            outer.close()
            inner.close()


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    import agentstate
    from agentstate.transactions import write
    conn = agentstate.connect(sys.argv[1])
    with write(conn):
        if sys.argv[2] == "fork" and os.fork() == 0:
            time.sleep(60)  # a child that outlives its parent, holding inherited descriptors
            os._exit(0)
        print("holding", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("fork", ["no-fork", "fork"])
def test_a_killed_writer_leaves_the_gate_free(db_path: Path, fork: str) -> None:
    """The kernel drops a dead process's locks, so nothing needs cleaning up after a crash; and a
    forked child closes the descriptors it inherited, or it would keep its dead parent's lock."""
    agentstate.connect(db_path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), fork], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert held(db_path, gate.GATE)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        wait_until(lambda: not held(db_path, gate.GATE), "the dead writer's gate is free", timeout=5)
        conn = agentstate.connect(db_path, busy_timeout_ms=2000)
        try:
            Agents(conn).create_planner("after")
        finally:
            conn.close()
    finally:
        holder.kill()
        holder.wait()
        if fork == "fork":
            subprocess.run(["pkill", "-f", str(db_path)], check=False)


def test_the_gate_file_is_as_private_as_the_database(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        agentstate.connect(db_path, file_mode=0o640).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path(str(db_path) + gate.SUFFIX).stat().st_mode) == 0o640


def test_read_only_memory_and_opted_out_connections_have_no_gate(db_path: Path) -> None:
    agentstate.connect(db_path).close()
    readonly = agentstate.connect(db_path, readonly=True)
    memory = agentstate.connect(":memory:")
    opted_out = agentstate.connect(db_path, writer_gate=False)
    try:
        assert readonly.writer_gate is None and memory.writer_gate is None and opted_out.writer_gate is None
        Agents(opted_out).create_planner("p")  # it writes all the same, queueing in SQLite alone
    finally:
        readonly.close()
        memory.close()
        opted_out.close()


def test_writes_go_on_without_a_gate_where_the_sidecar_cannot_be_made(tmp_path: Path) -> None:
    """A database in a folder we cannot write to, opened for writing: SQLite may still manage
    (an existing -wal and -shm), and the gate must not be what stops it."""
    path = tmp_path / "x.db"
    agentstate.connect(path).close()
    os.unlink(str(path) + gate.SUFFIX)
    os.mkdir(str(path) + gate.SUFFIX)  # something that cannot be opened as the gate file
    conn = agentstate.connect(path)
    try:
        assert conn.writer_gate is None
        Agents(conn).create_planner("p")
    finally:
        conn.close()


def test_the_writer_that_finishes_a_wal_copy_has_let_the_gate_go(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past checkpoint.WAL_RESTART_PAGES the committing writer copies the rest of the WAL itself,
    after its commit (tens of milliseconds at 1M rows). SQLite lets other writers in meanwhile;
    the gate must too, or every writer queued behind waits for the whole copy (it was the
    benchmark's p99.9 of 35 ms with four executors)."""
    from agentstate.sqlite import wal_checkpoints as checkpoint

    monkeypatch.setattr(checkpoint, "WAL_RESTART_PAGES", 1)  # every commit finishes the copy
    conn = agentstate.connect(db_path)
    gate_held_during_copy: list[bool] = []

    def copy(mode: int = 0) -> tuple[int, int]:
        gate_held_during_copy.append(held(db_path, gate.GATE))
        return (0, 0)

    try:
        conn.wal_checkpoint = copy  # type: ignore[method-assign]
        Agents(conn).create_planner("p")
    finally:
        del conn.wal_checkpoint
        conn.close()
    assert gate_held_during_copy == [False]


def timed_write(conn: sqlite_connection.Connection, name: str) -> tuple[float, BaseException | None]:
    """How long one write took, and what it raised (None: it went through)."""
    started = time.monotonic()
    try:
        Agents(conn).create_planner(name)
        return time.monotonic() - started, None
    except errors.AgentStateError as exc:
        return time.monotonic() - started, exc


def run_bounded(call, timeout: float):  # type: ignore[no-untyped-def]
    """Run ``call`` in a thread; fail (rather than hang the suite) if it outlives ``timeout``."""
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the call was still waiting after {timeout} s"
    return outcome[0]


def test_a_stopped_holder_cannot_make_writers_wait_past_their_busy_timeout(db_path: Path) -> None:
    """A SIGSTOPped process holding the gate cannot run its watchdog, so only the waiter can bound
    its own wait: before, a writer with a 1 s busy timeout waited for as long as the holder stayed
    stopped, blocked in the kernel's lock request."""
    agentstate.connect(db_path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), "no-fork"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        os.kill(holder.pid, signal.SIGSTOP)
        conn = agentstate.connect(db_path, busy_timeout_ms=1000)
        try:
            for name in ("a", "b"):  # the second finds the first's abandoned place in line
                seconds, raised = run_bounded(lambda name=name: timed_write(conn, name), timeout=20)
                assert isinstance(raised, errors.DatabaseBusyError), raised
                assert seconds < 5, f"a writer with a 1 s busy timeout waited {seconds:.1f} s"
        finally:
            conn.close()
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()


FOREIGN_LOCKER = textwrap.dedent(
    """
    import fcntl, os, struct, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)
    for byte in (0, 1):  # both of the gate's bytes, as another program might
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0))
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_a_foreign_lock_on_the_gate_file_cannot_stall_writers(db_path: Path) -> None:
    """Another program that merely locks ``<db>-lock`` holds no SQLite lock: a writer must get in
    after about its busy timeout at most (before: it waited as long as the lock was held), and the
    writes after it must not each wait that long again."""
    agentstate.connect(db_path).close()
    locker = subprocess.Popen(
        [sys.executable, "-c", FOREIGN_LOCKER, str(db_path) + gate.SUFFIX], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        conn = agentstate.connect(db_path, busy_timeout_ms=1000)
        try:
            seconds, raised = run_bounded(lambda: timed_write(conn, "first"), timeout=20)
            assert raised is None and seconds < 5, (seconds, raised)
            for name in ("second", "third"):
                seconds, raised = run_bounded(lambda name=name: timed_write(conn, name), timeout=20)
                assert raised is None and seconds < 0.9, f"a later write waited {seconds:.2f} s for the lock again"
        finally:
            conn.close()
    finally:
        locker.kill()
        locker.wait()
    conn = agentstate.connect(db_path, busy_timeout_ms=1000)
    try:  # the lock gone, the gate works again
        assert conn.writer_gate is not None
        assert timed_write(conn, "again")[1] is None
    finally:
        conn.close()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
NOBODY = 65534


@needs_root
def test_a_gate_file_planted_by_another_user_is_not_used(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Whoever owns ``<db>-lock`` can lock it: one planted by another user (0666, say, in a shared
    folder) let its owner stall every writer. It is refused with a warning naming the file, and
    writes go on, queueing in SQLite alone."""
    agentstate.connect(db_path).close()
    lock_file = Path(str(db_path) + gate.SUFFIX)
    lock_file.unlink()
    lock_file.touch()
    os.chown(lock_file, NOBODY, NOBODY)
    os.chmod(lock_file, 0o666)
    with caplog.at_level("WARNING", logger="agentstate"):
        conn = agentstate.connect(db_path)
    try:
        assert conn.writer_gate is None
        assert any(str(lock_file) in r.getMessage() and "belongs to user id 65534" in r.getMessage() for r in caplog.records)
        Agents(conn).create_planner("p")
    finally:
        conn.close()


def test_a_gate_file_that_is_a_symbolic_link_is_not_followed(db_path: Path, tmp_path: Path) -> None:
    """A link planted at ``<db>-lock`` would have the gate open (and lock) a file of someone's
    choosing."""
    agentstate.connect(db_path).close()
    lock_file = Path(str(db_path) + gate.SUFFIX)
    lock_file.unlink()
    target = tmp_path / "elsewhere"
    target.write_text("not yours to lock")
    lock_file.symlink_to(target)
    conn = agentstate.connect(db_path)
    try:
        assert conn.writer_gate is None
        Agents(conn).create_planner("p")
    finally:
        conn.close()
    assert target.read_text() == "not yours to lock"


def test_an_async_connections_inline_writer_holds_the_gate_as_long_as_any_writer(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The inline writer never waits for SQLite's lock (busy timeout 0), but its turn at the gate
    lasts as long as any writer's: with a hold limit of 0 s the watchdog opened the gate under
    every one of its transactions that it saw, warning each time, and the writers queued behind
    went on to SQLite's lock, out of turn."""
    async def check() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            writer = conn.writer
            assert writer is not None and writer.writer_gate is not None
            assert writer.writer_gate.acquire(wait=False)
            try:
                writer.writer_gate.open_if_stuck(time.monotonic() + 1.0)  # a write 1 s long
                assert held(db_path, gate.GATE), "the watchdog opened the gate under a 1 s write"
            finally:
                writer.writer_gate.release()
        finally:
            await conn.aclose()

    asyncio.run(check())
    assert "has been open for over" not in caplog.text
