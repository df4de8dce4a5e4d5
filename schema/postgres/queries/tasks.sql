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
-- Insert one pending task, claimable :delay_seconds from now. A task whose planner already has its
-- idempotency key is not inserted (no row back; a concurrent creator's key is waited for).
INSERT INTO workers (worker_id, planner_id, description, acceptance_criteria, task_context,
                     input_images, metadata, max_attempts, updated_by, created_at, updated_at,
                     priority, available_at, waiting_on, idempotency_key)
VALUES (:worker_id, :planner_id, :description, :acceptance_criteria, :task_context,
        :input_images, :metadata, :max_attempts, :actor, statement_timestamp(), statement_timestamp(),
        :priority, CASE WHEN :delay_seconds::float8 > 0
                        THEN statement_timestamp() + make_interval(secs => :delay_seconds::float8) END,
        :waiting_on, :idempotency_key)
ON CONFLICT (planner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: get :one
-- uses: workers_pkey
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
  AND (created_at, worker_id) > (agentstate_time(:after_created_at), :after_worker_id::text)
ORDER BY created_at, worker_id
LIMIT :limit;

-- name: counts :many
-- uses: idx_workers_planner_status
-- How many of the planner's tasks are in each status (every status, zeros included): one count
-- over an index range per status. (A GROUP BY here was planned as a bitmap scan and a sort.)
SELECT s.status, (SELECT count(*) FROM workers WHERE planner_id = :planner_id AND task_status = s.status)
FROM (VALUES ('pending'), ('claimed'), ('completed'), ('failed_validation'), ('recorded'), ('cancelled')) AS s (status);

-- name: claim_for_planner :returning
-- uses: idx_workers_planner_status | idx_workers_leases, idx_workers_ready, workers_pkey
-- Hand the planner's next task to :owner: first a claimed task whose lease expired more than
-- :lease_backoff_seconds ago (its executor died) and that has attempts left, else the first ready
-- task (pending, waiting on nothing, not delayed) by priority, then age; a task another
-- transaction is claiming right now is skipped. The fence grows by one, so the previous owner's token goes stale.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner,
    lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers
     WHERE planner_id = :planner_id AND task_status = 'claimed'
       AND lease_expires_at < statement_timestamp() - make_interval(secs => :lease_backoff_seconds)
       AND attempts < max_attempts
     LIMIT 1
     FOR UPDATE SKIP LOCKED),
    (SELECT worker_id FROM workers
     WHERE planner_id = :planner_id AND task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
     ORDER BY priority DESC, created_at, worker_id
     LIMIT 1
     FOR UPDATE SKIP LOCKED))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: claim_any :returning
-- uses: idx_workers_leases, idx_workers_ready_any, workers_pkey
-- Like claim_for_planner, across all planners: the longest-expired lease, else the first ready
-- task. Both searches run on partial indexes that hold only the work in flight.
UPDATE workers
SET task_status = 'claimed', lease_owner = :owner,
    lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    fence = fence + 1, attempts = attempts + 1, updated_by = :owner, updated_at = statement_timestamp()
WHERE worker_id = coalesce(
    (SELECT worker_id FROM workers
     WHERE task_status = 'claimed'
       AND lease_expires_at < statement_timestamp() - make_interval(secs => :lease_backoff_seconds)
       AND attempts < max_attempts
     ORDER BY lease_expires_at
     LIMIT 1
     FOR UPDATE SKIP LOCKED),
    (SELECT worker_id FROM workers
     WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
     ORDER BY priority DESC, created_at, worker_id
     LIMIT 1
     FOR UPDATE SKIP LOCKED))
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: heartbeat :returning
-- uses: workers_pkey
-- Extend the lease of a task the caller still holds (current fence) to :lease_seconds from now.
UPDATE workers
SET lease_expires_at = statement_timestamp() + make_interval(secs => :lease_seconds),
    updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND task_status = 'claimed' AND fence = :token
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

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
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: retry :returning
-- uses: workers_pkey
-- A task that failed validation goes back to pending while it has attempts left; claimable
-- :delay_seconds from now.
UPDATE workers
SET task_status = 'pending', result = NULL, updated_by = :actor, updated_at = statement_timestamp(),
    available_at = CASE WHEN :delay_seconds::float8 > 0
                        THEN statement_timestamp() + make_interval(secs => :delay_seconds::float8) END
WHERE worker_id = :worker_id AND task_status = 'failed_validation' AND attempts < max_attempts
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: record :returning
-- uses: workers_pkey
-- The planner has taken a finished (or cancelled) task's outcome into account: it is recorded,
-- for good.
UPDATE workers
SET task_status = 'recorded', updated_by = :actor, updated_at = statement_timestamp()
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
-- uses: workers_pkey, idx_workers_leases, idx_workers_ready_any
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
         WHERE task_status = 'claimed'
           AND lease_expires_at < statement_timestamp() - make_interval(secs => :lease_backoff_seconds)
           AND attempts < max_attempts
           AND worker_id <> :worker_id  -- the task being finished, if its own lease ran out
         ORDER BY lease_expires_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT worker_id FROM workers
         WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
         ORDER BY priority DESC, created_at, worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED))
    RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
              input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
              lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
)
SELECT (SELECT count(*) FROM done), claimed.*
FROM (SELECT 1) AS one LEFT JOIN claimed ON true;

