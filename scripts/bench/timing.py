"""The timed loops: calls one by one, each timed alone (nanoseconds), until a time budget or a
call cap, whichever comes first (and at least a minimum of calls)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def timed(
    fn: Callable[[Any], Any], args: Sequence[Any], i: int, seconds: float, max_calls: int, min_calls: int
) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(samples) < max_calls and (len(samples) < min_calls or clock() < deadline):
        arg = args[i % len(args)]
        i += 1
        start = clock()
        fn(arg)
        samples.append(clock() - start)
    return samples


async def timed_async(
    fn: Callable[[Any], Any], args: Sequence[Any], i: int, seconds: float, max_calls: int, min_calls: int
) -> list[int]:
    """timed for a coroutine function: each call awaited, as an application awaits it."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(samples) < max_calls and (len(samples) < min_calls or clock() < deadline):
        arg = args[i % len(args)]
        i += 1
        start = clock()
        await fn(arg)
        samples.append(clock() - start)
    return samples


async def awaited(fn: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
    return [await fn(arg) for arg in args]
