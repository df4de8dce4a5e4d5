-- Tasks on PostgreSQL: the same names as schema/sqlite/queries/tasks.sql, PostgreSQL's semantics.
--
-- A statement that changes a set of rows finds their ids first (= ANY (ARRAY(subquery)), an init
-- plan run once) and then each row by its key: with IN (subquery) and a LIMIT the generic plan
-- can hash-join a sequential scan of the whole table.
-- Every transition is one compare-and-set UPDATE ... WHERE <expected state> ... RETURNING. Under
-- READ COMMITTED an UPDATE that finds its row changed by a transaction that committed meanwhile
-- re-checks its WHERE on the new version, so the compare-and-set holds; but a row *chosen* by a
-- subquery is chosen from the statement's snapshot, so the claims pick their task with
-- FOR UPDATE SKIP LOCKED: a task another claimer holds is skipped, not waited for and then taken
-- a second time (the SQLite statement run unchanged here handed out ~1.5 claims per task).
--
-- Times come from the server's clock: statement_timestamp() stamps every write (one time per
-- statement, like SQLite's one per transaction), and a lease runs :lease_seconds from it. The
-- :now and :lease_expires_at the SQLite statements take are not used here.

-- name: create :returning
-- uses: none
-- Insert one pending task.
INSERT INTO workers (worker_id, planner_id, description, acceptance_criteria, task_context,
                     input_images, metadata, max_attempts, updated_by, created_at, updated_at)
VALUES (:worker_id, :planner_id, :description, :acceptance_criteria, :task_context,
        :input_images, :metadata, :max_attempts, :actor, statement_timestamp(), statement_timestamp())
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: get :one
-- uses: workers_pkey
-- One task by id.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at
FROM workers
WHERE worker_id = :worker_id;

-- name: current_task :one
-- uses: idx_workers_planner_status
-- The planner's oldest pending task; ties on created_at go to the smaller worker_id.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at
FROM workers
WHERE planner_id = :planner_id AND task_status = 'pending'
ORDER BY created_at, worker_id
LIMIT 1;

-- name: completed_task :one
-- uses: idx_workers_done
-- The planner's oldest task that finished, completed or failed validation, waiting to be recorded.
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at
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
       lease_expires_at, updated_by, created_at, updated_at
FROM workers
WHERE planner_id = :planner_id AND task_status = :status
  AND (created_at, worker_id) > (agentstate_time(:after_created_at), :after_worker_id::text)
ORDER BY created_at, worker_id
LIMIT :limit;

-- name: counts :many
-- uses: idx_workers_planner_status
-- How many of the planner's tasks are in each status (every status, zeros included): one count
-- over an index range per status. (A GROUP BY here was planned as a bitmap scan and a sort.)
SELECT s.status, (SELECT count(*) FROM workers WHERE planner_id = :planner_id AND task_status = s.status)
FROM (VALUES ('pending'), ('claimed'), ('completed'), ('failed_validation'), ('recorded')) AS s (status);

-- name: claim_for_planner :returning
-- uses: idx_workers_planner_status, workers_pkey
-- Hand the planner's next task to :owner: first a claimed task whose lease expired (its executor
-- died) and that has attempts left, else the oldest pending one; a task another transaction is
-- claiming right now is skipped. The fence grows by one, so the previous owner's token goes stale.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner,
    lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers
     WHERE planner_id = :planner_id AND task_status = 'claimed' AND lease_expires_at < statement_timestamp()
       AND attempts < max_attempts
     LIMIT 1
     FOR UPDATE SKIP LOCKED),
    (SELECT worker_id FROM workers
     WHERE planner_id = :planner_id AND task_status = 'pending'
     ORDER BY created_at, worker_id
     LIMIT 1
     FOR UPDATE SKIP LOCKED))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: claim_any :returning
