"""The SDK's compaction hooks, on agentstate's stream: replace the history's tail the
compaction read, compare-and-replace in one write transaction.

``OpenAIResponsesCompactionSession`` reads a bounded snapshot of the latest items, asks the model
to compact them, then replaces the part it compacted. Without these hooks the SDK falls back to
"clear, then add the compacted history", which loses an item another writer appended meanwhile
and deletes rows it could not verify. Here the replacement first takes the stream's lock (SQLite:
the file's write lock; PostgreSQL: the stream's head row), checks that the tail is still the one
the snapshot read, and only then deletes it and appends the compacted items; any failure rolls
all of it back.
"""

from __future__ import annotations

from collections.abc import Callable

from agentstate import transactions
from agentstate.engines import Connection
from agentstate.integrations._openai_agents_stores import STREAM
from agentstate.messages import Message, MessageLog, NewMessage


def replace_tail(
    conn: Connection,
    conversation_id: str,
    expected: list[Message],
    messages: list[NewMessage],
    prune: Callable[[Message], bool] | None,
    page: int,
) -> bool:
    """Replace the stream's last ``len(expected)`` messages with ``messages`` if they are still
    ``expected``; first drop the oldest messages while ``prune`` says so (up to the tail). False,
    and nothing changed, if the tail moved on."""
    log = MessageLog(conn)
    with transactions.write(conn):
        log.last_position(STREAM, conversation_id)  # takes the stream's lock until COMMIT
        if log.latest(STREAM, conversation_id, len(expected)) != expected:
            return False
        if prune is not None:
            _prune_prefix(log, conversation_id, expected[0].position, prune, max(page, 1))
        for _ in expected:
            log.pop_last(STREAM, conversation_id)
        if messages:
            log.append_many(STREAM, conversation_id, messages)
    return True


def replace_all(conn: Connection, conversation_id: str, messages: list[NewMessage]) -> bool:
    """The whole history replaced by ``messages``, in one transaction (a manual compaction)."""
    log = MessageLog(conn)
    with transactions.write(conn):
        log.clear(STREAM, conversation_id)
        if messages:
            log.append_many(STREAM, conversation_id, messages)
    return True


def _prune_prefix(log: MessageLog, conversation_id: str, before: int, prune: Callable[[Message], bool], page: int) -> None:
    """Delete the oldest messages, a page at a time, while each one ``prune`` accepts, stopping at
    the first it does not (or cannot read) and never reaching position ``before``."""
    while True:
        prefix = [m for m in log.after(STREAM, conversation_id, 0, limit=page) if m.position < before]
        end = None
        for message in prefix:
            if not prune(message):
                break
            end = message.position
        if end is None:
            return
        log.trim(STREAM, conversation_id, before=end + 1)
        if end != prefix[-1].position or len(prefix) < page:
            return