-- name: finish_and_claim_for_planner :returning
-- uses: workers_pkey, idx_workers_planner_status | idx_workers_leases, idx_workers_ready
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
         WHERE planner_id = :planner_id AND task_status = 'claimed'
           AND lease_expires_at < statement_timestamp() - make_interval(secs => :lease_backoff_seconds)
           AND attempts < max_attempts AND worker_id <> :worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT worker_id FROM workers
         WHERE planner_id = :planner_id AND task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL
         ORDER BY priority DESC, created_at, worker_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED))
    RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
              input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
              lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key
)
SELECT (SELECT count(*) FROM done), claimed.*
FROM (SELECT 1) AS one LEFT JOIN claimed ON true;

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
-- uses: workers_pkey
-- The planner and status of a task named as a prerequisite, share-locked until the creating
-- transaction ends: it cannot finish or be cancelled before the dependant is committed.
SELECT planner_id, task_status FROM workers WHERE worker_id = :worker_id FOR SHARE;

-- name: add_dependency :exec
-- uses: none
-- worker_id waits for depends_on.
INSERT INTO task_dependencies (worker_id, depends_on) VALUES (:worker_id, :depends_on);

-- name: dependencies_of :many
-- uses: task_dependencies_pkey
-- The prerequisites of a task, in id order.
SELECT depends_on FROM task_dependencies WHERE worker_id = :worker_id ORDER BY depends_on;

-- name: promote_due :exec
-- uses: idx_workers_delayed, workers_pkey
-- Delayed tasks whose time has come become ready (a claim's sweep runs this).
UPDATE workers
SET available_at = NULL
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE available_at IS NOT NULL AND available_at <= statement_timestamp()
    FOR UPDATE SKIP LOCKED));

-- name: cancel :returning
-- uses: workers_pkey
-- A pending or claimed task of the planner is cancelled: its lease (if any) goes, its fence
-- stays, so its executor's next step finds it cancelled and writes nothing. :reason (JSON) is
-- kept in its result and history.
UPDATE workers
SET task_status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, available_at = NULL,
    result = jsonb_build_object('reason', :reason::jsonb), updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = :worker_id AND planner_id = :planner_id AND task_status IN ('pending', 'claimed')
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: cancel_dependants :many
-- uses: idx_task_dependencies_prerequisite, workers_pkey
-- The pending tasks that wait on any of :ids (a JSON array of cancelled tasks) are cancelled too;
-- the caller repeats this with the tasks it returns until none are left.
UPDATE workers
SET task_status = 'cancelled', available_at = NULL,
    result = jsonb_build_object('reason', :reason::jsonb, 'prerequisite_cancelled', :worker_id::text),
    updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = ANY (ARRAY(
    SELECT d.worker_id FROM task_dependencies AS d
    WHERE d.depends_on = ANY (ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)))))
  AND task_status = 'pending'
RETURNING worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
          input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
          lease_expires_at, updated_by, created_at, updated_at, priority, available_at, waiting_on,
          idempotency_key;

-- name: cancel_all :exec
-- uses: idx_workers_planner_status, workers_pkey
-- Every pending or claimed task of the planner is cancelled (the user gave up on the request).
UPDATE workers
SET task_status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, available_at = NULL,
    result = jsonb_build_object('reason', :reason::jsonb), updated_by = :actor, updated_at = statement_timestamp()
WHERE worker_id = ANY (ARRAY(
    SELECT worker_id FROM workers
    WHERE planner_id = :planner_id AND task_status IN ('pending', 'claimed')
    FOR UPDATE));

-- name: blocked :many
-- uses: idx_workers_waiting, task_dependencies_pkey, workers_pkey
-- The planner's tasks that wait on prerequisites, oldest first, each with one row per
-- prerequisite that has not yet reached completed or recorded (its id last; sorted by the caller).
SELECT w.worker_id, w.planner_id, w.task_status, w.description, w.acceptance_criteria, w.task_context,
       w.input_images, w.metadata, w.result, w.attempts, w.max_attempts, w.fence, w.lease_owner,
       w.lease_expires_at, w.updated_by, w.created_at, w.updated_at, w.priority, w.available_at,
       w.waiting_on, w.idempotency_key, d.depends_on
FROM workers AS w
JOIN task_dependencies AS d ON d.worker_id = w.worker_id
JOIN workers AS p ON p.worker_id = d.depends_on
WHERE w.planner_id = :planner_id AND w.task_status = 'pending' AND w.waiting_on > 0
  AND p.task_status NOT IN ('completed', 'recorded')
ORDER BY w.created_at, w.worker_id;

-- name: claimable_for_planner :one
-- uses: idx_workers_ready, idx_workers_planner_status | idx_workers_leases, idx_workers_delayed
-- What a waiting claim reads (no lock) before it tries to claim: whether a ready task of the
-- planner waits, and in how many seconds the next delayed task (any planner's: a claim's sweep
-- makes them all ready) and the planner's next lease run out (:lease_backoff_seconds added).
-- NULL: none. A time at or below zero is due now.
SELECT EXISTS (SELECT 1 FROM workers
               WHERE planner_id = :planner_id AND task_status = 'pending' AND waiting_on = 0
                 AND available_at IS NULL),
       extract(epoch FROM (SELECT min(available_at) FROM workers WHERE available_at IS NOT NULL)
                          - statement_timestamp())::float8,
       extract(epoch FROM (SELECT min(lease_expires_at) FROM workers
                           WHERE planner_id = :planner_id AND task_status = 'claimed')
                          - statement_timestamp())::float8 + :lease_backoff_seconds;

-- name: claimable_any :one
-- uses: idx_workers_ready_any, idx_workers_delayed, idx_workers_leases
-- claimable_for_planner across all planners.
SELECT EXISTS (SELECT 1 FROM workers WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL),
       extract(epoch FROM (SELECT min(available_at) FROM workers WHERE available_at IS NOT NULL)
                          - statement_timestamp())::float8,
       extract(epoch FROM (SELECT min(lease_expires_at) FROM workers WHERE task_status = 'claimed')
                          - statement_timestamp())::float8 + :lease_backoff_seconds;