-- uses: idx_workers_leases, idx_workers_pending, workers_pkey
-- Like claim_for_planner, across all planners: the longest-expired lease, else the oldest pending
-- task. Both searches run on partial indexes that hold only the work in flight.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner,
    lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers
     WHERE task_status = 'claimed' AND lease_expires_at < statement_timestamp() AND attempts < max_attempts
     ORDER BY lease_expires_at
     LIMIT 1
     FOR UPDATE SKIP LOCKED),
    (SELECT worker_id FROM workers
     WHERE task_status = 'pending'
     ORDER BY created_at, worker_id
     LIMIT 1
     FOR UPDATE SKIP LOCKED))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: heartbeat :returning
-- uses: workers_pkey
-- Extend the lease of a task the caller still holds (current fence) to :lease_seconds from now.
UPDATE workers
SET lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: finish :returning
-- uses: workers_pkey
-- A claimed task leaves its claim: to 'completed' or 'failed_validation' with a result, or back to
-- 'pending' (released, which gives the attempt back). Only the current owner's token matches.
UPDATE workers
SET task_status = :to_status::text, result = :result::jsonb, lease_owner = NULL, lease_expires_at = NULL,
    attempts = attempts - CASE WHEN :to_status::text = 'pending' THEN 1 ELSE 0 END,
    updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: retry :returning
-- uses: workers_pkey
-- A task that failed validation goes back to pending while it has attempts left.
UPDATE workers
SET task_status = 'pending', result = NULL, updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND task_status = 'failed_validation' AND attempts < max_attempts
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: record :returning
-- uses: workers_pkey
-- The planner has taken a finished task's outcome into account: it is recorded, for good.
UPDATE workers
SET task_status = 'recorded', updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND task_status IN ('completed', 'failed_validation')
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at;

-- name: history :many
-- uses: idx_task_events_worker
-- Every transition of one task, in the order they happened.
SELECT event_id, worker_id, from_status, to_status, fence, actor, detail, at
FROM task_events
WHERE worker_id = :worker_id
ORDER BY event_id;

-- name: expire_exhausted_for_planner :exec
-- uses: idx_workers_planner_status | idx_workers_leases, workers_pkey
-- Poison tasks: a claimed task whose lease expired on its last attempt is not handed out again. It
-- fails, with the reason as its result. Tasks another transaction holds are left for later.
UPDATE workers
SET task_status = 'failed_validation', lease_owner = NULL, lease_expires_at = NULL,
    result = jsonb_build_object('error', 'lease expired on the last attempt: the executor died or hung every time',
                                'attempts', attempts, 'max_attempts', max_attempts, 'last_owner', lease_owner),
    updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND task_status = 'claimed' AND lease_expires_at < statement_timestamp()
      AND attempts >= max_attempts
    FOR UPDATE SKIP LOCKED));

-- name: expire_exhausted_any :exec
-- uses: idx_workers_leases, workers_pkey
-- expire_exhausted_for_planner across all planners: a range of the lease index's expired end.
UPDATE workers
SET task_status = 'failed_validation', lease_owner = NULL, lease_expires_at = NULL,
    result = jsonb_build_object('error', 'lease expired on the last attempt: the executor died or hung every time',
                                'attempts', attempts, 'max_attempts', max_attempts, 'last_owner', lease_owner),
    updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE task_status = 'claimed' AND lease_expires_at < statement_timestamp() AND attempts >= max_attempts
    FOR UPDATE SKIP LOCKED));

-- name: purge_recorded_any :many
-- uses: idx_workers_recorded, workers_pkey
-- Retention: delete up to :limit tasks recorded before :before (their events, worker messages and
-- message head go with them), one row back per task deleted. Callers loop in short transactions.
DELETE FROM workers
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE task_status = 'recorded' AND updated_at < agentstate_time(:before)
    ORDER BY updated_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED))
RETURNING 1;

-- name: purge_recorded_for_planner :many
-- uses: idx_workers_recorded_planner, workers_pkey
-- purge_recorded_any for one planner's tasks.
DELETE FROM workers
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND task_status = 'recorded' AND updated_at < agentstate_time(:before)
    ORDER BY updated_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED))
