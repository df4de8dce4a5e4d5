"""Retention under load: how fast `agentstate.cleanup` deletes, and what it costs another writer.

Builds a store of N recorded tasks a month old (each with its creation event and one worker
message), starts a second process that appends messages one at a time and times each append,
measures that writer alone for a few seconds (the baseline), then again while cleanup deletes
every old task in batches. Prints the writer's latency table for both phases (median, p99,
p99.9, and the ratio to the baseline) and cleanup's delete rate.

    python scripts/bench_retention.py                 # 1M tasks (about 2 GB of disk, a few minutes)
    python scripts/bench_retention.py --tasks 100000  # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import agentstate
from agentstate.agents import Agents
from agentstate.messages import MessageLog

OLD = "2000-01-01T00:00:00.000000Z"


def build(path: Path, tasks: int) -> None:
    """N recorded tasks of one planner, recorded long ago, each with one event and one message."""
    conn = agentstate.connect(path)
    try:
        Agents(conn).create_planner("p")
        Agents(conn).create_planner("writer")
        done = 0
        while done < tasks:
            n = min(100_000, tasks - done)
            with agentstate.write(conn):
                conn.execute(
                    """
                    WITH RECURSIVE i(k) AS (SELECT ? UNION ALL SELECT k + 1 FROM i WHERE k < ?)
                    INSERT INTO workers (worker_id, planner_id, task_status, description, result,
                                         attempts, fence, created_at, updated_at)
                    SELECT printf('%032x', k), 'p', 'recorded', 'a finished task', '{"ok":true}', 1, 1, ?, ?
                    FROM i
                    """,
                    (done, done + n - 1, OLD, OLD),
                )
                conn.execute(
                    """
                    INSERT INTO worker_messages (agent_id, position, role, content, created_at)
                    SELECT worker_id, 1, 'assistant', 'the result, in words', created_at
                    FROM workers WHERE worker_id >= printf('%032x', ?) AND worker_id <= printf('%032x', ?)
                    """,
                    (done, done + n - 1),
                )
            done += n
            print(f"built {done:,}/{tasks:,} tasks", file=sys.stderr, flush=True)
    finally:
        conn.close()


def writer(path: str, phase: Any, results: Any) -> None:
    """Append one message at a time; hand back each phase's latencies when told."""
    conn = agentstate.connect(path)
    log = MessageLog(conn)
    samples: list[int] = []
    current = phase.value
    try:
        while current >= 0:
            start = time.perf_counter_ns()
            log.append("planner", "writer", role="user", content="a message while retention runs")
            samples.append(time.perf_counter_ns() - start)
            if phase.value != current:
                results.put((current, samples))
                samples, current = [], phase.value
    finally:
        conn.close()


def summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000

    return {
        "n": len(ordered),
        "median": statistics.median(ordered) / 1000,
        "p99": q(0.99),
        "p999": q(0.999),
        "max": ordered[-1] / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000, help="recorded tasks to build and delete (default 1M)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="how long to time the writer alone")
    parser.add_argument("--batch-size", type=int, default=1000, help="cleanup's rows per transaction (default 1000)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the database (default: a temp dir)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="agentstate-retention-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "retention.db"
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    build(path, args.tasks)
    print(f"built in {time.perf_counter() - started:.1f} s: {path.stat().st_size / 1e6:,.0f} MB", file=sys.stderr)

    ctx = multiprocessing.get_context("spawn")
    phase, results = ctx.Value("i", 0), ctx.Queue()
    proc = ctx.Process(target=writer, args=(str(path), phase, results))
    proc.start()
    time.sleep(1.0)  # the writer is up and warm
    phase.value = 1  # phase 0 was the warm-up
    time.sleep(args.baseline_seconds)
    phase.value = 2
    conn = agentstate.connect(path)
    try:
        report = agentstate.cleanup(conn, batch_size=args.batch_size)
    finally:
        conn.close()
    phase.value = -1
    phases: dict[int, list[int]] = {}
    for _ in range(3):
        key, samples = results.get(timeout=60)
        phases[key] = samples
    proc.join(60)

    base, during = summary(phases[1]), summary(phases[2])
    rows = report.tasks_deleted + report.task_events_deleted + report.worker_messages_deleted
    print()
    print(f"cleanup: {report.tasks_deleted:,} tasks ({rows:,} rows with their events and messages) in "
          f"{report.seconds:.1f} s = {report.tasks_deleted / report.seconds:,.0f} tasks/s, "
          f"{rows / report.seconds:,.0f} rows/s; batch {args.batch_size}; file "
          f"{report.file_bytes_before / 1e6:,.0f} MB -> {report.file_bytes_after / 1e6:,.0f} MB")  # fmt: skip
    print()
    print("| another process's append | calls | median µs | p99 µs | p99.9 µs | max µs | p99 vs alone |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in (("alone (baseline)", base), ("during cleanup", during)):
        print(
            f"| {name} | {s['n']:,} | {s['median']:,.0f} | {s['p99']:,.0f} | {s['p999']:,.0f} | {s['max']:,.0f} "
            f"| {s['p99'] / base['p99']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
