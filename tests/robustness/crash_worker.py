"""A writer for tests/robustness/test_crash.py to SIGKILL at random moments.

Run as ``python tests/robustness/crash_worker.py MODE DB --run R --seed S ...``. It runs one short workload
against the database and reports on stdout, one flushed JSON object a line:

- ``{"ready": ...}`` at the end of the startup: the imports, then (tasks, messages) connect()
  and loading the state; migrations report it before opening the file, which is their work;
- ``{"begin": {...}}`` before each call: what the call may write if it commits, so the parent
  can tell an in-flight call that committed from anything else;
- ``{"ack": ...}`` only after the call returned, that is after its transaction committed;
- ``{"done": true}`` at the end of an uninterrupted run.

Modes: ``tasks`` (TaskManager transitions), ``messages`` (MessageLog appends) and
``migrations`` (``migrate`` over a folder of numbered files). Tags in ids, results and contents
(``r0007.o0012``: run 7, call 12) let the parent attribute every stored row to one call.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import agentstate
from agentstate import migrations
from agentstate.agents import Agents
from agentstate.messages import Message, MessageLog, NewMessage, Stream
from agentstate.sqlite import opening
from agentstate.tasks import Claim, Task, TaskManager, TaskStatus

PLANNERS = ("planner-a", "planner-b")
CONVERSATIONS = ("conv-a", "conv-b")
TASK_STREAMS = ("task-a", "task-b")  # tasks whose worker_messages streams the messages mode writes
OWNERS: dict[Stream, tuple[str, ...]] = {"router": CONVERSATIONS, "planner": PLANNERS, "worker": TASK_STREAMS}
FINISHED: tuple[TaskStatus, ...] = ("completed", "failed_validation")
MAX_HELD = 12  # claims held at once: enough for batches, few enough that they get finished
MIN_PENDING = 30  # below this many pending tasks, creating them is likelier
# What the worker's PostgreSQL sessions are called, so that the parent can wait for a killed one's
# sessions to end before it reads what the kill left.
WORKER_APPLICATION = "agentstate-crash-worker"
# Leases outlive any soak: an expired one would let a claim take over (or fail, as poison) a task
# a killed run left claimed, transitions the ledger could not attribute to the call that made them.
LEASE_SECONDS = 3600.0

# An acknowledged task event as the task_events trigger stores it: (worker_id, to_status, fence, detail).
Event = tuple[str, str, int, Any]
# An acknowledged message: (stream, stream_id, position, content, idempotency_key).
Acked = tuple[str, str, int, str, str | None]


def emit(kind: str, value: Any) -> None:
    """One report line, written and flushed at once (after the call it reports has returned)."""
    sys.stdout.write(json.dumps({kind: value}) + "\n")
    sys.stdout.flush()


def tag(run: int, op: int) -> str:
    return f"r{run:04d}.o{op:04d}"


def event(task: Task) -> Event:
    """The task_events row a transition to ``task``'s state writes (detail only when it finished)."""
    return (task.worker_id, task.task_status, task.fence, task.result if task.task_status in FINISHED else None)


# --- setup (the warm-up run only: it is never killed) -------------------------------------------


def setup(conn: Any, mode: str) -> None:
    agents = Agents(conn)
    for planner in PLANNERS:
        agents.create_planner(planner)
    if mode == "messages":
        for conversation in CONVERSATIONS:
            agents.create_conversation(conversation)
        tm = TaskManager(conn, PLANNERS[0], actor="setup")
        for worker_id in TASK_STREAMS:
            tm.create_task(f"owner of the {worker_id} stream", worker_id=worker_id)


# --- tasks ---------------------------------------------------------------------------------------


def all_tasks(tm: TaskManager, status: TaskStatus) -> Iterator[Task]:
    page = tm.list_tasks(status, limit=500)
    while page:
        yield from page
        page = tm.list_tasks(status, after=page[-1], limit=500)


