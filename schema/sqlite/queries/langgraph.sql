-- LangGraph checkpoints (agentstate/integrations/langgraph.py; tables in
-- 0005_langgraph_checkpoints.sql, 0006_langgraph_history.sql). Every read is a range of a
-- thread's clustered key (or, for list(None), of idx_langgraph_checkpoints_newest), newest
-- checkpoint first, or a walk along a checkpoint's parents by key; every delete names a thread,
-- a namespace, a checkpoint or a run. The caller wraps each operation in one transaction (a
-- read snapshot, or BEGIN IMMEDIATE for writes).
-- :filter is a JSON object of JSON paths ('$."user"."access"', built from LangGraph's dotted
-- filter keys) and the values the metadata must hold there; a missing key matches null, as in
-- LangGraph's SqliteSaver.

-- name: put_checkpoint :exec
-- uses: none
-- Store a checkpoint; putting the same id again replaces it (as LangGraph's own savers do).
INSERT OR REPLACE INTO langgraph_checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
     channels, replays)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :run_id, :type, :checkpoint, :metadata,
        :channels, :replays);

-- name: put_write :exec
-- uses: none
-- Store one write of a task; a retried put_writes finds its key taken and changes nothing.
INSERT OR IGNORE INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :task_id, :idx, :task_path, :channel, :type, :value);

-- name: replace_write :exec
-- uses: none
-- Store one write of a batch made only of special channels (an error, an interrupt, ...): the
-- newest one wins, as in LangGraph's savers.
INSERT OR REPLACE INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
VALUES (:thread_id, :checkpoint_ns, :checkpoint_id, :task_id, :idx, :task_path, :channel, :type, :value);

-- name: checkpoint :one
-- uses: PRIMARY KEY
-- One checkpoint by id.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: latest_checkpoint :one
-- uses: PRIMARY KEY
-- The newest checkpoint of a thread's namespace: one seek to the end of its range.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
ORDER BY checkpoint_id DESC
LIMIT 1;

-- name: list_checkpoints :many
-- uses: PRIMARY KEY
-- A page of a namespace's checkpoints older than :before, newest first, whose metadata holds
-- every path of :filter with that value. An empty BLOB as :before means no
-- bound: SQLite sorts every BLOB after every TEXT. Rows the filter refuses are read from the
-- range and skipped (LangGraph's filters are on free-form metadata, which has no index).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id < :before
  AND NOT EXISTS (SELECT 1 FROM json_each(:filter) WHERE json_extract(metadata, key) IS NOT value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: list_thread_checkpoints :many
-- uses: idx_langgraph_checkpoints_thread
-- list_checkpoints over every namespace of a thread (a config without checkpoint_ns).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_id < :before
  AND NOT EXISTS (SELECT 1 FROM json_each(:filter) WHERE json_extract(metadata, key) IS NOT value)
ORDER BY checkpoint_id DESC
LIMIT :limit;

-- name: matching_checkpoint :one
-- uses: PRIMARY KEY
-- list() of a config that names one checkpoint: that one, if it is older than :before and its
-- metadata matches :filter (as in list_checkpoints).
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id
  AND checkpoint_id < :before
  AND NOT EXISTS (SELECT 1 FROM json_each(:filter) WHERE json_extract(metadata, key) IS NOT value);

-- name: writes :many
-- uses: PRIMARY KEY
-- The pending writes of one checkpoint (run once per listed checkpoint, through executemany).
SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: delete_thread_checkpoints :exec
-- uses: PRIMARY KEY | idx_langgraph_checkpoints_thread
DELETE FROM langgraph_checkpoints WHERE thread_id = :thread_id;

-- name: delete_thread_writes :exec
-- uses: PRIMARY KEY
DELETE FROM langgraph_writes WHERE thread_id = :thread_id;

-- name: delete_checkpoint_writes :exec
-- uses: PRIMARY KEY
DELETE FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;

-- name: copy_checkpoints :exec
-- uses: PRIMARY KEY | idx_langgraph_checkpoints_thread
-- Copy every checkpoint of thread :source to thread :target (same namespaces and ids); rows the
-- target already has under the same key are replaced.
INSERT OR REPLACE INTO langgraph_checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
     channels, replays)
SELECT :target, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata,
       channels, replays
FROM langgraph_checkpoints
WHERE thread_id = :source;

-- name: copy_writes :exec
-- uses: PRIMARY KEY
INSERT OR REPLACE INTO langgraph_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value)
SELECT :target, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, value
FROM langgraph_writes
WHERE thread_id = :source;

-- name: list_all_checkpoints_first :many
-- uses: idx_langgraph_checkpoints_newest
-- list(None): the first page of every thread's checkpoints, newest first (then by thread and
-- namespace, so that the key of a page's last row says exactly where the next one starts).
-- Every row of the page comes back, :limit of them at most, so a page reads a bounded range
-- whatever the filter; a row :filter refuses has a NULL checkpoint (the column is never NULL).
-- Every TEXT id sorts below an empty BLOB: the bound is none, searched as a range.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
       CASE WHEN NOT EXISTS (SELECT 1 FROM json_each(:filter) WHERE json_extract(metadata, key) IS NOT value)
            THEN checkpoint END AS checkpoint,
       metadata
FROM langgraph_checkpoints
WHERE checkpoint_id < X''
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT :limit;

