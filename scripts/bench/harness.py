"""One data size, measured: build every contender's database, time every operation on every
contender in interleaved rounds (each round starting with another contender), check that all found
the same rows and that no task was done twice, and clean up. And how long to measure (Budget)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.contenders.registry import CONTENDERS
from bench.data import DataSpec
from bench.formats import format_us
from bench.log import log
from bench.machine import cpu_seconds, others_share
from bench.operations import Operation
from bench.postgres import BenchServer
from bench.statistics import record
from bench.workers import Worker, WorkerError, gather


@dataclass(frozen=True)
class Budget:
    rounds: int
    """Interleaved rounds: in each, every contender takes its turn at the operation."""
    seconds: float
    """Time per contender, operation and round (twice this for a claim round)."""
    max_calls: int
    """Calls per contender, operation and round, at most (the fast contenders stop here)."""
    min_calls: int
    """Calls per contender, operation and round, at least (the slow ones run over the time)."""
    claim_quota: int
    """Tasks per contender and claim round, all its executor processes together."""
    keys: int
    """Planners (and their message streams) that the read operations cycle through."""


FULL = Budget(rounds=5, seconds=1.0, max_calls=4_000, min_calls=3, claim_quota=8_000, keys=32)
QUICK = Budget(rounds=2, seconds=0.02, max_calls=50, min_calls=1, claim_quota=40, keys=8)
DEFAULT_SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (500, 5_000)


def rotated(items: Sequence[Any], turn: int) -> list[Any]:
    """Each round starts with a different contender, so none always runs first or last."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]


