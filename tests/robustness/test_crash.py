"""Crash safety: SIGKILL a writer process at random moments and check what it left behind.

A worker process (tests/robustness/crash_worker.py) runs task transitions, message appends or migrations and
prints an acknowledgement after each call returned, i.e. after its commit. The parent kills it
with SIGKILL at a random moment, some kills during its startup and most in the middle of its
writes, then checks the database: every acknowledged write is there exactly once, and a call that
was in flight at the kill left all of its writes or none of them. On SQLite it also checks the
file: ``PRAGMA integrity_check`` is ok read by apsw and by Python's own ``sqlite3`` and ``PRAGMA
foreign_key_check`` is empty.

The task and message tests run on both engines (on PostgreSQL the worker is a client of the
test's database, and the parent reads it once the killed client's sessions have ended); the
migration test is about SQLite's migration files and stays on SQLite.

The random moments come from ``random.Random(AGENTSTATE_CRASH_SEED)`` (a fresh seed unless the
variable is set; every assertion names it). ``AGENTSTATE_CRASH_KILLS`` (default 100) sets the
number of kills across the three tests, e.g. 2000 for a longer soak; PostgreSQL runs
``POSTGRES_KILL_SHARE`` of the task and message kills.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import apsw
import pytest

import agentstate
from agentstate import migrations, schema_files
from agentstate.engines import is_url
from agentstate.sqlite import opening
from tests import engines
from tests.engines import rows
from tests.robustness.crash_worker import WORKER_APPLICATION

KILLS = int(os.environ.get("AGENTSTATE_CRASH_KILLS", "100"))
SEED = int(os.environ.get("AGENTSTATE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
WORKER = Path(__file__).with_name("crash_worker.py")
STARTUP_SHARE = 0.15  # of the kills are timed from the spawn, into the worker's startup
# Calls per worker run: 50-100 ms of writing on a 2-core VM. Kills wait for a random mark of
# the run, so longer runs would only make each kill wait longer.
OPS = {"tasks": 300, "messages": 120}
RUNS_PER_FILE = 50
HANG_SECONDS = 120  # a worker run takes well under a second
ROWS = 5000  # rows each test migration writes, so that a kill lands inside its file
SETTLE_SECONDS = 30  # PostgreSQL: how long a killed worker's sessions may take to end
# PostgreSQL runs this share (percent) of the task and message kills: its worker runs take twice
# as long (the driver's import and the connection), and the suite's time is bounded.
POSTGRES_KILL_SHARE = 50


def kills_for(mode: str) -> int:
    """This test's share of AGENTSTATE_CRASH_KILLS: 35% tasks, 35% messages, the rest migrations."""
    tasks = messages = KILLS * 35 // 100
    return {"tasks": tasks, "messages": messages, "migrations": KILLS - tasks - messages}[mode]


# --- running and killing a worker ----------------------------------------------------------------


@dataclass(frozen=True)
class KillPlan:
    """When to kill: ``delay`` seconds after reading mark ``after_mark`` (0 is the worker's ready
    line, n its n-th acknowledgement), or after the spawn when ``after_mark`` is None."""

    after_mark: int | None
    delay: float

    def __str__(self) -> str:
        start = "spawn" if self.after_mark is None else f"mark {self.after_mark}"
        return f"SIGKILL {self.delay * 1000:.1f} ms after {start}"


@dataclass
class Outcome:
    """What a worker printed (complete lines only: the last may have been cut by the kill)."""

    lines: list[dict[str, Any]]
    returncode: int = 0
    marks: list[float] = field(default_factory=list)  # seconds from the spawn to each mark read

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def done(self) -> bool:
        return any("done" in line for line in self.lines)

    @property
    def acks(self) -> list[Any]:
        return [line["ack"] for line in self.lines if "ack" in line]

    @property
    def calls(self) -> list[tuple[dict[str, Any], Any]]:
        """Each announced call with its acknowledgement (None when the kill came first)."""
        calls: list[tuple[dict[str, Any], Any]] = []
        for line in self.lines:
            if "begin" in line:
                calls.append((line["begin"], None))
            elif "ack" in line and calls:
                calls[-1] = (calls[-1][0], line["ack"])
        return calls

    @property
    def in_flight(self) -> dict[str, Any] | None:
        """The call the kill interrupted: announced, not acknowledged (it may have committed)."""
        calls = self.calls
        return calls[-1][0] if calls and calls[-1][1] is None else None