-- name: list_all_checkpoints :many
-- uses: idx_langgraph_checkpoints_newest
-- The page of list_all_checkpoints_first after the key (:checkpoint_id, :thread_id,
-- :checkpoint_ns): the last row of the page before, or (before's id, '', '') for list(None,
-- before=...), which starts below every checkpoint of that id.
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
       CASE WHEN NOT EXISTS (SELECT 1 FROM json_each(:filter) WHERE json_extract(metadata, key) IS NOT value)
            THEN checkpoint END AS checkpoint,
       metadata
FROM langgraph_checkpoints
WHERE (checkpoint_id, thread_id, checkpoint_ns) < (:checkpoint_id, :thread_id, :checkpoint_ns)
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT :limit;

-- name: channel_history :many
-- uses: PRIMARY KEY
-- One channel's history at a checkpoint (:checkpoint_id, or the namespace's newest if NULL):
-- its parent chain, one key lookup per step, up to the nearest ancestor that stores the
-- channel's value (holds 1: its blob comes back, the seed) or that was stored before 0006
-- (holds NULL: the caller reads its blob and goes on from there), with that channel's writes
-- of each ancestor (one row per write; none for the checkpoint itself, anchor 1). UNION ends a
-- chain that loops, where it comes back; the caller orders the rows by following the parents.
WITH RECURSIVE chain(checkpoint_id, parent_checkpoint_id, holds, anchor, type, checkpoint) AS (
    SELECT checkpoint_id, parent_checkpoint_id, 0, 1, NULL, NULL
    FROM langgraph_checkpoints
    WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
      AND checkpoint_id = coalesce(:checkpoint_id, (SELECT max(checkpoint_id) FROM langgraph_checkpoints
                                                    WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns))
    UNION
    SELECT c.checkpoint_id, c.parent_checkpoint_id,
           CASE WHEN c.channels IS NOT NULL THEN EXISTS (SELECT 1 FROM json_each(c.channels) WHERE value = :channel) END,
           0,
           CASE WHEN c.channels IS NULL OR EXISTS (SELECT 1 FROM json_each(c.channels) WHERE value = :channel) THEN c.type END,
           CASE WHEN c.channels IS NULL OR EXISTS (SELECT 1 FROM json_each(c.channels) WHERE value = :channel) THEN c.checkpoint END
    FROM chain CROSS JOIN langgraph_checkpoints AS c
    WHERE chain.holds = 0
      AND c.thread_id = :thread_id AND c.checkpoint_ns = :checkpoint_ns AND c.checkpoint_id = chain.parent_checkpoint_id
)
SELECT chain.checkpoint_id, chain.parent_checkpoint_id, chain.holds, chain.anchor, chain.type, chain.checkpoint,
       w.task_id, w.idx, w.task_path, w.type, w.value
FROM chain LEFT JOIN langgraph_writes AS w
    ON NOT chain.anchor AND w.thread_id = :thread_id AND w.checkpoint_ns = :checkpoint_ns
   AND w.checkpoint_id = chain.checkpoint_id AND w.channel = :channel;

-- name: newest_in_namespace :one
-- uses: PRIMARY KEY
-- prune: a namespace's newest checkpoint and the channels it replays; its blob and metadata
-- only when it was stored before 0006 (replays NULL), to find them there.
SELECT checkpoint_id, replays,
       CASE WHEN replays IS NULL THEN type END, CASE WHEN replays IS NULL THEN checkpoint END, metadata
FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
ORDER BY checkpoint_id DESC
LIMIT 1;

-- name: next_namespace :value
-- uses: PRIMARY KEY
-- prune: the thread's next namespace after :checkpoint_ns (NULL: none), one seek.
SELECT min(checkpoint_ns) FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns > :checkpoint_ns;

-- name: prune_namespace_checkpoints :exec
-- uses: PRIMARY KEY
-- prune keep_latest: a namespace's checkpoints older than its newest (:checkpoint_id), except
-- those in :ids (a JSON array: the history the newest replays).
DELETE FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id < :checkpoint_id
  AND checkpoint_id NOT IN (SELECT value FROM json_each(:ids));

-- name: prune_namespace_writes :exec
-- uses: PRIMARY KEY
-- The writes of the checkpoints prune_namespace_checkpoints deletes. Writes newer than the
-- namespace's newest checkpoint (its put still on the way) stay.
DELETE FROM langgraph_writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id < :checkpoint_id
  AND checkpoint_id NOT IN (SELECT value FROM json_each(:ids));

-- name: run_checkpoints :many
-- uses: idx_langgraph_checkpoints_run
-- delete_for_runs: the keys of the checkpoints a run wrote (their metadata's run_id).
SELECT thread_id, checkpoint_ns, checkpoint_id FROM langgraph_checkpoints WHERE run_id = :run_id;

-- name: checkpoint_children :many
-- uses: idx_langgraph_checkpoints_parent
-- delete_for_runs: the checkpoints whose parent is :checkpoint_id, with the channels they
-- replay (blob and metadata only for rows stored before 0006, as newest_in_namespace). The
-- planner, with no statistics, would take the thread's key range and filter it: INDEXED BY.
SELECT checkpoint_id, replays,
       CASE WHEN replays IS NULL THEN type END, CASE WHEN replays IS NULL THEN checkpoint END, metadata
FROM langgraph_checkpoints INDEXED BY idx_langgraph_checkpoints_parent
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND parent_checkpoint_id = :checkpoint_id;

-- name: delete_checkpoint :exec
-- uses: PRIMARY KEY
DELETE FROM langgraph_checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns AND checkpoint_id = :checkpoint_id;
