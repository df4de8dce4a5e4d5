"""A file the OpenAI Agents SDK's own ``SQLiteSession`` wrote: how many items it keeps there for
a session, and the warning that they are not carried over."""

from __future__ import annotations

import logging

import apsw

log = logging.getLogger("agentstate")

SDK_MESSAGES = "agent_messages"
"""The table where the SDK's ``SQLiteSession`` keeps items (its default name), keyed by ``session_id``."""


def _sdk_items(conn: apsw.Connection, session_id: str) -> int:
    """How many items the SDK's SQLiteSession keeps in this file for ``session_id``: 0 when the
    file has none of its tables, or they are not the shape it makes."""
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name IN ('agent_sessions', ?)", (SDK_MESSAGES,)
        ).fetchall():
            return 0
        return int(conn.execute(f"SELECT count(*) FROM {SDK_MESSAGES} WHERE session_id = ?", (session_id,)).get)
    except apsw.Error:  # not the SDK's table after all (no session_id column): nothing of its
        return 0


def _warn_not_carried_over(session_id: str, where: str, count: int) -> None:
    log.warning(
        "agentstate: %s holds %d item(s) of the OpenAI Agents SDK's SQLiteSession %r (table %s); they are not "
        "carried over: AgentStateSession %r keeps its items in agentstate's conversation of that id, which is "
        "empty. To carry them over, once: await session.add_items(await SQLiteSession(%r, path).get_items())",
        where, count, session_id, SDK_MESSAGES, session_id, session_id,
    )  # fmt: skip
