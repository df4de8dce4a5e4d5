"""I/O faults: failed reads, writes and fsyncs and a full disk, injected through an apsw VFS shim.

The shim (:class:`FaultyVFS`) passes every file operation through to SQLite's "unix" VFS and fails
the Nth read, write or sync of one kind of file (the database, its WAL or its rollback journal)
after it is armed: once (a transient error) or from then on (a disk that stays full). A workload
of public API calls runs through it with the fault armed at the first, middle and last such
operation of every call (and opening, creating and closing a database at each of theirs);
afterwards a fresh connection on the normal VFS checks the file (see :func:`_check_outcomes` for
exactly what is asserted, and why). The background checkpointer gets the shim as the default VFS.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import apsw
import pytest

import agentstate
from agentstate import errors
from agentstate.agents import Agents
from agentstate.messages import MessageLog, NewMessage
from agentstate.sqlite.wal_checkpoints import is_background
from agentstate.tasks import Claim, TaskManager

VFS_NAME = "agentstate-faults"

Op = Literal["read", "write", "sync"]
FileKind = Literal["main", "wal", "journal", "other"]
Durability = Literal["normal", "full"]


@dataclass
class Fault:
    """Fail the ``at``-th ``op`` on a ``file`` of the database at ``path`` (counted from arming)
    with SQLite error ``code``; ``sticky`` keeps failing every later one too."""

    op: Op
    file: FileKind
    code: int
    path: str
    at: int = 1
    sticky: bool = False
    seen: int = 0
    fired: int = 0
    fired_ops: list[str] = field(default_factory=list)
    raised: list[apsw.Error] = field(default_factory=list)

    def files(self) -> tuple[str, ...]:
        return (self.path, f"{self.path}-wal", f"{self.path}-journal")


class FaultyVFS(apsw.VFS):
    """The "unix" VFS, with one armable :class:`Fault` and a record of what it injected."""

    def __init__(self, name: str = VFS_NAME, *, makedefault: bool = False) -> None:
        self.name = name
        self.fault: Fault | None = None
        self.lock = threading.Lock()
        # Called with (op, file kind, path, ok) after each operation on a file of a watched path.
        self.observer: Callable[[Op, FileKind, str, bool], None] | None = None
        super().__init__(name, "unix", makedefault=makedefault)

    def arm(self, fault: Fault) -> Fault:
        with self.lock:
            self.fault = fault
        return fault

    def disarm(self) -> None:
        with self.lock:
            self.fault = None

    def failure(self, op: Op, file: FileKind, path: str) -> apsw.Error | None:
        """The exception to fail this operation with, or None to let it through."""
        with self.lock:
            fault = self.fault
            if fault is None or fault.op != op or fault.file != file or path not in fault.files():
                return None
            fault.seen += 1
            if fault.seen != fault.at and not (fault.sticky and fault.seen > fault.at):
                return None
            fault.fired += 1
            fault.fired_ops.append(f"{op} {file} #{fault.seen} on {threading.current_thread().name}")
            # apsw hands SQLite the error code of the exception (exception_for: the extended code)
            # and, SQLite having failed, raises this same exception: give it SQLite's own words.
            exc: apsw.Error = apsw.exception_for(fault.code)  # type: ignore[assignment]
            exc.args = ("database or disk is full" if fault.code == apsw.SQLITE_FULL else "disk I/O error",)
            fault.raised.append(exc)
            return exc

    def xOpen(self, name: str | apsw.URIFilename | None, flags: list[int]) -> FaultyFile:
        return FaultyFile(self, name, flags)


class FaultyFile(apsw.VFSFile):
    """One open file of a :class:`FaultyVFS`: the unix VFS's file, failing when the fault says so."""

    def __init__(self, vfs: FaultyVFS, name: str | apsw.URIFilename | None, flags: list[int]) -> None:
        self.vfs = vfs  # also keeps the VFS alive while the file is open
        self.path = name.filename() if isinstance(name, apsw.URIFilename) else (name or "")
        opened = flags[0]
        self.kind: FileKind = (
            "main"
            if opened & apsw.SQLITE_OPEN_MAIN_DB
            else "wal"
            if opened & apsw.SQLITE_OPEN_WAL
            else "journal"
            if opened & apsw.SQLITE_OPEN_MAIN_JOURNAL
            else "other"
        )
        super().__init__("unix", name, flags)

    def _check(self, op: Op) -> None:
        exc = self.vfs.failure(op, self.kind, self.path)
        if exc is not None:
            self._observe(op, False)
            raise exc

    def _observe(self, op: Op, ok: bool) -> None:
        observer = self.vfs.observer
        if observer is not None:
            observer(op, self.kind, self.path, ok)

    def xRead(self, amount: int, offset: int) -> bytes:
        self._check("read")
        return super().xRead(amount, offset)

    def xWrite(self, data: Any, offset: int) -> None:
        self._check("write")
        super().xWrite(data, offset)
        self._observe("write", True)

    def xSync(self, flags: int) -> None:
        self._check("sync")
        # No real fsync: nothing here cuts the power, and a thousand fsyncs would be most of the
        # suite's time. SQLite still asks for every sync, so each can be failed.
        self._observe("sync", True)


@pytest.fixture
def faulty_vfs() -> Iterator[FaultyVFS]:
    vfs = FaultyVFS()
    yield vfs
    vfs.disarm()
    vfs.unregister()