RETURNING 1;

-- name: planner_task_counts :one
-- uses: idx_workers_planner_status
-- How many tasks a planner has, and how many of them are claimed (before deleting the planner).
SELECT count(*), count(*) FILTER (WHERE task_status = 'claimed')
FROM workers
WHERE planner_id = :planner_id;

-- name: delete_planner_tasks :exec
-- uses: idx_workers_planner_status, workers_pkey
-- Delete up to :limit of a planner's tasks (events, worker messages and heads go by cascade);
-- claimed ones only with :force. A task being claimed right now is locked, so it is not deleted
-- from under its claimer: without :force the caller's next batch finds it claimed.
DELETE FROM workers
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND (:force::boolean OR task_status <> 'claimed')
    LIMIT :limit
    FOR UPDATE));

-- name: finish_and_claim_any :returning
-- uses: workers_pkey, idx_workers_leases, idx_workers_pending
-- only: postgres: SQLite runs tasks.finish then tasks.claim_any in one write transaction
-- complete_and_claim_next in one statement (one round trip instead of four: BEGIN, finish, claim,
-- COMMIT): complete :worker_id if :token still holds it, and only then claim the next task as
-- claim_any does. One row: how many tasks it finished (0: the token is stale, nothing written),
-- then the claimed task's columns (NULLs when nothing is due). The claim's searches skip the task
-- being finished: one statement must not update a row twice.
WITH done AS (
    UPDATE workers
    SET task_status = :to_status::text, result = :result::jsonb, lease_owner = NULL, lease_expires_at = NULL,
        updated_by = :actor, updated_at = statement_timestamp()
    WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
    RETURNING worker_id
), claimed AS (
    UPDATE workers
    SET task_status = 'claimed', lease_owner = :owner,
        lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
        fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
    WHERE EXISTS (SELECT 1 FROM done) AND worker_id = coalesce(
        (SELECT worker_id FROM workers
         WHERE task_status = 'claimed' AND lease_expires_at < statement_timestamp() AND attempts < max_attempts
           AND worker_id <> :worker_id  -- the task being finished, if its own lease ran out
         ORDER BY lease_expires_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT worker_id FROM workers
         WHERE task_status = 'pending'
         ORDER BY created_at, worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED))
    RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
              input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
              lease_expires_at, updated_by, created_at, updated_at
)
SELECT (SELECT count(*) FROM done), claimed.*
FROM (SELECT 1) AS one LEFT JOIN claimed ON true;

-- name: finish_and_claim_for_planner :returning
-- uses: workers_pkey, idx_workers_planner_status
-- only: postgres: SQLite runs tasks.finish then tasks.claim_for_planner in one write transaction
-- finish_and_claim_any, claiming from :planner_id only (as claim_for_planner does).
WITH done AS (
    UPDATE workers
    SET task_status = :to_status::text, result = :result::jsonb, lease_owner = NULL, lease_expires_at = NULL,
        updated_by = :actor, updated_at = statement_timestamp()
    WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
    RETURNING worker_id
), claimed AS (
    UPDATE workers
    SET task_status = 'claimed', lease_owner = :owner,
        lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
        fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
    WHERE EXISTS (SELECT 1 FROM done) AND worker_id = coalesce(
        (SELECT worker_id FROM workers
         WHERE planner_id = :planner_id AND task_status = 'claimed' AND lease_expires_at < statement_timestamp()
           AND attempts < max_attempts AND worker_id <> :worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT worker_id FROM workers
         WHERE planner_id = :planner_id AND task_status = 'pending'
         ORDER BY created_at, worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED))
    RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
              input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
              lease_expires_at, updated_by, created_at, updated_at
)
SELECT (SELECT count(*) FROM done), claimed.*
FROM (SELECT 1) AS one LEFT JOIN claimed ON true;
