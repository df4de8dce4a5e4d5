"""Google ADK's own session-service tests, ported to run against AgentStateSessionService on
both engines.

Origin: google/adk-python, tests/unittests/sessions/test_session_service.py at commit
03301454c3cd2d85d3691b3026a60ce6cb703193 (and, for test_session_state and
test_create_new_session_will_merge_states, the older version at
7c670f638bc17374ceb08740bdd057e55c9c2e12). Copyright 2025-2026 Google LLC, licensed under the
Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0); adapted: each test
takes the ``session_service`` fixture below (one per engine) instead of ADK's backends, and
asserts what the original asserts. test_list_sessions_ordered_by_last_update_time and
test_padded_session_id_reads_and_deletes are named in ADK's contract registry
(tests/unittests/sessions/_conformance.py at 11cc093158fed8ad72b40fce0d0bf3d8b2f8aa18) and
written here from what their names promise.

Left out, with the reason:

- test_database_session_service_enables_pool_pre_ping_by_default,
  ..._respects_pool_pre_ping_override, ..._strips_timezone_for_dialect,
  ..._preserves_timezone_for_other_dialects, ..._creates_read_only_engine_for_spanner,
  ..._creates_read_only_engine_for_other_dialects, ..._get_session_uses_read_only_factory,
  ..._list_sessions_uses_read_only_factory, ..._visible_in_module_namespace: SQLAlchemy engine
  options and module layout of DatabaseSessionService.
- test_sqlite_session_service_accepts_sqlite_urls, ..._preserves_uri_query_parameters,
  ..._accepts_absolute_sqlite_urls: SqliteSessionService's URL parsing (ours, for
  ``agentstate:`` URIs, is tested in test_adk_service.py).
- test_append_event_raises_if_app_state_row_missing, ..._user_state_row_missing: they delete
  DatabaseSessionService's rows by hand; our append makes a missing state row instead.
- test_append_event_when_session_is_same_ref_as_storage_session: InMemorySessionService's dict.
- test_create_session_calls_rollback_on_commit_failure, test_append_event_calls_rollback_on_commit_failure,
  test_delete_session_calls_rollback_on_commit_failure, test_service_recovers_after_multiple_failures,
  test_append_event_reads_storage_revision_before_commit, test_create_session_reads_storage_revision_before_commit,
  test_concurrent_prepare_tables_no_race_condition, test_prepare_tables_serializes_schema_detection_and_creation,
  test_prepare_tables_idempotent_after_creation, test_public_prepare_tables_eager_initialization,
  test_get_or_create_state_*, test_append_event_locks_only_scopes_with_deltas: spies on
  SQLAlchemy sessions and private helpers of DatabaseSessionService (agentstate's rollback on
  failure is tested by tests/robustness; its migrations by tests/sqlite and tests/postgres).
- test_vertex_ai_session_service_raises_not_implemented_for_get_user_state: Vertex AI's service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from agentstate.integrations.adk import AgentStateSessionService


@pytest.fixture
def session_service(db_url: str) -> Iterator[AgentStateSessionService]:
    service = AgentStateSessionService(db_url)
    yield service
    asyncio.run(service.close())


def user_event(invocation_id: str, delta: dict[str, object], **fields: object) -> Event:
    return Event(invocation_id=invocation_id, author="user", actions=EventActions(state_delta=delta), **fields)


@pytest.mark.asyncio
async def test_get_empty_session(session_service: AgentStateSessionService) -> None:
    assert not await session_service.get_session(app_name="my_app", user_id="test_user", session_id="123")


@pytest.mark.asyncio
async def test_create_get_session(session_service: AgentStateSessionService) -> None:
    app_name, user_id, state = "my_app", "test_user", {"key": "value"}
    session = await session_service.create_session(app_name=app_name, user_id=user_id, state=state)
    assert session.app_name == app_name and session.user_id == user_id and session.id
    assert session.state == state
    assert session.last_update_time <= datetime.now().astimezone(UTC).timestamp()

    got = await session_service.get_session(app_name=app_name, user_id=user_id, session_id=session.id)
    assert got == session
    assert got is not None and got.last_update_time <= datetime.now().astimezone(UTC).timestamp()

    await session_service.delete_session(app_name=app_name, user_id=user_id, session_id=session.id)
    assert await session_service.get_session(app_name=app_name, user_id=user_id, session_id=session.id) is None


@pytest.mark.asyncio
async def test_create_and_list_sessions(session_service: AgentStateSessionService) -> None:
    session_ids = [f"session{i}" for i in range(5)]
    for session_id in session_ids:
        await session_service.create_session(
            app_name="my_app", user_id="test_user", session_id=session_id, state={"key": "value" + session_id}
        )
    sessions = (await session_service.list_sessions(app_name="my_app", user_id="test_user")).sessions
    assert {s.id for s in sessions} == set(session_ids)
    for session in sessions:
        assert session.state == {"key": "value" + session.id}
        assert session.events == []


@pytest.mark.asyncio
async def test_list_sessions_all_users(session_service: AgentStateSessionService) -> None:
    for user_id, session_id in (("user1", "session1a"), ("user1", "session1b"), ("user2", "session2a")):
        await session_service.create_session(
            app_name="my_app", user_id=user_id, session_id=session_id, state={"key": "value" + session_id[-2:]}
        )
    first = {s.id: s for s in (await session_service.list_sessions(app_name="my_app", user_id="user1")).sessions}
    assert {k: s.state for k, s in first.items()} == {"session1a": {"key": "value1a"}, "session1b": {"key": "value1b"}}
    second = (await session_service.list_sessions(app_name="my_app", user_id="user2")).sessions
    assert [(s.id, s.state) for s in second] == [("session2a", {"key": "value2a"})]
    every = {s.id: s.state for s in (await session_service.list_sessions(app_name="my_app", user_id=None)).sessions}
    assert every == {"session1a": {"key": "value1a"}, "session1b": {"key": "value1b"}, "session2a": {"key": "value2a"}}


@pytest.mark.asyncio
async def test_list_sessions_ordered_by_last_update_time(session_service: AgentStateSessionService) -> None:
    sessions = [
        await session_service.create_session(app_name="my_app", user_id=user, session_id=f"s-{user}")
        for user in ("u1", "u2", "u3")
    ]
    base = max(s.last_update_time for s in sessions)
    for offset, session in ((30, sessions[0]), (10, sessions[1]), (20, sessions[2])):  # u2, u3, then u1
        await session_service.append_event(session, Event(author="user", timestamp=base + offset))
    listed = (await session_service.list_sessions(app_name="my_app")).sessions
    assert [s.id for s in listed] == ["s-u2", "s-u3", "s-u1"]
    assert [s.last_update_time for s in listed] == sorted(s.last_update_time for s in listed)


@pytest.mark.asyncio
async def test_padded_session_id_reads_and_deletes(session_service: AgentStateSessionService) -> None:
    created = await session_service.create_session(app_name="my_app", user_id="u", session_id="  padded  ")
    assert created.id == "padded"
    got = await session_service.get_session(app_name="my_app", user_id="u", session_id=" padded ")
    assert got is not None and got.id == "padded"
    await session_service.delete_session(app_name="my_app", user_id="u", session_id="padded   ")
    assert await session_service.get_session(app_name="my_app", user_id="u", session_id="padded") is None


@pytest.mark.asyncio
async def test_app_state_is_shared_by_all_users_of_app(session_service: AgentStateSessionService) -> None:
    session1 = await session_service.create_session(
        app_name="my_app", user_id="u1", session_id="s1", state={"app:k1": "v1"}
    )
    await session_service.append_event(session=session1, event=user_event("inv1", {"app:k2": "v2"}))
    session2 = await session_service.create_session(app_name="my_app", user_id="u2", session_id="s2")
    assert session2.state == {"app:k1": "v1", "app:k2": "v2"}
    again = await session_service.get_session(app_name="my_app", user_id="u1", session_id="s1")
    assert again is not None and again.state.get("app:k1") == "v1" and again.state.get("app:k2") == "v2"


@pytest.mark.asyncio
async def test_user_state_is_shared_only_by_user_sessions(session_service: AgentStateSessionService) -> None:
    session1 = await session_service.create_session(
        app_name="my_app", user_id="u1", session_id="s1", state={"user:k1": "v1"}
    )
    await session_service.append_event(session=session1, event=user_event("inv1", {"user:k2": "v2"}))
    session1b = await session_service.create_session(app_name="my_app", user_id="u1", session_id="s1b")
    assert session1b.state == {"user:k1": "v1", "user:k2": "v2"}
    session2 = await session_service.create_session(app_name="my_app", user_id="u2", session_id="s2")
    assert session2.state == {}


@pytest.mark.asyncio
async def test_session_state_is_not_shared(session_service: AgentStateSessionService) -> None:
    session1 = await session_service.create_session(
        app_name="my_app", user_id="u1", session_id="s1", state={"sk1": "v1"}
    )
    await session_service.append_event(session=session1, event=user_event("inv1", {"sk2": "v2"}))
    got = await session_service.get_session(app_name="my_app", user_id="u1", session_id="s1")
    assert got is not None and got.state.get("sk1") == "v1" and got.state.get("sk2") == "v2"
    session1b = await session_service.create_session(app_name="my_app", user_id="u1", session_id="s1b")
    assert session1b.state == {}


@pytest.mark.asyncio
async def test_session_state(session_service: AgentStateSessionService) -> None:  # from 7c670f6
    session_11 = await session_service.create_session(
        app_name="my_app", user_id="user1", state={"key11": "value11"}, session_id="session11"
    )
    await session_service.create_session(
        app_name="my_app", user_id="user1", state={"key12": "value12"}, session_id="session12"
    )
    await session_service.create_session(app_name="my_app", user_id="user2", session_id="session2")
    assert session_11.state.get("key11") == "value11"
    event = Event(
        invocation_id="invocation",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="text")]),
        actions=EventActions(
            state_delta={"app:key": "value", "user:key1": "value1", "temp:key": "temp", "key11": "value11_new"}
        ),
    )
    await session_service.append_event(session=session_11, event=event)
    assert session_11.state.get("app:key") == "value"
    assert session_11.state.get("key11") == "value11_new"
    assert session_11.state.get("user:key1") == "value1"

    session_12 = await session_service.get_session(app_name="my_app", user_id="user1", session_id="session12")
    assert session_12 is not None and session_12.state.get("key12") == "value12"
    assert not session_12.state.get("temp:key")
    session_2 = await session_service.get_session(app_name="my_app", user_id="user2", session_id="session2")
    assert session_2 is not None and session_2.state.get("app:key") == "value"
    assert not session_2.state.get("user:key1")
    session_11_got = await session_service.get_session(app_name="my_app", user_id="user1", session_id="session11")
    assert session_11_got is not None
    assert session_11_got.state.get("key11") == "value11_new" and session_11_got.state.get("user:key1") == "value1"
    assert not session_11_got.state.get("temp:key")


@pytest.mark.asyncio
async def test_create_new_session_will_merge_states(session_service: AgentStateSessionService) -> None:  # from 7c670f6
    session_1 = await session_service.create_session(
        app_name="my_app", user_id="user", state={"key1": "value1"}, session_id="session1"
    )
    delta = {"app:key": "value", "user:key1": "value1", "temp:key": "temp"}
    await session_service.append_event(session=session_1, event=user_event("invocation", delta))
    assert session_1.state.get("app:key") == "value" and session_1.state.get("key1") == "value1"
    assert session_1.state.get("user:key1") == "value1"
    session_2 = await session_service.create_session(app_name="my_app", user_id="user", state={}, session_id="session2")
    assert session_2.state.get("app:key") == "value" and session_2.state.get("user:key1") == "value1"
    assert not session_2.state.get("key1") and not session_2.state.get("temp:key")


@pytest.mark.asyncio
async def test_temp_state_is_not_persisted_in_state_or_events(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1", session_id="s1")
    event = user_event("inv1", {"temp:k1": "v1", "sk": "v2"})
    await session_service.append_event(session=session, event=event)
    assert session.state.get("temp:k1") == "v1" and session.state.get("sk") == "v2"
    assert "temp:k1" not in event.actions.state_delta and event.actions.state_delta.get("sk") == "v2"
    got = await session_service.get_session(app_name="my_app", user_id="u1", session_id="s1")
    assert got is not None and "temp:k1" not in got.state
    assert "temp:k1" not in got.events[0].actions.state_delta


@pytest.mark.asyncio
async def test_temp_state_visible_across_sequential_events(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1", session_id="s_seq")
    event1 = Event(
        invocation_id="inv1", author="agent1", actions=EventActions(state_delta={"temp:output": "result_from_a1"})
    )
    await session_service.append_event(session=session, event=event1)
    assert session.state.get("temp:output") == "result_from_a1"
    assert "temp:output" not in event1.actions.state_delta


@pytest.mark.asyncio
async def test_get_session_respects_user_id(session_service: AgentStateSessionService) -> None:
    session1 = await session_service.create_session(app_name="my_app", user_id="u1", session_id="s1")
    await session_service.append_event(session1, Event(invocation_id="inv1", author="user"))
    await session_service.create_session(app_name="my_app", user_id="u2", session_id="s1")
    got = await session_service.get_session(app_name="my_app", user_id="u2", session_id="s1")
    assert got is not None and got.user_id == "u2" and len(got.events) == 0


@pytest.mark.asyncio
async def test_create_session_with_existing_id_raises_error(session_service: AgentStateSessionService) -> None:
    await session_service.create_session(app_name="my_app", user_id="test_user", session_id="existing_session")
    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(app_name="my_app", user_id="test_user", session_id="existing_session")


@pytest.mark.asyncio
async def test_append_event_bytes(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user")
    content = types.Content(role="user", parts=[types.Part.from_bytes(data=b"test_image_data", mime_type="image/png")])
    grounding = types.GroundingMetadata(search_entry_point=types.SearchEntryPoint(sdk_blob=b"test_sdk_blob"))
    await session_service.append_event(
        session=session,
        event=Event(invocation_id="invocation", author="user", content=content, grounding_metadata=grounding),
    )
    assert session.events[0].content == content
    got = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert got is not None and len(got.events) == 1
    assert got.events[0].content == content and got.events[0].grounding_metadata == grounding


@pytest.mark.asyncio
async def test_append_event_complete(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user")
    event = Event(
        invocation_id="invocation",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="test_text")]),
        turn_complete=True,
        partial=False,
        actions=EventActions(artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True),
        long_running_tool_ids={"tool1"},
        error_code="error_code",
        error_message="error_message",
        interrupted=True,
        grounding_metadata=types.GroundingMetadata(web_search_queries=["query1"]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1, candidates_token_count=1, total_token_count=2
        ),
        citation_metadata=types.CitationMetadata(),
        custom_metadata={"custom_key": "custom_value"},
        timestamp=1700000000.123,
        input_transcription=types.Transcription(text="input transcription", finished=True),
        output_transcription=types.Transcription(text="output transcription", finished=True),
    )
    await session_service.append_event(session=session, event=event)
    assert await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id) == session


@pytest.mark.asyncio
async def test_session_last_update_time_updates_on_event(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user")
    original = session.last_update_time
    await session_service.append_event(
        session=session, event=Event(invocation_id="invocation", author="user", timestamp=original + 10)
    )
    assert session.last_update_time == pytest.approx(original + 10, abs=1e-6)
    refreshed = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert refreshed is not None and refreshed.last_update_time == pytest.approx(original + 10, abs=1e-6)
    assert refreshed.last_update_time > original


@pytest.mark.asyncio
async def test_append_event_to_stale_session(session_service: AgentStateSessionService) -> None:
    now = datetime.now().astimezone(UTC).timestamp()
    original = await session_service.create_session(app_name="my_app", user_id="user")
    await session_service.append_event(original, user_event("inv1", {"sk1": "v1"}, timestamp=now + 1))
    updated = await session_service.get_session(app_name="my_app", user_id="user", session_id=original.id)
    assert updated is not None
    await session_service.append_event(updated, user_event("inv2", {"sk2": "v2"}, timestamp=now + 2))
    assert original.last_update_time < updated.last_update_time
    assert len(original.events) == 1 and "sk2" not in original.state

    with pytest.raises(ValueError, match="modified in storage"):
        await session_service.append_event(original, user_event("inv3", {"sk3": "v3"}, timestamp=now + 3))
    final = await session_service.get_session(app_name="my_app", user_id="user", session_id=original.id)
    assert final is not None and len(final.events) == 2
    assert final.state.get("sk1") == "v1" and final.state.get("sk2") == "v2" and final.state.get("sk3") is None
    assert [e.invocation_id for e in final.events] == ["inv1", "inv2"]


@pytest.mark.asyncio
async def test_append_event_concurrent_stale_sessions_reject_stale_writer(
    session_service: AgentStateSessionService,
) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user")
    rounds = 8
    for i in range(rounds):
        latest = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
        assert latest is not None
        stale_1, stale_2 = latest.model_copy(deep=True), latest.model_copy(deep=True)
        base = latest.last_update_time + 10.0
        results = await asyncio.gather(
            session_service.append_event(stale_1, user_event(f"inv{i}-1", {f"sk{i}-1": f"v{i}-1"}, timestamp=base + 1)),
            session_service.append_event(stale_2, user_event(f"inv{i}-2", {f"sk{i}-2": f"v{i}-2"}, timestamp=base + 2)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1 and isinstance(failures[0], ValueError) and "modified in storage" in str(failures[0])
    final = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert final is not None
    for i in range(rounds):
        values = {final.state.get(f"sk{i}-1"), final.state.get(f"sk{i}-2")}
        assert values & {f"v{i}-1", f"v{i}-2"} and None in values
    assert len(final.events) == rounds


@pytest.mark.asyncio
async def test_append_event_allows_timestamp_drift_for_current_session(
    session_service: AgentStateSessionService,
) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user", session_id="s1")
    event1 = Event(invocation_id="inv1", author="user", timestamp=session.last_update_time + 10)
    await session_service.append_event(session, event1)
    session.last_update_time -= 0.0001  # a float round trip, the stored revision unchanged
    await session_service.append_event(
        session, Event(invocation_id="inv2", author="user", timestamp=event1.timestamp + 10)
    )
    refreshed = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert refreshed is not None and [e.invocation_id for e in refreshed.events] == ["inv1", "inv2"]


@pytest.mark.asyncio
async def test_append_event_allows_markerless_current_session(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user", session_id="s1")
    event1 = Event(invocation_id="inv1", author="user", timestamp=session.last_update_time + 10)
    await session_service.append_event(session, event1)
    session._storage_update_marker = None
    session.last_update_time -= 0.0001
    await session_service.append_event(
        session, Event(invocation_id="inv2", author="user", timestamp=event1.timestamp + 10)
    )
    refreshed = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert refreshed is not None and [e.invocation_id for e in refreshed.events] == ["inv1", "inv2"]


@pytest.mark.asyncio
async def test_get_session_with_config(session_service: AgentStateSessionService) -> None:
    count = 5
    session = await session_service.create_session(app_name="my_app", user_id="user")
    for i in range(1, count + 1):
        await session_service.append_event(session, Event(author="user", timestamp=i))

    async def events(config: GetSessionConfig | None = None) -> list[Event]:
        got = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id, config=config)
        assert got is not None
        return got.events

    assert len(await events()) == count
    assert not await events(GetSessionConfig(num_recent_events=0))
    recent = await events(GetSessionConfig(num_recent_events=3))
    assert len(recent) == 3 and recent[0].timestamp == count - 3 + 1
    after = await events(GetSessionConfig(after_timestamp=4.0))
    assert len(after) == count - 4 + 1 and after[0].timestamp == 4.0
    assert not await events(GetSessionConfig(after_timestamp=count * 10))
    assert len(await events(GetSessionConfig(after_timestamp=4.0, num_recent_events=3))) == count - 4 + 1


@pytest.mark.asyncio
async def test_partial_events_are_not_persisted(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="user")
    await session_service.append_event(session, Event(author="user", partial=True))
    assert len(session.events) == 0
    got = await session_service.get_session(app_name="my_app", user_id="user", session_id=session.id)
    assert got is not None and len(got.events) == 0


@pytest.mark.asyncio
async def test_create_session_sequential_same_app_name(session_service: AgentStateSessionService) -> None:
    s1 = await session_service.create_session(app_name="shared", user_id="u1", session_id="s1")
    s2 = await session_service.create_session(app_name="shared", user_id="u2", session_id="s2")
    assert s1.app_name == s2.app_name == "shared"
    assert await session_service.get_session(app_name="shared", user_id="u1", session_id="s1") is not None
    assert await session_service.get_session(app_name="shared", user_id="u2", session_id="s2") is not None


@pytest.mark.asyncio
async def test_get_user_state_returns_empty_dict_when_no_state_exists(
    session_service: AgentStateSessionService,
) -> None:
    assert not await session_service.get_user_state(app_name="my_app", user_id="u1")


@pytest.mark.asyncio
async def test_get_user_state_returns_state_written_via_append_event(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1")
    delta = {"user:profile": {"name": "Alice"}, "session_key": 1}
    await session_service.append_event(session, Event(author="system", actions=EventActions(state_delta=delta)))
    assert await session_service.get_user_state(app_name="my_app", user_id="u1") == {"profile": {"name": "Alice"}}


@pytest.mark.asyncio
async def test_get_user_state_is_not_visible_across_users(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1")
    await session_service.append_event(
        session, Event(author="system", actions=EventActions(state_delta={"user:secret": "u1"}))
    )
    assert not await session_service.get_user_state(app_name="my_app", user_id="u2")


@pytest.mark.asyncio
async def test_get_user_state_is_not_visible_across_apps(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1")
    await session_service.append_event(
        session, Event(author="system", actions=EventActions(state_delta={"user:data": "a"}))
    )
    assert not await session_service.get_user_state(app_name="other_app", user_id="u1")


@pytest.mark.asyncio
async def test_get_user_state_available_before_session_is_created(session_service: AgentStateSessionService) -> None:
    first = await session_service.create_session(app_name="my_app", user_id="u1")
    await session_service.append_event(
        first, Event(author="system", actions=EventActions(state_delta={"user:ctx": {"v": 1}}))
    )
    assert await session_service.get_user_state(app_name="my_app", user_id="u1") == {"ctx": {"v": 1}}


@pytest.mark.asyncio
async def test_get_user_state_reflects_latest_write(session_service: AgentStateSessionService) -> None:
    session = await session_service.create_session(app_name="my_app", user_id="u1")
    for counter in (1, 2):
        await session_service.append_event(
            session, Event(author="system", actions=EventActions(state_delta={"user:counter": counter}))
        )
    assert (await session_service.get_user_state(app_name="my_app", user_id="u1"))["counter"] == 2
