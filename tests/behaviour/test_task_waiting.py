"""Waiting for work (issue 20), on both engines: ``claim``, ``claim_many`` and
``complete_and_claim_next`` with ``wait_seconds``, and ``wait_completed``. A waiter wakes for a
commit in another process, a prerequisite done, a delay or a lease running out; an idle one does
not poll the database; the async waits leave the event loop free, and a cancelled one claims
nothing; bad values are refused with nothing written.

The waiters' safety-net look (``task_waiting.WAKE_CHECK_S``) is raised to a minute here, so a
wait that ends within the tests' slack was ended by its doorbell or its timer, not by the net.
Bounds on time are slack (seconds, for waits of milliseconds): they tell woken from not woken."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import agentstate
from agentstate import errors, task_waiting
from agentstate.aio import AsyncTaskManager
from agentstate.sqlite import wakeups as sqlite_wakeups
from agentstate.sqlite.engine import SQLITE
from agentstate.tasks import Claim, TaskManager
from tests.dbdump import dump
from tests.engines import rows

NET_S = 60.0  # the safety-net look, out of the way
SLACK_S = 10.0  # a woken waiter returns well within this; the net would take NET_S


@pytest.fixture(autouse=True)
def no_safety_net(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_waiting, "WAKE_CHECK_S", NET_S)


@pytest.fixture
def tm(db: Any) -> TaskManager:
    rows(db, "INSERT INTO planners (planner_id) VALUES ('p1'), ('p2')")
    return TaskManager(db, "p1")


@pytest.fixture
def other(db_url: str, db: Any) -> Iterator[Any]:
    """A second connection (SQLite: one per thread)."""
    conn = agentstate.connect(db_url)
    yield conn
    conn.close()


def in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = call()
        except BaseException as exc:  # reported by the test
            out["error"] = exc
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def joined(thread: threading.Thread, out: dict[str, Any]) -> Any:
    thread.join(SLACK_S * 3)
    assert not thread.is_alive(), "the waiter never returned"
    if "error" in out:
        raise out["error"]
    return out["result"]


# --- the time runs out -----------------------------------------------------------------------


def test_a_wait_with_nothing_to_claim_returns_none_when_its_time_is_up(tm: TaskManager) -> None:
    began = time.monotonic()
    assert tm.claim("e", wait_seconds=0.3) is None
    assert tm.claim_many("e", 5, wait_seconds=0.1) == []
    assert tm.wait_completed(0.1) is None
    assert time.monotonic() - began >= 0.5
    assert tm.counts()["claimed"] == 0


def test_wait_seconds_zero_is_the_plain_call(tm: TaskManager) -> None:
    assert tm.claim("e", wait_seconds=0) is None
    tm.create_task("t", worker_id="t")
    claim = tm.claim("e", wait_seconds=0)
    assert claim is not None and claim.worker_id == "t"


# --- what wakes a waiter ---------------------------------------------------------------------


def test_a_waiter_wakes_when_another_connection_creates_a_task(tm: TaskManager, other: Any) -> None:
    thread, out = in_thread(lambda: TaskManager(other, "p1").claim("e", wait_seconds=NET_S))
    time.sleep(0.3)  # it is waiting
    tm.create_task("t", worker_id="t")
    committed = time.monotonic()
    claim = joined(thread, out)
    assert isinstance(claim, Claim) and claim.worker_id == "t"
    assert out["at"] - committed < SLACK_S


def test_a_waiter_wakes_when_a_prerequisite_completes(tm: TaskManager, other: Any) -> None:
    tm.create_task("a", worker_id="a")
    tm.create_task("b", worker_id="b", depends_on=["a"])
    first = tm.claim("e1")
    assert first is not None and first.worker_id == "a"
    thread, out = in_thread(lambda: TaskManager(other, "p1").claim("e2", wait_seconds=NET_S))
    time.sleep(0.3)
    assert thread.is_alive(), "b waits on a: nothing to claim yet"
    tm.complete(first)
    claim = joined(thread, out)
    assert claim is not None and claim.worker_id == "b"


def test_a_waiter_wakes_when_a_released_task_is_back(tm: TaskManager, other: Any) -> None:
    tm.create_task("t", worker_id="t")
    held = tm.claim("e1")
    assert held is not None
    thread, out = in_thread(lambda: TaskManager(other).claim("e2", wait_seconds=NET_S))  # any planner
    time.sleep(0.3)
    tm.release(held)
    claim = joined(thread, out)
    assert claim is not None and claim.worker_id == "t" and claim.token == held.token + 1


def test_a_waiter_wakes_when_a_delay_runs_out(tm: TaskManager) -> None:
    tm.create_task("later", worker_id="later", delay_seconds=0.5)
    began = time.monotonic()
    claim = tm.claim("e", wait_seconds=NET_S)  # no commit comes: only its timer can wake it
    assert claim is not None and claim.worker_id == "later"
    assert 0.4 <= time.monotonic() - began < SLACK_S


def test_a_waiter_wakes_when_a_lease_runs_out(tm: TaskManager) -> None:
    tm.create_task("t", worker_id="t")
    lost = tm.claim("crashed", lease_seconds=0.5)  # its executor never heartbeats again
    assert lost is not None
    began = time.monotonic()
    claim = TaskManager(tm.conn, "p1").claim("e", wait_seconds=NET_S)
    assert claim is not None and claim.worker_id == "t" and claim.token == lost.token + 1
    assert 0.4 <= time.monotonic() - began < SLACK_S


def test_the_lease_back_off_is_waited_out(tm: TaskManager) -> None:
    tm.create_task("t", worker_id="t")
    assert tm.claim("crashed", lease_seconds=0.2) is not None
    patient = TaskManager(tm.conn, "p1", lease_backoff_seconds=0.5)
    began = time.monotonic()
    claim = patient.claim("e", wait_seconds=NET_S)
    assert claim is not None and claim.worker_id == "t"
    assert 0.6 <= time.monotonic() - began < SLACK_S


def test_wait_completed_wakes_when_an_executor_completes(tm: TaskManager, other: Any) -> None:
    tm.create_task("t", worker_id="t")
    thread, out = in_thread(lambda: TaskManager(other, "p1").wait_completed(NET_S))
    time.sleep(0.3)
    claim = tm.claim("e")
    assert claim is not None
    tm.complete(claim, result={"ok": 1})
    done = joined(thread, out)
    assert done is not None and done.worker_id == "t" and done.result == {"ok": 1}


def test_complete_and_claim_next_completes_once_then_waits_for_the_next(tm: TaskManager, other: Any) -> None:
    tm.create_task("a", worker_id="a")
    first = tm.claim("e")
    assert first is not None
    executor = TaskManager(other, "p1")
    thread, out = in_thread(lambda: executor.complete_and_claim_next(first, result=1, wait_seconds=NET_S))
    time.sleep(0.3)
    assert tm.get_task("a").task_status == "completed"
    tm.create_task("b", worker_id="b")
    nxt = joined(thread, out)
    assert nxt is not None and nxt.worker_id == "b" and nxt.owner == "e"
    assert [e.to_status for e in tm.history("a")] == ["pending", "claimed", "completed"]


def test_claim_many_waits_for_at_least_one(tm: TaskManager, other: Any) -> None:
    thread, out = in_thread(lambda: TaskManager(other, "p1").claim_many("e", 10, wait_seconds=NET_S))
    time.sleep(0.3)
    tm.create_tasks([{"worker_id": f"t{i}"} for i in range(3)])
    batch = joined(thread, out)
    assert 1 <= len(batch) <= 3 and all(isinstance(c, Claim) for c in batch)


def test_another_planners_task_does_not_end_a_planners_wait(tm: TaskManager) -> None:
    TaskManager(tm.conn, "p2").create_task("theirs", worker_id="theirs")
    assert tm.claim("e", wait_seconds=0.3) is None
    assert TaskManager(tm.conn, "p2").get_task("theirs").task_status == "pending"


def test_a_process_waiting_wakes_for_a_commit_in_this_one(db_url: str, tm: TaskManager) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_wait_in_a_process, args=(db_url, out))
    child.start()
    try:
        assert out.get(timeout=60) == "waiting"
        time.sleep(0.3)
        tm.create_task("t", worker_id="t")
        committed = time.monotonic()
        worker_id, returned = out.get(timeout=SLACK_S * 3)
    finally:
        child.join(timeout=30)
    assert worker_id == "t"
    assert returned - committed < SLACK_S  # CLOCK_MONOTONIC: one clock for every process here


def _wait_in_a_process(url: str, out: Any) -> None:
    task_waiting.WAKE_CHECK_S = NET_S
    conn = agentstate.connect(url)
    try:
        tm = TaskManager(conn, "p1")
        out.put("waiting")
        claim = tm.claim("child", wait_seconds=NET_S)
        out.put((None if claim is None else claim.worker_id, time.monotonic()))
    finally:
        conn.close()


# --- an idle waiter ---------------------------------------------------------------------------


def test_an_idle_waiter_does_not_poll_the_database(tm: TaskManager, monkeypatch: pytest.MonkeyPatch) -> None:
    looks = []
    real = TaskManager._look
    monkeypatch.setattr(TaskManager, "_look", lambda self: looks.append(1) or real(self))
    assert tm.claim("e", wait_seconds=1.0) is None
    assert len(looks) <= 2, f"an idle waiter looked {len(looks)} times in a second"


def test_the_stat_fallback_also_wakes_a_waiter(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite where inotify is missing (macOS, Windows) or used up: the WAL file's stat, polled."""
    monkeypatch.setattr(sqlite_wakeups, "InotifyWakeups", _no_inotify)
    path = tmp_path / "fallback.db"
    conn, waiter_conn = agentstate.connect(path), agentstate.connect(path)
    try:
        rows(conn, "INSERT INTO planners (planner_id) VALUES ('p1')")
        bell = SQLITE.wakeups(waiter_conn)
        assert isinstance(bell, sqlite_wakeups.PollingWakeups)
        bell.close()
        thread, out = in_thread(lambda: TaskManager(waiter_conn, "p1").claim("e", wait_seconds=NET_S))
        time.sleep(0.3)
        TaskManager(conn, "p1").create_task("t", worker_id="t")
        claim = joined(thread, out)
    finally:
        conn.close()
        waiter_conn.close()
    assert claim is not None and claim.worker_id == "t"


