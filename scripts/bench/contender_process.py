"""A contender's own process: it makes the contender, then runs the coordinator's commands from
its pipe (build, open, prepare, measure, the claim tests' executor loop, close) and answers each.

The coordinator's end of the pipe is workers.py.
"""

from __future__ import annotations

import gc
import signal
import time
import traceback
from collections import defaultdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agentstate.engines import is_url
from bench.contenders.registry import CONTENDERS
from bench.contenders.shared import Bound
from bench.data import DataSpec, Progress, payloads, planner_id, task_specs
from bench.operations import FINGERPRINTED
from bench.timing import awaited, timed, timed_async


class ContenderProcess:
    """What one contender process does on the coordinator's commands (see :func:`worker_main`)."""

    def __init__(self, name: str, path: Path | str, spec: DataSpec, progress: Progress) -> None:
        self.contender = CONTENDERS[name].make(path)
        self.spec = spec
        self.progress = progress
        self.bound: dict[str, Bound] = {}
        self.next_arg: dict[str, int] = defaultdict(int)

    def build(self) -> None:
        self.contender.build(self.spec, self.progress)

    def open(self) -> None:
        self.contender.open()

    def close(self) -> None:
        self.contender.close()

    def prepare(self, op: str, keys: list[str]) -> list[Any]:
        """Bind the operation and run it once per argument, untimed: this warms the pages the
        timed calls will read, and the fingerprints let the coordinator check all contenders
        found the same rows."""
        fn, args = self.bound[op] = self._bind(op, keys)
        loop = getattr(self.contender, "loop", None)
        results = [fn(arg) for arg in args] if loop is None else loop.run_until_complete(awaited(fn, args))
        return [self.contender.fingerprint(op, r) for r in results] if op in FINGERPRINTED else []

    def _bind(self, op: str, keys: list[str]) -> Bound:
        c = self.contender
        messages = payloads(256)
        if op == "append_one":
            return (lambda a: c.append_one(*a)), [(keys[i % len(keys)], m) for i, m in enumerate(messages)]
        if op == "append_turn_100":
            turns = [(agent, [messages[(t + i) % len(messages)] for i in range(100)]) for t, agent in enumerate(keys)]
            return (lambda a: c.append_turn(*a)), turns
        if op == "append_bulk_10k":
            agents = [planner_id(i) for i in range(self.spec.planners)]
            loads = [[(agents[i % len(agents)], messages[i % len(messages)]) for i in range(10_000)]]
            return c.append_bulk, loads
        if op == "enqueue_one":
            specs = task_specs(256)
            return (lambda a: c.enqueue(*a)), [(keys[i % len(keys)], spec) for i, spec in enumerate(specs)]
        if op == "enqueue_batch_100":
            specs = task_specs(256)
            batches = [(planner, [specs[(t + i) % len(specs)] for i in range(100)]) for t, planner in enumerate(keys)]
            return (lambda a: c.enqueue_batch(*a)), batches
        return c.bind(op, keys, self.spec)

    def measure(self, op: str, seconds: float, max_calls: int, min_calls: int) -> list[int]:
        """Time calls one by one (nanoseconds) until the budget or the call cap, whichever first.
        An async contender's calls are awaited one by one in its event loop, each timed alone."""
        fn, args = self.bound[op]
        start = self.next_arg[op]  # later rounds go on through the arguments where this one stopped
        gc.collect()  # start each batch with no garbage owed from the last
        loop = getattr(self.contender, "loop", None)
        if loop is None:
            samples = timed(fn, args, start, seconds, max_calls, min_calls)
        else:
            samples = loop.run_until_complete(timed_async(fn, args, start, seconds, max_calls, min_calls))
        self.next_arg[op] = start + len(samples)
        return samples

    def backlog(self, count: int) -> int:
        """The backlog test's untimed set-up: exactly ``count`` tasks pending; returns the count."""
        return int(self.contender.backlog(count, self.spec.key_planners()))

    def end_backlog(self) -> None:
        self.contender.end_backlog()

    def executor(
        self, owner: str, quota: int, start_at: float, deadline: float, batch: int = 1, fused: bool = True
    ) -> dict[str, Any]:
        """Claim and finish tasks until ``quota`` are done, none is left, or ``deadline``
        (time.monotonic(), shared by all processes). Each sample is one task's worth of work:
        finishing one and claiming the next (with ``batch``, a batch's time over its size), in one
        call where the contender has one and ``fused``, else two."""
        c = self.contender
        fused_call = getattr(c, "finish_and_claim", None) if fused else None
        lock_errors = getattr(c, "lock_errors", 0)  # a running count: this round's is the difference
        time.sleep(max(0.0, start_at - time.monotonic()))
        began = time.monotonic()
        samples: list[int] = []
        ids: list[str] = []
        start = time.perf_counter_ns()
        if batch > 1:
            while len(ids) < quota and time.monotonic() < deadline and (claims := c.claim_batch(owner, batch)):
                ids += [c.claim_id(claim) for claim in claims]
                c.finish_batch(claims)
                now = time.perf_counter_ns()
                samples += [(now - start) // len(claims)] * len(claims)
                start = now
        else:
            claim = c.claim(owner)
            while claim is not None:
                ids.append(c.claim_id(claim))
                more = len(ids) < quota and time.monotonic() < deadline
                if more and fused_call is not None:
                    claim = fused_call(claim)
                else:
                    c.finish(claim)
                    claim = c.claim(owner) if more else None
                now = time.perf_counter_ns()
                samples.append(now - start)
                start = now
        return {
            "samples": samples,
            "ids": ids,
            "began": began,
            "ended": time.monotonic(),
            "lock_errors": getattr(c, "lock_errors", 0) - lock_errors,
        }

    def completed_and_reset(self, ids: list[str]) -> int:
        return int(self.contender.completed_and_reset(ids))


def worker_main(pipe: Connection, name: str, path: str, size: int) -> None:
    """A contender process: run commands from the pipe, answer ("ok", result) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        where = path if is_url(path) else Path(path)  # a PostgreSQL URL, or a file
        state = ContenderProcess(name, where, DataSpec.for_size(size), lambda text: pipe.send(("progress", text)))
    except Exception:
        pipe.send(("error", traceback.format_exc()))
        return
    while True:
        command, args = pipe.recv()
        try:
            result = getattr(state, command)(**args)
        except Exception:
            pipe.send(("error", traceback.format_exc()))
            continue
        pipe.send(("ok", result))
        if command == "close":
            return
