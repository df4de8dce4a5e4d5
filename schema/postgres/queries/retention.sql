-- Store-wide retention on PostgreSQL (the names of schema/sqlite/queries/retention.sql): old
-- recorded tasks with their events and worker messages, old messages per stream, and the long
-- event histories of long-lived tasks. Each delete has a count twin with the same WHERE, so a dry
-- run reports exactly what the real run deletes. Callers batch them in short transactions.
-- :before is agentstate's timestamp text ('' matches nothing); :ids is a JSON array of worker ids;
-- :keep -1 means no limit (NULL as a LIMIT is none).
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: recorded_batch :many
-- uses: idx_workers_recorded
-- The next :limit tasks recorded before :before, oldest first.
SELECT worker_id FROM workers
WHERE task_status = 'recorded' AND updated_at < agentstate_time(:before)
ORDER BY updated_at
LIMIT :limit;

-- name: count_recorded :value
-- uses: idx_workers_recorded
-- How many tasks were recorded before :before.
SELECT count(*) FROM workers WHERE task_status = 'recorded' AND updated_at < agentstate_time(:before);

-- name: count_recorded_events :value
-- uses: idx_workers_recorded, idx_task_events_worker
-- The events of the tasks recorded before :before: per task, a count over its index range (as a
-- join the generic plan hashed a sequential scan of every event).
SELECT coalesce(sum((SELECT count(*) FROM task_events AS e WHERE e.worker_id = w.worker_id)), 0)::bigint
FROM workers AS w
WHERE w.task_status = 'recorded' AND w.updated_at < agentstate_time(:before);

-- name: count_recorded_messages :value
-- uses: idx_workers_recorded, worker_messages_pkey | idx_worker_messages_agent_time
-- The worker messages of the tasks recorded before :before (per task, as count_recorded_events).
SELECT coalesce(sum((SELECT count(*) FROM worker_messages AS m WHERE m.agent_id = w.worker_id)), 0)::bigint
FROM workers AS w
WHERE w.task_status = 'recorded' AND w.updated_at < agentstate_time(:before);

-- name: count_events_of :value
-- uses: idx_task_events_worker
-- The events of a batch of tasks (:ids is a JSON array of worker ids).
SELECT count(*) FROM task_events
WHERE worker_id = ANY (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: count_messages_of :value
-- uses: worker_messages_pkey | idx_worker_messages_agent_time
-- The worker messages of a batch of tasks (:ids is a JSON array of worker ids).
SELECT count(*) FROM worker_messages
WHERE agent_id = ANY (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: delete_tasks :exec
-- uses: workers_pkey
-- Delete a batch of tasks; their events, worker messages and heads go with them by cascade.
DELETE FROM workers WHERE worker_id = ANY (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: is_purged_task :value
-- uses: workers_pkey
-- 1 if this task is one the task phase deletes (a dry run skips its stream and events after).
SELECT 1 FROM workers
WHERE worker_id = :id AND task_status = 'recorded' AND updated_at < agentstate_time(:before);

-- name: next_stream_{stream} :value
-- uses: {stream}_pkey | idx_{stream}_
-- The first stream id after :after that holds messages: one seek per stream, whatever its size.
SELECT {key} FROM {stream} WHERE {key} > :after::text ORDER BY {key} LIMIT 1;

-- name: count_old_{stream} :value
-- uses: {stream}_pkey
-- How many of a stream's messages are older than :before or beyond its last :keep (-1: no
-- limit), never counting its last message (positions must not restart).
SELECT count(*) FROM {stream}
WHERE {key} = :stream_id
  AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id)
  AND (created_at < agentstate_time(:before)
       OR position < (SELECT min(position) FROM (
              SELECT position FROM {stream} WHERE {key} = :stream_id
              ORDER BY position DESC LIMIT nullif(:keep::bigint, -1)) AS kept));

-- name: delete_old_{stream} :exec
-- uses: {stream}_pkey
-- Delete up to :limit of what count_old_{stream} counts, oldest first (the caller repeats).
DELETE FROM {stream}
WHERE {key} = :stream_id AND position = ANY (ARRAY(
    SELECT position FROM {stream}
    WHERE {key} = :stream_id
      AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id)
      AND (created_at < agentstate_time(:before)
           OR position < (SELECT min(position) FROM (
                  SELECT position FROM {stream} WHERE {key} = :stream_id
                  ORDER BY position DESC LIMIT nullif(:keep::bigint, -1)) AS kept))
    ORDER BY position
    LIMIT :limit));

-- name: next_task_with_events :value
-- uses: idx_task_events_worker
-- The first task id after :after that has events.
SELECT worker_id FROM task_events WHERE worker_id > :after::text ORDER BY worker_id LIMIT 1;

-- name: count_old_events :value
-- uses: idx_task_events_worker
-- A task's events before its last :keep.
SELECT count(*) FROM task_events
WHERE worker_id = :id
  AND event_id < (SELECT min(event_id) FROM (
      SELECT event_id FROM task_events WHERE worker_id = :id
      ORDER BY event_id DESC LIMIT :keep) AS kept);

-- name: delete_old_events :exec
-- uses: idx_task_events_worker
-- Delete up to :limit of what count_old_events counts, oldest first (the caller repeats).
DELETE FROM task_events
WHERE worker_id = :id AND event_id = ANY (ARRAY(
    SELECT event_id FROM task_events
    WHERE worker_id = :id
      AND event_id < (SELECT min(event_id) FROM (
          SELECT event_id FROM task_events WHERE worker_id = :id
          ORDER BY event_id DESC LIMIT :keep) AS kept)
    ORDER BY event_id
    LIMIT :limit));
