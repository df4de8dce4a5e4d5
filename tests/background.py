"""Long subprocess runs (the frameworks' own suites, the benchmark's smoke run) started as soon as
the session's tests are collected, one after another on a thread of their own: each is a child
process that spends minutes on one core while the rest of the suite runs on the other. A test
that needs a run's result waits for it; one that was not collected never starts.

A module declares its run at import with :func:`declare` (collection imports it, before
``pytest_collection_finish`` calls :func:`start`); its test or fixture calls :func:`result`.
A run's exception is raised from :func:`result`, so the test that needs it fails with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_declared: dict[str, tuple[str, Callable[[], Any]]] = {}
_started: dict[str, Future[Any]] = {}
_pool: ThreadPoolExecutor | None = None


def declare(name: str, module: str, run: Callable[[], Any]) -> None:
    """``run`` (no arguments, its result or an exception) is needed by tests of ``module``."""
    _declared[name] = (module, run)


def start(modules: Iterable[str]) -> None:
    """Start, in declaration order, the runs needed by the collected ``modules``."""
    global _pool
    wanted = set(modules)
    for name, (module, run) in _declared.items():
        if module in wanted and name not in _started:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background-run")
            _started[name] = _pool.submit(run)


def result(name: str) -> Any:
    """The result of run ``name``, waiting for it; run here and now if it was not started."""
    future = _started.get(name)
    if future is None:
        return _declared[name][1]()
    return future.result()


def stop() -> None:
    """At the session's end: runs not begun are dropped (the one under way finishes)."""
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