def _no_inotify(path: str) -> Any:
    raise OSError("no inotify here")


# --- asyncio ----------------------------------------------------------------------------------


def test_an_async_wait_leaves_the_event_loop_free_and_wakes(db_url: str, tm: TaskManager) -> None:
    async def main() -> tuple[Any, int]:
        conn = await agentstate.connect_async(db_url)
        try:
            atm = AsyncTaskManager(conn, "p1")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticking = asyncio.ensure_future(ticker())
            waiter = asyncio.ensure_future(atm.claim("e", wait_seconds=NET_S))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(tm.create_task, "t", worker_id="t")
            claim = await asyncio.wait_for(waiter, SLACK_S)
            ticking.cancel()
            return claim, ticks
        finally:
            await conn.aclose()

    claim, ticks = asyncio.run(main())
    assert claim is not None and claim.worker_id == "t"
    assert ticks >= 10, "the event loop was blocked while the claim waited"


def test_a_cancelled_async_wait_claims_nothing(db_url: str, tm: TaskManager) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_url)
        try:
            atm = AsyncTaskManager(conn, "p1")
            waiter = asyncio.ensure_future(atm.claim("e", wait_seconds=NET_S))
            await asyncio.sleep(0.2)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert await atm.wait_completed(0.05) is None
            done = asyncio.ensure_future(atm.wait_completed(NET_S))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(tm.create_task, "t", worker_id="t")
            await asyncio.sleep(0.2)  # a waiter still listening would claim it now
            assert not done.done()
            claim = await atm.claim("e2")
            assert claim is not None
            await atm.complete(claim)
            finished = await asyncio.wait_for(done, SLACK_S)
            assert finished is not None and finished.worker_id == "t"
        finally:
            await conn.aclose()

    asyncio.run(main())
    assert [e.to_status for e in tm.history("t")] == ["pending", "claimed", "completed"]


