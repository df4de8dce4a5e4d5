-- Planning a request's tasks (issue 20): priorities, delays, prerequisites, idempotent creation
-- and cancellation.
--
-- workers gains five things, so it is rebuilt (SQLite cannot change a CHECK in place: the
-- 12-step procedure of https://sqlite.org/lang_altertable.html; the migrator switches foreign
-- keys off before the transaction and checks them before COMMIT):
--   * task_status may be 'cancelled' (tm.cancel: a pending or claimed task that will not run);
--   * priority: a higher one is claimed first, ties oldest first;
--   * available_at: a delayed task (delay_seconds, a delayed retry, a crashed executor's lease
--     back-off) is not claimable before this time; NULL once it is;
--   * waiting_on: how many of its prerequisites have not yet reached completed or recorded,
--     kept by the trigger below when one does;
--   * idempotency_key: a second create with the planner's key returns the first task.
-- A task is "ready" when it is pending, waits on nothing and has no available_at. The claims
-- read the first row of a partial index of ready tasks in claim order (priority DESC,
-- created_at, worker_id), so a claim stays one index search however many tasks are delayed or
-- waiting: readiness is maintained when tasks are written, never checked row by row by a claim.
-- Delayed tasks become ready when a claim's periodic sweep clears the available_at of those
-- that are due (idx_workers_delayed: a seek on its due end).

CREATE TABLE workers_new (
    worker_id           TEXT PRIMARY KEY NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
    planner_id          TEXT NOT NULL REFERENCES planners (planner_id),
    task_status         TEXT NOT NULL DEFAULT 'pending'
                        CHECK (task_status IN ('pending', 'claimed', 'completed', 'failed_validation', 'recorded',
                                               'cancelled')),
    description         TEXT NOT NULL DEFAULT '',
    acceptance_criteria TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(acceptance_criteria)),
    task_context        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(task_context)),
    input_images        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(input_images)),
    metadata            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    result              TEXT CHECK (result IS NULL OR json_valid(result)),
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    fence               INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0),
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    updated_by          TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                        CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                        CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    priority            INTEGER NOT NULL DEFAULT 0,
    available_at        TEXT
                        CHECK (available_at IS NULL OR available_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    waiting_on          INTEGER NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),
    idempotency_key     TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 256),
    -- a claimed task always has an owner and a lease; no other state has either
    CHECK ((task_status = 'claimed') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (lease_owner IS NULL OR lease_expires_at IS NOT NULL)
) STRICT;

INSERT INTO workers_new (worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
                         input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
                         lease_expires_at, updated_by, created_at, updated_at)
SELECT worker_id, planner_id, task_status, description, acceptance_criteria, task_context,
       input_images, metadata, result, attempts, max_attempts, fence, lease_owner,
       lease_expires_at, updated_by, created_at, updated_at
FROM workers;

DROP TABLE workers;
ALTER TABLE workers_new RENAME TO workers;

-- The indexes workers had (0001, 0002 dropped idx_workers_status, 0003 added the planner's
-- recorded index), by the same names.
CREATE INDEX idx_workers_planner_status ON workers (planner_id, task_status, created_at, worker_id);
CREATE INDEX idx_workers_recorded ON workers (task_status, updated_at) WHERE task_status = 'recorded';
CREATE INDEX idx_workers_pending ON workers (task_status, created_at, worker_id)
    WHERE task_status = 'pending';
CREATE INDEX idx_workers_leases ON workers (task_status, lease_expires_at)
    WHERE task_status = 'claimed';
CREATE INDEX idx_workers_done ON workers (planner_id, created_at, worker_id)
    WHERE task_status IN ('completed', 'failed_validation');
CREATE INDEX idx_workers_recorded_planner ON workers (planner_id, updated_at) WHERE task_status = 'recorded';

-- Ready tasks in claim order, a planner's and everyone's.
CREATE INDEX idx_workers_ready ON workers (planner_id, priority DESC, created_at, worker_id)
    WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL;
-- (task_status leads, as in idx_workers_pending, so the claim is a search on it, not a scan.)
CREATE INDEX idx_workers_ready_any ON workers (task_status, priority DESC, created_at, worker_id)
    WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL;
-- Delayed tasks, due end first.
CREATE INDEX idx_workers_delayed ON workers (available_at) WHERE available_at IS NOT NULL;
-- A planner's tasks that wait on prerequisites (tm.blocked()), oldest first.
CREATE INDEX idx_workers_waiting ON workers (planner_id, created_at, worker_id)
    WHERE task_status = 'pending' AND waiting_on > 0;
-- One task per (planner, idempotency key).
CREATE UNIQUE INDEX idx_workers_idempotency ON workers (planner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Prerequisites: worker_id may be claimed once every depends_on has reached completed or
-- recorded. Both are tasks of the same planner (checked on create); a deleted task takes its
-- edges with it.
CREATE TABLE task_dependencies (
    worker_id  TEXT NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    depends_on TEXT NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    PRIMARY KEY (worker_id, depends_on),
    CHECK (worker_id <> depends_on)
) STRICT, WITHOUT ROWID;
CREATE INDEX idx_task_dependencies_prerequisite ON task_dependencies (depends_on, worker_id);

-- The triggers workers had (0001's created, 0003's transition, 0004's heads), the transition
-- now keeping a cancellation's reason as its detail too.
CREATE TRIGGER trg_workers_created AFTER INSERT ON workers
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, at)
    VALUES (new.worker_id, NULL, new.task_status, new.fence, new.updated_by, new.created_at);
END;

CREATE TRIGGER trg_workers_transition AFTER UPDATE OF task_status, fence ON workers
WHEN old.task_status IS NOT new.task_status OR old.fence IS NOT new.fence
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, detail, at)
    VALUES (new.worker_id, old.task_status, new.task_status, new.fence,
            CASE WHEN new.updated_at IS NOT old.updated_at THEN new.updated_by END,
            CASE WHEN new.task_status IN ('completed', 'failed_validation', 'cancelled') THEN new.result END,
            CASE WHEN new.updated_at IS NOT old.updated_at THEN new.updated_at
                 ELSE strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') END);
END;

CREATE TRIGGER trg_workers_heads AFTER DELETE ON workers
BEGIN
    DELETE FROM message_heads WHERE stream_table = 'worker_messages' AND stream_id = old.worker_id;
END;

-- A task that reaches completed or recorded (from any other status) no longer holds back its
-- dependants: each waits on one prerequisite fewer, and one that waits on none is ready. In the
-- same statement as the transition, whoever makes it.
CREATE TRIGGER trg_workers_prerequisite_done AFTER UPDATE OF task_status ON workers
WHEN new.task_status IN ('completed', 'recorded') AND old.task_status NOT IN ('completed', 'recorded')
BEGIN
    UPDATE workers SET waiting_on = waiting_on - 1
    WHERE worker_id IN (SELECT worker_id FROM task_dependencies WHERE depends_on = new.worker_id)
      AND waiting_on > 0;
END;
