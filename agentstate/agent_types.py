"""What an agent is: the rows of conversations, routers and planners, and of the links between
routers and planners; what differs between the three agent tables (:class:`AgentTable`); and the
checks of an agent's id and status.

:class:`~agentstate.agents.Agents` creates, reads and lists them (see :mod:`agentstate.agents`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agentstate import errors
from agentstate.values import from_json, require_str

MAX_ID_LENGTH = 128
MAX_STATUS_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Conversation:
    """One row of ``conversations``: the stream key of ``router_messages``."""

    id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Router:
    """One row of ``routers``."""

    router_id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Planner:
    """One row of ``planners``: the stream key of ``planner_messages`` and the owner of tasks."""

    planner_id: str
    status: str
    metadata: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Link:
    """One row of ``router_planner_links``: a router may hand work to this planner."""

    link_id: int
    router_id: str
    planner_id: str
    created_at: str


RowT = TypeVar("RowT", Conversation, Router, Planner)


@dataclass(frozen=True)
class AgentTable(Generic[RowT]):
    """What differs between the three agent tables: the row type, its key and its statements."""

    kind: str
    row: type[RowT]
    key_of: Callable[[RowT], str]
    create: str
    get: str
    update: str
    list: str
    delete: str

    def build(self, row: tuple[Any, ...]) -> RowT:
        key, status, metadata, created_at, updated_at = row
        return self.row(key, status, from_json(metadata), created_at, updated_at)


def _table(kind: str, table: str, row: type[RowT], key_of: Callable[[RowT], str]) -> AgentTable[RowT]:
    return AgentTable(
        kind=kind,
        row=row,
        key_of=key_of,
        create=f"agents.create_{table}",
        get=f"agents.get_{table}",
        update=f"agents.update_{table}",
        list=f"agents.list_{table}",
        delete=f"agents.delete_{table}",
    )


CONVERSATIONS = _table("conversation", "conversations", Conversation, lambda r: r.id)
ROUTERS = _table("router", "routers", Router, lambda r: r.router_id)
PLANNERS = _table("planner", "planners", Planner, lambda r: r.planner_id)


def require_id(name: str, value: object) -> str:
    text = require_str(name, value)
    if len(text) > MAX_ID_LENGTH:
        raise errors.InvalidValueError(f"{name} is {len(text)} characters long; the limit is {MAX_ID_LENGTH}")
    if "\x00" in text:  # SQLite's length() stops at a NUL, so the schema's CHECK would refuse it
        raise errors.InvalidValueError(f"{name} must not contain NUL characters: {text!r}")
    return text


def require_status(value: object) -> str:
    text = require_str("status", value)
    if len(text) > MAX_STATUS_LENGTH:
        raise errors.InvalidValueError(f"status is {len(text)} characters long; the limit is {MAX_STATUS_LENGTH}")
    if "\x00" in text:
        raise errors.InvalidValueError(f"status must not contain NUL characters: {text!r}")
    return text
