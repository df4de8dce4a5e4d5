"""An OpenAI Agents SDK item as the message that stores it (its JSON text as the content, its
role or type as the role), refused unless JSON gives it back exactly, and stored messages back
as items."""

from __future__ import annotations

import json
from typing import Any, cast

from agents.items import TResponseInputItem

from agentstate import errors
from agentstate.message_batches import Draft
from agentstate.messages import MAX_ROLE_LENGTH, Message, NewMessage
from agentstate.rows import Builder
from agentstate.values import from_json, iterable, short, to_json

# NewMessages made as the row readers make Messages: a frozen dataclass's own __init__ costs 0.7 µs each.
_new_message = Builder(NewMessage)

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


def _encoded(name: str, items: object) -> list[tuple[str, str]]:
    """SDK items as (role, JSON text) pairs (the role its role or type), all refused, before
    anything is written, unless JSON gives every item back exactly.

    The check decodes the whole batch with one parser call and compares it with the items in one
    list comparison (each item decoded and compared on its own, a turn of 100 cost 360 µs here,
    against 270 with one call and ~450 for the SQL that stores it at NORMAL durability)."""
    batch = list(iterable(name, items))
    encoded = []
    for index, item in enumerate(batch):
        if not isinstance(item, dict):
            raise errors.InvalidTypeError(f"item {index} must be a dict (an SDK input item), not {type(item).__name__}")
        encoded.append(to_json(f"item {index}", item))  # InvalidValueError: not JSON, NaN, a lone surrogate
    if encoded and from_json(f"[{','.join(encoded)}]") != batch:
        for index, (item, text) in enumerate(zip(batch, encoded, strict=True)):
            if from_json(text) != item:
                raise errors.InvalidValueError(
                    f"item {index} would not come back from JSON as given (it holds a tuple, a set, a dict key "
                    f"that is not a str, or another value JSON turns into something else): {short(item)}"
                )
    return [(_role(item), text) for item, text in zip(batch, encoded, strict=True)]


def _messages(name: str, items: object) -> list[NewMessage]:
    """SDK items as the messages that store them (see :func:`_encoded`)."""
    return [_new_message(role, text, None, None) for role, text in _encoded(name, items)]


def _drafts(name: str, items: object, conversation_id: str) -> list[Draft]:
    """SDK items as drafts of the conversation's messages, ready to insert: what :func:`_encoded`
    checked is all a draft needs (a role of at most 64 printable characters, text that is valid
    Unicode), so a turn skips NewMessage and the message log's second check of each
    (~160 µs of a 100-item turn)."""
    return [Draft(conversation_id, role, text, "{}", None) for role, text in _encoded(name, items)]


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
