-- Tasks: rows of `workers`, their lifecycle and their claims.
--
-- A statement that finds rows by a list of ids names the primary key with INDEXED BY: with the
-- statistics PRAGMA optimize records while a store is small, the planner prefers scanning the
-- table, and that plan would stay as the table grows (`agentstate check-plans` caught it). The
-- claims name their indexes too: with few rows the planner would rather sort the pending index
-- than read the ready index in claim order.
-- Every transition is one compare-and-set UPDATE ... WHERE <expected state> ... RETURNING:
-- it changes the row only from a state that allows it, and returns nothing otherwise, so two
-- executors racing for one task cannot both win. The triggers in 0001_initial.sql write the
-- task_events row of each transition inside the same statement.

-- name: create :returning
-- uses: none
-- Insert one pending task. A task whose planner already has its idempotency key is not inserted
-- (no row back): the caller compares it with the stored one.
INSERT INTO workers (worker_id, planner_id, description, acceptance_criteria, task_context,
                     input_images, metadata, max_attempts, updated_by, created_at, updated_at,
                     priority, available_at, waiting_on, idempotency_key)
VALUES (:worker_id, :planner_id, :description, :acceptance_criteria, :task_context,
        :input_images, :metadata, :max_attempts, :actor, :now, :now,
        :priority, :available_at, :waiting_on, :idempotency_key)
ON CONFLICT (planner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: get :one
-- uses: sqlite_autoindex_workers_1
-- One task by id.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
FROM workers
WHERE worker_id = :worker_id;

-- name: current_task :one
-- uses: idx_workers_planner_status
-- The planner's oldest pending task; ties on created_at go to the smaller worker_id.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
FROM workers
WHERE planner_id = :planner_id AND task_status = 'pending'
ORDER BY created_at, worker_id
LIMIT 1;

-- name: completed_task :one
-- uses: idx_workers_done
-- The planner's oldest task that finished, completed or failed validation, waiting to be recorded.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
FROM workers
WHERE planner_id = :planner_id AND task_status IN ('completed', 'failed_validation')
ORDER BY created_at, worker_id
LIMIT 1;

-- name: list_by_status :many
-- uses: idx_workers_planner_status
-- A page of a planner's tasks in one status, oldest first, after the keyset cursor
-- (created_at, worker_id) of the previous page's last task ('' and '' for the first page).
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
FROM workers
WHERE planner_id = :planner_id AND task_status = :status
  AND (created_at, worker_id) > (:after_created_at, :after_worker_id)
ORDER BY created_at, worker_id
LIMIT :limit;

-- name: counts :many
-- uses: idx_workers_planner_status
-- How many of the planner's tasks are in each status (statuses with none are absent).
SELECT task_status, count(*)
FROM workers
WHERE planner_id = :planner_id
GROUP BY task_status;

-- name: claim_for_planner :returning
-- uses: idx_workers_planner_status, idx_workers_ready, sqlite_autoindex_workers_1
-- Hand the planner's next task to :owner: first a claimed task whose lease expired before
-- :reclaim_before (its executor died, and the manager's lease back-off has passed; any one of
-- them, found among the few claimed) and that has attempts left, else the first ready task
-- (pending, waiting on no prerequisite, not delayed) by priority, then age. The fence grows by
-- one, so the previous owner's token goes stale.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner, lease_expires_at = :lease_expires_at,
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = :now
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers INDEXED BY idx_workers_planner_status
     WHERE planner_id = :planner_id AND task_status = 'claimed' AND lease_expires_at < :reclaim_before
       AND attempts < max_attempts
     LIMIT 1),
    (SELECT worker_id FROM workers INDEXED BY idx_workers_ready
     WHERE planner_id = :planner_id AND task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
     ORDER BY priority DESC, created_at, worker_id LIMIT 1))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: claim_any :returning
