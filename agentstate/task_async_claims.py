"""The claims of the asyncio :class:`~agentstate.aio.AsyncTaskManager`: a claim whose caller is
cancelled gives its tasks back before ``CancelledError`` is raised, so no task waits out a lease
nobody holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from agentstate.async_calls import inline_write, run_async, settled
from agentstate.engines import AsyncConnection
from agentstate.task_types import Claim

logger = logging.getLogger("agentstate")

ClaimResult = TypeVar("ClaimResult")


class Releasing(Protocol):
    """What a claim's cancellation needs of the :class:`~agentstate.tasks.TaskManager` that claimed."""

    def release(self, claim: Claim) -> Any: ...


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
    :func:`claim_async`."""
    done, result = inline_write(conn, inline, args, kwargs)
    if done:
        return cast(ClaimResult, result)
    return await claim_async(manager, conn, call, *args, **kwargs)


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