def _uri(path: Path, vfs: FaultyVFS) -> str:
    return f"file:{path}?vfs={vfs.name}"


# --- the workload ------------------------------------------------------------------------------

# Seeded tasks of planner p0: these are claimed by a seed executor (t-done then completed, t-retry
# failed), those wait for the workload's claims.
HELD = ("t-held", "t-held2", "t-done", "t-hb", "t-fv", "t-rel", "t-retry", "t-cm1", "t-cm2")
PENDING = ("t-a", "t-b", "t-c")


@dataclass
class Seed:
    claims: dict[str, Claim]  # the seed executor's claims, by worker_id


def _seed(conn: apsw.Connection) -> Seed:
    agents, tm, log = Agents(conn), TaskManager(conn, "p0"), MessageLog(conn)
    for planner in ("p0", "p2", "p3", "p-old"):
        agents.create_planner(planner)
    agents.create_router("r0")
    agents.create_conversation("c0")
    claims = {}
    for worker_id in HELD:
        tm.create_task(worker_id, worker_id=worker_id)
        claim = tm.claim(f"seed-{worker_id}")  # the oldest pending task: the one just made
        assert claim is not None and claim.worker_id == worker_id
        claims[worker_id] = claim
    tm.complete(claims["t-done"], result={"seed": True})
    tm.fail_validation(claims["t-retry"], reason="seed")
    tm.create_tasks([{"description": w, "worker_id": w} for w in PENDING])
    # The above into the database file, the rest into the WAL: the workload reads from both.
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall() == [(0, 0, 0)]
    log.append_many("planner", "p0", [NewMessage("user", f"seed {i}") for i in range(20)])
    log.append_many("planner", "p2", [NewMessage("user", f"p2 {i}") for i in range(10)])
    log.append("router", "c0", role="user", content="hello")
    # A recorded task with a long worker stream: purging it frees whole pages for the vacuum.
    old = TaskManager(conn, "p-old")
    old.create_task("old", worker_id="t-old")
    claim = old.claim("seed-old")
    assert claim is not None
    log.append_many("worker", "t-old", [NewMessage("tool", "x" * 2000) for _ in range(40)])
    old.complete(claim)
    old.record("t-old")
    return Seed(claims)


Effect = Literal["present", "absent", "read"]
EffectCheck = Callable[[apsw.Connection, Any, Seed], Effect]


def _either(present: bool, absent: bool, what: str) -> Effect:
    """Exactly one of the two states holds, or the write was torn."""
    assert present != absent, f"{what}: neither fully present nor fully absent"
    return "present" if present else "absent"


