-- Operators' statistics on PostgreSQL (the names of schema/sqlite/queries/stats.sql).
--
-- Queries with a `-- scans:` line read a whole table or index on purpose (counting every row has
-- no shortcut); the plan tests allow them a sequential scan. Nothing on a hot path runs them.
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: pages :one
-- uses: none
-- scans: reads the catalog's sizes of agentstate's tables
-- Page size, pages that agentstate's tables (with their indexes and TOAST) take, and pages free:
-- always 0 here, since PostgreSQL reuses free space inside a table (VACUUM) and gives none back
-- to the file system short of VACUUM FULL.
SELECT current_setting('block_size')::bigint,
       (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
        FROM pg_class AS c
        WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
          AND c.relname IN ('conversations', 'routers', 'planners', 'router_planner_links', 'workers',
                            'task_events', 'router_messages', 'planner_messages', 'worker_messages',
                            'message_heads', 'langgraph_checkpoints', 'langgraph_writes'))
           / current_setting('block_size')::bigint,
       0::bigint;

-- name: table_rows :many
-- uses: none
-- scans: counts every row of every table
-- Rows in each of agentstate's tables.
SELECT 'conversations', count(*) FROM conversations
UNION ALL SELECT 'routers', count(*) FROM routers
UNION ALL SELECT 'planners', count(*) FROM planners
UNION ALL SELECT 'router_planner_links', count(*) FROM router_planner_links
UNION ALL SELECT 'workers', count(*) FROM workers
UNION ALL SELECT 'task_events', count(*) FROM task_events
UNION ALL SELECT 'router_messages', count(*) FROM router_messages
UNION ALL SELECT 'planner_messages', count(*) FROM planner_messages
UNION ALL SELECT 'worker_messages', count(*) FROM worker_messages;

-- name: tasks_by_planner_status :many
-- uses: none
-- scans: reads every task once
-- Tasks per planner and status (summed, the store-wide counts per status).
SELECT planner_id, task_status, count(*)
FROM workers
GROUP BY planner_id, task_status;

-- name: expired_leases :value
-- uses: idx_workers_leases
-- Claimed tasks whose lease ran out (their executor died or hangs): the next claim takes them.
SELECT count(*) FROM workers WHERE task_status = 'claimed' AND lease_expires_at < statement_timestamp();

-- name: oldest_pending :value
-- uses: idx_workers_pending
-- When the longest-waiting pending task was created (NULL when none waits).
SELECT min(created_at) FROM workers WHERE task_status = 'pending';

-- name: stream_count_{stream} :value
-- uses: none
-- scans: reads the stream table or its smallest index once
-- How many streams of this table hold messages.
SELECT count(DISTINCT {key}) FROM {stream};

-- name: largest_streams_{stream} :many
-- uses: none
-- scans: reads the stream table or its smallest index once, then sorts the per-stream counts
-- The :limit streams with the most messages, largest first.
SELECT {key}, count(*) AS messages
FROM {stream}
GROUP BY {key}
ORDER BY messages DESC, {key}
LIMIT :limit;

-- name: now :value
-- uses: none
-- only: postgres: SQLite has no clock of its own: agentstate stamps SQLite's times with the process's clock (values.utc_now), and stats() measures ages on that
-- The server's clock, which stamps every time stored here (created_at, leases): stats() measures
-- the oldest pending task's age on it, so a client with a skewed clock reports the true wait.
SELECT statement_timestamp();
