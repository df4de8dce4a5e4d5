-- LangGraph checkpoints on PostgreSQL (the names of schema/sqlite/queries/langgraph.sql). Every
-- read is a range of a thread's key, newest checkpoint first; every delete names a thread, a
-- checkpoint or a run. The caller wraps each operation in one transaction.
-- Differences from SQLite: :before is text or NULL for "no bound" (SQLite takes an empty BLOB,
-- which sorts after all text there); :filter's paths ('$."user"."access"') are read as
-- jsonpath and compared by jsonb equality (a missing key matches null, as in SQLite);
-- :metadata, :channels and :replays are JSON text.

-- name: put_checkpoint :exec
-- uses: none
-- Store a checkpoint; putting the same id again replaces it (as LangGraph's own savers do).
INSERT INTO langgraph_checkpoints AS c
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
     channels, replays)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :run_id, :type, :checkpoint, :metadata,
        :channels, :replays)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type,
    checkpoint = excluded.checkpoint, metadata = excluded.metadata, channels = excluded.channels,
    replays = excluded.replays;

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
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread | idx_langgraph_checkpoints_newest
-- One checkpoint by id (any index holding the whole key finds it in one search).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: latest_checkpoint :one
-- uses: langgraph_checkpoints_pkey
-- The newest checkpoint of a thread's namespace: one seek to the end of its range.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
ORDER BY checkpoint_id DESC
LIMIT 1;

-- name: list_checkpoints :many
-- uses: langgraph_checkpoints_pkey
-- A page of a namespace's checkpoints older than :before (NULL: no bound), newest first, whose
-- metadata holds every path of :filter with that value. Rows the filter refuses are read from the
-- range and skipped (LangGraph's filters are on free-form metadata, which has no index).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE coalesce(jsonb_path_query_first(metadata, f.key::jsonpath), 'null') IS DISTINCT FROM f.value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: list_thread_checkpoints :many
-- uses: idx_langgraph_checkpoints_thread
-- list_checkpoints over every namespace of a thread (a config without checkpoint_ns).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE coalesce(jsonb_path_query_first(metadata, f.key::jsonpath), 'null') IS DISTINCT FROM f.value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: matching_checkpoint :one
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread | idx_langgraph_checkpoints_newest
-- list() of a config that names one checkpoint: that one, if it is older than :before and its
-- metadata matches :filter (as in list_checkpoints).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id
  AND (:before::text IS NULL OR checkpoint_id < :before::text)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                  WHERE coalesce(jsonb_path_query_first(metadata, f.key::jsonpath), 'null') IS DISTINCT FROM f.value);

-- name: writes :many
-- uses: langgraph_writes_pkey
-- The pending writes of one checkpoint (run once per listed checkpoint, through executemany).
SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: delete_thread_checkpoints :exec
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
DELETE FROM langgraph_checkpoints WHERE thread_id = :thread_id;

-- name: delete_thread_writes :exec
-- uses: langgraph_writes_pkey
DELETE FROM langgraph_writes WHERE thread_id = :thread_id;

-- name: delete_checkpoint_writes :exec
-- uses: langgraph_writes_pkey
DELETE FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: copy_checkpoints :exec
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_thread
-- Copy every checkpoint of thread :source to thread :target (same namespaces and ids); rows the
-- target already has under the same key are replaced.
INSERT INTO langgraph_checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
     channels, replays)
SELECT :target::text, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
       channels, replays
FROM langgraph_checkpoints
WHERE thread_id = :source::text
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type,
    checkpoint = excluded.checkpoint, metadata = excluded.metadata, channels = excluded.channels,
    replays = excluded.replays;

-- name: copy_writes :exec
-- uses: langgraph_writes_pkey
INSERT INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
SELECT :target::text, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :source::text
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
SET task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, value = excluded.value;

-- name: list_all_checkpoints_first :many
-- uses: idx_langgraph_checkpoints_newest
-- list(None): the first page of every thread's checkpoints, newest first (then by thread and
-- namespace, so that the key of a page's last row says exactly where the next one starts).
-- Every row of the page comes back, :limit of them at most, so a page reads a bounded range
-- whatever the filter; a row :filter refuses has a NULL checkpoint (the column is never NULL).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
       CASE WHEN NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                       WHERE coalesce(jsonb_path_query_first(metadata, f.key::jsonpath), 'null') IS DISTINCT FROM f.value)
            THEN checkpoint END AS checkpoint,
       metadata
FROM langgraph_checkpoints
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT :limit;