def _read(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    return "read"


def _held_by(conn: apsw.Connection, owner: str) -> list[tuple[str, int]]:
    claimed = TaskManager(conn, "p0").list_tasks("claimed", limit=100)
    return sorted((t.worker_id, t.fence) for t in claimed if t.lease_owner == owner)


def _claimed_by(owner: str) -> EffectCheck:
    def effect(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
        held = _held_by(conn, owner)
        if returned is None:  # the call failed: it claimed nothing, or (maybe present) its tasks
            return "present" if held else "absent"
        claims = returned if isinstance(returned, list) else [returned]
        assert held == sorted((c.worker_id, c.token) for c in claims), f"{owner} holds {held}, returned {claims}"
        return "present"

    return effect


def _moved(worker_id: str, status: str, result: Any = None) -> EffectCheck:
    """A seeded claimed task that the step moves to ``status`` (with ``result``)."""

    def effect(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
        task = TaskManager(conn).get_task(worker_id)
        claim = seed.claims[worker_id]
        before = task.task_status == "claimed" and task.fence == claim.token and task.lease_owner == claim.owner
        return _either(task.task_status == status and task.result == result, before, worker_id)

    return effect


def _completed_many(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    states = {w: _moved(w, "completed", {"n": w})(conn, returned, seed) for w in ("t-cm1", "t-cm2")}
    assert len(set(states.values())) == 1, f"complete_many is one transaction: {states}"
    return states["t-cm1"]


def _heartbeat(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    task = TaskManager(conn).get_task("t-hb")
    assert task.task_status == "claimed" and task.fence == seed.claims["t-hb"].token, task
    if returned is not None:
        assert task.lease_expires_at == returned.lease_expires_at, (task, returned)
    return "absent" if task.lease_expires_at == seed.claims["t-hb"].lease_expires_at else "present"


def _status_from(worker_id: str, before: str, after: str) -> EffectCheck:
    def effect(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
        status = TaskManager(conn).get_task(worker_id).task_status
        return _either(status == after, status == before, f"{worker_id} is {status}")

    return effect


def _messages(stream: Any, *wanted: tuple[str, str]) -> EffectCheck:
    """(stream_id, content) messages appended by one call: all there, where it said, or none."""

    def effect(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
        log = MessageLog(conn)
        found = [
            (m.stream_id, m.position, m.content)
            for sid, c in wanted
            for m in log.latest(stream, sid, 100)
            if m.content == c
        ]
        if found and returned is not None:  # acknowledged: stored where the call said
            stored = returned if isinstance(returned, list) else [returned]
            assert found == [(m.stream_id, m.position, m.content) for m in stored], (found, stored)
        return _either(len(found) == len(wanted), not found, f"{stream} messages {wanted}")

    return effect


def _found(get: Callable[[apsw.Connection], Any]) -> EffectCheck:
    def effect(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
        try:
            get(conn)
        except errors.NotFoundError:
            return "absent"
        return "present"

    return effect


def _tasks_created(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    found = [w for w in ("t-new2", "t-new3") if _has_task(conn, w)]
    return _either(len(found) == 2, not found, f"create_tasks is one transaction, found {found}")


def _has_task(conn: apsw.Connection, worker_id: str) -> bool:
    try:
        TaskManager(conn).get_task(worker_id)
    except errors.NotFoundError:
        return False
    return True


def _complete_and_claim_next(conn: apsw.Connection, seed: Seed) -> Any:
    return TaskManager(conn, "p0", actor="exec-3").complete_and_claim_next(
        "t-held2", seed.claims["t-held2"].token, result={"step": "next"}
    )


def _completed_and_claimed(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    done = _moved("t-held2", "completed", {"step": "next"})(conn, returned, seed)
    held = _held_by(conn, "exec-3")
    if done == "absent":  # one transaction: no claim without the completion
        assert not held, f"t-held2 was not completed but exec-3 holds {held}"
    elif returned is not None:
        assert held == [(returned.worker_id, returned.token)], held
    return done


def _linked(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    return "present" if [p.planner_id for p in Agents(conn).planners_of("r0")] == ["p0"] else "absent"


def _trimmed(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    left = MessageLog(conn).count("planner", "p2")
    return _either(left == 3, left == 10, f"p2 has {left} messages")


def _purged(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    gone = not _has_task(conn, "t-old")
    messages = MessageLog(conn).count("worker", "t-old")
    return _either(gone and messages == 0, not gone and messages == 40, f"t-old gone: {gone}, {messages} messages")


def _own_write(conn: apsw.Connection) -> None:
    """agentstate.write() around the caller's own SQL (README: "agentstate.write(conn) for your own")."""
    with agentstate.write(conn):
        conn.execute("INSERT INTO routers (router_id) VALUES ('r-own')")


def _planner_metadata(conn: apsw.Connection, returned: Any, seed: Seed) -> Effect:
    return "present" if Agents(conn).get_planner("p0").metadata == {"step": "update"} else "absent"


@dataclass(frozen=True)
class Step:
    name: str
    call: Callable[[apsw.Connection, Seed], Any]
    # Reads the call's effect back on the verification connection, given what the call returned
    # (None if it raised); an AssertionError means the effect is torn or not what was returned.
    effect: EffectCheck


# Each step touches its own rows, so one step's failure changes no other step's expected effect
# (the claims are told apart by owner); the steps that put tasks back to pending come after the
# last claim.
STEPS: tuple[Step, ...] = (
    Step("get_current_task", lambda c, s: TaskManager(c, "p0").get_current_task(), _read),
    Step("create_planner", lambda c, s: Agents(c).create_planner("p1"), _found(lambda c: Agents(c).get_planner("p1"))),
    Step(
        "create_conversation",
        lambda c, s: Agents(c).create_conversation("c1"),
        _found(lambda c: Agents(c).get_conversation("c1")),
    ),
    Step(
        "create_task",
        lambda c, s: TaskManager(c, "p0").create_task("new", worker_id="t-new"),
        lambda c, r, s: "present" if _has_task(c, "t-new") else "absent",
    ),
    Step(
        "create_tasks",
        lambda c, s: TaskManager(c, "p0").create_tasks([{"worker_id": "t-new2"}, {"worker_id": "t-new3"}]),
        _tasks_created,
    ),
    Step("claim", lambda c, s: TaskManager(c, "p0").claim("exec-1"), _claimed_by("exec-1")),
    Step("heartbeat", lambda c, s: TaskManager(c).heartbeat(s.claims["t-hb"], lease_seconds=7200), _heartbeat),
    Step(
        "complete",
        lambda c, s: TaskManager(c).complete(s.claims["t-held"], result={"step": "complete"}),
        _moved("t-held", "completed", {"step": "complete"}),
    ),
    Step(
        "fail_validation",
        lambda c, s: TaskManager(c).fail_validation(s.claims["t-fv"], reason={"why": "bad"}),
        _moved("t-fv", "failed_validation", {"why": "bad"}),
    ),
    Step(
        "complete_many",
        lambda c, s: TaskManager(c).complete_many([(s.claims[w], {"n": w}) for w in ("t-cm1", "t-cm2")]),
        _completed_many,
    ),
    Step("record", lambda c, s: TaskManager(c, "p0").record("t-done"), _status_from("t-done", "completed", "recorded")),
    Step("link", lambda c, s: Agents(c).link("r0", "p0"), _linked),
    Step(
        "append",
        lambda c, s: MessageLog(c).append("planner", "p0", role="user", content="one", idempotency_key="k-one"),
        _messages("planner", ("p0", "one")),
    ),
    Step(
        "append_many",
        lambda c, s: MessageLog(c).append_many(
            "planner",
            "p0",
            [NewMessage("assistant", "turn-a"), NewMessage("tool", "turn-b"), NewMessage("user", "turn-c")],
        ),
        _messages("planner", ("p0", "turn-a"), ("p0", "turn-b"), ("p0", "turn-c")),
    ),
    Step(
        "append_bulk",
        lambda c, s: MessageLog(c).append_bulk(
            "planner", [("p0", NewMessage("user", "bulk-a")), ("p3", NewMessage("user", "bulk-b"))]
        ),
        _messages("planner", ("p0", "bulk-a"), ("p3", "bulk-b")),
    ),
    Step(
        "append_router",
        lambda c, s: MessageLog(c).append("router", "c0", role="assistant", content="reply"),
        _messages("router", ("c0", "reply")),
    ),
    Step("trim", lambda c, s: MessageLog(c).trim("planner", "p2", keep_last=3), _trimmed),
    Step("claim_many", lambda c, s: TaskManager(c).claim_many("exec-2", 2), _claimed_by("exec-2")),
    Step("complete_and_claim_next", _complete_and_claim_next, _completed_and_claimed),
    Step("release", lambda c, s: TaskManager(c).release(s.claims["t-rel"]), _moved("t-rel", "pending")),
    Step(
        "retry",
        lambda c, s: TaskManager(c, "p0").retry("t-retry"),
        _status_from("t-retry", "failed_validation", "pending"),
    ),
    Step("write", lambda c, s: _own_write(c), _found(lambda c: Agents(c).get_router("r-own"))),
    Step("latest", lambda c, s: MessageLog(c).latest("planner", "p0", 50), _read),
    Step("update_planner", lambda c, s: Agents(c).update_planner("p0", metadata={"step": "update"}), _planner_metadata),
    Step("purge_recorded", lambda c, s: TaskManager(c, "p-old").purge_recorded(older_than_seconds=1e-6), _purged),
)


# --- running it under a fault --------------------------------------------------------------------


@dataclass
class Outcome:
    step: str
    returned: Any = None
    error: Exception | None = None
    faults: list[str] = field(default_factory=list)  # what the shim failed during the call
    ops: tuple[int, int] = (0, 0)  # the fault's matching operations before and after the call


@dataclass(frozen=True)
class Seeded:
    main: Path  # a copy of a seeded database file, taken while its connection was open
    wal: Path  # and of its WAL, which holds the second half of the seed
    seed: Seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Seeded once: each run starts from a copy instead of ~30 commits of its own."""
    folder = tmp_path_factory.mktemp("seeded")
    path = folder / "live.db"
    conn = agentstate.connect(path)
    try:
        seed = _seed(conn)
        # Copied while the connection is open and idle: the seed stays in the WAL, so each run's
        # connection starts cold, recovers the WAL (as after a crash) and reads the seed from it.
        copy = Seeded(folder / "seed.main", folder / "seed.wal", seed)
        shutil.copyfile(path, copy.main)
        shutil.copyfile(f"{path}-wal", copy.wal)
    finally:
        conn.close()
    return copy


def _open(seeded: Seeded, path: Path, vfs: FaultyVFS, durability: Durability = "normal") -> apsw.Connection:
    shutil.copyfile(seeded.main, path)
    shutil.copyfile(seeded.wal, f"{path}-wal")
    return agentstate.connect(_uri(path, vfs), durability=durability)


def _run(seeded: Seeded, vfs: FaultyVFS, fault: Fault, durability: Durability) -> list[Outcome]:
    """Run STEPS on a copy of the seeded database (at the fault's path) through the shim with
    ``fault`` armed, then disarm it and write once more on the same connection; returns what
    each call did."""
    conn = _open(seeded, Path(fault.path), vfs, durability)
    outcomes = []
    try:
        vfs.arm(fault)
        for step in STEPS:
            outcome = Outcome(step.name)
            before, seen = len(fault.fired_ops), fault.seen
            try:
                outcome.returned = step.call(conn, seeded.seed)
            except Exception as exc:  # judged in _check_outcomes, with every other call
                outcome.error = exc
            outcome.faults = fault.fired_ops[before:]
            outcome.ops = (seen, fault.seen)
            outcomes.append(outcome)
        vfs.disarm()
        # Space is back: the same connection must write again (SQLite clears its error state when
        # the failed transaction ends).
        after = Outcome("create_router after the fault")
        try:
            after.returned = Agents(conn).create_router("r-after")
        except Exception as exc:
            after.error = exc
        outcomes.append(after)
    finally:
        vfs.disarm()
        conn.close()
    return outcomes


def _apsw_cause(exc: BaseException) -> BaseException | None:
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, apsw.Error):
        cause = cause.__cause__
    return cause


# What the library must raise for what SQLite reported (README, Errors; agentstate/errors.py).
EXPECTED_ERROR: tuple[tuple[type[apsw.Error], type[errors.AgentStateError]], ...] = (
    (apsw.FullError, errors.DiskFullError),
    (apsw.IOError, errors.StorageError),
    (apsw.CorruptError, errors.DatabaseCorruptError),
    (apsw.NotADBError, errors.DatabaseCorruptError),
)


def _error_problem(error: Exception, fault: Fault) -> str | None:
    """Why a call's exception under ``fault`` breaks the error contract, or None if it keeps it."""
    if not isinstance(error, errors.AgentStateError):
        return f"{type(error).__module__}.{type(error).__name__} escaped (not an AgentStateError): {error!r}"
    cause = _apsw_cause(error)
    if cause is None:
        return f"{type(error).__name__} without the apsw exception chained as __cause__: {error!r}"
    for sqlite_error, wanted in EXPECTED_ERROR:
        if isinstance(cause, sqlite_error) and not isinstance(error, wanted):
            return f"SQLite's {type(cause).__name__} became {type(error).__name__}, not {wanted.__name__}"
    # The disk failed, so the caller must hear that (not some consequence of it), as the kind of
    # failure it was: a full disk is DiskFullError, any other I/O error StorageError.
    code = fault.code
    name = apsw.mapping_extended_result_codes.get(code) or apsw.mapping_result_codes[code]
    full = code == apsw.SQLITE_FULL
    if not isinstance(error, errors.DiskFullError if full else errors.StorageError) or (
        not full and isinstance(error, errors.DiskFullError)
    ):
        return f"the disk failed with {name} but the call raised {error!r}"
    return None


def _check_outcomes(outcomes: list[Outcome], seed: Seed, fault: Fault) -> list[str]:
    """Every problem with one run, as sentences (empty: the run kept every promise).

    - A call fails only if the shim failed one of its own reads, writes or syncs: no fault
      outlives the call it hit, so after a transient one the next call on the same connection
      works (and after a sticky one, the call made once it is disarmed).
    - A failed call raises an AgentStateError of the class matching SQLite's error
      (EXPECTED_ERROR), with SQLite's exception chained; nothing else escapes.
    - A fresh connection on the normal VFS opens the file; integrity_check and foreign_key_check
      pass; every acknowledged write (the call returned) is there, whole and as returned.
    - A failed write is absent, except where a sync failed during the call. Why: SQLite appends a
      transaction's pages to the WAL with the commit frame last, so a failed read or write means
      no commit frame and nothing to find. The WAL is fsynced only after that commit frame is
      written (at COMMIT, with durability="full"), so when that fsync fails the transaction is
      whole in the WAL file, though SQLite reported it failed and this connection rolled it back;
      a later open that rebuilds the WAL index from the file (recovery) accepts it unless a later
      commit overwrote it. So there it may be present, but whole (no torn batch or transition).
    """
    problems = []
    by_name = {step.name: step for step in STEPS}
    for outcome in outcomes:
        where = f"{outcome.step} (faults in the call: {outcome.faults or 'none'})"
        if outcome.error is not None:
            if not outcome.faults:
                problems.append(f"{where} failed with no fault of its own: {outcome.error!r}")
            problem = _error_problem(outcome.error, fault)
            if problem:
                problems.append(f"{where}: {problem}")
    try:
        verify = agentstate.connect(fault.path)
    except Exception as exc:
        return [*problems, f"the database does not open on the normal VFS: {exc!r}"]
    try:
        integrity = verify.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            problems.append(f"integrity_check: {integrity}")
        orphans = verify.execute("PRAGMA foreign_key_check").fetchall()
        if orphans:
            problems.append(f"foreign_key_check: {orphans}")
        for outcome in outcomes:
            step = by_name.get(outcome.step)
            try:
                if step is None:
                    effect = _found(lambda c: Agents(c).get_router("r-after"))(verify, outcome.returned, seed)
                else:
                    effect = step.effect(verify, outcome.returned, seed)
            except AssertionError as exc:
                problems.append(f"{outcome.step}: {exc}")
                continue
            synced = any(f.startswith("sync") for f in outcome.faults)
            if outcome.error is None and effect == "absent":
                problems.append(f"{outcome.step} returned but its write is missing")
            elif outcome.error is not None and effect == "present" and not synced:
                problems.append(f"{outcome.step} raised {outcome.error!r} but its write is there")
    finally:
        verify.close()
    return problems


# --- the tests -------------------------------------------------------------------------------------

# name: (operation, file, SQLite error the shim returns)
FAULTS: dict[str, tuple[Op, FileKind, int]] = {
    "read-main": ("read", "main", apsw.SQLITE_IOERR_READ),
    "read-wal": ("read", "wal", apsw.SQLITE_IOERR_READ),
    "write-main": ("write", "main", apsw.SQLITE_IOERR_WRITE),
    "write-wal": ("write", "wal", apsw.SQLITE_IOERR_WRITE),
    "write-journal": ("write", "journal", apsw.SQLITE_IOERR_WRITE),
    "full-main": ("write", "main", apsw.SQLITE_FULL),
    "full-wal": ("write", "wal", apsw.SQLITE_FULL),
    "full-journal": ("write", "journal", apsw.SQLITE_FULL),
    "sync-main": ("sync", "main", apsw.SQLITE_IOERR_FSYNC),
    "sync-wal": ("sync", "wal", apsw.SQLITE_IOERR_FSYNC),
    "sync-journal": ("sync", "journal", apsw.SQLITE_IOERR_FSYNC),
}
# Where a test tries every moment, past this many it takes an even spread (~15 ms a run).
MAX_MOMENTS = 30


def _fault(name: str, path: Path, at: int, sticky: bool) -> Fault:
    op, file, code = FAULTS[name]
    return Fault(op, file, code, str(path), at=at, sticky=sticky)


def _moments(count: int) -> list[int]:
    """Every moment up to MAX_MOMENTS; past that an even spread that keeps the first and last."""
    if count <= MAX_MOMENTS:
        return list(range(1, count + 1))
    return sorted({1 + round(i * (count - 1) / (MAX_MOMENTS - 1)) for i in range(MAX_MOMENTS)})


def _moments_of_calls(outcomes: list[Outcome]) -> list[int]:
    """From a dry run: the first, middle and last matching operation of every call, so that each
    call meets the fault at its start (a transaction's first WAL write or read) and its end (the
    commit frame) whatever the number of operations in between."""
    moments: set[int] = set()
    for outcome in outcomes:
        first, last = outcome.ops[0] + 1, outcome.ops[1]
        if last >= first:
            moments |= {first, (first + last) // 2, last}
    return sorted(moments)


def _report(problems: dict[int, list[str]], what: str) -> str:
    lines = [f"at moment {at}: {p}" for at, found in problems.items() for p in found]
    shown = "\n".join(lines[:20]) + (f"\n... and {len(lines) - 20} more" if len(lines) > 20 else "")
    return f"{what}: {len(problems)} moment(s) broke a promise:\n{shown}"


WORKLOAD_CASES = [
    pytest.param(name, durability, sticky, id=f"{name}-{durability}-{'sticky' if sticky else 'once'}")
    for name in ("read-main", "read-wal", "write-wal", "full-wal", "sync-wal")
    for durability in ("normal", "full")
    for sticky in (False, True)
    # Reads do not depend on durability, and an I/O error fails the same writes as a full disk
    # (tried under both); under synchronous=NORMAL a WAL commit does not fsync at all.
    if durability == ("full" if name == "sync-wal" else "normal") or name == "full-wal"
]


@pytest.mark.parametrize(("name", "durability", "sticky"), WORKLOAD_CASES)
def test_every_call_under_a_fault_either_lands_whole_or_fails_cleanly(
    seeded: Seeded, tmp_path: Path, faulty_vfs: FaultyVFS, name: str, durability: Durability, sticky: bool
) -> None:
    """The fault armed at the first, middle and last matching operation of each call in a dry run
    (once: a transient error; sticky: a disk that stays full until disarmed); see
    _check_outcomes for what each run must satisfy."""
    # A dry run counts the operations the fault can hit, and checks the workload's own baseline.
    dry = _fault(name, tmp_path / "dry.db", 10**9, sticky)
    baseline = _run(seeded, faulty_vfs, dry, durability)
    assert _check_outcomes(baseline, seeded.seed, dry) == []
    assert all(o.error is None for o in baseline)
    assert dry.seen > 0, f"the workload never does a {name} operation: this case tests nothing"
    problems: dict[int, list[str]] = {}
    fired = 0
    for at in _moments_of_calls(baseline):
        fault = _fault(name, tmp_path / f"at{at}.db", at, sticky)
        outcomes = _run(seeded, faulty_vfs, fault, durability)
        fired += fault.fired > 0
        found = _check_outcomes(outcomes, seeded.seed, fault)
        if found:
            problems[at] = found
    assert fired, "the fault never fired"
    assert not problems, _report(problems, f"{name}, durability={durability}, {'sticky' if sticky else 'once'}")


def _close_under(seeded: Seeded, vfs: FaultyVFS, fault: Fault) -> list[str]:
    """Run STEPS with no fault, then close with ``fault`` armed; the problems found."""
    path = Path(fault.path)
    conn = _open(seeded, path, vfs)
    problems = []
    outcomes = []
    try:
        outcomes = [Outcome(step.name, step.call(conn, seeded.seed)) for step in STEPS]
    finally:
        vfs.arm(fault)
        try:
            conn.close()
        except Exception as exc:
            # SQLite ignores a failed checkpoint at close (sqlite3_close returns SQLITE_OK), but
            # apsw re-raises the exception our Python VFS raised; with a real disk nothing is raised.
            if exc not in fault.raised and not isinstance(exc, errors.AgentStateError):
                problems.append(f"close raised {exc!r}")
        finally:
            vfs.disarm()
    if conn in apsw.connections():
        problems.append("close left the connection open")
        conn.close()
    return problems + _check_outcomes(outcomes, seeded.seed, fault)


@pytest.mark.parametrize("name", ["read-wal", "write-main", "full-main", "sync-main", "sync-wal"])
def test_a_close_whose_checkpoint_fails_loses_nothing(
    seeded: Seeded, tmp_path: Path, faulty_vfs: FaultyVFS, name: str
) -> None:
    """Closing the last connection checkpoints the WAL into the database file; when that fails
    (the disk filled up meanwhile) the WAL stays, and the next open must recover every commit."""
    dry = _fault(name, tmp_path / "dry.db", 10**9, sticky=True)
    assert _close_under(seeded, faulty_vfs, dry) == []
    assert dry.seen > 0, f"closing never does a {name} operation: this case tests nothing"
    problems: dict[int, list[str]] = {}
    for at in _moments(dry.seen):
        fault = _fault(name, tmp_path / f"at{at}.db", at, sticky=True)
        found = _close_under(seeded, faulty_vfs, fault)
        if not fault.fired:
            found.append("the fault never fired")
        if found:
            problems[at] = found
    assert not problems, _report(problems, f"close with {name}")


def _open_under(seeded: Seeded, vfs: FaultyVFS, fault: Fault) -> list[str]:
    """Open a copy of the seeded database (its WAL to recover) through the shim with ``fault``
    armed; then open it normally and check the seed is all there."""
    path = Path(fault.path)
    shutil.copyfile(seeded.main, path)
    shutil.copyfile(seeded.wal, f"{path}-wal")
    problems = []
    vfs.arm(fault)
    try:
        conn = agentstate.connect(_uri(path, vfs))
    except Exception as exc:
        conn = None
        if not fault.fired:
            problems.append(f"connect failed with no fault: {exc!r}")
        problem = _error_problem(exc, fault)
        if problem:
            problems.append(f"connect: {problem}")
    finally:
        vfs.disarm()
    leaked = [c for c in apsw.connections() if c is not conn and c.filename == str(path) and not is_background(c)]
    if leaked:
        problems.append(f"the failed connect left {len(leaked)} connection(s) open")
    for c in [*leaked, *([conn] if conn else [])]:
        c.close()
    found = _check_outcomes([], seeded.seed, fault)
    if found:
        return problems + found
    verify = agentstate.connect(path)
    try:
        log = MessageLog(verify)
        tasks = sum(TaskManager(verify, "p0").counts().values())
        counts = (log.count("planner", "p0"), log.count("worker", "t-old"), tasks)
        if counts != (20, 40, len(HELD) + len(PENDING)):
            problems.append(f"the seed is not all there: (p0 messages, t-old messages, p0 tasks) = {counts}")
    finally:
        verify.close()
    return problems


@pytest.mark.parametrize("name", ["read-main", "read-wal"])
def test_opening_a_database_on_a_failing_disk_fails_cleanly(
    seeded: Seeded, tmp_path: Path, faulty_vfs: FaultyVFS, name: str
) -> None:
    """connect() on an existing file reads its schema and bookkeeping (and, here, recovers its
    WAL): a transient read error at any of those moments raises an AgentStateError of the right
    class (or is survived), leaves no connection open, and harms nothing."""
    dry = _fault(name, tmp_path / "dry.db", 10**9, sticky=False)
    assert _open_under(seeded, faulty_vfs, dry) == []
    assert dry.seen > 0, f"opening never does a {name} operation: this case tests nothing"
    problems: dict[int, list[str]] = {}
    for at in _moments(dry.seen):
        found = _open_under(seeded, faulty_vfs, _fault(name, tmp_path / f"at{at}.db", at, sticky=False))
        if found:
            problems[at] = found
    assert not problems, _report(problems, f"open with {name}")


def _connect_under(vfs: FaultyVFS, fault: Fault) -> list[str]:
    """Create a database through the shim with ``fault`` armed; then, space back, open it normally."""
    path = Path(fault.path)
    vfs.arm(fault)
    problems = []
    conn = None
    try:
        conn = agentstate.connect(_uri(path, vfs))
    except Exception as exc:
        if not fault.fired:
            problems.append(f"connect failed with no fault: {exc!r}")
        problem = _error_problem(exc, fault)
        if problem:
            problems.append(f"connect: {problem}")
    finally:
        vfs.disarm()
    leaked = [c for c in apsw.connections() if c is not conn and c.filename == str(path) and not is_background(c)]
    if leaked:
        problems.append(f"the failed connect left {len(leaked)} connection(s) open")
    for c in leaked:
        c.close()
    if conn is not None:
        conn.close()
    # The interrupted creation must not leave a file that opens wrong: the next connect finishes
    # it, with the pragmas a new file gets (WAL, incremental auto_vacuum) and every migration.
    try:
        conn = agentstate.connect(path)
    except Exception as exc:
        return [*problems, f"the next connect, fault disarmed, failed: {exc!r}"]
    try:
        settings = (
            conn.execute("PRAGMA integrity_check").fetchall(),
            conn.pragma("journal_mode"),
            conn.pragma("auto_vacuum"),
            agentstate.status(conn).pending,
        )
        if settings != ([("ok",)], "wal", 2, ()):
            problems.append(f"after the next connect: integrity, journal_mode, auto_vacuum, pending = {settings}")
        Agents(conn).create_planner("after")
    except Exception as exc:
        problems.append(f"the database does not work after the next connect: {exc!r}")
    finally:
        conn.close()
    return problems


@pytest.mark.parametrize(
    "name",
    [
        "read-main",
        "write-main",
        "write-wal",
        "write-journal",
        "full-main",
        "full-wal",
        "full-journal",
        "sync-main",
        "sync-wal",
        "sync-journal",
    ],
)
def test_creating_a_database_on_a_failing_disk_fails_cleanly_and_can_be_retried(
    tmp_path: Path, faulty_vfs: FaultyVFS, name: str
) -> None:
    """connect() on a new file sets its pragmas and applies every migration: with a fault at any
    of those moments it raises an AgentStateError (or succeeds), leaves no connection open, and
    the next connect() produces the same database a clean one would."""
    dry = _fault(name, tmp_path / "dry.db", 10**9, sticky=True)
    assert _connect_under(faulty_vfs, dry) == []
    assert dry.seen > 0, f"creating a database never does a {name} operation: this case tests nothing"
    problems: dict[int, list[str]] = {}
    for at in _moments(dry.seen):
        found = _connect_under(faulty_vfs, _fault(name, tmp_path / f"at{at}.db", at, sticky=True))
        if found:
            problems[at] = found
    assert not problems, _report(problems, f"connect with {name}")


def test_async_calls_and_write_async_on_a_full_disk_raise_disk_full_and_recover(
    tmp_path: Path, faulty_vfs: FaultyVFS
) -> None:
    """The async classes and write_async() run the same writes on the connection's own thread:
    a full disk reaches the caller as DiskFullError there too, and the connection works on."""
    path = tmp_path / "async.db"

    async def own_write(conn: Any, router_id: str) -> None:
        async with agentstate.write_async(conn):
            await conn.execute("INSERT INTO routers (router_id) VALUES (?)", (router_id,))

    async def scenario() -> list[str]:
        conn = await agentstate.connect_async(_uri(path, faulty_vfs))
        try:
            await agentstate.AsyncAgents(conn).create_planner("p")
            log, tm = agentstate.AsyncMessageLog(conn), agentstate.AsyncTaskManager(conn, "p")
            faulty_vfs.arm(_fault("full-wal", path, 1, sticky=True))
            failed = []
            for call in (
                lambda: log.append("planner", "p", role="user", content="lost"),
                lambda: tm.create_task("lost", worker_id="t-lost"),
                lambda: own_write(conn, "r-lost"),
            ):
                with pytest.raises(errors.DiskFullError) as caught:
                    await call()
                failed.append(type(_apsw_cause(caught.value)).__name__)
            faulty_vfs.disarm()
            await log.append("planner", "p", role="user", content="kept")
            await own_write(conn, "r-kept")
            return failed
        finally:
            faulty_vfs.disarm()
            await conn.aclose()

    assert asyncio.run(scenario()) == ["FullError"] * 3
    conn = agentstate.connect(path)
    try:
        assert [m.content for m in MessageLog(conn).latest("planner", "p", 10)] == ["kept"]
        assert not _has_task(conn, "t-lost")
        assert [r.router_id for r in Agents(conn).list_routers()] == ["r-kept"]
    finally:
        conn.close()


# --- the background checkpointer ---------------------------------------------------------------

# A bound on waits for the checkpoint thread (it retries about a second after a failure): only a
# broken checkpointer ever waits this long.
GUARD_S = 20.0


@pytest.fixture
def default_faulty_vfs() -> Iterator[FaultyVFS]:
    """The shim as the process's default VFS, so that connections opened without naming one (the
    background checkpointer's) go through it too."""
    previous = apsw.vfs_names()[0]
    vfs = FaultyVFS(f"{VFS_NAME}-default", makedefault=True)
    yield vfs
    vfs.disarm()
    vfs.observer = None
    vfs.unregister()
    assert apsw.vfs_names()[0] == previous  # the process's default is back


class _Records(logging.Handler):
    """Keeps every record; sets ``warned`` on a warning or worse (SQLite's own log arrives at INFO)."""

    def __init__(self, warned: threading.Event) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.warned = warned

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.WARNING:
            self.warned.set()


@pytest.mark.parametrize("name", ["full-main", "sync-main"])
def test_the_checkpointer_survives_a_full_disk_and_checkpoints_once_space_returns(
    db_path: Path, default_faulty_vfs: FaultyVFS, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A background checkpoint that fails (the disk is full as it copies pages into the database
    file, or the fsync after fails) neither kills its thread nor goes unreported: a warning naming
    the file goes to the "agentstate" logger, and once the disk is back the thread checkpoints
    again by itself."""
    vfs = default_faulty_vfs
    reported = threading.Event()  # a warning logged, or a thread that died
    died: list[threading.ExceptHookArgs] = []

    def excepthook(args: threading.ExceptHookArgs) -> None:
        died.append(args)
        reported.set()

    monkeypatch.setattr(threading, "excepthook", excepthook)
    space_back = threading.Event()
    checkpointed = threading.Event()

    def observe(op: Op, file: FileKind, path: str, ok: bool) -> None:
        # A checkpoint syncs the database file once it has copied the whole WAL into it; nothing
        # else writes the database file here (agentstate's connections never checkpoint themselves
        # below 16,000 WAL pages).
        if space_back.is_set() and op == "sync" and file == "main" and ok and path == str(db_path):
            checkpointed.set()

    vfs.observer = observe
    logger = logging.getLogger("agentstate")
    handler = _Records(reported)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    conn = agentstate.connect(db_path)
    try:
        Agents(conn).create_planner("p")
        fault = vfs.arm(_fault(name, db_path, 1, sticky=True))  # the disk stays full until disarmed
        # One commit of over a thousand WAL pages makes a background checkpoint due.
        MessageLog(conn).append("planner", "p", role="tool", content="x" * (5 << 20))
        assert reported.wait(GUARD_S), "the checkpoint neither failed nor reported anything"
        assert fault.fired, f"something was reported before the checkpoint failed: {handler.records}"
        assert not died, f"the checkpoint thread died: {died[0].exc_type.__name__}: {died[0].exc_value}"
        warned = [r for r in handler.records if r.levelno >= logging.WARNING and str(db_path) in r.getMessage()]
        assert warned, f"no warning naming the file was logged: {[r.getMessage() for r in handler.records]}"

        vfs.disarm()
        space_back.set()
        # No new commit: the checkpointer itself retries, or a process that stopped writing when
        # the disk filled would keep its whole WAL.
        assert checkpointed.wait(GUARD_S), "no checkpoint succeeded after space came back"
        assert not died, f"the checkpoint thread died: {died[0].exc_type.__name__}: {died[0].exc_value}"
        assert MessageLog(conn).count("planner", "p") == 1
    finally:
        conn.close()
        logger.removeHandler(handler)
        logger.setLevel(level)