class TaskWorkload:
    """A planner-and-executor mix over two planners; every call's events are reported."""

    def __init__(self, conn: Any, run: int, rng: random.Random) -> None:
        self.run, self.rng, self.owner = run, rng, f"run-{run}"
        self.planners = {p: TaskManager(conn, p, actor=self.owner) for p in PLANNERS}
        self.executor = TaskManager(conn, actor=self.owner)  # claims across planners
        self.pending = {p: tm.counts()["pending"] for p, tm in self.planners.items()}
        # Claims held by this run, or (a killed run's leftovers) the token of a claimed task.
        self.held: dict[str, Claim | int] = {}
        self.finished: dict[str, Task] = {}
        for tm in self.planners.values():
            self.held.update((t.worker_id, t.fence) for t in all_tasks(tm, "claimed"))
            for status in FINISHED:
                self.finished.update((t.worker_id, t) for t in all_tasks(tm, status))

    def options(self) -> list[tuple[Callable[[int], None], float]]:
        claims = [c for c in self.held.values() if isinstance(c, Claim)]
        retryable = [
            t for t in self.finished.values() if t.task_status == "failed_validation" and t.attempts < t.max_attempts
        ]
        options: list[tuple[Callable[[int], None], float]] = [
            (self.create, 3.0 if sum(self.pending.values()) < MIN_PENDING else 0.5)
        ]
        if sum(self.pending.values()) and len(self.held) < MAX_HELD:
            options += [(self.claim, 2.0), (self.claim_many, 1.0)]
        if self.held:
            options += [
                (self.complete, 2.0),
                (self.fail, 1.0),
                (self.release, 0.3),
                (self.complete_and_claim_next, 1.5),
            ]
        if claims:
            options.append((self.complete_many, 1.0))
        if retryable:
            options.append((self.retry, 1.0))
        if self.finished:
            options.append((self.record, 1.5))
        return options

    def step(self, op: int) -> None:
        options = self.options()
        choice = self.rng.choices([o for o, _ in options], [w for _, w in options])[0]
        choice(op)

    @staticmethod
    def begin(lo: int, hi: int, to: list[str], ids: list[str] | None = None) -> None:
        """Announce a call: if it commits it writes lo..hi events (of these ids, when known)."""
        emit("begin", {"lo": lo, "hi": hi, "to": to, "ids": ids})

    def take(self, claim: Claim) -> None:
        self.held[claim.worker_id] = claim
        if self.pending[claim.task.planner_id] > 0:
            self.pending[claim.task.planner_id] -= 1

    def pick_held(self) -> tuple[str, Claim | int]:
        worker_id = self.rng.choice(sorted(self.held))
        return worker_id, self.held.pop(worker_id)

    def create(self, op: int) -> None:
        planner = self.rng.choice(PLANNERS)
        n = self.rng.choice([1, 1, 2, 5, 10, 20])
        specs = [
            {
                "description": f"task {i} of {tag(self.run, op)}",
                "worker_id": f"{tag(self.run, op)}.t{i:02d}",
                "task_context": {"i": i},
                "max_attempts": self.rng.randint(1, 3),
            }
            for i in range(n)
        ]
        self.begin(n, n, ["pending"], [s["worker_id"] for s in specs])
        tm = self.planners[planner]
        made = [tm.create_task(**specs[0])] if n == 1 else tm.create_tasks(specs)
        self.pending[planner] += n
        emit("ack", [event(t) for t in made])

    def claimer(self) -> TaskManager:
        ready = [p for p in PLANNERS if self.pending[p] > 0]
        if ready and self.rng.random() < 0.5:
            return self.planners[self.rng.choice(ready)]
        return self.executor

    def claim(self, op: int) -> None:
        self.begin(0, 1, ["claimed"])
        claim = self.claimer().claim(self.owner, lease_seconds=LEASE_SECONDS)
        if claim is not None:
            self.take(claim)
        emit("ack", [] if claim is None else [event(claim.task)])

    def claim_many(self, op: int) -> None:
        limit = self.rng.randint(2, 6)
        self.begin(0, limit, ["claimed"])
        claims = self.claimer().claim_many(self.owner, limit, lease_seconds=LEASE_SECONDS)
        for claim in claims:
            self.take(claim)
        emit("ack", [event(c.task) for c in claims])

    @staticmethod
    def target(worker_id: str, held: Claim | int) -> tuple[Claim | str, int | None]:
        """What a finishing call takes: our Claim, or a killed run's task id and its token."""
        return (held, None) if isinstance(held, Claim) else (worker_id, held)

    def finish_one(self, op: int, to: TaskStatus) -> None:
        worker_id, held = self.pick_held()
        self.begin(1, 1, [to], [worker_id])
        detail = {"op": tag(self.run, op), "to": to}
        claim, token = self.target(worker_id, held)
        if to == "completed":
            task = self.executor.complete(claim, token, result=detail)
        elif to == "failed_validation":
            task = self.executor.fail_validation(claim, token, reason=detail)
        else:
            task = self.executor.release(claim, token)
            self.pending[task.planner_id] += 1
        if to != "pending":
            self.finished[worker_id] = task
        emit("ack", [event(task)])

    def complete(self, op: int) -> None:
        self.finish_one(op, "completed")

    def fail(self, op: int) -> None:
        self.finish_one(op, "failed_validation")

    def release(self, op: int) -> None:
        self.finish_one(op, "pending")

    def complete_and_claim_next(self, op: int) -> None:
        worker_id, held = self.pick_held()
        result = {"op": tag(self.run, op), "to": "completed"}
        self.begin(1, 2, ["completed", "claimed"])
        claim, token = self.target(worker_id, held)
        nxt = self.executor.complete_and_claim_next(claim, token, result=result, lease_seconds=LEASE_SECONDS)
        done: Event = (worker_id, "completed", held.token if isinstance(held, Claim) else held, result)
        # The completed task is not returned: read it back for a later record.
        self.finished[worker_id] = self.executor.get_task(worker_id)
        if nxt is not None:
            self.take(nxt)
        emit("ack", [done] + ([] if nxt is None else [event(nxt.task)]))

    def complete_many(self, op: int) -> None:
        claims = [c for c in self.held.values() if isinstance(c, Claim)]
        batch = self.rng.sample(claims, self.rng.randint(1, len(claims)))
        ids = [c.worker_id for c in batch]
        self.begin(len(batch), len(batch), ["completed"], ids)
        done = self.executor.complete_many([(c, {"op": tag(self.run, op), "to": "completed"}) for c in batch])
        for task in done:
            del self.held[task.worker_id]
            self.finished[task.worker_id] = task
        emit("ack", [event(t) for t in done])

    def retry(self, op: int) -> None:
        retryable = sorted(
            w for w, t in self.finished.items() if t.task_status == "failed_validation" and t.attempts < t.max_attempts
        )
        worker_id = self.rng.choice(retryable)
        self.begin(1, 1, ["pending"], [worker_id])
        task = self.executor.retry(worker_id)
        del self.finished[worker_id]
        self.pending[task.planner_id] += 1
        emit("ack", [event(task)])

    def record(self, op: int) -> None:
        worker_id = self.rng.choice(sorted(self.finished))
        self.begin(1, 1, ["recorded"], [worker_id])
        task = self.executor.record(worker_id)
        del self.finished[worker_id]
        emit("ack", [event(task)])


