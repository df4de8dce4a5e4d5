"""Reading the configs LangGraph hands a checkpointer: where a config points (a thread, a
namespace, a checkpoint), what a ``list()`` asks for and how its pages move on, and the config
of a stored checkpoint. Ids are checked here; nothing here touches the database."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
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


_FILTER_KEY = re.compile(r"^[a-zA-Z0-9_.-]+$")
"""The metadata keys ``filter`` takes, as LangGraph's SqliteSaver checks them."""


def _filter_paths(filter: object) -> str:
    """``filter`` as the queries take it: a JSON object of JSON paths and values. A key is a
    dotted path into the metadata (``"user.access"`` is ``metadata["user"]["access"]``), as in
    LangGraph's SqliteSaver, which takes the same keys."""
    if filter is None:
        return "{}"
    if not isinstance(filter, Mapping):
        raise errors.InvalidTypeError(f"filter must be a dict of metadata keys and values, not {short(filter)}")
    paths: dict[str, Any] = {}
    for key, value in filter.items():
        if not isinstance(key, str):
            raise errors.InvalidTypeError(f"filter keys must be str, not {type(key).__name__}")
        if not _FILTER_KEY.match(key):
            raise errors.InvalidValueError(
                f"Invalid filter key: {key!r}: filter keys hold only letters, digits, '_', '-' and '.' (a nested key)"
            )
        paths["$" + "".join(f'."{part}"' for part in key.split("."))] = value
    return to_json("filter", paths)


class _Page(NamedTuple):
    """One page of a ``list()``: its checkpoints, how many rows the query read (the filter may
    have refused some of them) and the key of the last one read."""

    tuples: Tuples
    read: int
    last: tuple[str, str, str] | None  # (checkpoint_id, thread_id, checkpoint_ns)


@dataclass(frozen=True, slots=True)
class _Listing:
    """What a ``list()`` asks for; each page read moves ``before`` (``position`` across threads)
    past it and uses up ``limit``."""

    thread_id: str | None  # None: every thread (list(None))
    checkpoint_ns: str | None  # None: every namespace of the thread
    checkpoint_id: str | None  # the one checkpoint the config names
    filter: str  # a JSON object of paths and values
    before: str | bytes
    limit: int | None
    position: tuple[str, str, str] | None = None  # list(None): the key the next page starts below

    @classmethod
    def of(cls, config: object, filter: object, before: object, limit: object) -> _Listing:
        paths = _filter_paths(filter)
        before_id = None if before is None else _configurable("list(before=...)", before).get("checkpoint_id")
        bound = _text("before's checkpoint_id", before_id) if before_id else NO_BOUND
        count = None if limit is None else require_int("limit", limit, minimum=0)
        if config is None:
            return cls(None, None, None, paths, bound, count, None if bound is NO_BOUND else (str(bound), "", ""))
        key = _Key.of("list", config)
        ns = _configurable("list", config).get("checkpoint_ns")
        return cls(key.thread_id, None if ns is None else key.checkpoint_ns, key.checkpoint_id, paths, bound, count)

    @property
    def size(self) -> int:
        """Rows a page reads: across threads with a filter, a whole page, whatever the limit
        (the filter may refuse most); else no more than the limit needs."""
        if self.thread_id is None and self.filter != "{}":
            return PAGE
        return PAGE if self.limit is None else min(PAGE, self.limit)

    def after(self, page: _Page) -> _Listing | None:
        """The rest of the listing once ``page`` is read; None when nothing is left. Within a
        thread the next page starts below the last id read (two namespaces of one thread sharing
        a checkpoint id at a page's edge would lose one: LangGraph's ids are unique per thread);
        across threads, below the last key read."""
        limit = None if self.limit is None else self.limit - len(page.tuples)
        if self.checkpoint_id is not None or page.read < self.size or limit == 0 or page.last is None:
            return None
        if self.thread_id is None:
            return replace(self, position=page.last, limit=limit)
        return replace(self, before=page.last[0], limit=limit)
