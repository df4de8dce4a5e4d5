"""The walk behind ``get_delta_channel_history``: a checkpoint's ancestors, nearest first, with
the pending writes and the seed each channel asked for; it ends where a parent chain loops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

if TYPE_CHECKING:  # DeltaChannel support (beta) is in langgraph-checkpoint 4.1+ only
    from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite


class _History:
    """LangGraph's ``get_delta_channel_history`` walk (BaseCheckpointSaver's, step for step: a
    checkpoint's parents, nearest first, collecting each one's pending writes to the channels
    asked for until each channel finds its value), remembering the checkpoints it has been to.
    A checkpoint put again under its own descendant (``put`` replaces a re-put id, as LangGraph's
    savers do) makes its parent chain a loop; the walk ends where the chain comes back, as in
    LangGraph's SqliteSaver, instead of going round forever."""

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self.collected: dict[str, list[PendingWrite]] = {channel: [] for channel in self.channels}
        self.seeds: dict[str, Any] = {}
        self.remaining = set(self.channels)
        self.seen: set[str] = set()

    def start(self, target: CheckpointTuple | None) -> RunnableConfig | None:
        """The first parent to read (None: no walk), from the checkpoint the history is of."""
        if target is None:
            return None
        self.seen.add(target.config["configurable"]["checkpoint_id"])
        return self._parent(target)

    def step(self, ancestor: CheckpointTuple | None) -> RunnableConfig | None:
        """Take in one ancestor; the next one to read, or None when the walk is over."""
        if ancestor is None:  # deleted (pruned): the chain ends here
            return None
        for write in reversed(ancestor.pending_writes or ()):
            if write[1] in self.remaining:
                self.collected[write[1]].append(write)
        values = ancestor.checkpoint["channel_values"]
        for channel in [c for c in self.remaining if c in values]:
            self.seeds[channel] = values[channel]
            self.remaining.discard(channel)
        return self._parent(ancestor)

    def _parent(self, checkpoint: CheckpointTuple) -> RunnableConfig | None:
        parent = checkpoint.parent_config
        if parent is None or not self.remaining:
            return None
        parent_id = parent["configurable"]["checkpoint_id"]
        if parent_id in self.seen:  # the chain loops: every checkpoint on it is read
            return None
        self.seen.add(parent_id)
        return parent

    def result(self) -> dict[str, DeltaChannelHistory]:
        history: dict[str, DeltaChannelHistory] = {}
        for channel in self.channels:
            entry: DeltaChannelHistory = {"writes": self.collected[channel][::-1]}  # oldest first
            if channel in self.seeds:
                entry["seed"] = self.seeds[channel]
            history[channel] = entry
        return history