# --- messages ------------------------------------------------------------------------------------


def content(run: int, op: int, i: int) -> str:
    return f"{tag(run, op)}.i{i:04d}"


def execute(log: MessageLog, spec: dict[str, Any]) -> list[Message]:
    """Run one append call described by ``spec`` (also how a retry replays it)."""
    stream: Stream = spec["stream"]
    rows = spec["rows"]  # [stream_id, role, content, metadata, idempotency_key]
    if spec["call"] == "append":
        sid, role, text, meta, key = rows[0]
        return [log.append(stream, sid, role=role, content=text, metadata=meta, idempotency_key=key)]
    if spec["call"] == "append_many":
        return log.append_many(stream, rows[0][0], [NewMessage(r, t, m, k) for _, r, t, m, k in rows])
    return log.append_bulk(stream, [(s, NewMessage(r, t, m, k)) for s, r, t, m, k in rows])


class MessageWorkload:
    """Single appends (some with idempotency keys, some retried), turns and bulk loads."""

    def __init__(self, conn: Any, run: int, rng: random.Random) -> None:
        self.log, self.run, self.rng = MessageLog(conn), run, rng
        self.keyed: list[dict[str, Any]] = []  # acknowledged calls whose every message has a key

    def spec(self, op: int) -> dict[str, Any]:
        call = self.rng.choices(["append", "append_many", "append_bulk"], [4, 3, 1.5])[0]
        stream: Stream = self.rng.choice(["router", "planner", "worker"])
        owners = OWNERS[stream]
        n = 1 if call == "append" else self.rng.randint(1, 40) if call == "append_many" else self.rng.randint(20, 150)
        fixed = self.rng.choice(owners)
        all_keyed = self.rng.random() < 0.4
        rows = []
        for i in range(n):
            text = content(self.run, op, i)
            keyed = all_keyed or self.rng.random() < 0.3
            sid = self.rng.choice(owners) if call == "append_bulk" else fixed
            role = self.rng.choice(["user", "assistant", "tool"])
            rows.append([sid, role, text, {"i": i} if i % 2 else None, f"key-{text}" if keyed else None])
        return {"call": call, "stream": stream, "tag": tag(self.run, op), "rows": rows}

    def call(self, spec: dict[str, Any]) -> None:
        retryable = all(row[4] is not None for row in spec["rows"])
        emit("begin", {"tag": spec["tag"], "n": len(spec["rows"]), "spec": spec if retryable else None})
        stored = execute(self.log, spec)
        if retryable and spec not in self.keyed:
            self.keyed.append(spec)
        emit("ack", [[m.stream, m.stream_id, m.position, m.content, m.idempotency_key] for m in stored])

    def step(self, op: int) -> None:
        if self.keyed and self.rng.random() < 0.1:
            self.call(self.rng.choice(self.keyed))  # a client retry: must return the stored messages
        else:
            self.call(self.spec(op))


