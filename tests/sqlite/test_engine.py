"""The connection manager: pragmas on every connection, write transactions, error translation."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

import agentstate
from agentstate import async_calls, errors, settings
from agentstate.sqlite import configure
from agentstate.sqlite import connection as sqlite_connection
from agentstate.sqlite import wal_checkpoints as checkpoint


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_pragmas_are_in_effect_on_every_new_connection(db_path: Path, durability: settings.Durability) -> None:
    agentstate.connect(db_path).close()
    for _ in range(2):
        conn = agentstate.connect(db_path, durability=durability, busy_timeout_ms=1234)
        try:
            assert conn.pragma("journal_mode") == "wal"
            assert conn.pragma("synchronous") == {"normal": 1, "full": 2}[durability]
            assert conn.pragma("foreign_keys") == 1
            assert conn.busy_timeout_ms == 1234  # enforced by the patient busy handler
            assert conn.pragma("temp_store") == 2  # MEMORY
            assert conn.pragma("cache_size") == -65536
            assert conn.pragma("auto_vacuum") == 2  # INCREMENTAL, set when the file was created
            assert conn.config(apsw.SQLITE_DBCONFIG_ENABLE_QPSG, -1) == 1
        finally:
            conn.close()


def test_bad_durability_is_refused(db_path: Path) -> None:
    with pytest.raises(errors.InvalidValueError, match="durability"):
        agentstate.connect(db_path, durability="sometimes")  # type: ignore[arg-type]


def test_readonly_connection_reads_but_cannot_write(db_path: Path) -> None:
    agentstate.connect(db_path).close()
    conn = agentstate.connect(db_path, readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM planners").get == 0
        with pytest.raises(errors.ReadOnlyError, match="read-only"), agentstate.write(conn):
            conn.execute("INSERT INTO planners (planner_id) VALUES ('p')")
    finally:
        conn.close()


def test_write_rolls_back_on_error_and_chains_the_apsw_cause(fresh_db: apsw.Connection) -> None:
    with pytest.raises(errors.DuplicateError) as caught, agentstate.write(fresh_db):
        fresh_db.execute("INSERT INTO planners (planner_id) VALUES ('p')")
        fresh_db.execute("INSERT INTO planners (planner_id) VALUES ('p')")
    assert isinstance(caught.value.__cause__, apsw.ConstraintError)
    assert fresh_db.execute("SELECT count(*) FROM planners").get == 0


def test_busy_writer_waits_then_raises_a_clear_error(db_path: Path) -> None:
    holder = agentstate.connect(db_path)
    waiter = agentstate.connect(db_path, busy_timeout_ms=200)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(errors.DatabaseBusyError, match="busy timeout"), agentstate.write(waiter):
            waiter.execute("INSERT INTO planners (planner_id) VALUES ('w')")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        waiter.close()


def test_concurrent_writers_queue_instead_of_failing(db_path: Path) -> None:
    """The classic 'database is locked': readers that upgrade to writers. IMMEDIATE prevents it."""
    agentstate.connect(db_path).close()
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        conn = agentstate.connect(db_path)
        try:
            for i in range(50):
                with agentstate.write(conn):
                    count = conn.execute("SELECT count(*) FROM planners").get  # read, then write
                    conn.execute(
                        "INSERT INTO planners (planner_id, metadata) VALUES (?, ?)",
                        (f"{n}-{i}", f'{{"seen": {count}}}'),
                    )
        except BaseException as exc:
            failures.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    conn = agentstate.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM planners").get == 200
    finally:
        conn.close()


def test_pragmas_file_is_strict(tmp_path: Path) -> None:
    bad = tmp_path / "pragmas.sql"
    bad.write_text("PRAGMA journal_mode = WAL;\nDROP TABLE workers;\n")
    with pytest.raises(errors.SchemaError, match=r"pragmas.sql:2"):
        configure.load_pragmas(bad)


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.AgentStateError, match="path exists"):
        agentstate.connect(tmp_path / "no" / "such" / "dir" / "x.db")


def test_checkpoints_stay_off_the_writer_and_keep_the_wal_bounded(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    reader = agentstate.connect(db_path)
    try:
        assert conn.pragma("wal_autocheckpoint") == 0, "writers must not checkpoint inside their commits"
        wal = Path(conn.filename_wal)
        blob = "x" * 3000
        largest = 0
        # A steady writer with no pause, and a reader now and then: the case where PASSIVE
        # checkpoints alone never let the WAL start over.
        for i in range(12_000):
            with agentstate.write(conn):
                conn.execute(
                    "INSERT INTO planners (planner_id, metadata) VALUES (?, json_object('b', ?))", (str(i), blob)
                )
            if i % 100 == 0:
                assert reader.execute("SELECT count(*) FROM planners").get
                largest = max(largest, wal.stat().st_size)
        frames = 2 * 12_000  # at least a table page and an index page per commit
        # Unchecked, the WAL would hold every frame; the cap keeps it near WAL_RESTART_PAGES.
        assert largest < 1.5 * checkpoint.WAL_RESTART_PAGES * (conn.pragma("page_size") + 24), (largest, frames)
        assert conn.execute("SELECT count(*) FROM planners").get == 12_000
    finally:
        conn.close()
        reader.close()


def test_the_background_checkpointer_copies_the_wal_long_before_the_cap(db_path: Path) -> None:
    conn = agentstate.connect(db_path)
    try:
        start = db_path.stat().st_size
        blob = "x" * 3000
        # ~2.5 thresholds of pages, far below WAL_RESTART_PAGES: only the background thread
        # can have copied them into the database file.
        for i in range(checkpoint.WAL_PAGES_THRESHOLD * 5 // 4):
            with agentstate.write(conn):
                conn.execute(
                    "INSERT INTO planners (planner_id, metadata) VALUES (?, json_object('b', ?))", (str(i), blob)
                )
        deadline = time.monotonic() + 10
        while db_path.stat().st_size <= start and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db_path.stat().st_size > start + checkpoint.WAL_PAGES_THRESHOLD * conn.pragma("page_size")
    finally:
        conn.close()
    # Between checkpoints the thread holds no connection: with ours closed, the file is free.
    plain = apsw.Connection(str(db_path))
    try:
        plain.set_busy_timeout(5000)
        assert plain.pragma("journal_mode", "DELETE") == "delete"
    finally:
        plain.close()


def test_the_checkpointer_refreshes_statistics_and_warns_once_about_size(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(checkpoint, "OPTIMIZE_INTERVAL_S", 0.0)
    monkeypatch.setenv("AGENTSTATE_SIZE_WARNING_MB", "0.5")
    conn = agentstate.connect(db_path)
    try:
        with caplog.at_level(logging.WARNING, logger="agentstate"):
            for i in range(checkpoint.WAL_PAGES_THRESHOLD + 100):
                agentstate.Agents(conn).create_planner(f"p{i}", metadata={"pad": "x" * 1500})
            deadline = time.monotonic() + 20
            while not [r for r in caplog.records if "warning size" in r.getMessage()] and time.monotonic() < deadline:
                time.sleep(0.05)
        warnings = [r for r in caplog.records if "warning size" in r.getMessage()]
        assert len(warnings) == 1 and str(db_path) in warnings[0].getMessage()
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'").get == 1
    finally:
        conn.close()


# --- inline reads on async connections -------------------------------------------------------


def test_async_reads_run_inline_and_see_every_committed_write(db_path: Path) -> None:
    """A bounded read of the Async classes runs on the connection's read-only reader, on the
    event loop's thread (no hop); it sees every write already committed through the async
    connection, and inside write_async the block's uncommitted writes too (those reads go to the
    worker thread, where the transaction is)."""
    from agentstate.aio import AsyncAgents

    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            assert conn.reader is not None
            agents = AsyncAgents(conn)
            await agents.create_planner("p")
            hops = 0
            real = async_calls.run_async

            def counting(*args: Any, **kwargs: Any) -> Any:
                nonlocal hops
                hops += 1
                return real(*args, **kwargs)

            engine_run_async = async_calls.run_async
            async_calls.run_async = counting  # type: ignore[assignment]
            try:
                assert (await agents.get_planner("p")).planner_id == "p"
                assert hops == 0  # inline
                async with agentstate.write_async(conn):
                    await conn.execute("INSERT INTO planners (planner_id) VALUES ('q')")
                    assert (await agents.get_planner("q")).planner_id == "q"  # its own uncommitted write
                assert hops >= 1
            finally:
                async_calls.run_async = engine_run_async  # type: ignore[assignment]
            assert (await agents.get_planner("q")).planner_id == "q"
        finally:
            await conn.aclose()
        assert conn.reader is None

    asyncio.run(main())


def test_a_busy_inline_read_goes_to_the_worker_thread(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentstate.aio import AsyncAgents

    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            agents = AsyncAgents(conn)
            await agents.create_planner("p")
            assert agents._reader is not None

            def busy(planner_id: str) -> Any:
                raise errors.DatabaseBusyError("the file is being recovered")

            monkeypatch.setattr(agents._reader, "get_planner", busy)
            assert (await agents.get_planner("p")).planner_id == "p"
        finally:
            await conn.aclose()

    asyncio.run(main())


def test_memory_and_opted_out_async_connections_have_no_reader(db_path: Path) -> None:
    from agentstate.aio import AsyncAgents

    async def main() -> None:
        for conn in (await agentstate.connect_async(":memory:"), await agentstate.connect_async(db_path, inline_reads=False)):
            try:
                assert conn.reader is None
                await AsyncAgents(conn).create_planner("p")
                assert (await AsyncAgents(conn).get_planner("p")).planner_id == "p"
            finally:
                await conn.aclose()

    asyncio.run(main())


def test_async_writes_run_inline_when_the_lock_is_free_and_wait_on_the_worker_when_not(db_path: Path) -> None:
    """A single-transaction write of the Async classes runs on the inline writer, on the event
    loop's thread, when the write lock is free at once; when another writer holds it, the write
    goes to the worker thread, waits there, and lands once the lock is free. Inside write_async a
    write joins the block's transaction (a rollback takes it back), never the inline writer."""
    from agentstate.aio import AsyncAgents

    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        try:
            agents = AsyncAgents(conn)
            hops = 0
            real = async_calls.run_async

            def counting(*args: Any, **kwargs: Any) -> Any:
                nonlocal hops
                hops += 1
                return real(*args, **kwargs)

            async_calls.run_async = counting  # type: ignore[assignment]
            try:
                await agents.create_planner("inline")
                assert hops == 0
                holder = agentstate.connect(db_path)
                try:
                    holder.execute("BEGIN IMMEDIATE")
                    waiting = asyncio.ensure_future(agents.create_planner("queued"))
                    await asyncio.sleep(0.05)
                    assert not waiting.done() and hops == 1  # on the worker, waiting for the lock
                    holder.execute("COMMIT")
                    await waiting
                finally:
                    holder.close()
                with pytest.raises(RuntimeError):
                    async with agentstate.write_async(conn):
                        await agents.create_planner("rolled back")
                        raise RuntimeError("undo the block")
            finally:
                async_calls.run_async = real  # type: ignore[assignment]
            assert [p.planner_id for p in await agents.list_planners()] == ["inline", "queued"]
        finally:
            await conn.aclose()
        assert conn.writer is None

    asyncio.run(main())


