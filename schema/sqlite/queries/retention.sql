-- Store-wide retention (agentstate.cleanup, `agentstate cleanup`): old recorded tasks with their
-- events and worker messages, old messages per stream, and the long event histories of long-lived
-- tasks. Each delete has a count twin with the same WHERE, so a dry run reports exactly what the
-- real run deletes. Callers batch them in short write transactions.
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: recorded_batch :many
-- uses: idx_workers_recorded
-- The next :limit tasks recorded before :before, oldest first.
SELECT worker_id FROM workers
WHERE task_status = 'recorded' AND updated_at < :before
ORDER BY updated_at
LIMIT :limit;

-- name: count_recorded :value
-- uses: idx_workers_recorded
-- How many tasks were recorded before :before.
SELECT count(*) FROM workers WHERE task_status = 'recorded' AND updated_at < :before;

-- name: count_recorded_events :value
-- uses: idx_workers_recorded, idx_task_events_worker
-- The events of the tasks recorded before :before.
SELECT count(*) FROM task_events
WHERE worker_id IN (SELECT worker_id FROM workers WHERE task_status = 'recorded' AND updated_at < :before);

-- name: count_recorded_messages :value
-- uses: idx_workers_recorded, PRIMARY KEY | idx_worker_messages_agent_time
-- The worker messages of the tasks recorded before :before.
SELECT count(*) FROM worker_messages
WHERE agent_id IN (SELECT worker_id FROM workers WHERE task_status = 'recorded' AND updated_at < :before);

-- name: count_events_of :value
-- uses: idx_task_events_worker
-- The events of a batch of tasks (:ids is a JSON array of worker ids).
SELECT count(*) FROM task_events WHERE worker_id IN (SELECT value FROM json_each(:ids));

-- name: count_messages_of :value
-- uses: PRIMARY KEY | idx_worker_messages_agent_time
-- The worker messages of a batch of tasks (:ids is a JSON array of worker ids).
SELECT count(*) FROM worker_messages WHERE agent_id IN (SELECT value FROM json_each(:ids));

-- name: delete_tasks :exec
-- uses: sqlite_autoindex_workers_1
-- Delete a batch of tasks; their events and worker messages go with them by cascade.
DELETE FROM workers INDEXED BY sqlite_autoindex_workers_1 WHERE worker_id IN (SELECT value FROM json_each(:ids));

-- name: is_purged_task :value
-- uses: sqlite_autoindex_workers_1
-- 1 if this task is one the task phase deletes (a dry run skips its stream and events after).
SELECT 1 FROM workers WHERE worker_id = :id AND task_status = 'recorded' AND updated_at < :before;

-- name: next_stream_{stream} :value
-- uses: PRIMARY KEY | idx_{stream}_
-- The first stream id after :after that holds messages: one seek per stream, whatever its size.
SELECT {key} FROM {stream} WHERE {key} > :after ORDER BY {key} LIMIT 1;

-- name: count_old_{stream} :value
-- uses: PRIMARY KEY
-- How many of a stream's messages are older than :before or beyond its last :keep (-1: no
-- limit), never counting its last message (positions must not restart).
SELECT count(*) FROM {stream}
WHERE {key} = :stream_id
  AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id)
  AND (created_at < :before
       OR position < (SELECT min(position) FROM (
              SELECT position FROM {stream} WHERE {key} = :stream_id ORDER BY position DESC LIMIT :keep)));

-- name: delete_old_{stream} :exec
-- uses: PRIMARY KEY
-- Delete up to :limit of what count_old_{stream} counts, oldest first (the caller repeats).
DELETE FROM {stream}
WHERE {key} = :stream_id AND position IN (
    SELECT position FROM {stream}
    WHERE {key} = :stream_id
      AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id)
      AND (created_at < :before
           OR position < (SELECT min(position) FROM (
                  SELECT position FROM {stream} WHERE {key} = :stream_id ORDER BY position DESC LIMIT :keep)))
    ORDER BY position
    LIMIT :limit);

-- name: next_task_with_events :value
-- uses: idx_task_events_worker
-- The first task id after :after that has events.
SELECT worker_id FROM task_events WHERE worker_id > :after ORDER BY worker_id LIMIT 1;

-- name: count_old_events :value
-- uses: idx_task_events_worker
-- A task's events before its last :keep.
SELECT count(*) FROM task_events
WHERE worker_id = :id
  AND event_id < (SELECT min(event_id) FROM (
      SELECT event_id FROM task_events WHERE worker_id = :id ORDER BY event_id DESC LIMIT :keep));

-- name: delete_old_events :exec
-- uses: idx_task_events_worker
-- Delete up to :limit of what count_old_events counts, oldest first (the caller repeats).
DELETE FROM task_events
WHERE worker_id = :id AND event_id IN (
    SELECT event_id FROM task_events
    WHERE worker_id = :id
      AND event_id < (SELECT min(event_id) FROM (
          SELECT event_id FROM task_events WHERE worker_id = :id ORDER BY event_id DESC LIMIT :keep))
    ORDER BY event_id
    LIMIT :limit);