# --- the three modes -----------------------------------------------------------------------------


def run_workload(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    conn = agentstate.connect(args.db, application_name=WORKER_APPLICATION)
    try:
        if args.setup:
            setup(conn, args.mode)
        workload: TaskWorkload | MessageWorkload = (
            TaskWorkload(conn, args.run, rng) if args.mode == "tasks" else MessageWorkload(conn, args.run, rng)
        )
        emit("ready", args.run)
        if args.retry:  # the previous run died inside this call: retry it first, as a client would
            assert isinstance(workload, MessageWorkload)
            workload.call(json.loads(args.retry))
        for op in range(args.ops):
            workload.step(op)
    finally:
        conn.close()


def run_migrations(args: argparse.Namespace) -> None:
    known = migrations.discover(Path(args.folder))
    emit("ready", args.run)
    conn = opening.open_connection(args.db)
    try:
        emit("ack", {"open": True})
        migrations.migrate(conn, known, on_apply=lambda m: emit("ack", {"version": m.version}))
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["tasks", "messages", "migrations"])
    parser.add_argument("db")
    parser.add_argument("--run", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--ops", type=int, default=0, help="calls to make (tasks, messages)")
    parser.add_argument("--setup", action="store_true", help="create the planners, conversations and tasks first")
    parser.add_argument("--retry", help="JSON spec of a call to replay first (messages)")
    parser.add_argument("--folder", help="the migrations folder (migrations)")
    args = parser.parse_args(argv)
    if args.mode == "migrations":
        run_migrations(args)
    else:
        run_workload(args)
    emit("done", True)


if __name__ == "__main__":
    main()
