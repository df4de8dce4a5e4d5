"""The thread an async connection runs on: apsw's asyncio controller, made lean for our calls.

apsw runs every call of an async connection on a worker thread of its own, through a
*controller* (:mod:`apsw.aio`). Its asyncio controller answers each call with a coroutine, so
awaiting one through :func:`agentstate.async_calls.settled` (which must not let a cancellation cut a
commit short) wrapped it in a Task: a call cost 60-110 µs more than the same call made
synchronously, where the thread hop itself costs about 20.

This controller answers with a plain future, which ``settled`` shields without a Task. It also
installs no progress handler: apsw's interrupts a statement when its caller is cancelled, but
agentstate lets every call finish and delivers the cancellation afterwards (a write must not be
left half known), so the check on every few hundred SQLite steps bought nothing. A call whose
caller was cancelled before the call started is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import apsw


class Controller:
    """An :attr:`apsw.async_controller` for asyncio (see the module's docstring)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        threading.Thread(name="agentstate async connection", target=self._run, daemon=True).start()

    def configure(self, db: apsw.Connection) -> None:
        """Called on the worker thread once the connection exists."""
        for hook in apsw.connection_hooks:
            hook(db)

    def send(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue ``call`` for the worker thread; its result arrives in the returned future."""
        future = self.loop.create_future()
        self.queue.put((future, call))
        return future

    def close(self) -> None:
        """The connection closed: the worker thread ends."""
        self.queue.put(None)

    def _run(self) -> None:
        deliver = self.loop.call_soon_threadsafe
        while (item := self.queue.get()) is not None:
            future, call = item
            if future.cancelled():  # nobody waits for it any more, and it has not begun
                continue
            outcome: Callable[[asyncio.Future[Any], Any], None]
            try:
                outcome, value = _succeed, call()
            except BaseException as exc:
                outcome, value = _fail, exc
            with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody to tell
                deliver(outcome, future, value)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Any) -> None:
    if not future.done():
        future.set_exception(exc)