def test_async_complete_and_claim_next_waits_after_completing(db_url: str, tm: TaskManager) -> None:
    tm.create_task("a", worker_id="a")

    async def main() -> Any:
        conn = await agentstate.connect_async(db_url)
        try:
            atm = AsyncTaskManager(conn, "p1")
            first = await atm.claim("e")
            assert first is not None
            waiter = asyncio.ensure_future(atm.complete_and_claim_next(first, wait_seconds=NET_S))
            await asyncio.sleep(0.3)
            assert not waiter.done()
            await asyncio.to_thread(tm.create_task, "b", worker_id="b")
            return await asyncio.wait_for(waiter, SLACK_S)
        finally:
            await conn.aclose()

    nxt = asyncio.run(main())
    assert nxt is not None and nxt.worker_id == "b"
    assert [e.to_status for e in tm.history("a")] == ["pending", "claimed", "completed"]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "1", True, None])
def test_a_bad_wait_is_refused_and_nothing_is_written(tm: TaskManager, bad: Any) -> None:
    tm.create_task("t", worker_id="t")
    held = tm.claim("e")
    assert held is not None
    tm.create_task("u", worker_id="u")
    before = dump(tm.conn)
    for call in (
        lambda: tm.claim("e", wait_seconds=bad),
        lambda: tm.claim_many("e", 2, wait_seconds=bad),
        lambda: tm.complete_and_claim_next(held, wait_seconds=bad),
        lambda: tm.wait_completed(bad),
    ):
        with pytest.raises((errors.InvalidValueError, errors.InvalidTypeError), match="wait_seconds|timeout_seconds"):
            call()
    assert dump(tm.conn) == before


def test_a_bad_async_wait_is_refused_and_nothing_is_written(db_url: str, tm: TaskManager) -> None:
    tm.create_task("t", worker_id="t")
    before = dump(tm.conn)

    async def main() -> None:
        conn = await agentstate.connect_async(db_url)
        try:
            atm = AsyncTaskManager(conn, "p1")
            with pytest.raises(errors.InvalidValueError, match="wait_seconds"):
                await atm.claim("e", wait_seconds=-1)
            with pytest.raises(errors.InvalidTypeError, match="timeout_seconds"):
                await atm.wait_completed("soon")  # type: ignore[arg-type]
            assert dump(tm.conn) == before  # before closing (which runs PRAGMA optimize)
        finally:
            await conn.aclose()

    asyncio.run(main())