-- uses: idx_workers_leases, idx_workers_pending_ready, sqlite_autoindex_workers_1
-- Like claim_for_planner, across all planners: the longest-expired lease, else the first ready
-- task. Both searches run on partial indexes that hold only the work in flight.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner, lease_expires_at = :lease_expires_at,
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = :now
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers
     WHERE task_status = 'claimed' AND lease_expires_at < :reclaim_before AND attempts < max_attempts
     ORDER BY lease_expires_at LIMIT 1),
    (SELECT worker_id FROM workers INDEXED BY idx_workers_pending_ready
     WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
     ORDER BY priority DESC, created_at, worker_id LIMIT 1))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: heartbeat :returning
-- uses: sqlite_autoindex_workers_1
-- Extend the lease of a task the caller still holds (current fence).
UPDATE workers
SET lease_expires_at = :lease_expires_at, updated_at = :now
WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: finish :returning
-- uses: sqlite_autoindex_workers_1
-- A claimed task leaves its claim: to 'completed' or 'failed_validation' with a result, or back to
-- 'pending' (released). Only the current owner's token matches. A release gives the attempt back:
-- handing a task back unfinished (say, on shutdown) is not a failed attempt.
UPDATE workers
SET task_status = :to_status, result = :result, lease_owner = NULL, lease_expires_at = NULL,
    attempts = attempts - (:to_status = 'pending'), updated_by = :actor, updated_at = :now
WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: retry :returning
-- uses: sqlite_autoindex_workers_1
-- A task that failed validation goes back to pending while it has attempts left; claimable at
-- :available_at (NULL: at once).
UPDATE workers
SET task_status = 'pending', result = NULL, available_at = :available_at, updated_by = :actor, updated_at = :now
WHERE worker_id = :worker_id AND task_status = 'failed_validation' AND attempts < max_attempts
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: record :returning
-- uses: sqlite_autoindex_workers_1
-- The planner has taken a finished (or cancelled) task's outcome into account: it is recorded,
-- for good.
UPDATE workers
SET task_status = 'recorded', updated_by = :actor, updated_at = :now
WHERE worker_id = :worker_id AND task_status IN ('completed', 'failed_validation', 'cancelled')
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: history :many
-- uses: idx_task_events_worker
-- Every transition of one task, in the order they happened.
SELECT event_id, worker_id, from_status, to_status, fence, actor, detail, at
FROM task_events
WHERE worker_id = :worker_id
ORDER BY event_id;

-- name: expire_exhausted_for_planner :exec
-- uses: idx_workers_planner_status, sqlite_autoindex_workers_1
-- Poison tasks: a claimed task whose lease expired on its last attempt (its executor died or hung
-- every time) is not handed out again. It fails, with the reason as its result, and so reaches the
-- planner through completed_task like any other failure. Runs in the claim's transaction.
UPDATE workers INDEXED BY sqlite_autoindex_workers_1
SET task_status = 'failed_validation', lease_owner = NULL, lease_expires_at = NULL,
    result = json_object('error', 'lease expired on the last attempt: the executor died or hung every time',
                         'attempts', attempts, 'max_attempts', max_attempts, 'last_owner', lease_owner),
    updated_by = :owner, updated_at = :now
WHERE worker_id IN (
    -- pinned: the planner's few claimed tasks, not every planner's expired leases
    SELECT worker_id FROM workers INDEXED BY idx_workers_planner_status
    WHERE planner_id = :planner_id AND task_status = 'claimed' AND lease_expires_at < :now
      AND attempts >= max_attempts);

-- name: expire_exhausted_any :exec
-- uses: idx_workers_leases, sqlite_autoindex_workers_1
-- expire_exhausted_for_planner across all planners: a seek on the expired end of the lease index.
UPDATE workers INDEXED BY sqlite_autoindex_workers_1
SET task_status = 'failed_validation', lease_owner = NULL, lease_expires_at = NULL,
    result = json_object('error', 'lease expired on the last attempt: the executor died or hung every time',
                         'attempts', attempts, 'max_attempts', max_attempts, 'last_owner', lease_owner),
    updated_by = :owner, updated_at = :now
WHERE worker_id IN (
    SELECT worker_id FROM workers
    WHERE task_status = 'claimed' AND lease_expires_at < :now AND attempts >= max_attempts);