def test_full_durability_async_connections_write_on_the_worker_only(db_path: Path) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_path, durability="full")
        try:
            assert conn.writer is None and conn.reader is not None
        finally:
            await conn.aclose()

    asyncio.run(main())


def test_closing_an_async_connection_with_close_sends_nothing_through_its_worker(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() runs PRAGMA optimize on a plain connection; on an async one every call answers
    with an awaitable, so the same code queued statements nobody awaited, on a closing worker."""
    optimized: list[int] = []
    monkeypatch.setattr(sqlite_connection, "optimize", lambda conn: optimized.append(id(conn)))
    closed: list[int] = []

    async def main() -> None:
        conn = await agentstate.connect_async(db_path)
        closed.append(id(conn))
        conn.close()  # its inline reader and writer are plain connections: those are optimized

    asyncio.run(main())
    assert closed[0] not in optimized


def test_connect_async_refuses_flags_that_are_not_bools_and_leaks_nothing(db_path: Path) -> None:
    async def main() -> None:
        for flags in ({"inline_reads": "yes"}, {"inline_writes": 1}, {"writer_gate": None}):
            with pytest.raises(errors.InvalidTypeError):
                await agentstate.connect_async(db_path, **flags)  # type: ignore[arg-type]

    asyncio.run(main())
