"""The claims and waits of the asyncio :class:`~agentstate.aio.AsyncTaskManager`: a claim whose
caller is cancelled gives its tasks back before ``CancelledError`` is raised, so no task waits out
a lease nobody holds; a claim with ``wait_seconds`` (and ``wait_completed``) sleeps on the event
loop between its tries, so a cancelled wait has claimed nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from agentstate.async_calls import inline_write, run_async, settled
from agentstate.engines import AsyncConnection
from agentstate.task_types import Claim
from agentstate.task_waiting import wait_async
from agentstate.values import require_age

logger = logging.getLogger("agentstate")

ClaimResult = TypeVar("ClaimResult")
T = TypeVar("T")


class Releasing(Protocol):
    """What a claim's cancellation and its waiting need of the
    :class:`~agentstate.tasks.TaskManager` that claimed."""

    def release(self, claim: Claim) -> Any: ...
    def _open_bell(self) -> Any: ...
    def _look(self) -> tuple[bool, float | None]: ...
    def _claim_again(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...], dict[str, Any]]: ...


async def claim_call(
    manager: Releasing,
    conn: AsyncConnection,
    call: Callable[..., ClaimResult],
    inline: Callable[..., ClaimResult] | None,
    /,
    *args: Any,
    **kwargs: Any,
) -> ClaimResult:
    """A claim for the Async classes: inline when the lock is free at once (see
    :func:`~agentstate.async_calls.write_call`; nothing to release, it cannot be cancelled half-way), else
    :func:`claim_async`. With ``wait_seconds``, the waiting happens here, on the event loop."""
    wait_seconds = require_age("wait_seconds", kwargs.get("wait_seconds", 0))
    kwargs = {**kwargs, "wait_seconds": 0} if wait_seconds else kwargs
    done, result = inline_write(conn, inline, args, kwargs)
    if not done:
        result = await claim_async(manager, conn, call, *args, **kwargs)
    if result or not wait_seconds:
        return cast(ClaimResult, result)
    name, again_args, again_kwargs = manager._claim_again(call.__name__, args, kwargs)
    again, again_inline = getattr(manager, name), None if inline is None else getattr(inline.__self__, name)  # type: ignore[attr-defined]

    async def attempt() -> ClaimResult:
        return cast(ClaimResult, await claim_call(manager, conn, again, again_inline, *again_args, **again_kwargs))

    async def look() -> tuple[bool, float | None]:
        return await run_async(conn, manager._look)

    return await wait_async(lambda: run_async(conn, manager._open_bell), look, attempt, wait_seconds)


async def wait_call(
    manager: Releasing, conn: AsyncConnection, attempt: Callable[[], Awaitable[T]], timeout_seconds: float
) -> T | None:
    """``wait_completed`` for the Async class: ``attempt`` (the async ``get_completed_task``) until
    it finds a task, sleeping on the event loop in between."""
    timeout_seconds = require_age("timeout_seconds", timeout_seconds)
    found = await attempt()
    if found is None and timeout_seconds:
        found = await wait_async(lambda: run_async(conn, manager._open_bell), None, attempt, timeout_seconds)
    return found


async def claim_async(
    manager: Releasing, conn: AsyncConnection, call: Callable[..., ClaimResult], /, *args: Any, **kwargs: Any
) -> ClaimResult:
    """:func:`~agentstate.async_calls.call_async` for the calls that claim (``claim``, ``claim_many``,
    ``complete_and_claim_next``): when the caller is cancelled, the claims the call made are
    released before ``CancelledError`` is raised, so no task waits out a lease nobody holds."""
    result, cancelled = await settled(run_async(conn, call, *args, **kwargs))
    if cancelled:
        claims: list[Any] = result if isinstance(result, list) else [] if result is None else [result]
        for claim in claims:  # each on its own: one that fails must not keep the others held
            try:
                await settled(run_async(conn, manager.release, claim))
            except (Exception, asyncio.CancelledError):
                logger.warning("agentstate: releasing %s after a cancelled claim failed", claim.worker_id, exc_info=True)
        raise asyncio.CancelledError
    return result