-- name: purge_recorded_any :many
-- uses: idx_workers_recorded, sqlite_autoindex_workers_1
-- Retention: delete up to :limit tasks recorded before :before (their events and worker messages
-- go with them, by cascade), one row back per task deleted. Callers loop in short transactions.
DELETE FROM workers INDEXED BY sqlite_autoindex_workers_1
WHERE worker_id IN (
    SELECT worker_id FROM workers
    WHERE task_status = 'recorded' AND updated_at < :before
    ORDER BY updated_at
    LIMIT :limit)
RETURNING 1;

-- name: purge_recorded_for_planner :many
-- uses: idx_workers_recorded_planner, sqlite_autoindex_workers_1
-- purge_recorded_any for one planner's tasks.
DELETE FROM workers INDEXED BY sqlite_autoindex_workers_1
WHERE worker_id IN (
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND task_status = 'recorded' AND updated_at < :before
    ORDER BY updated_at
    LIMIT :limit)
RETURNING 1;

-- name: planner_task_counts :one
-- uses: idx_workers_planner_status
-- How many tasks a planner has, and how many of them are claimed (before deleting the planner).
SELECT count(*), count(*) FILTER (WHERE task_status = 'claimed')
FROM workers
WHERE planner_id = :planner_id;

-- name: delete_planner_tasks :exec
-- uses: idx_workers_planner_status, sqlite_autoindex_workers_1
-- Delete up to :limit of a planner's tasks (events and worker messages go by cascade); claimed
-- ones only with :force, checked in each batch's own transaction (a claim may come in between).
DELETE FROM workers INDEXED BY sqlite_autoindex_workers_1
WHERE worker_id IN (
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND (:force OR task_status <> 'claimed')
    LIMIT :limit);

-- name: by_idempotency_key :one
-- uses: idx_workers_idempotency
-- The planner's task created with this idempotency key.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
        input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
        lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
        idempotency_key
FROM workers
WHERE planner_id = :planner_id AND idempotency_key = :idempotency_key;

-- name: prerequisite :one
-- uses: sqlite_autoindex_workers_1
-- The planner and status of a task named as a prerequisite (in the creating transaction).
SELECT planner_id, task_status FROM workers WHERE worker_id = :worker_id;

-- name: add_dependency :exec
-- uses: none
-- worker_id waits for depends_on.
INSERT INTO task_dependencies (worker_id, depends_on) VALUES (:worker_id, :depends_on);

-- name: dependencies_of :many
-- uses: sqlite_autoindex_task_dependencies_1 | PRIMARY KEY
-- The prerequisites of a task, in id order.
SELECT depends_on FROM task_dependencies WHERE worker_id = :worker_id ORDER BY depends_on;

