"""Typical parameter values for every PostgreSQL query, on tests/postgres/datagen.py's data: what
a custom plan (the one PostgreSQL makes for an unprepared statement's values) is judged on."""

from __future__ import annotations

from typing import Any

from agentstate.postgres.queries import Query

# By parameter name; a few depend on the query (below).
COMMON: dict[str, Any] = {
    "planner_id": "planner-0007",
    "router_id": "router-0007",
    "owner": "executor-9",
    "actor": "planner-0007",
    "lease_seconds": 60.0,
    "worker_id": "task-00000007",
    "token": 1,
    "to_status": "completed",
    "result": '{"ok": true}',
    "status": "active",
    "after_created_at": "",
    "after_worker_id": "",
    "after_id": "",
    "after": "",
    "limit": 50,
    "position": 400,  # paging back from near the end of a 500-message stream
    "keep": 10,
    "idempotency_key": "request-1",
    "role": "user",
    "content": "hello",
    "metadata": "{}",
    "created_at": "2026-01-01T00:00:00.000000Z",
    "since": "2026-01-01T00:00:00.000000Z",
    "until": "~",
    # Half a day into the generated history: a backlog of recorded tasks, worked off in batches.
    "before": "2026-01-01T12:00:00.000000Z",
    "ids": '["task-00000001", "task-00000002", "task-00000003"]',
    "force": False,
    "description": "summarise",
    "acceptance_criteria": "[]",
    "task_context": "{}",
    "input_images": "[]",
    "max_attempts": 3,
    "priority": 0,
    "delay_seconds": 0.0,
    "waiting_on": 0,
    "lease_backoff_seconds": 0.0,
    "depends_on": "task-00000006",
    "reason": '"not needed"',
    "thread_id": "thread-7",
    "checkpoint_ns": "",
    "checkpoint_id": "1ef-0000007500",
    "parent_checkpoint_id": None,
    "run_id": "run-4",
    "type": "msgpack",
    "checkpoint": b"\x00checkpoint",
    "filter": "{}",
    "task_id": "task-1",
    "idx": 0,
    "task_path": "",
    "channel": "messages",
    "value": b"\x00value",
    "source": "thread-7",
    "target": "thread-new",
}

# Google ADK sessions (tests/postgres/datagen.py: 5,000 sessions of app "app", users user-0..9).
ADK: dict[str, Any] = {
    "app_name": "app",
    "user_id": "user-7",
    "session_id": "session-7",
    "session_key": 7,
    "state": '{"k": 1}',
    "now": 1_800_000_000.0,
    "after": float("-inf"),  # no after_timestamp: the latest :limit events
    "timestamp": 1_800_000_000.0,
    "seq": 501,
    "event_id": "event-new",
    "event": '{"author": "user"}',
    "after_time": float("-inf"),  # list_sessions' first page
    "after_user": "",
    "limit": 100,  # agentstate.integrations._adk_operations.PAGE (list_sessions)
}

STREAM_IDS = {"router_messages": "conv-0007", "planner_messages": "planner-0007", "worker_messages": "task-00000007"}
AGENT_IDS = {"conversations": "conv-0007", "routers": "router-0007", "planners": "planner-0007"}


def values(query: Query) -> dict[str, Any]:
    """Typical values for each of the query's parameters."""
    found = dict(COMMON)
    name = query.name
    for table, stream_id in STREAM_IDS.items():
        if name.endswith(table):
            found["stream_id"] = stream_id
    for table, agent_id in AGENT_IDS.items():
        if name.endswith(f"_{table}"):
            found["id"] = agent_id
    if name.startswith("tasks."):
        found["status"] = "recorded"
    if name in (
        "retention.is_purged_task",
        "retention.count_old_events",
        "retention.delete_old_events",
        "agents.worker_exists",
    ):
        found["id"] = "task-00000007"
    if name.startswith("langgraph."):
        found["before"] = None  # no bound: the first page
        found["limit"] = 100  # agentstate.integrations.langgraph.PAGE
        found["metadata"] = '{"source": "loop"}'
        found["channels"] = '["messages"]'
        found["replays"] = "[]"
    if name.startswith("adk."):
        found.update(ADK)
        if name == "adk.events":
            found["limit"] = 50  # GetSessionConfig(num_recent_events=50)
    return {param: found[param] for param in query.params}
