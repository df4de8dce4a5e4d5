"""Writers contending for one file: N executor processes claim and complete tasks as fast as they
can, with agentstate's writer gate and without it (``connect(writer_gate=False)``: SQLite's lock
and the busy handler alone). Prints throughput and per-task latency percentiles, and checks that
no task was done twice.

    python scripts/bench_writers.py                      # 1, 2, 4, 8 processes, 4 s each
    python scripts/bench_writers.py --processes 4 --seconds 10 --tasks 300000

Each executor loops ``complete_and_claim_next`` (one write transaction per task); a sample is one
task's time, waiting included. The tasks are small, so the figures show the lock hand-off rather
than the per-task work (scripts/bench.py measures that on the 1M data set).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agentstate  # noqa: E402
from agentstate.agents import Agents  # noqa: E402
from agentstate.tasks import TaskManager  # noqa: E402


def executor(path: str, gate: bool, seconds: float, start_at: float, out: Queue[tuple[list[int], list[str]]]) -> None:
    conn = agentstate.connect(path, writer_gate=gate)
    tasks = TaskManager(conn, None)
    owner = f"executor-{os.getpid()}"
    samples: list[int] = []
    done: list[str] = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.time() + seconds
    started = time.perf_counter_ns()
    claim = tasks.claim(owner)
    while claim is not None and time.time() < deadline:
        done.append(claim.worker_id)
        claim = tasks.complete_and_claim_next(claim, result={"ok": True})
        now = time.perf_counter_ns()
        samples.append(now - started)
        started = now
    if claim is not None:
        tasks.release(claim)
    conn.close()
    out.put((samples, done))


def prepare(path: str, count: int) -> None:
    conn = agentstate.connect(path)
    Agents(conn).create_planner("planner")
    tasks = TaskManager(conn, "planner")
    for start in range(0, count, 1000):
        tasks.create_tasks([{"description": "task", "task_context": {"n": n}} for n in range(start, min(count, start + 1000))])
    conn.close()


def run(processes: int, gate: bool, seconds: float, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "writers.db")
        prepare(path, count)
        ctx = multiprocessing.get_context("spawn")
        out: Queue[tuple[list[int], list[str]]] = ctx.Queue()
        start_at = time.time() + 1.0  # every process connected before the clock starts
        procs = [ctx.Process(target=executor, args=(path, gate, seconds, start_at, out)) for _ in range(processes)]
        for p in procs:
            p.start()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join(60)
    samples = sorted(s for r in results for s in r[0])
    done = [task for r in results for task in r[1]]

    def pct(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))] / 1e6

    return {
        "tasks_per_s": len(done) / seconds,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": samples[-1] / 1e6,
        "twice": len(done) - len(set(done)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2,4,8", help="comma-separated executor counts (default 1,2,4,8)")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long each run lasts (default 4)")
    parser.add_argument("--tasks", type=int, default=150_000, help="pending tasks at the start (default 150,000)")
    args = parser.parse_args()
    print("| processes | writer gate | tasks/s | p50 ms | p99 ms | p99.9 ms | max ms | done twice |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for processes in (int(n) for n in args.processes.split(",")):
        for gate in (True, False):
            r = run(processes, gate, args.seconds, args.tasks)
            print(
                f"| {processes} | {'on' if gate else 'off'} | {r['tasks_per_s']:,.0f} | {r['p50_ms']:.3f} | "
                f"{r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['max_ms']:.1f} | {r['twice']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