-- name: promote_due :exec
-- uses: idx_workers_delayed, sqlite_autoindex_workers_1
-- Delayed tasks whose time has come become ready (a claim's sweep runs this).
UPDATE workers INDEXED BY sqlite_autoindex_workers_1
SET available_at = NULL
WHERE worker_id IN (
    SELECT worker_id FROM workers
    WHERE available_at IS NOT NULL AND available_at <= :now);

-- name: cancel :returning
-- uses: sqlite_autoindex_workers_1
-- A pending or claimed task of the planner is cancelled: its lease (if any) goes, its fence
-- stays, so its executor's next step finds it cancelled and writes nothing. :reason (JSON) is
-- kept in its result and history.
UPDATE workers
SET task_status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, available_at = NULL,
    result = json_object('reason', json(:reason)), updated_by = :actor, updated_at = :now
WHERE worker_id = :worker_id AND planner_id = :planner_id AND task_status IN ('pending', 'claimed')
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: cancel_dependants :many
-- uses: idx_task_dependencies_prerequisite, sqlite_autoindex_workers_1
-- The pending tasks that wait on any of :ids (a JSON array of cancelled tasks) are cancelled too;
-- the caller repeats this with the tasks it returns until none are left.
UPDATE workers INDEXED BY sqlite_autoindex_workers_1
SET task_status = 'cancelled', available_at = NULL,
    result = json_object('reason', json(:reason), 'prerequisite_cancelled', :worker_id),
    updated_by = :actor, updated_at = :now
WHERE worker_id IN (
    SELECT d.worker_id FROM json_each(:ids)
    JOIN task_dependencies AS d INDEXED BY idx_task_dependencies_prerequisite ON d.depends_on = json_each.value)
  AND task_status = 'pending'
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: cancel_all :exec
-- uses: idx_workers_planner_status, sqlite_autoindex_workers_1
-- Every pending or claimed task of the planner is cancelled (the user gave up on the request).
UPDATE workers INDEXED BY sqlite_autoindex_workers_1
SET task_status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, available_at = NULL,
    result = json_object('reason', json(:reason)), updated_by = :actor, updated_at = :now
WHERE worker_id IN (
    SELECT worker_id FROM workers INDEXED BY idx_workers_planner_status
    WHERE planner_id = :planner_id AND task_status IN ('pending', 'claimed'));

-- name: blocked :many
-- uses: idx_workers_waiting, sqlite_autoindex_task_dependencies_1 | PRIMARY KEY, sqlite_autoindex_workers_1
-- The planner's tasks that wait on prerequisites, oldest first, each with one row per
-- prerequisite that has not yet reached completed or recorded (its id last; sorted by the caller).
SELECT w.worker_id, w.planner_id, w.task_status, w.description, w.acceptance_criteria, w.task_context,
       w.input_images, w.metadata, w.result, w.attempts, w.max_attempts, w.fence, w.lease_owner,
       w.lease_expires_at, w.updated_by, w.created_at, w.updated_at, w.priority, w.available_at,
       w.waiting_on, w.idempotency_key, d.depends_on
FROM workers AS w INDEXED BY idx_workers_waiting
CROSS JOIN task_dependencies AS d  -- CROSS JOIN: SQLite keeps this order (each task, then its edges)
CROSS JOIN workers AS p INDEXED BY sqlite_autoindex_workers_1
WHERE d.worker_id = w.worker_id AND p.worker_id = d.depends_on
  AND w.planner_id = :planner_id AND w.task_status = 'pending' AND w.waiting_on > 0
  AND p.task_status NOT IN ('completed', 'recorded')
ORDER BY w.created_at, w.worker_id;

-- name: claimable_for_planner :one
-- uses: idx_workers_ready, idx_workers_planner_status, idx_workers_delayed
-- What a waiting claim reads (no lock) before it tries to claim: whether a ready task of the
-- planner waits, and in how many seconds the next delayed task (any planner's: a claim's sweep
-- makes them all ready) and the planner's next lease run out (:lease_backoff_seconds added).
-- NULL: none. A time at or below zero is due now.
SELECT EXISTS (SELECT 1 FROM workers INDEXED BY idx_workers_ready
               WHERE planner_id = :planner_id AND task_status = 'pending' AND waiting_on = 0
                 AND available_at IS NULL),
       (julianday((SELECT min(available_at) FROM workers WHERE available_at IS NOT NULL))
        - julianday(:now)) * 86400.0,
       (julianday((SELECT min(lease_expires_at) FROM workers INDEXED BY idx_workers_planner_status
                   WHERE planner_id = :planner_id AND task_status = 'claimed'))
        - julianday(:now)) * 86400.0 + :lease_backoff_seconds;

-- name: claimable_any :one
-- uses: idx_workers_pending_ready, idx_workers_delayed, idx_workers_leases
-- claimable_for_planner across all planners.
SELECT EXISTS (SELECT 1 FROM workers INDEXED BY idx_workers_pending_ready
               WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL),
       (julianday((SELECT min(available_at) FROM workers WHERE available_at IS NOT NULL))
        - julianday(:now)) * 86400.0,
       (julianday((SELECT min(lease_expires_at) FROM workers WHERE task_status = 'claimed'))
        - julianday(:now)) * 86400.0 + :lease_backoff_seconds;
