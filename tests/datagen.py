"""Generate a realistic database quickly, in SQL: tasks over 1k planners with skewed statuses,
and messages over 1k agents in every stream. Used by the plan tests (after ANALYZE)."""

from __future__ import annotations

import apsw

from agentstate import transactions

# Skewed like a long-running system: most tasks are long recorded, a tenth wait.
STATUS_MIX = (
    "CASE WHEN n % 100 < 10 THEN 'pending' WHEN n % 100 < 12 THEN 'claimed' "
    "WHEN n % 100 < 30 THEN 'completed' WHEN n % 100 < 35 THEN 'failed_validation' ELSE 'recorded' END"
)


def populate(conn: apsw.Connection, *, tasks: int = 100_000, messages: int = 100_000, agents: int = 1_000) -> None:
    """Fill an empty, migrated database and ANALYZE it."""
    with transactions.write(conn):
        conn.execute(
            """
            CREATE TEMP TABLE numbers AS
            WITH RECURSIVE n(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM n WHERE n + 1 < :count)
            SELECT n FROM n;
            """,
            {"count": max(tasks, messages, agents)},
        )
        conn.execute(
            """
            INSERT INTO planners (planner_id, status, created_at, updated_at)
            SELECT printf('planner-%04d', n), CASE WHEN n % 10 = 0 THEN 'idle' ELSE 'active' END,
                   strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', printf('-%d seconds', n)),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') FROM temp.numbers WHERE n < :agents;
            INSERT INTO routers (router_id, created_at, updated_at)
            SELECT printf('router-%04d', n), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') FROM temp.numbers WHERE n < :agents;
            INSERT INTO conversations (id, created_at, updated_at)
            SELECT printf('conv-%04d', n), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') FROM temp.numbers WHERE n < :agents;
            INSERT INTO router_planner_links (router_id, planner_id)
            SELECT printf('router-%04d', n), printf('planner-%04d', (n * 7) % :agents) FROM temp.numbers WHERE n < :agents;
            """,
            {"agents": agents},
        )
        conn.execute(
            f"""
            INSERT INTO workers (worker_id, planner_id, task_status, lease_owner, lease_expires_at,
                                 task_context, created_at, updated_at)
            SELECT printf('task-%08d', n), printf('planner-%04d', n % :agents), status,
                   CASE WHEN status = 'claimed' THEN 'executor-1' END,
                   CASE WHEN status = 'claimed' THEN strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '+60 seconds') END,
                   json_object('step', n, 'notes', 'generated'),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n)),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n + 60))
            FROM (SELECT n, {STATUS_MIX} AS status FROM temp.numbers WHERE n < :tasks);
            """,
            {"tasks": tasks, "agents": agents},
        )
        # Planning (0008): a few priorities, 10% of pending tasks delayed and 10% waiting on the
        # planner's previous task, so the claims' plans are judged with both present.
        conn.execute(
            """
            UPDATE workers SET priority = n % 3,
                available_at = CASE WHEN task_status = 'pending' AND n % 10 = 3
                                    THEN strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '+1 hour') END
            FROM temp.numbers WHERE worker_id = printf('task-%08d', n) AND n < :tasks;
            INSERT INTO task_dependencies (worker_id, depends_on)
            SELECT printf('task-%08d', n), printf('task-%08d', n - :agents)
            FROM temp.numbers WHERE n < :tasks AND n >= :agents AND n % 10 = 7;
            UPDATE workers SET waiting_on = 1
            WHERE task_status = 'pending' AND worker_id IN (
                SELECT d.worker_id FROM task_dependencies AS d JOIN workers AS p ON p.worker_id = d.depends_on
                WHERE p.task_status NOT IN ('completed', 'recorded'));
            """,
            {"tasks": tasks, "agents": agents},
        )
        for table, key, fmt in (
            ("router_messages", "conversation_id", "conv-%04d"),
            ("planner_messages", "agent_id", "planner-%04d"),
        ):
            conn.execute(
                f"""
                INSERT INTO {table} ({key}, position, role, content, metadata, created_at)
                SELECT printf('{fmt}', n % :agents), n / :agents + 1,
                       CASE WHEN n % 2 THEN 'assistant' ELSE 'user' END,
                       printf('message %d: %s', n, substr(hex(randomblob(100)), 1, 150)),
                       json_object('tokens', n % 500),
                       strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n))
                FROM temp.numbers WHERE n < :messages;
                """,
                {"messages": messages, "agents": agents},
            )
        conn.execute(
            """
            INSERT INTO worker_messages (agent_id, position, role, content, created_at)
            SELECT printf('task-%08d', n % :agents), n / :agents + 1, 'assistant',
                   printf('worker output %d', n),
                   strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-01-01', printf('+%d seconds', n))
            FROM temp.numbers WHERE n < :messages;
            """,
            {"messages": messages, "agents": agents},
        )
        # LangGraph: 50 threads of 1000 checkpoints, interleaved in time, in two namespaces; each
        # checkpoint's parent the one before it in its thread and namespace, a quarter with a run id.
        conn.execute(
            """
            INSERT INTO langgraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
                                               type, checkpoint, metadata, channels, replays)
            SELECT printf('thread-%d', n % 50), CASE WHEN n % 100 < 50 THEN '' ELSE 'sub' END,
                   printf('1ef-%010d', n), CASE WHEN n >= 100 THEN printf('1ef-%010d', n - 100) END,
                   CASE WHEN n % 200 < 50 THEN printf('run-%d', n % 50) END,
                   'msgpack', randomblob(200), json_object('source', 'loop', 'step', n / 100),
                   CASE WHEN n % 1000 < 100 THEN '["messages"]' ELSE '[]' END, '["messages"]'
            FROM temp.numbers WHERE n < 50000;
            INSERT INTO langgraph_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel,
                                          type, value)
            SELECT thread_id, checkpoint_ns, checkpoint_id, 'task-1', 0, '', 'messages', 'msgpack', randomblob(50)
            FROM langgraph_checkpoints;
            """
        )
        conn.execute("DROP TABLE temp.numbers")
    conn.execute("ANALYZE")
