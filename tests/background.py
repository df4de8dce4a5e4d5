"""Long subprocess runs (the frameworks' own suites, the benchmark's smoke run) started as soon as
the session's tests are collected, one after another on a thread of their own: each is a child
process that spends minutes on one core while the rest of the suite runs on the other. A test
that needs a run's result waits for it; a run no collected test needs never starts.

A module declares its run at import with :func:`declare` (collection imports it, before
``pytest_collection_finish`` calls :func:`start`); its test or fixture calls :func:`result`.
A run's exception is raised from :func:`result`, so the test that needs it fails with it. A run
starts its processes with :func:`run_process`, so that a session cut short (``-x``, Ctrl-C) ends
them instead of waiting minutes for them at exit.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class _Run:
    def __init__(self, module: str, tests: tuple[str, ...] | None, run: Callable[[], Any]) -> None:
        self.module, self.tests, self.run = module, tests, run


_declared: dict[str, _Run] = {}
_started: dict[str, Future[Any]] = {}
_pool: ThreadPoolExecutor | None = None
_children: set[subprocess.Popen[str]] = set()
_children_lock = threading.Lock()


def declare(name: str, module: str, run: Callable[[], Any], *, tests: tuple[str, ...] | None = None) -> None:
    """``run`` (no arguments; its result or an exception) is needed by ``tests`` of ``module``
    (test function names; None: every test of the module)."""
    _declared[name] = _Run(module, tests, run)


def start(collected: Iterable[tuple[str, str]]) -> None:
    """Start, in declaration order, the runs needed by the ``collected`` (module, test function)."""
    global _pool
    wanted = set(collected)
    modules = {module for module, _ in wanted}
    for name, declared in _declared.items():
        needed = (
            declared.module in modules
            if declared.tests is None
            else any((declared.module, test) in wanted for test in declared.tests)
        )
        if needed and name not in _started:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background-run")
            _started[name] = _pool.submit(declared.run)


def result(name: str) -> Any:
    """The result of run ``name``, waiting for it; run here and now if it was not started."""
    future = _started.get(name)
    if future is None:
        return _declared[name].run()
    return future.result()


def run_process(command: list[str], *, timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)``,
    which :func:`stop` can end."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options) as proc:
        with _children_lock:
            _children.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(command, timeout, out, err) from None
        finally:
            with _children_lock:
                _children.discard(proc)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def stop() -> None:
    """At the session's end: runs not begun are dropped, and a run still under way is ended."""
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    with _children_lock:
        for proc in _children:
            proc.kill()
