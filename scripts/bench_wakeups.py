"""Wake-up latency of waiting executors: from the commit that creates a task, in this process, to
the return of the ``claim(wait_seconds=...)`` that gets it, in another; with 1, 4 and 16 executor
processes waiting at once. And what an idle waiting executor costs: its CPU time while it waits
with nothing to claim, as a share of one core.

    python scripts/bench_wakeups.py                       # SQLite, a temporary file
    python scripts/bench_wakeups.py --url postgresql://...  # PostgreSQL (LISTEN/NOTIFY)
    python scripts/bench_wakeups.py --waiters 1,4 --rounds 100

The baseline, run in the same process on the same database, is what an executor did before
``wait_seconds``: ``claim()`` in a loop with a sleep (``--poll-ms``, 10 ms by default) between
empty claims. The ratio column is agentstate's figure over the baseline's (below 1: better).
Times are CLOCK_MONOTONIC, one clock for every process on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agentstate  # noqa: E402
from agentstate.agents import Agents  # noqa: E402
from agentstate.tasks import TaskManager  # noqa: E402

STOP = "stop"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def next_task(tm: TaskManager, owner: str, mode: str, poll_s: float, wait_s: float) -> Any:
    """One claim as the mode makes it: a waiting claim, or the polling loop it replaces."""
    if mode == "wait":
        return tm.claim(owner, wait_seconds=wait_s)
    deadline = time.monotonic() + wait_s
    while (claim := tm.claim(owner)) is None and time.monotonic() < deadline:
        time.sleep(poll_s)
    return claim


def executor(url: str, mode: str, poll_s: float, out: Queue[Any]) -> None:
    """Claim until a task named ``stop``; report when each claim returned."""
    conn = agentstate.connect(url)
    tm = TaskManager(conn, "planner")
    owner = f"executor-{os.getpid()}"
    returned: dict[str, int] = {}
    out.put("ready")
    while True:
        claim = next_task(tm, owner, mode, poll_s, 120.0)
        if claim is None:
            continue
        returned[claim.worker_id] = time.monotonic_ns()
        tm.complete(claim)
        if claim.task.description == STOP:
            break
    conn.close()
    out.put(returned)


def idle(url: str, mode: str, poll_s: float, seconds: float, out: Queue[Any]) -> None:
    """Wait ``seconds`` with nothing to claim; report the CPU seconds that took."""
    conn = agentstate.connect(url)
    tm = TaskManager(conn, "idle-planner")
    tm.claim("idle", wait_seconds=0.05)  # connections and caches warm
    before = cpu_seconds()
    next_task(tm, "idle", mode, poll_s, seconds)
    out.put(cpu_seconds() - before)
    conn.close()


def latency_run(url: str, mode: str, waiters: int, rounds: int, poll_s: float) -> list[float]:
    """Milliseconds from each task's commit to its claim's return."""
    ctx = multiprocessing.get_context("spawn")
    out: Queue[Any] = ctx.Queue()
    procs = [ctx.Process(target=executor, args=(url, mode, poll_s, out)) for _ in range(waiters)]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get(timeout=120) == "ready"
    conn = agentstate.connect(url)
    tm = TaskManager(conn, "planner")
    rng = random.Random(waiters)
    committed: dict[str, int] = {}
    time.sleep(0.5)  # every executor is waiting
    for i in range(rounds):
        task = tm.create_task("work", worker_id=f"{mode}-{waiters}-{i}")
        committed[task.worker_id] = time.monotonic_ns()  # create_task returns once committed
        while (done := tm.wait_completed(30)) is None or done.worker_id != task.worker_id:
            if done is not None:  # the previous run's stop tasks
                tm.record(done.worker_id)
        tm.record(task.worker_id)
        time.sleep(rng.uniform(0.02, 0.05))  # the executors are idle again, waiting
    for i in range(waiters):
        tm.create_task(STOP, worker_id=f"{mode}-{waiters}-stop-{i}")
    returned: dict[str, int] = {}
    for _ in procs:
        returned.update(out.get(timeout=120))
    for p in procs:
        p.join(timeout=60)
    conn.close()
    return [(returned[w] - t) / 1e6 for w, t in committed.items()]


def idle_cpu(url: str, mode: str, poll_s: float, seconds: float) -> float:
    """Percent of one core an idle executor uses while it waits."""
    ctx = multiprocessing.get_context("spawn")
    out: Queue[Any] = ctx.Queue()
    proc = ctx.Process(target=idle, args=(url, mode, poll_s, seconds, out))
    proc.start()
    used = float(out.get(timeout=seconds + 120))
    proc.join(timeout=60)
    return 100.0 * used / seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare(url: str | None) -> tuple[str, str]:
    """The database to run on (a temporary SQLite file unless ``url``), and its label."""
    if url is None:
        folder = tempfile.mkdtemp(prefix="agentstate-wakeups-")
        url = str(Path(folder) / "wakeups.db")
    conn = agentstate.connect(url)
    agents = Agents(conn)
    for planner in ("planner", "idle-planner"):
        try:
            agents.get_planner(planner)
        except agentstate.errors.NotFoundError:
            agents.create_planner(planner)
    conn.close()
    return url, ("PostgreSQL" if url.startswith("postgres") else "SQLite")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL URL or an SQLite path (default: a temporary SQLite file)")
    parser.add_argument("--waiters", default="1,4,16", help="numbers of waiting executor processes (default 1,4,16)")
    parser.add_argument("--rounds", type=int, default=50, help="tasks per run, one at a time (default 50)")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="the baseline's sleep between empty claims (default 10)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="how long the idle executor waits (default 5)")
    args = parser.parse_args(argv)
    url, label = prepare(args.url)
    poll_s = args.poll_ms / 1000
    counts = [int(n) for n in args.waiters.split(",")]
    print(f"wake-up latency on {label}, {args.rounds} tasks per run, baseline: claim() polled every {args.poll_ms:g} ms")
    print(f"{'waiters':>7} | {'wait p50 ms':>11} | {'wait p99 ms':>11} | {'poll p50 ms':>11} | {'poll p99 ms':>11} | {'p50 ratio':>9} | {'p99 ratio':>9}")
    for n in counts:
        waited = latency_run(url, "wait", n, args.rounds, poll_s)
        polled = latency_run(url, "poll", n, args.rounds, poll_s)
        w50, w99 = statistics.median(waited), percentile(waited, 0.99)
        p50, p99 = statistics.median(polled), percentile(polled, 0.99)
        print(f"{n:>7} | {w50:>11.2f} | {w99:>11.2f} | {p50:>11.2f} | {p99:>11.2f} | {w50 / p50:>9.2f} | {w99 / p99:>9.2f}")
    waiting_cpu = idle_cpu(url, "wait", poll_s, args.idle_seconds)
    polling_cpu = idle_cpu(url, "poll", poll_s, args.idle_seconds)
    print(
        f"idle executor, {args.idle_seconds:g} s with nothing to claim: waiting {waiting_cpu:.3f}% of a core, "
        f"polling {polling_cpu:.3f}% (ratio {waiting_cpu / polling_cpu:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
