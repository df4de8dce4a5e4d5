"""Reading the configs LangGraph hands a checkpointer: where a config points (a thread, a
namespace, a checkpoint), what a ``list()`` asks for and how its pages move on, and the config
of a stored checkpoint. Ids are checked here; nothing here touches the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from agentstate import errors
from agentstate.values import require_int, require_str, short, to_json

Tuples = list[CheckpointTuple]  # `list` is a method name inside the saver classes: they say Tuples

PAGE = 100
"""Checkpoints read per query while a ``list()`` is iterated."""
NO_BOUND = b""
"""``:before`` for an unbounded list: SQLite sorts every BLOB after every TEXT checkpoint id."""


def _id(name: str, value: object) -> str:
    """A thread or run id: LangGraph stores any id's ``str()``; agentstate takes text, ints and UUIDs."""
    if isinstance(value, (int, UUID)) and not isinstance(value, bool):
        return str(value)
    return require_str(name, value)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise errors.InvalidTypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _configurable(who: str, config: object) -> Mapping[str, Any]:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    if not isinstance(configurable, Mapping):
        raise errors.InvalidTypeError(
            f"{who}: config must be a dict with a 'configurable' dict, as "
            f"{{'configurable': {{'thread_id': ...}}}}, not {short(config)}"
        )
    return configurable


@dataclass(frozen=True, slots=True)
class _Key:
    """Where a config points: a thread, a namespace, and a checkpoint (None: the newest)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None

    @classmethod
    def of(cls, who: str, config: object) -> _Key:
        conf = _configurable(who, config)
        if conf.get("thread_id") is None:
            raise errors.InvalidValueError(f"{who}: config['configurable'] has no thread_id")
        checkpoint_id = conf.get("checkpoint_id") or None
        return cls(
            _id("thread_id", conf["thread_id"]),
            _text("checkpoint_ns", conf.get("checkpoint_ns") or ""),
            None if checkpoint_id is None else _text("checkpoint_id", checkpoint_id),
        )

    def params(self) -> dict[str, object]:
        return {"thread_id": self.thread_id, "checkpoint_ns": self.checkpoint_ns, "checkpoint_id": self.checkpoint_id}


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


@dataclass(frozen=True, slots=True)
class _Listing:
    """What a ``list()`` asks for; each page read moves ``before`` past it and uses up ``limit``."""

    thread_id: str
    checkpoint_ns: str | None  # None: every namespace of the thread
    checkpoint_id: str | None  # the one checkpoint the config names
    filter: str  # a JSON object
    before: str | bytes
    limit: int | None

    @classmethod
    def of(cls, config: object, filter: object, before: object, limit: object) -> _Listing:
        if config is None:
            raise errors.InvalidValueError(
                "list(None) would read the checkpoints of every thread: pass a config with a thread_id"
            )
        key = _Key.of("list", config)
        ns = _configurable("list", config).get("checkpoint_ns")
        if filter is not None and not isinstance(filter, Mapping):
            raise errors.InvalidTypeError(f"filter must be a dict of metadata keys and values, not {short(filter)}")
        before_id = None if before is None else _configurable("list(before=...)", before).get("checkpoint_id")
        return cls(
            key.thread_id,
            None if ns is None else key.checkpoint_ns,
            key.checkpoint_id,
            to_json("filter", dict(filter or {})),
            _text("before's checkpoint_id", before_id) if before_id else NO_BOUND,
            None if limit is None else require_int("limit", limit, minimum=0),
        )

    @property
    def size(self) -> int:
        return PAGE if self.limit is None else min(PAGE, self.limit)

    def after(self, page: Tuples) -> _Listing | None:
        """The rest of the listing once ``page`` is read; None when nothing is left. The next page
        starts below the last id read (two namespaces of one thread sharing a checkpoint id at a
        page's edge would lose one: LangGraph's ids are unique per thread)."""
        limit = None if self.limit is None else self.limit - len(page)
        if self.checkpoint_id is not None or len(page) < self.size or limit == 0:
            return None
        return replace(self, before=page[-1].config["configurable"]["checkpoint_id"], limit=limit)
