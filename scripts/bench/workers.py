"""The coordinator's side of a contender process: start it, send it commands, read its answers
(logging its progress on the way), several at once, and stop it."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from bench.contender_process import worker_main
from bench.data import DataSpec
from bench.log import log


class WorkerError(RuntimeError):
    pass


class Worker:
    """A contender process, started with the spawn method so it inherits no open database."""

    def __init__(self, name: str, path: Path | str, spec: DataSpec, label: str | None = None) -> None:
        self.name = name
        self.label = f"{spec.label} {label or name}"
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, name, str(path), spec.size), daemon=True)
        self.process.start()
        child.close()

    def send(self, command: str, **args: Any) -> None:
        self.pipe.send((command, args))

    def receive(self) -> Any:
        """The answer to the last command; progress messages on the way are logged."""
        while True:
            wait([self.pipe, self.process.sentinel])
            answer = _drain(self)
            if answer is not _PENDING:
                return answer

    def call(self, command: str, **args: Any) -> Any:
        self.send(command, **args)
        return self.receive()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(WorkerError, OSError, EOFError):
                self.call("close")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


def gather(workers: Sequence[Worker], command: str, **args: Any) -> list[Any]:
    """Send one command to several processes at once; their answers, in order."""
    for worker in workers:
        worker.send(command, **args)
    answers: dict[int, Any] = {}
    pending = list(workers)
    while pending:
        wait([w.pipe for w in pending] + [w.process.sentinel for w in pending])
        for worker in list(pending):
            answer = _drain(worker)
            if answer is not _PENDING:
                answers[id(worker)] = answer
                pending.remove(worker)
    return [answers[id(w)] for w in workers]


_PENDING = object()


def _drain(worker: Worker) -> Any:
    """Read what a process has sent so far: its answer, or _PENDING after logging progress."""
    while worker.pipe.poll():
        kind, payload = worker.pipe.recv()
        if kind == "progress":
            log(f"{worker.label}: {payload}")
        elif kind == "error":
            raise WorkerError(f"{worker.label} failed:\n{payload}")
        else:
            return payload
    if not worker.process.is_alive():
        raise WorkerError(f"{worker.label}: the process died (exit code {worker.process.exitcode})")
    return _PENDING
