"""Generate a realistic PostgreSQL store quickly, in SQL (tests/datagen.py's shape): 1k agents of
each kind, tasks with skewed statuses over 100 busy planners, messages over 100 long streams in
every table, LangGraph checkpoints over many threads; then VACUUM ANALYZE, so the planner has
statistics and visibility maps.

Streams and planners are long on purpose (500 messages or tasks each): PostgreSQL plans each
statement for its values, and a range no longer than the page asked for is rightly read whole
and sorted, which says nothing about the long streams and busy planners where the plan matters."""

from __future__ import annotations

from typing import Any

import psycopg

# Skewed like a long-running system: most tasks are long recorded, a tenth wait.
STATUS_MIX = (
    "CASE WHEN n % 100 < 10 THEN 'pending' WHEN n % 100 < 12 THEN 'claimed' "
    "WHEN n % 100 < 30 THEN 'completed' WHEN n % 100 < 35 THEN 'failed_validation' ELSE 'recorded' END"
)
EPOCH = "timestamptz '2026-01-01 00:00:00+00'"


def populate(
    conn: psycopg.Connection[Any],
    *,
    tasks: int = 50_000,
    messages: int = 50_000,
    agents: int = 1_000,
    busy: int = 100,
    checkpoints: int = 50_000,
) -> None:
    """Fill an empty, migrated database, then VACUUM ANALYZE it (``conn`` in autocommit mode).

    :param busy: how many planners the tasks, and how many streams of each table the messages,
        are spread over (the first ones by id).
    """
    params = {"tasks": tasks, "messages": messages, "agents": agents, "busy": busy, "checkpoints": checkpoints}
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO planners (planner_id, status, created_at, updated_at)
            SELECT format('planner-%%s', lpad(n::text, 4, '0')), CASE WHEN n %% 10 = 0 THEN 'idle' ELSE 'active' END,
                   now() - make_interval(secs => n), now()
            FROM generate_series(0, %(agents)s - 1) AS n;
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO routers (router_id)
            SELECT format('router-%%s', lpad(n::text, 4, '0')) FROM generate_series(0, %(agents)s - 1) AS n;
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO conversations (id)
            SELECT format('conv-%%s', lpad(n::text, 4, '0')) FROM generate_series(0, %(agents)s - 1) AS n;
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO router_planner_links (router_id, planner_id)
            SELECT format('router-%%s', lpad(n::text, 4, '0')),
                   format('planner-%%s', lpad(((n * 7) %% %(agents)s)::text, 4, '0'))
            FROM generate_series(0, %(agents)s - 1) AS n;
            """,
            params,
        )
        conn.execute(
            f"""
            INSERT INTO workers (worker_id, planner_id, task_status, lease_owner, lease_expires_at,
                                 task_context, created_at, updated_at)
            SELECT format('task-%%s', lpad(n::text, 8, '0')),
                   format('planner-%%s', lpad((n %% %(busy)s)::text, 4, '0')), status,
                   CASE WHEN status = 'claimed' THEN 'executor-1' END,
                   CASE WHEN status = 'claimed' THEN now() + interval '60 seconds' END,
                   jsonb_build_object('step', n, 'notes', 'generated'),
                   {EPOCH} + make_interval(secs => n), {EPOCH} + make_interval(secs => n + 60)
            FROM (SELECT n, {STATUS_MIX.replace("%", "%%")} AS status
                  FROM generate_series(0, %(tasks)s - 1) AS n) AS t;
            """,
            params,
        )
        # Planning (0004): a few priorities, 10%% of pending tasks delayed and 10%% waiting on the
        # planner's previous task, so the claims' plans are judged with both present.
        conn.execute(
            """
            UPDATE workers SET priority = n %% 3,
                available_at = CASE WHEN task_status = 'pending' AND n %% 10 = 3 THEN now() + interval '1 hour' END
            FROM generate_series(0, %(tasks)s - 1) AS n
            WHERE worker_id = format('task-%%s', lpad(n::text, 8, '0'));
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO task_dependencies (worker_id, depends_on)
            SELECT format('task-%%s', lpad(n::text, 8, '0')), format('task-%%s', lpad((n - %(busy)s)::text, 8, '0'))
            FROM generate_series(%(busy)s, %(tasks)s - 1) AS n WHERE n %% 10 = 7;
            """,
            params,
        )
        conn.execute(
            """
            UPDATE workers SET waiting_on = 1
            WHERE task_status = 'pending' AND worker_id IN (
                SELECT d.worker_id FROM task_dependencies AS d JOIN workers AS p ON p.worker_id = d.depends_on
                WHERE p.task_status NOT IN ('completed', 'recorded'));
            """
        )
        for table, key, prefix in (
            ("router_messages", "conversation_id", "conv-"),
            ("planner_messages", "agent_id", "planner-"),
        ):
            conn.execute(
                f"""
                INSERT INTO {table} ({key}, position, role, content, metadata, created_at)
                SELECT '{prefix}' || lpad((n %% %(busy)s)::text, 4, '0'), n / %(busy)s + 1,
                       CASE WHEN n %% 2 = 1 THEN 'assistant' ELSE 'user' END,
                       format('message %%s: %%s', n, repeat(md5(n::text), 4)),
                       json_build_object('tokens', n %% 500),
                       {EPOCH} + make_interval(secs => n)
                FROM generate_series(0, %(messages)s - 1) AS n;
                """,
                params,
            )
        conn.execute(
            f"""
            INSERT INTO worker_messages (agent_id, position, role, content, created_at)
            SELECT format('task-%%s', lpad((n %% %(busy)s)::text, 8, '0')), n / %(busy)s + 1, 'assistant',
                   format('worker output %%s', n), {EPOCH} + make_interval(secs => n)
            FROM generate_series(0, %(messages)s - 1) AS n;
            """,
            params,
        )
        for table, key in (
            ("router_messages", "conversation_id"),
            ("planner_messages", "agent_id"),
            ("worker_messages", "agent_id"),
        ):
            conn.execute(
                f"""
                UPDATE message_heads AS h SET last_position = m.top
                FROM (SELECT {key} AS stream_id, max(position) AS top FROM {table} GROUP BY {key}) AS m
                WHERE h.stream_table = '{table}' AND h.stream_id = m.stream_id;
                """
            )
        # Threads of 1000 checkpoints in two namespaces; every fourth thread's checkpoints carry a run id.
        conn.execute(
            """
            INSERT INTO langgraph_checkpoints
                (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
            SELECT format('thread-%%s', n / 1000), CASE WHEN n %% 2 = 0 THEN '' ELSE 'sub' END,
                   format('1ef-%%s', lpad(n::text, 10, '0')), NULL,
                   CASE WHEN (n / 1000) %% 4 = 0 THEN format('run-%%s', n / 1000) END,
                   'msgpack', decode(md5(n::text), 'hex'),
                   jsonb_build_object('source', 'loop', 'step', n %% 100)
            FROM generate_series(0, %(checkpoints)s - 1) AS n;
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO langgraph_writes
                (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
            SELECT format('thread-%%s', n / 1000), CASE WHEN n %% 2 = 0 THEN '' ELSE 'sub' END,
                   format('1ef-%%s', lpad(n::text, 10, '0')), 'task-1', 0, '', 'messages', 'msgpack',
                   decode(md5(n::text), 'hex')
            FROM generate_series(0, %(checkpoints)s - 1) AS n;
            """,
            params,
        )
        populate_adk(conn)
    conn.execute("VACUUM ANALYZE")


def populate_adk(
    conn: psycopg.Connection[Any], *, apps: int = 1_000, sessions: int = 10_000, events: int = 500
) -> None:
    """Google ADK state and sessions: ``apps`` apps ('app' and 'app-1', ...) of ten users each,
    half the sessions in 'app' and the rest spread over the next hundred apps, and ``events``
    events in each of the first hundred sessions (those of 'app' among them)."""
    params = {"apps": apps, "sessions": sessions, "events": events}
    app = "CASE WHEN {n} = 0 THEN 'app' ELSE format('app-%%s', {n}) END"
    conn.execute(
        f"""
        INSERT INTO adk_app_states (app_name, state, update_time)
        SELECT {app.format(n="n")}, '{{}}', 1800000000 FROM generate_series(0, %(apps)s - 1) AS n
        """,
        params,
    )
    conn.execute(
        f"""
        INSERT INTO adk_user_states (app_name, user_id, state, update_time)
        SELECT {app.format(n="n / 10")}, format('user-%%s', n %% 10), '{{}}', 1800000000
        FROM generate_series(0, %(apps)s * 10 - 1) AS n
        """,
        params,
    )
    conn.execute(
        f"""
        INSERT INTO adk_sessions (app_name, user_id, session_id, state, create_time, update_time, revision, events)
        SELECT {app.format(n="CASE WHEN n %% 2 = 0 THEN 0 ELSE n %% 100 END")}, format('user-%%s', n / 2 %% 10), format('session-%%s', n), '{{"k": 1}}',
               1800000000 + n, 1800000000 + n + %(events)s, %(events)s + 1, %(events)s
        FROM generate_series(0, %(sessions)s - 1) AS n
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO adk_events (session_key, timestamp, seq, event_id, event)
        SELECT s.session_key, 1800000000 + e, e, format('event-%%s-%%s', s.session_key, e), '{"author": "user"}'
        FROM adk_sessions AS s, generate_series(1, %(events)s) AS e
        WHERE s.session_key <= 100
        """,
        params,
    )
