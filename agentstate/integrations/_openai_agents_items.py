"""An OpenAI Agents SDK item as the message that stores it (its JSON text as the content, its
role or type as the role), refused unless JSON gives it back exactly, and stored messages back
as items."""

from __future__ import annotations

import json
from typing import Any, cast

from agents.items import TResponseInputItem

from agentstate import errors
from agentstate.messages import MAX_ROLE_LENGTH, Message, NewMessage
from agentstate.values import from_json, short, to_json

DEFAULT_ROLE = "item"
"""The role of an item that has no usable ``role`` or ``type``."""


def _role(item: dict[str, Any]) -> str:
    """The message role for an item: its role, else its type, else :data:`DEFAULT_ROLE`. Only a
    label (the item itself is the metadata), so one agentstate cannot store is replaced."""
    for key in ("role", "type"):
        value = item.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_ROLE_LENGTH and value.isprintable():
            return value
    return DEFAULT_ROLE


def _message(index: int, item: object) -> NewMessage:
    """An SDK item as the message that stores it, refused unless JSON gives it back exactly."""
    if not isinstance(item, dict):
        raise errors.InvalidTypeError(f"item {index} must be a dict (an SDK input item), not {type(item).__name__}")
    encoded = to_json(f"item {index}", item)  # InvalidValueError: not JSON, NaN, a lone surrogate
    if from_json(encoded) != item:
        raise errors.InvalidValueError(
            f"item {index} would not come back from JSON as given (it holds a tuple, a set, a dict key that "
            f"is not a str, or another value JSON turns into something else): {short(item)}"
        )
    return NewMessage(_role(item), encoded)


def _items(messages: list[Message]) -> list[TResponseInputItem]:
    """The stored items, decoded with one parser call for the whole page (each stored content
    was checked as JSON when it was added; a message someone else added is checked here)."""
    if not messages:
        return []
    try:
        items = json.loads(f"[{','.join(message.content for message in messages)}]")
    except ValueError:
        items = None
    if not isinstance(items, list) or len(items) != len(messages) or not all(type(i) is dict for i in items):
        items = [_item(message) for message in messages]  # finds the message that is not an item
    return cast(list[TResponseInputItem], items)


def _item(message: Message) -> TResponseInputItem:
    try:
        item = json.loads(message.content)
    except ValueError:
        item = None
    if type(item) is not dict:
        raise errors.InvalidValueError(
            f"message {message.position} of conversation {message.stream_id!r} is not an SDK item: its "
            f"content is not a JSON object ({short(message.content)}); the session's stream holds items only"
        )
    return cast(TResponseInputItem, item)