def run_worker(args: list[str], plan: KillPlan | None, ctx: str) -> Outcome:
    """Run the worker to its end, or kill it as planned; fail on any other exit."""
    hung = threading.Event()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=stderr)
        assert proc.stdout is not None
        # Only a safety net, so that a worker stuck on a lock fails the test instead of hanging it.
        watchdog = threading.Timer(HANG_SECONDS, lambda: (hung.set(), proc.kill()))
        watchdog.start()
        try:
            head, marks = _watch(proc, plan)
            data = head + proc.stdout.read()  # whatever it printed before it died is acknowledged
            proc.stdout.close()
            returncode = proc.wait()
        finally:
            watchdog.cancel()
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    assert not hung.is_set(), f"{ctx}: the worker was still running after {HANG_SECONDS} s:\n{errors}"
    outcome = Outcome([json.loads(line) for line in data.split(b"\n")[:-1]], returncode, marks)
    assert outcome.killed or (returncode == 0 and outcome.done), f"{ctx}: the worker exited {returncode}:\n{errors}"
    return outcome


def _watch(proc: subprocess.Popen[bytes], plan: KillPlan | None) -> tuple[bytes, list[float]]:
    """Read the worker's lines until the plan says kill, then kill it; time every mark."""
    assert proc.stdout is not None
    start = time.monotonic()
    if plan is not None and plan.after_mark is None:
        time.sleep(plan.delay)
        proc.send_signal(signal.SIGKILL)
        return b"", []
    head, marks = bytearray(), []
    for line in iter(proc.stdout.readline, b""):
        head += line
        if line.startswith((b'{"ready"', b'{"ack"')):
            marks.append(time.monotonic() - start)
            if plan is not None and len(marks) - 1 == plan.after_mark:
                time.sleep(plan.delay)
                proc.send_signal(signal.SIGKILL)
                break
    return bytes(head), marks


def draw_plan(rng: random.Random, warm: Outcome) -> KillPlan:
    """A kill moment scaled by the warm-up run: inside the startup, or inside the call after a
    random mark (waiting for the mark keeps kills mid-workload even when the machine is slow)."""
    if rng.random() < STARTUP_SHARE:
        return KillPlan(None, rng.uniform(0, warm.marks[0]))
    mark = rng.randrange(len(warm.marks) - 1)
    return KillPlan(mark, rng.uniform(0, warm.marks[mark + 1] - warm.marks[mark]))


@dataclass
class Tally:
    """Where the kills landed, printed at the end of each test (pytest -s shows it)."""

    startup: int = 0
    mid: int = 0
    mid_after_acks: int = 0  # mid-workload plans that killed the worker after it acknowledged a write
    finished: int = 0  # the worker ended before the kill
    committed_in_flight: int = 0  # the interrupted call had committed but was never acknowledged

    def add(self, plan: KillPlan | None, outcome: Outcome, committed: bool) -> None:
        if plan is None:
            return
        self.startup += plan.after_mark is None
        self.mid += plan.after_mark is not None
        self.mid_after_acks += plan.after_mark is not None and outcome.killed and bool(outcome.acks)
        self.finished += not outcome.killed
        self.committed_in_flight += committed

    def assert_mid_workload(self, ctx: str) -> None:
        # Guards the harness, not the library: the kills must really land among the writes.
        if self.mid >= 5:
            assert self.mid_after_acks > 0, f"{ctx}: no kill landed after an acknowledged write: {self}"


# --- reading the file back -----------------------------------------------------------------------


@contextlib.contextmanager
def reader(path: Path) -> Iterator[apsw.Connection]:
    """A plain apsw connection, none of agentstate's settings: an outside reader of the file."""
    conn = apsw.Connection(str(path))
    try:
        conn.set_busy_timeout(10_000)
        yield conn
    finally:
        conn.close()


