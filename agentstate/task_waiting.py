"""Waiting for work: ``claim(wait_seconds=...)`` and ``wait_completed``.

A waiting call first tries once, as a plain call. If that finds nothing, it opens its engine's
doorbell (:class:`~agentstate.engine.Wakeups`: SQLite's notice of a write to the WAL, PostgreSQL's
LISTEN), then loops: empty the doorbell, look (a read, no lock: is a task ready, when is the next
delay or lease due), try again if something is ready, else sleep until the doorbell rings, the
next delay or lease is due, or the time is up. The doorbell is opened before the last look, so a
commit between the look and the sleep rings it: no wake-up is missed, and an idle waiter makes
no system call until something is committed. Every ``WAKE_CHECK_S`` it looks anyway (a doorbell
whose connection was lost stops ringing).

The asyncio twins (:func:`wait_async`) sleep on the event loop (its ``add_reader`` on the
doorbell's descriptor): a cancelled wait has claimed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agentstate.engine import Wakeups

T = TypeVar("T")

WAKE_CHECK_S = 1.0
"""The longest a waiter sleeps without looking, whatever its doorbell says."""
POLL_S = 0.005
"""How often a doorbell without a descriptor (the ``stat`` fallback) is asked."""
LOOK_SPACING_S = 0.002
"""The least time between two looks: a database busy with other commits (messages, say) rings
every waiter's doorbell on each one; this bounds what an idle waiter spends looking."""
DUE_SLACK_S = 0.001
"""A delay or lease due within this is due now (the two clocks round differently)."""

Look = Callable[[], tuple[bool, float | None]]
"""Whether to try now, and else in how many seconds something falls due (None: nothing will)."""


def _sleep_for(deadline: float, due_in: float | None) -> float:
    """Until the deadline, the next due time or the safety-net look, whichever comes first."""
    left = deadline - time.monotonic()
    if due_in is not None:
        left = min(left, due_in)
    return max(0.0, min(left, WAKE_CHECK_S))


def wait_sync(bell: Wakeups, seconds: float) -> None:
    """Block until ``bell`` rings or ``seconds`` pass."""
    fd = bell.fileno()
    if fd is not None:
        select.select([fd], [], [], seconds)
        return
    end = time.monotonic() + seconds
    while not bell.rang() and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, POLL_S))


def waiting(
    open_bell: Callable[[], Wakeups], look: Look | None, attempt: Callable[[], T], wait_seconds: float
) -> T:
    """Repeat ``attempt`` (which has just found nothing) until it returns something truthy or
    ``wait_seconds`` pass; then its last result. ``look`` (None: try each time) says whether
    trying is worth a write transaction."""
    deadline = time.monotonic() + wait_seconds
    bell = open_bell()
    try:
        result = attempt()  # the bell is open now: anything committed from here on rings it
        while not result and (left := deadline - time.monotonic()) > 0:
            looked = time.monotonic()
            bell.rang()  # emptied before the look, so a later commit rings it again
            due, due_in = look() if look is not None else (True, None)
            if due and (result := attempt()):
                break
            wait_sync(bell, _sleep_for(deadline, due_in))
            if (pause := looked + LOOK_SPACING_S - time.monotonic()) > 0 and left > pause:
                time.sleep(pause)
        return result
    finally:
        bell.close()


async def wait_async_bell(bell: Wakeups, seconds: float) -> None:
    """:func:`wait_sync` on the event loop."""
    fd = bell.fileno()
    if fd is None:
        end = time.monotonic() + seconds
        while not bell.rang() and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, POLL_S))
        return
    loop = asyncio.get_running_loop()
    rung = loop.create_future()
    loop.add_reader(fd, lambda: None if rung.done() else rung.set_result(None))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rung, seconds)
    finally:
        loop.remove_reader(fd)


async def wait_async(
    open_bell: Callable[[], Awaitable[Wakeups]],
    look: Callable[[], Awaitable[tuple[bool, float | None]]] | None,
    attempt: Callable[[], Awaitable[T]],
    wait_seconds: float,
) -> T:
    """:func:`waiting` for the Async classes: the sleeps are the event loop's."""
    deadline = time.monotonic() + wait_seconds
    bell = await open_bell()
    try:
        result = await attempt()
        while not result and (left := deadline - time.monotonic()) > 0:
            looked = time.monotonic()
            bell.rang()
            due, due_in = await look() if look is not None else (True, None)
            if due and (result := await attempt()):
                break
            await wait_async_bell(bell, _sleep_for(deadline, due_in))
            if (pause := looked + LOOK_SPACING_S - time.monotonic()) > 0 and left > pause:
                await asyncio.sleep(pause)
        return result
    finally:
        bell.close()


def verdict(row: Any) -> tuple[bool, float | None]:
    """A ``tasks.claimable_*`` row as a look's answer: try now when a task is ready or a delay
    or lease is due; else the seconds until the first of them is."""
    ready, delay_in, lease_in = row
    times = [t for t in (delay_in, lease_in) if t is not None]
    due_in = min(times) if times else None
    if ready or (due_in is not None and due_in <= DUE_SLACK_S):
        return True, None
    return False, due_in
