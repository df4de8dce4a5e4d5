"""What a message is: the three streams, :class:`Message` as stored and :class:`NewMessage` to
append, and the builders that turn stored rows into Messages (a page's metadata decoded at once).

:class:`~agentstate.messages.MessageLog` appends and reads them (see :mod:`agentstate.messages`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from agentstate.rows import Builder
from agentstate.values import from_json

Stream = Literal["router", "planner", "worker"]
"""The three message streams: ``router`` (by conversation id), ``planner`` and ``worker`` (by agent id)."""

STREAMS: tuple[Stream, ...] = get_args(Stream)
MAX_ROLE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message."""

    stream: Stream
    stream_id: str
    """The conversation id (``router``) or the agent id (``planner``, ``worker``)."""
    position: int
    role: str
    content: str
    metadata: Any
    idempotency_key: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append with :meth:`MessageLog.append_many` or :meth:`MessageLog.append_bulk`."""

    role: str
    content: str
    metadata: Any = None
    """Any JSON value; ``None`` stores ``{}``."""
    idempotency_key: str | None = None


build_message = Builder(Message)


def _decode_all(texts: list[str]) -> list[Any]:
    """Decode many JSON columns with one parser call (a page of metadata is one small array).

    Each stored text passed json_valid(), so joining them with commas gives one JSON array with
    exactly one element per text; the length check guards that assumption anyway.
    """
    if not texts:
        return []
    try:
        values = from_json(f"[{','.join(texts)}]")
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(texts):
        values = [json.loads(text) for text in texts]
    return values


def messages_from_rows(stream: Stream, stream_id: str, rows: list[tuple[Any, ...]]) -> list[Message]:
    """Rows of (position, role, content, metadata, idempotency_key, created_at) as messages."""
    metadata = _decode_all([row[3] for row in rows])
    draft, frozen = build_message.draft, build_message.cls
    messages = []
    for (position, role, content, _, key, created_at), meta in zip(rows, metadata, strict=True):
        message = draft(stream, stream_id, position, role, content, meta, key, created_at)
        message.__class__ = frozen
        messages.append(message)
    return messages


def messages_from_stored_rows(stream: Stream, rows: list[tuple[Any, ...]]) -> list[Message]:
    """Rows of (stream_id, position, role, content, metadata, idempotency_key, created_at)."""
    metadata = _decode_all([row[4] for row in rows])
    draft, frozen = build_message.draft, build_message.cls
    messages = []
    for (stream_id, position, role, content, _, key, created_at), meta in zip(rows, metadata, strict=True):
        message = draft(stream, stream_id, position, role, content, meta, key, created_at)
        message.__class__ = frozen
        messages.append(message)
    return messages
