-- LangGraph checkpoints on PostgreSQL (the names of schema/sqlite/queries/langgraph.sql). Every
-- read is a range of a thread's key, newest checkpoint first; every delete names a thread, a
-- checkpoint or a run. The caller wraps each operation in one transaction.
-- Differences from SQLite: :before is text or NULL for "no bound" (SQLite takes an empty BLOB,
-- which sorts after all text there); :filter is a JSON object whose every top-level key the
-- metadata must hold with an equal value (jsonb equality); :metadata is JSON text.

-- name: put_checkpoint :exec
-- uses: none
-- Store a checkpoint; putting the same id again replaces it (as LangGraph's own savers do).
INSERT INTO langgraph_checkpoints AS c
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :run_id, :type, :checkpoint, :metadata)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type,
    checkpoint = excluded.checkpoint, metadata = excluded.metadata;

-- name: put_write :exec
-- uses: none
-- Store one write of a task; a retried put_writes finds its key taken and changes nothing.
INSERT INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :task_id, :idx, :task_path, :channel, :type, :value)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING;

-- name: replace_write :exec
-- uses: none
-- Store one write of a batch made only of special channels (an error, an interrupt, ...): the
-- newest one wins, as in LangGraph's savers.
INSERT INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :task_id, :idx, :task_path, :channel, :type, :value)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
SET task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, value = excluded.value;

-- name: checkpoint :one
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
-- One checkpoint by id.
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: latest_checkpoint :one
-- uses: langgraph_checkpoints_pkey
-- The newest checkpoint of a thread's namespace: one seek to the end of its range.
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
ORDER BY checkpoint_id DESC
LIMIT 1;

-- name: list_checkpoints :many
-- uses: langgraph_checkpoints_pkey
-- A page of a namespace's checkpoints older than :before (NULL: no bound), newest first, whose
-- metadata holds every key of :filter with that value. Rows the filter refuses are read from the
-- range and skipped (LangGraph's filters are on free-form metadata, which has no index).
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE metadata -> f.key IS DISTINCT FROM f.value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: list_thread_checkpoints :many
-- uses: idx_langgraph_checkpoints_thread
-- list_checkpoints over every namespace of a thread (a config without checkpoint_ns).
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE metadata -> f.key IS DISTINCT FROM f.value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: matching_checkpoint :one
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
-- list() of a config that names one checkpoint: that one, if it is older than :before and its
-- metadata matches :filter (as in list_checkpoints).
SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE metadata -> f.key IS DISTINCT FROM f.value);

-- name: writes :many
-- uses: langgraph_writes_pkey
-- The pending writes of one checkpoint (run once per listed checkpoint, through executemany).
SELECT checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: delete_thread_checkpoints :exec
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
DELETE FROM langgraph_checkpoints WHERE thread_id = :thread_id;

-- name: delete_thread_writes :exec
-- uses: langgraph_writes_pkey
DELETE FROM langgraph_writes WHERE thread_id = :thread_id;

-- name: delete_run_checkpoints :many
-- uses: idx_langgraph_checkpoints_run
-- Delete the checkpoints a run wrote (their metadata's run_id), returning their keys so that
-- their writes go too.
DELETE FROM langgraph_checkpoints WHERE run_id = :run_id
RETURNING thread_id, checkpoint_ns, checkpoint_id;

-- name: delete_checkpoint_writes :exec
-- uses: langgraph_writes_pkey
DELETE FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: prune_checkpoints :exec
-- uses: langgraph_checkpoints_pkey
-- Keep only the newest checkpoint of each namespace of a thread. The subquery is one seek to
-- the end of the row's namespace; the newest row itself is never older than it, so it stays.
DELETE FROM langgraph_checkpoints AS old
WHERE thread_id = :thread_id
  AND checkpoint_id < (SELECT max(checkpoint_id) FROM langgraph_checkpoints AS newest
                       WHERE newest.thread_id = old.thread_id AND newest.checkpoint_ns = old.checkpoint_ns);

-- name: prune_writes :exec
-- uses: langgraph_writes_pkey, langgraph_checkpoints_pkey
-- The writes of the checkpoints prune_checkpoints deletes: run it first. Writes newer than a
-- namespace's newest checkpoint (its put still on the way) stay.
DELETE FROM langgraph_writes AS w
WHERE thread_id = :thread_id
  AND checkpoint_id < (SELECT max(checkpoint_id) FROM langgraph_checkpoints AS newest
                       WHERE newest.thread_id = w.thread_id AND newest.checkpoint_ns = w.checkpoint_ns);

-- name: copy_checkpoints :exec
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
-- Copy every checkpoint of thread :source to thread :target (same namespaces and ids); rows the
-- target already has under the same key are replaced.
INSERT INTO langgraph_checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
SELECT :target::text, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :source::text
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type,
    checkpoint = excluded.checkpoint, metadata = excluded.metadata;

-- name: copy_writes :exec
-- uses: langgraph_writes_pkey
INSERT INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
SELECT :target::text, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :source::text
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
SET task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, value = excluded.value;