class SizeRun:
    """Build one size's databases, measure every operation on every contender, clean up."""

    def __init__(
        self,
        spec: DataSpec,
        names: Sequence[str],
        ops: Sequence[Operation],
        budget: Budget,
        data_dir: Path,
        postgres: BenchServer | None = None,
    ) -> None:
        self.spec = spec
        self.names = list(names)
        self.ops = ops
        self.budget = budget
        self.data_dir = data_dir
        # The floor looks up agentstate's rows in agentstate's own file.
        source = "agentstate" if "agentstate" in names else "raw_apsw"
        shared = {"floor": source, "agentstate_unmonitored": "agentstate", "agentstate_async": "agentstate"}
        self.paths: dict[str, Path | str] = {n: data_dir / f"{shared.get(n, n)}.db" for n in names}
        self.postgres = postgres
        # The postgres contender's database on the server, one per size (and per run: a server
        # given with --postgres-url may be shared).
        self.pg_database = f"agentstate_bench_{os.getpid()}_{spec.label.lower()}"
        self.workers: dict[str, Worker] = {}
        self.mismatches: list[dict[str, Any]] = []
        self.db_bytes: dict[str, int] = {}

    def start(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        if "postgres" in self.names:
            assert self.postgres is not None, "the postgres contender needs a server"
            self.paths["postgres"] = self.postgres.create(self.pg_database)
        self.workers = {n: Worker(n, self.paths[n], self.spec) for n in self.names}
        builders = [w for n, w in self.workers.items() if CONTENDERS[n].builds]
        log(
            f"{self.spec.label}: building {len(builders)} databases of {self.spec.size:,} tasks and "
            f"{self.spec.size:,} messages over {self.spec.planners:,} planners, in parallel"
        )
        gather(builders, "build")
        self.db_bytes = {w.name: self._bytes(w.name) for w in builders}
        sizes = ", ".join(f"{n} {b / 2**20:,.0f} MiB" for n, b in self.db_bytes.items())
        log(f"{self.spec.label}: built ({sizes}); opening")
        gather(list(self.workers.values()), "open")

    def _bytes(self, name: str) -> int:
        path = self.paths[name]
        if isinstance(path, str):
            assert self.postgres is not None
            return self.postgres.database_bytes(self.pg_database)
        return path.stat().st_size

    def stop(self, keep_data: bool) -> None:
        for worker in self.workers.values():
            worker.stop()
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if "postgres" in self.names and self.postgres is not None:
                with contextlib.suppress(Exception):  # the server may be gone with a failed run
                    self.postgres.drop(self.pg_database)

    def measure(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for op in self.ops:
            names = [n for n in self.names if op.name in CONTENDERS[n].operations]
            if not names:
                continue
            rows = self.measure_claims(op, names) if op.processes else self.measure_calls(op, names)
            results += rows
            medians = ", ".join(f"{r['contender']} {format_us(r['median_us'])}" for r in rows)
            log(f"{self.spec.label} {op.name}: median µs {medians}")
        return results

    # -- calls timed one by one -----------------------------------------------------------------

    def measure_calls(self, op: Operation, names: list[str]) -> list[dict[str, Any]]:
        group = [self.workers[n] for n in names]
        keys = self.spec.key_planners(self.budget.keys)
        log(f"{self.spec.label} {op.name}: warming up (an untimed pass over the arguments, every contender)")
        fingerprints = gather(group, "prepare", op=op.name, keys=keys)
        self.check_agreement(op, names, fingerprints)
        samples: dict[str, list[int]] = defaultdict(list)
        b = self.budget
        before = cpu_seconds()
        for turn in range(b.rounds):
            for worker in rotated(group, turn):
                samples[worker.name] += worker.call(
                    "measure", op=op.name, seconds=b.seconds, max_calls=b.max_calls, min_calls=b.min_calls
                )
            counts = ", ".join(f"{n} {len(samples[n])}" for n in names)
            log(f"{self.spec.label} {op.name}: round {turn + 1}/{b.rounds} (calls so far: {counts})")
        others = others_share(before, cpu_seconds())
        return [record(n, op, self.spec, samples[n], rounds=b.rounds, others_cpu=others) for n in names]

    def check_agreement(self, op: Operation, names: list[str], fingerprints: list[list[Any]]) -> None:
        """Every contender must have found the same task, or the same messages, for each key."""
        by_name = {n: f for n, f in zip(names, fingerprints, strict=True) if f}
        if len(by_name) < 2:
            return
        reference = "agentstate" if "agentstate" in by_name else next(iter(by_name))
        for name, found in by_name.items():
            differ = sum(a != b for a, b in zip(found, by_name[reference], strict=True))
            if differ:
                log(
                    f"WARNING {self.spec.label} {op.name}: {name} disagrees with {reference} on {differ} of {len(found)} keys"
                )
                self.mismatches.append(
                    {
                        "size": self.spec.size,
                        "operation": op.name,
                        "contender": name,
                        "reference": reference,
                        "keys_differing": differ,
                    }
                )

    # -- claim + finish ---------------------------------------------------------------------------

    def measure_claims(self, op: Operation, names: list[str]) -> list[dict[str, Any]]:
        rounds = self.budget.rounds * op.round_factor
        extras = {
            n: [Worker(n, self.paths[n], self.spec, label=f"{n} executor {i + 2}") for i in range(op.processes - 1)]
            for n in names
        }
        try:
            if op.processes > 1:
                log(f"{self.spec.label} {op.name}: starting {op.processes - 1} more executor processes per contender")
                gather([w for group in extras.values() for w in group], "open")
            executors = {n: [self.workers[n], *extras[n]] for n in names}
            if op.backlog:
                self.set_backlog(op, names)
            quota = max(1, min(self.budget.claim_quota, op.backlog or self.spec.pending))
            totals: dict[str, dict[str, Any]] = {n: defaultdict(int, samples=[]) for n in names}
            for n in names:
                # Untimed: warm the pending tasks' pages, and every executor process's statements
                # (a PostgreSQL client also reads its query files on its first call). Its duplicate
                # check counts all the same.
                warm = self.claim_round(n, executors[n], min(quota, max(20, 2 * len(executors[n]))), op.batch, op.fused)
                for key in ("duplicates", "unfinished"):
                    totals[n][key] += warm[key]
            before = cpu_seconds()
            for turn in range(rounds):
                for n in rotated(names, turn):
                    outcome = self.claim_round(n, executors[n], quota, op.batch, op.fused)
                    t = totals[n]
                    t["samples"] += outcome["samples"]
                    for key in ("wall", "duplicates", "unfinished", "lock_errors"):
                        t[key] += outcome[key]
                done = ", ".join(f"{n} {len(totals[n]['samples'])}" for n in names)
                log(f"{self.spec.label} {op.name}: round {turn + 1}/{rounds} (tasks so far: {done})")
            others = others_share(before, cpu_seconds())
        finally:
            for group in extras.values():
                for worker in group:
                    worker.stop()
            if op.backlog:
                gather([self.workers[n] for n in names], "end_backlog")
        return [
            record(
                n,
                op,
                self.spec,
                t["samples"],
                rounds=rounds,
                processes=op.processes,
                throughput_per_s=round(len(t["samples"]) / t["wall"], 1),
                duplicates=t["duplicates"],
                unfinished=t["unfinished"],
                lock_errors=t["lock_errors"],
                others_cpu=others,
            )
            for n, t in totals.items()
        ]

    def set_backlog(self, op: Operation, names: list[str]) -> None:
        """Untimed: exactly ``op.backlog`` tasks pending in every contender's queue."""
        log(f"{self.spec.label} {op.name}: setting up a backlog of {op.backlog:,} pending tasks per contender")
        found = gather([self.workers[n] for n in names], "backlog", count=op.backlog)
        wrong = [f"{n} {count:,}" for n, count in zip(names, found, strict=True) if count != op.backlog]
        if wrong:
            raise WorkerError(
                f"{self.spec.label} {op.name}: the backlog is not {op.backlog:,} tasks: {', '.join(wrong)}"
            )

    def claim_round(self, name: str, group: list[Worker], quota: int, batch: int, fused: bool) -> dict[str, Any]:
        """All of a contender's executors at once, from one start time; then check that no task
        was done twice and that each was finished, and put the tasks back to pending."""
        start_at = time.monotonic() + 0.05
        deadline = start_at + 2 * self.budget.seconds
        per_process = math.ceil(quota / len(group))
        for i, worker in enumerate(group):
            worker.send(
                "executor",
                owner=f"{name}-executor-{i + 1}",
                quota=per_process,
                start_at=start_at,
                deadline=deadline,
                batch=batch,
                fused=fused,
            )
        outs = [worker.receive() for worker in group]
        ids = [task for out in outs for task in out["ids"]]
        unique = sorted(set(ids))
        duplicates = len(ids) - len(unique)
        finished = group[0].call("completed_and_reset", ids=unique)
        if duplicates or finished != len(unique):
            log(
                f"ERROR {self.spec.label} {name}: {duplicates} tasks done twice, "
                f"{len(unique) - finished} of {len(unique)} not left completed"
            )
        return {
            "samples": [s for out in outs for s in out["samples"]],
            "wall": max(o["ended"] for o in outs) - min(o["began"] for o in outs),
            "duplicates": duplicates,
            "unfinished": len(unique) - finished,
            "lock_errors": sum(o["lock_errors"] for o in outs),
        }
