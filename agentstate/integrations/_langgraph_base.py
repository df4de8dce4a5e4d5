"""What both LangGraph savers share: LangGraph's text channel versions and the ``a*`` methods, each a read or a write the saver runs where it runs its calls."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

if TYPE_CHECKING:  # DeltaChannel support (beta) is in langgraph-checkpoint 4.1+ only
    from langgraph.checkpoint.base import DeltaChannelHistory

from agentstate.async_calls import materialise
from agentstate.integrations import _langgraph_operations as operations
from agentstate.integrations._langgraph_configs import _Listing
from agentstate.integrations._langgraph_history import _history

T = TypeVar("T")


class _Saver(BaseCheckpointSaver[str]):
    """What both savers share: LangGraph's text channel versions, and the ``a*`` methods, each a
    read or a write that the saver runs where it runs its calls (``_read``, ``_write``)."""

    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The async form of :meth:`AgentStateSaver.get_tuple`."""
        return await self._read(operations._get_tuple, self.serde, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The async form of :meth:`AgentStateSaver.list`."""
        listing: _Listing | None = _Listing.of(config, filter, before, limit)
        while listing is not None:
            page = await self._read(operations._page, self.serde, listing)
            for item in page.tuples:
                yield item
            listing = listing.after(page)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """The async form of :meth:`AgentStateSaver.put`."""
        return await self._write(operations._put, self.serde, config, checkpoint, metadata)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """The async form of :meth:`AgentStateSaver.put_writes`."""
        await self._write(operations._put_writes, self.serde, config, materialise(writes), task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """The async form of :meth:`AgentStateSaver.delete_thread`."""
        await self._write(operations._delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """The async form of :meth:`AgentStateSaver.delete_for_runs`."""
        await self._write(operations._delete_for_runs, self.serde, materialise(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """The async form of :meth:`AgentStateSaver.copy_thread`."""
        await self._write(operations._copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """The async form of :meth:`AgentStateSaver.prune`."""
        await self._write(operations._prune, self.serde, materialise(thread_ids), strategy)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The async form of :meth:`AgentStateSaver.get_delta_channel_history`."""
        return await self._read(_history, self.serde, config, materialise(channels))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The version after ``current``: a zero-padded counter and a random fraction, as
        LangGraph's SQLite and Postgres savers make them (they sort as text)."""
        number = 0 if current is None else current if isinstance(current, int) else int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"