-- name: list_all_checkpoints :many
-- uses: idx_langgraph_checkpoints_newest
-- The page of list_all_checkpoints_first after the key (:checkpoint_id, :thread_id,
-- :checkpoint_ns): the last row of the page before, or (before's id, '', '') for list(None,
-- before=...), which starts below every checkpoint of that id.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
       CASE WHEN NOT EXISTS (SELECT 1 FROM jsonb_each(:filter::jsonb) AS f
                       WHERE coalesce(jsonb_path_query_first(metadata, f.key::jsonpath), 'null') IS DISTINCT FROM f.value)
            THEN checkpoint END AS checkpoint,
       metadata
FROM langgraph_checkpoints
WHERE (checkpoint_id, thread_id, checkpoint_ns) < (:checkpoint_id::text, :thread_id::text, :checkpoint_ns::text)
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT :limit;

-- name: channel_history :many
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_newest, langgraph_writes_pkey
-- One channel's history at a checkpoint (SQLite's channel_history): its parent chain by key up
-- to the nearest ancestor that stores the channel's value (holds true: its blob comes back) or
-- was stored before 0002 (holds NULL), with that channel's writes of each ancestor. UNION ends
-- a chain that loops.
WITH RECURSIVE chain(checkpoint_id, parent_checkpoint_id, holds, anchor, type, checkpoint) AS (
    SELECT checkpoint_id, parent_checkpoint_id, false, true, NULL::text, NULL::bytea
    FROM langgraph_checkpoints
    WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
      AND checkpoint_id = coalesce(:checkpoint_id::text, (SELECT max(checkpoint_id) FROM langgraph_checkpoints
                                                          WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns))
    UNION
    SELECT c.checkpoint_id, c.parent_checkpoint_id, c.channels ? :channel::text, false,
           CASE WHEN c.channels ? :channel::text IS NOT false THEN c.type END,
           CASE WHEN c.channels ? :channel::text IS NOT false THEN c.checkpoint END
    FROM chain JOIN langgraph_checkpoints AS c
      ON c.thread_id = :thread_id AND c.checkpoint_ns = :checkpoint_ns AND c.checkpoint_id = chain.parent_checkpoint_id
    WHERE chain.holds IS false
)
SELECT chain.checkpoint_id, chain.parent_checkpoint_id, chain.holds, chain.anchor, chain.type, chain.checkpoint,
       w.task_id, w.idx, w.task_path, w.type, w.value
FROM chain LEFT JOIN langgraph_writes AS w
    ON NOT chain.anchor AND w.thread_id = :thread_id AND w.checkpoint_ns = :checkpoint_ns
   AND w.checkpoint_id = chain.checkpoint_id AND w.channel = :channel;

-- name: newest_in_namespace :one
-- uses: langgraph_checkpoints_pkey
-- prune: a namespace's newest checkpoint and the channels it replays; its blob and metadata
-- only when it was stored before 0002 (replays NULL).
SELECT checkpoint_id, replays::text,
       CASE WHEN replays IS NULL THEN type END, CASE WHEN replays IS NULL THEN checkpoint END, metadata::text
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
ORDER BY checkpoint_id DESC
LIMIT 1;

-- name: next_namespace :value
-- uses: langgraph_checkpoints_pkey
-- prune: the thread's next namespace after :checkpoint_ns (NULL: none), one seek.
SELECT min(checkpoint_ns) FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns > :checkpoint_ns;

-- name: prune_namespace_checkpoints :exec
-- uses: langgraph_checkpoints_pkey
-- prune keep_latest: a namespace's checkpoints older than its newest (:checkpoint_id), except
-- those in :ids (a JSON array: the history the newest replays).
DELETE FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id < :checkpoint_id
  AND checkpoint_id <> ALL (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: prune_namespace_writes :exec
-- uses: langgraph_writes_pkey
-- The writes of the checkpoints prune_namespace_checkpoints deletes; writes newer than the
-- namespace's newest checkpoint stay.
DELETE FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id < :checkpoint_id
  AND checkpoint_id <> ALL (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: run_checkpoints :many
-- uses: idx_langgraph_checkpoints_run
-- delete_for_runs: the keys of the checkpoints a run wrote (their metadata's run_id).
SELECT thread_id, checkpoint_ns, checkpoint_id FROM langgraph_checkpoints WHERE run_id = :run_id;

-- name: checkpoint_children :many
-- uses: idx_langgraph_checkpoints_parent
-- delete_for_runs: the checkpoints whose parent is :checkpoint_id, with the channels they replay.
SELECT checkpoint_id, replays::text,
       CASE WHEN replays IS NULL THEN type END, CASE WHEN replays IS NULL THEN checkpoint END, metadata::text
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND parent_checkpoint_id = :checkpoint_id;

-- name: delete_checkpoint :exec
-- uses: langgraph_checkpoints_pkey | idx_langgraph_checkpoints_newest
DELETE FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;
