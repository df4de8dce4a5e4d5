"""Compaction on AgentStateSession: the SDK's OpenAIResponsesCompactionSession replaces the
history's tail through the session's own snapshot hook, compare-and-replace in one write
transaction, so an item appended meanwhile is never lost and a tail it cannot verify is never
deleted. Modelled on the SDK's own tests/memory/test_compaction_suffix.py (openai-agents 0.24.0),
on both engines and every kind of connection the session takes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
from agents import Agent, RunConfig, Runner, TResponseInputItem
from agents.memory import OpenAIResponsesCompactionSession
from agents.testing import ScriptedModel
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

import agentstate
from agentstate import errors
from agentstate.integrations.openai_agents import AgentStateSession


def reply(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="1",
        type="message",
        role="assistant",
        content=[ResponseOutputText(text=text, type="output_text", annotations=[], logprobs=[])],
        status="completed",
    )


def history(n: int) -> list[TResponseInputItem]:
    return [{"role": "user", "content": str(i)} for i in range(n)]


KINDS = ["path", "async connection", "sync connection"]


def on_session(kind: str, db_url: str, main: Callable[[AgentStateSession], Awaitable[None]]) -> None:
    """Run ``main`` with a session on ``db_url`` through one kind of connection, in one event loop."""

    async def body() -> None:
        conn: Any = None
        if kind == "async connection":
            conn = await agentstate.connect_async(db_url)
        elif kind == "sync connection":
            conn = agentstate.connect(db_url)
        session = AgentStateSession("suffix", db_url if conn is None else conn)
        try:
            await main(session)
        finally:
            await session.aclose()
            if conn is not None:
                await conn.aclose() if conn.is_async else conn.close()

    asyncio.run(body())


def compacting(backend: AgentStateSession, compact: Callable[..., Awaitable[Any]]) -> OpenAIResponsesCompactionSession:
    client = MagicMock()
    client.responses.compact = AsyncMock(side_effect=compact)
    return OpenAIResponsesCompactionSession(
        "suffix", backend, client=client, compaction_mode="input", should_trigger_compaction=lambda _: True
    )


async def run_once(session: OpenAIResponsesCompactionSession, answer: ResponseOutputMessage) -> None:
    await Runner.run(
        Agent(name="worker", model=ScriptedModel(steps=[[answer]])),
        "continue",
        session=session,
        run_config=RunConfig(session_settings={"limit": 1}),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_an_item_appended_during_compaction_is_kept(kind: str, db_url: str) -> None:
    async def main(backend: AgentStateSession) -> None:
        """The SDK's test_new_backend_write_invalidates_snapshot: without the hook, the SDK's generic
        fallback (clear, then add) dropped the item another writer appended meanwhile."""
        original = history(4)
        await backend.add_items(original)
        newer: TResponseInputItem = {"role": "user", "content": "concurrent backend append"}

        async def compact(**_: Any) -> Any:
            await backend.add_items([newer])
            return SimpleNamespace(output=[{"type": "compaction", "id": "cmp", "encrypted_content": "summary"}])

        answer = reply("done")
        await run_once(compacting(backend, compact), answer)
        assert await backend.get_items(limit=100) == [
            *original,
            {"role": "user", "content": "continue"},
            answer.model_dump(exclude_unset=True),
            newer,
        ]

    on_session(kind, db_url, main)


@pytest.mark.parametrize("kind", KINDS)
def test_compaction_replaces_the_tail_it_read(kind: str, db_url: str) -> None:
    async def main(backend: AgentStateSession) -> None:
        """Nothing else writes: the compacted tail goes, the summary takes its place, the history the
        model did not see stays."""
        await backend.add_items(history(4))
        summary = {"type": "compaction", "id": "cmp", "encrypted_content": "summary"}

        async def compact(**_: Any) -> Any:
            return SimpleNamespace(output=[summary])

        await run_once(compacting(backend, compact), reply("done"))
        items = await backend.get_items(limit=100)
        assert items[-1] == summary and history(4)[0] in items  # the unseen prefix is kept
        assert len(items) < 4 + 2 + 1

    on_session(kind, db_url, main)


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_replacement_leaves_the_history_as_it_was(kind: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main(backend: AgentStateSession) -> None:
        """The SDK's test_suffix_transaction_rolls_back_failed_insert: the delete and the insert are
        one transaction, so a failing insert rolls the delete back."""
        await backend.add_items(history(4))

        async def compact(**_: Any) -> Any:
            return SimpleNamespace(output=[{"type": "compaction", "id": "cmp", "encrypted_content": "summary"}])

        from agentstate.messages import MessageLog

        real = MessageLog.append_many

        def failing(self: MessageLog, stream: Any, stream_id: str, messages: Any) -> Any:
            if any("compaction" in m.content for m in messages):
                raise errors.CheckConstraintError("synthetic insert failure")
            return real(self, stream, stream_id, messages)

        monkeypatch.setattr(MessageLog, "append_many", failing)
        answer = reply("done")
        with pytest.raises(errors.CheckConstraintError, match="synthetic insert failure"):
            await run_once(compacting(backend, compact), answer)
        monkeypatch.setattr(MessageLog, "append_many", real)
        assert await backend.get_items(limit=100) == [
            *history(4),
            {"role": "user", "content": "continue"},
            answer.model_dump(exclude_unset=True),
        ]

    on_session(kind, db_url, main)


@pytest.mark.parametrize("kind", KINDS)
def test_the_snapshot_is_the_latest_items_and_says_whether_it_is_all(kind: str, db_url: str) -> None:
    async def main(backend: AgentStateSession) -> None:
        await backend.add_items(history(5))
        snapshot = await backend._get_compaction_snapshot(3)
        assert snapshot is not None and snapshot.items == history(5)[2:] and not snapshot.complete
        whole = await backend._get_compaction_snapshot(10)
        assert whole is not None and whole.items == history(5) and whole.complete
        await backend.add_items([{"role": "user", "content": "later"}])
        assert not await snapshot.replace_suffix(0, [{"role": "user", "content": "x"}])  # the tail moved on
        assert await backend.get_items(limit=100) == [*history(5), {"role": "user", "content": "later"}]

    on_session(kind, db_url, main)


def test_the_session_offers_the_sdks_compaction_hooks() -> None:
    """The SDK looks these up by name (OpenAIResponsesCompactionSession)."""
    assert callable(getattr(AgentStateSession, "_get_compaction_snapshot", None))
    assert callable(getattr(AgentStateSession, "_atomic_replace_items", None))


@pytest.mark.parametrize("kind", KINDS)
def test_a_manual_compaction_replaces_the_whole_history_in_one_transaction(kind: str, db_url: str) -> None:
    async def main(backend: AgentStateSession) -> None:
        await backend.add_items(history(6))
        summary = {"type": "compaction", "id": "cmp", "encrypted_content": "summary"}
        replaced = await AgentStateSession._atomic_replace_items(backend, [summary])
        assert replaced and await backend.get_items() == [summary]

    on_session(kind, db_url, main)