def check_file(path: Path, ctx: str, *, stdlib_first: bool) -> None:
    """integrity_check is ok and foreign_key_check is empty, read by apsw and by stdlib sqlite3.
    The first of them to open a killed writer's file recovers its WAL; the order alternates."""
    checks = [_check_with_apsw, _check_with_stdlib]
    for check in reversed(checks) if stdlib_first else checks:
        check(path, ctx)


def _check_with_apsw(path: Path, ctx: str) -> None:
    with reader(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"{ctx}: apsw integrity_check"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], f"{ctx}: apsw foreign_key_check"


def _check_with_stdlib(path: Path, ctx: str) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"{ctx}: sqlite3 integrity_check"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], f"{ctx}: sqlite3 foreign_key_check"


@contextlib.contextmanager
def crashed_copy(path: Path, dest: Path) -> Iterator[Path]:
    """The file and its WAL as the killed worker left them (the -shm index is rebuilt from the
    WAL). Checking a copy leaves the original for the next worker to recover, as after a real crash."""
    for suffix in ("", "-wal"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", f"{dest}{suffix}")
    try:
        yield dest
    finally:
        remove_database(dest)


def table_names(conn: apsw.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


# --- the series of kills shared by the task and message tests ------------------------------------


class Ledger(Protocol):
    def worker_args(self) -> list[str]: ...

    def check(self, conn: Any, outcome: Outcome, ctx: str) -> bool:
        """Check the database after one run; True when the interrupted call had committed."""
        ...


class Store(Protocol):
    """The database one series of runs writes to: an SQLite file or a PostgreSQL database."""

    @property
    def target(self) -> str:
        """What the worker opens: the file's path or the database's URL."""
        ...

    def after_run(self, run: int, ctx: str) -> contextlib.AbstractContextManager[Any]:
        """A connection reading what the last run left, checked as far as the engine allows."""
        ...

    def at_end(self, ctx: str) -> contextlib.AbstractContextManager[Any]:
        """A connection reading the database itself after the last run."""
        ...

    def close(self) -> None: ...


@dataclass
class SqliteFile:
    """A file: each run is checked on a copy of what its kill left (integrity_check and
    foreign_key_check by apsw and stdlib sqlite3), so the next worker recovers the original's
    WAL as it would after a real crash."""

    path: Path

    @property
    def target(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def after_run(self, run: int, ctx: str) -> Iterator[apsw.Connection]:
        with crashed_copy(self.path, self.path.with_name("copy.db")) as copy:
            check_file(copy, ctx, stdlib_first=run % 2 == 1)
            with reader(copy) as conn:
                yield conn

    @contextlib.contextmanager
    def at_end(self, ctx: str) -> Iterator[apsw.Connection]:
        check_file(self.path, ctx, stdlib_first=False)
        with reader(self.path) as conn:
            yield conn

    def close(self) -> None:
        remove_database(self.path)


class PostgresDatabase:
    """A database on the test's server: the server keeps its files whole whatever a client does,
    so what is checked is that the killed worker's sessions are over (a session the kill cut off
    rolls back its open transaction, or commits one whose COMMIT it had received) before its rows
    are read: only then are the runs as one after another as on SQLite."""

    def __init__(self, url: str, drop: Callable[[], None] | None = None) -> None:
        self.url, self.drop = url, drop
        self.conn: Any = agentstate.connect(url, application_name="crash-test-parent")

    @property
    def target(self) -> str:
        return self.url

    @contextlib.contextmanager
    def after_run(self, run: int, ctx: str) -> Iterator[Any]:
        self.settle(ctx)
        yield self.conn

    def at_end(self, ctx: str) -> contextlib.AbstractContextManager[Any]:
        return self.after_run(0, ctx)

    def settle(self, ctx: str) -> None:
        """Wait until no session of a worker is left on this database."""
        sql = "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() AND application_name = ?"
        deadline = time.monotonic() + SETTLE_SECONDS
        while sessions := rows(self.conn, sql, (WORKER_APPLICATION,)):
            assert time.monotonic() < deadline, f"{ctx}: a killed worker's sessions outlived it: {sessions}"
            time.sleep(0.005)

    def close(self) -> None:
        self.conn.close()
        if self.drop is not None:
            self.drop()


def crash_series(mode: str, databases: Databases, new_ledger: Callable[[], Ledger]) -> Tally:
    """This mode's kills, in series of at most RUNS_PER_FILE on one database each (a new one keeps
    the checks of a long soak from growing with everything the earlier runs wrote)."""
    rng = random.Random(f"{SEED}:{mode}")
    tally, kills = Tally(), databases.kills(mode)
    for part, first in enumerate(range(0, kills, RUNS_PER_FILE)):
        store = databases.new(mode, part)
        try:
            one_file(mode, store, f"{mode}-{part}", min(RUNS_PER_FILE, kills - first), new_ledger(), rng, tally)
        finally:
            store.close()
    print(f"{mode} on {databases.engine}: {tally} (seed {SEED})")
    return tally


def one_file(mode: str, store: Store, name: str, kills: int, ledger: Ledger, rng: random.Random, tally: Tally) -> None:
    """A warm-up run that creates the agents, then one killed run after another on the same
    database, each checked on what the kill left; last, the database once more."""
    warm = None
    for run in range(kills + 1):
        plan = None if warm is None else draw_plan(rng, warm)
        ctx = f"AGENTSTATE_CRASH_SEED={SEED} {name} run {run} ({plan or 'warm-up, not killed'})"
        args = [mode, store.target, "--run", str(run), "--seed", str(rng.randrange(2**32)), "--ops", str(OPS[mode])]
        outcome = run_worker([*args, *(["--setup"] if warm is None else []), *ledger.worker_args()], plan, ctx)
        if warm is None:
            assert outcome.done, ctx
            warm = outcome
        with store.after_run(run, ctx) as conn:
            tally.add(plan, outcome, ledger.check(conn, outcome, ctx))
    ctx = f"AGENTSTATE_CRASH_SEED={SEED} {name} after the last run"
    with store.at_end(ctx) as conn:
        assert not ledger.check(conn, Outcome([]), ctx), f"{ctx}: the database differs from its last check"


@dataclass(frozen=True)
class Databases:
    """A crash test's databases on one engine: a new one for each part of a series, and the
    share of the mode's kills (percent) run on them."""

    engine: str
    new: Callable[[str, int], Store]  # (mode, part) -> the part's database
    share: int = 100

    def kills(self, mode: str) -> int:
        return -(-kills_for(mode) * self.share // 100)


@pytest.fixture
def databases(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Databases:
    """SQLite files in tmp_path; or on PostgreSQL the test's own database, then (a long soak) new
    ones copied from the migrated template, dropped after their part."""
    if not is_url(db_url):
        return Databases("sqlite", lambda mode, part: SqliteFile(tmp_path / f"{mode}-{part}.db"))

    def postgres(mode: str, part: int) -> Store:
        if part == 0:
            return PostgresDatabase(db_url)
        server = request.getfixturevalue("pg_server")
        name, _ = engines.fresh_database(server, request.getfixturevalue("pg_template"))
        return PostgresDatabase(server.url(name), lambda: server.drop_database(name))

    return Databases("postgres", postgres, POSTGRES_KILL_SHARE)


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- tasks ---------------------------------------------------------------------------------------


class StoredEvent(NamedTuple):
    event_id: int
    worker_id: str
    from_status: str | None
    to_status: str
    fence: int
    detail: Any

    @property
    def key(self) -> tuple[str, str, int, Any]:
        """As the worker acknowledges it."""
        return (self.worker_id, self.to_status, self.fence, self.detail)


def stored_events(conn: Any) -> list[StoredEvent]:
    found = rows(
        conn, "SELECT event_id, worker_id, from_status, to_status, fence, detail FROM task_events ORDER BY event_id"
    )
    return [StoredEvent(e, w, f, t, fence, None if d is None else json.loads(d)) for e, w, f, t, fence, d in found]


class TaskLedger:
    """The task history as acknowledged so far, checked against task_events and workers.

    Runs never overlap, so the events one run committed are exactly those after the previous
    check: its acknowledged transitions, in order, then at most the interrupted call's.
    """

    def __init__(self) -> None:
        self.seen: list[StoredEvent] = []
        self.state: dict[str, tuple[str, int]] = {}  # worker_id -> (status, fence) of its last event

    def worker_args(self) -> list[str]:
        return []

    def check(self, conn: Any, outcome: Outcome, ctx: str) -> bool:
        events = stored_events(conn)
        assert events[: len(self.seen)] == self.seen, f"{ctx}: a committed task event changed or vanished"
        new = events[len(self.seen) :]
        acked = [tuple(event) for ack in outcome.acks for event in ack]
        stored = [e.key for e in new[: len(acked)]]
        assert stored == acked, (
            f"{ctx}: acknowledged transitions missing, repeated or out of order\n{_first_difference(acked, stored)}"
        )
        extra = new[len(acked) :]
        if extra:
            self._check_in_flight(extra, outcome.in_flight, ctx)
        for e in new:
            self._check_step(e, ctx)
        tasks = {w: (s, f) for w, s, f in rows(conn, "SELECT worker_id, task_status, fence FROM workers")}
        assert tasks == self.state, f"{ctx}: the workers rows disagree with their last task_events"
        self.seen = events
        return bool(extra)

    @staticmethod
    def _check_in_flight(extra: list[StoredEvent], call: dict[str, Any] | None, ctx: str) -> None:
        """Events nobody acknowledged: the interrupted call committed, all of it."""
        assert call is not None, f"{ctx}: task events that no call accounts for: {extra}"
        assert call["lo"] <= len(extra) <= call["hi"], f"{ctx}: {call} committed in part: {extra}"
        assert {e.to_status for e in extra} <= set(call["to"]), f"{ctx}: {call} wrote {extra}"
        if call["ids"] is not None:
            assert [e.worker_id for e in extra] == call["ids"], f"{ctx}: {call} wrote {extra}"

    def _check_step(self, e: StoredEvent, ctx: str) -> None:
        """Each event moves its task on from its previous event (a claim bumps the fence)."""
        before = self.state.get(e.worker_id)
        if before is None:
            assert (e.from_status, e.to_status, e.fence) == (None, "pending", 0), f"{ctx}: first event {e}"
        else:
            fence = before[1] + (e.to_status == "claimed")
            assert (e.from_status, e.fence) == (before[0], fence), f"{ctx}: {e} does not follow {before}"
        self.state[e.worker_id] = (e.to_status, e.fence)


def _first_difference(acked: list[Any], stored: list[Any]) -> str:
    at = next((i for i, (a, s) in enumerate(zip(acked, stored, strict=False)) if a != s), min(len(acked), len(stored)))
    return f"at {at}: acknowledged {acked[at : at + 3]}, stored {stored[at : at + 3]} ({len(acked)} vs {len(stored)})"


@pytest.mark.slow
def test_task_transitions_survive_sigkill(databases: Databases) -> None:
    """create_task(s), claim, claim_many, complete, complete_many, complete_and_claim_next,
    fail_validation, release, retry and record, killed mid-call: every acknowledged transition
    is in task_events once and in order, each task's row agrees with its last event, every
    history is a legal chain, and an interrupted batch committed whole or not at all."""
    crash_series("tasks", databases, TaskLedger).assert_mid_workload(f"seed {SEED}")


# --- messages ------------------------------------------------------------------------------------

# (stream, stream_id, position, content, idempotency_key): one stored message.
Row = tuple[str, str, int, str, str | None]
OWNER_COLUMN = {"router": "conversation_id", "planner": "agent_id", "worker": "agent_id"}


def stored_messages(conn: Any) -> list[Row]:
    found: list[Row] = []
    for stream, column in OWNER_COLUMN.items():
        sql = f"SELECT {column}, position, content, idempotency_key FROM {stream}_messages"
        found += [(stream, sid, pos, text, key) for sid, pos, text, key in rows(conn, sql)]
    return found


def call_tag(content: str) -> str:
    """``r0007.o0012.i0003`` -> ``r0007.o0012``: the call that wrote it."""
    return content.rsplit(".", 1)[0]


def order(content: str) -> tuple[int, int, int]:
    run, op, i = content.split(".")
    return int(run[1:]), int(op[1:]), int(i[1:])


class MessageLedger:
    """Acknowledged messages, the size of every announced call, and the call to retry.

    Contents are unique (run, call, index) tags, so a message stored twice shows as a repeated
    content, and a call's rows are countable: all of them or none.
    """

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.acked: dict[str, Row] = {}
        self.seen: set[Row] = set()
        self.retry: dict[str, Any] | None = None  # a keyed call that died in flight, retried next run
        self.tops: dict[tuple[str, str], tuple[int, tuple[int, int, int]]] = {}  # stream -> last position, tag

    def worker_args(self) -> list[str]:
        return [] if self.retry is None else ["--retry", json.dumps(self.retry)]

    def record(self, outcome: Outcome, ctx: str) -> None:
        for call, ack in outcome.calls:
            assert self.sizes.setdefault(call["tag"], call["n"]) == call["n"], f"{ctx}: {call['tag']} resized"
            for row in ack or []:
                message: Row = tuple(row)  # type: ignore[assignment]
                first = self.acked.setdefault(message[3], message)
                assert first == message, f"{ctx}: a retry returned {message}, first acknowledged as {first}"
            if self.retry is not None and call["tag"] == self.retry["tag"] and ack is not None:
                self.retry = None
        interrupted = outcome.in_flight
        if interrupted is not None and interrupted["spec"] is not None:
            self.retry = interrupted["spec"]

    def check(self, conn: Any, outcome: Outcome, ctx: str) -> bool:
        """Checks the rows this run added; the earlier ones passed before and must be unchanged."""
        self.record(outcome, ctx)
        stored = stored_messages(conn)
        by_content = {row[3]: row for row in stored}
        assert len(by_content) == len(stored), f"{ctx}: a message is stored twice: {_repeated(stored)}"
        now = set(stored)
        vanished = self.seen - now
        assert not vanished, f"{ctx}: committed messages changed or vanished: {sorted(vanished)[:5]}"
        acked = {tuple(row) for ack in outcome.acks for row in ack}
        lost = [(want, by_content.get(want[3])) for want in acked if by_content.get(want[3]) != want]
        assert not lost, f"{ctx}: acknowledged messages missing or moved (acknowledged, stored): {lost[:5]}"
        fresh = sorted(now - self.seen, key=lambda row: row[2])
        per_call = Counter(call_tag(row[3]) for row in fresh)
        partial = {t: (n, self.sizes.get(t)) for t, n in per_call.items() if n != self.sizes.get(t)}
        assert not partial, f"{ctx}: calls stored in part (stored, announced): {partial}"
        self._check_streams(fresh, ctx)
        self.seen = now
        return any(row[3] not in self.acked for row in fresh)

    def _check_streams(self, fresh: list[Row], ctx: str) -> None:
        """Per stream, the new rows continue it: the next positions with no gap or repeat (nothing
        is trimmed here), in commit order, each idempotency key on its own message."""
        for row in fresh:
            assert row[4] in (None, f"key-{row[3]}"), f"{ctx}: {row} carries another message's key"
            stream = (row[0], row[1])
            position, last = self.tops.get(stream, (0, (0, 0, -1)))
            assert row[2] == position + 1, f"{ctx}: {stream} jumps from position {position} to {row}"
            assert order(row[3]) > last, f"{ctx}: {stream} positions are not in commit order at {row}"
            self.tops[stream] = (row[2], order(row[3]))


def _repeated(rows: list[Row]) -> list[str]:
    return [text for text, n in Counter(row[3] for row in rows).items() if n > 1][:5]


@pytest.mark.slow
def test_message_appends_survive_sigkill(databases: Databases) -> None:
    """append (with and without idempotency keys), append_many and append_bulk killed mid-call:
    every acknowledged message is stored once at its acknowledged position with its key,
    positions stay gapless and in commit order, a call is stored whole or not at all, and a
    keyed call that died in flight, retried by the next run, ends up stored exactly once."""
    crash_series("messages", databases, MessageLedger).assert_mid_workload(f"seed {SEED}")


# --- migrations ----------------------------------------------------------------------------------

SEQ = f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {ROWS})"
# Test migrations numbered after the shipped ones, each a few thousand rows of work. {v} is the
# file's own version, which tags its rows.
TEST_MIGRATIONS = {
    "crash_rows": (
        "CREATE TABLE crash_rows (version INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL,"
        " PRIMARY KEY (version, n)) STRICT;\n"
        f"{SEQ} INSERT INTO crash_rows (version, n, payload) SELECT {{v}}, n, randomblob(200) FROM seq;\n"
    ),
    "crash_index": (
        f"{SEQ} INSERT INTO crash_rows (version, n, payload) SELECT {{v}}, n, randomblob(200) FROM seq;\n"
        "CREATE INDEX idx_crash_rows_payload ON crash_rows (payload);\n"
    ),
    "crash_messages": (
        "INSERT INTO planners (planner_id) VALUES ('crash-planner');\n"
        f"{SEQ} INSERT INTO planner_messages (agent_id, position, role, content)"
        " SELECT 'crash-planner', n, 'user', 'crash message ' || n FROM seq;\n"
    ),
    "crash_note": (
        "ALTER TABLE crash_rows ADD COLUMN note TEXT;\n"
        "UPDATE crash_rows SET note = 'v' || version;\n"
        f"{SEQ} INSERT INTO crash_rows (version, n, payload, note) SELECT {{v}}, n, randomblob(200), 'new' FROM seq;\n"
    ),
}


@dataclass(frozen=True)
class MigrationSet:
    """The shipped migrations copied to a folder, the test ones after them, and the schema each
    prefix of them produces (sqlite_schema rows, as a reference for a half-migrated file)."""

    folder: Path
    known: tuple[migrations.Migration, ...]
    versions: dict[str, int]  # test migration name -> version
    schemas: list[list[tuple[Any, ...]]]  # schemas[v]: after versions 1..v

    def effects(self, top: int) -> dict[str, Any]:
        """What the test migrations leave when versions 1..top are applied."""
        v = self.versions
        return {
            "rows": {v[name]: ROWS for name in ("crash_rows", "crash_index", "crash_note") if v[name] <= top},
            "planner": int(v["crash_messages"] <= top),
            "messages": ROWS if v["crash_messages"] <= top else 0,
            "unnoted": 0 if v["crash_note"] <= top else None,
        }


def make_migrations(tmp_path: Path) -> MigrationSet:
    folder = tmp_path / "migrations"
    shutil.copytree(schema_files.schema_dir(), folder)
    base = len(migrations.discover(folder))
    versions = {name: base + i for i, name in enumerate(TEST_MIGRATIONS, 1)}
    for name, sql in TEST_MIGRATIONS.items():
        (folder / f"{versions[name]:04d}_{name}.sql").write_text(sql.format(v=versions[name]), encoding="utf-8")
    known = migrations.discover(folder)
    conn = opening.open_connection(":memory:")
    try:
        schemas = [schema_of(conn)]
        for top in range(1, len(known) + 1):
            migrations.migrate(conn, known[:top])
            schemas.append(schema_of(conn))
    finally:
        conn.close()
    return MigrationSet(folder, known, versions, schemas)


def schema_of(conn: apsw.Connection) -> list[tuple[Any, ...]]:
    """The schema objects, less the planner statistics tables (PRAGMA optimize at close makes them)."""
    sql = "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_stat%' ESCAPE '\\'"
    return sorted(conn.execute(sql).fetchall())


def observed_effects(conn: apsw.Connection) -> dict[str, Any]:
    tables = table_names(conn)
    has_note = "crash_rows" in tables and any(r[1] == "note" for r in conn.execute("PRAGMA table_info(crash_rows)"))
    one = conn.execute
    return {
        "rows": dict(one("SELECT version, count(*) FROM crash_rows GROUP BY version").fetchall())  # type: ignore[arg-type]
        if "crash_rows" in tables
        else {},
        "planner": one("SELECT count(*) FROM planners WHERE planner_id = 'crash-planner'").fetchall()[0][0]
        if "planners" in tables
        else 0,
        "messages": one("SELECT count(*) FROM planner_messages WHERE agent_id = 'crash-planner'").fetchall()[0][0]
        if "planner_messages" in tables
        else 0,
        "unnoted": one("SELECT count(*) FROM crash_rows WHERE note IS NULL").fetchall()[0][0] if has_note else None,
    }


def check_migrated(conn: apsw.Connection, mset: MigrationSet, acked: list[int], ctx: str) -> int:
    """The applied versions are 1..top, every acknowledged one among them plus at most the file
    that was in flight, and the schema, user_version and data are exactly those of 1..top."""
    applied = (
        [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        if "schema_migrations" in table_names(conn)
        else []
    )
    top = len(applied)
    assert applied == list(range(1, top + 1)), f"{ctx}: schema_migrations has gaps: {applied}"
    assert set(acked) <= set(applied), f"{ctx}: acknowledged migrations {acked} missing from {applied}"
    assert set(applied) - set(acked) <= {max(acked, default=0) + 1}, f"{ctx}: {applied} but acknowledged {acked}"
    rows = (
        conn.execute("SELECT version, name, sha256 FROM schema_migrations ORDER BY version").fetchall() if top else []
    )
    assert rows == [(m.version, m.name, m.sha256) for m in mset.known[:top]], f"{ctx}: schema_migrations rows"
    assert conn.pragma("user_version") == top, f"{ctx}: user_version disagrees with schema_migrations ({top})"
    assert schema_of(conn) == mset.schemas[top], f"{ctx}: the schema is not that of migrations 1..{top}"
    assert observed_effects(conn) == mset.effects(top), f"{ctx}: a test migration's data is not all-or-nothing"
    return top


def finish(path: Path, mset: MigrationSet, monkeypatch: pytest.MonkeyPatch, ctx: str) -> None:
    """agentstate.connect() applies what the kill left pending, the test migrations included
    (shown to it as its own: connect() takes no folder), and leaves a complete, healthy file."""
    with monkeypatch.context() as patch:
        patch.setattr(schema_files, "_shipped", lambda engine: mset.known)
        agentstate.connect(path).close()
    _check_with_apsw(path, ctx)  # both readers saw the crashed file; this is connect()'s work
    with reader(path) as conn:
        assert check_migrated(conn, mset, [m.version for m in mset.known], ctx) == len(mset.known)
        # A file connect() created is in WAL mode with incremental auto-vacuum, even when the
        # process that started creating it was killed half-way.
        mode = conn.pragma("journal_mode")
        assert mode == "wal", f"{ctx}: connect() left the file in journal_mode {mode!r}, not 'wal'"
        assert conn.pragma("auto_vacuum") == 2, f"{ctx}: auto_vacuum is not INCREMENTAL"


@pytest.mark.slow
def test_migrations_survive_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """migrate() over the shipped files and four heavy test files, killed at random, each run on
    a new file: every acknowledged version is in schema_migrations, a half-run file left nothing
    (schema and data are exactly those of the applied prefix), and connect() then finishes."""
    mset = make_migrations(tmp_path)
    rng = random.Random(f"{SEED}:migrations")
    tally, warm = Tally(), None
    for run in range(kills_for("migrations") + 1):
        plan = None if warm is None else draw_plan(rng, warm)
        ctx = f"AGENTSTATE_CRASH_SEED={SEED} migrations run {run} ({plan or 'warm-up, not killed'})"
        path = tmp_path / f"migrate-{run}.db"
        args = ["migrations", str(path), "--run", str(run), "--seed", "0", "--folder", str(mset.folder)]
        outcome = run_worker(args, plan, ctx)
        acked = [ack["version"] for ack in outcome.acks if "version" in ack]
        if warm is None:
            assert acked == [m.version for m in mset.known], ctx
            warm = outcome
        top = 0
        if path.exists():  # a kill in the interpreter's startup comes before the file
            check_file(path, ctx, stdlib_first=run % 2 == 1)
            with reader(path) as conn:
                top = check_migrated(conn, mset, acked, ctx)
        tally.add(plan, outcome, top > max(acked, default=0))
        finish(path, mset, monkeypatch, ctx)
        remove_database(path)
    print(f"migrations: {tally} (seed {SEED})")
    tally.assert_mid_workload(f"seed {SEED}")
