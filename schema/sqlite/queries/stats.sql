-- Operators' statistics: the size and health of a store (agentstate.stats, `agentstate stats`).
--
-- Unlike every other query file, some of these read a whole index on purpose (counting every
-- row has no shortcut); their `-- scans:` line says so, and the plan tests then allow a scan of
-- a covering index or a table-valued pragma, never of a table. Nothing on a hot path runs them.
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: pages :one
-- uses: none
-- scans: reads three pragmas
-- Page size, pages in the file, and pages on the freelist (free, not yet given back).
SELECT (SELECT page_size FROM pragma_page_size),
       (SELECT page_count FROM pragma_page_count),
       (SELECT freelist_count FROM pragma_freelist_count);

-- name: table_rows :many
-- uses: none
-- scans: counts every row of every table, each through its smallest covering index
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
-- uses: idx_workers_planner_status
-- scans: reads the whole (planner, status) index once, in its own order
-- Tasks per planner and status (summed, the store-wide counts per status).
SELECT planner_id, task_status, count(*)
FROM workers
GROUP BY planner_id, task_status;

-- name: expired_leases :value
-- uses: idx_workers_leases
-- Claimed tasks whose lease ran out (their executor died or hangs): the next claim takes them.
SELECT count(*) FROM workers WHERE task_status = 'claimed' AND lease_expires_at < :now;

-- name: oldest_pending :value
-- uses: idx_workers_pending_ready
-- scans: walks the partial index of pending tasks once (the queue, not the table; ordered for claims, not by age)
-- When the longest-waiting pending task was created (NULL when none waits).
SELECT min(created_at) FROM workers WHERE task_status = 'pending';

-- name: stream_count_{stream} :value
-- uses: none
-- scans: walks the stream's smallest covering index once
-- How many streams of this table hold messages.
SELECT count(DISTINCT {key}) FROM {stream};

-- name: largest_streams_{stream} :many
-- uses: none
-- scans: walks the stream's smallest covering index once, then sorts the per-stream counts
-- The :limit streams with the most messages, largest first.
SELECT {key}, count(*) AS messages
FROM {stream}
GROUP BY {key}
ORDER BY messages DESC, {key}
LIMIT :limit;
