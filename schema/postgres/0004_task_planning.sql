-- Planning a request's tasks (issue 20): priorities, delays, prerequisites, idempotent creation
-- and cancellation; SQLite's 0008, in PostgreSQL's terms (columns are added in place).
--
--   * task_status may be 'cancelled' (tm.cancel: a pending or claimed task that will not run);
--   * priority: a higher one is claimed first, ties oldest first;
--   * available_at: a delayed task is not claimable before this time; NULL once it is;
--   * waiting_on: how many of its prerequisites have not yet reached completed or recorded,
--     kept by the trigger below when one does;
--   * idempotency_key: a second create with the planner's key returns the first task.
-- A task is "ready" when it is pending, waits on nothing and has no available_at: the claims
-- read the first row of a partial index of ready tasks in claim order, so a claim stays one
-- index search however many tasks are delayed or waiting.

ALTER TABLE workers DROP CONSTRAINT workers_task_status_check;
ALTER TABLE workers ADD CONSTRAINT workers_task_status_check
    CHECK (task_status IN ('pending', 'claimed', 'completed', 'failed_validation', 'recorded', 'cancelled'));
ALTER TABLE workers
    ADD COLUMN priority        bigint NOT NULL DEFAULT 0,
    ADD COLUMN available_at    timestamptz,
    ADD COLUMN waiting_on      bigint NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),
    ADD COLUMN idempotency_key text COLLATE "C" CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 256);

-- Ready tasks in claim order, a planner's and everyone's.
CREATE INDEX idx_workers_ready ON workers (planner_id, priority DESC, created_at, worker_id)
    WHERE task_status = 'pending' AND waiting_on = 0 AND available_at IS NULL;
CREATE INDEX idx_workers_ready_any ON workers (priority DESC, created_at, worker_id)
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
-- recorded. Both are tasks of the same planner (checked on create).
CREATE TABLE task_dependencies (
    worker_id  text COLLATE "C" NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    depends_on text COLLATE "C" NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_pkey PRIMARY KEY (worker_id, depends_on),
    CHECK (worker_id <> depends_on)
);
CREATE INDEX idx_task_dependencies_prerequisite ON task_dependencies (depends_on, worker_id);

-- The transition's event keeps a cancellation's reason as its detail too. And a task that reaches
-- completed or recorded (from any other status) no longer holds back its dependants: each waits
-- on one prerequisite fewer, in the same statement as the transition (one trigger call, not two:
-- every finish pays for it). Creating a dependant reads its prerequisites FOR SHARE, so the two
-- never miss each other.
CREATE OR REPLACE FUNCTION agentstate_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, detail, at)
    VALUES (NEW.worker_id, OLD.task_status, NEW.task_status, NEW.fence,
            CASE WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.updated_by END,
            CASE WHEN NEW.task_status IN ('completed', 'failed_validation', 'cancelled') THEN NEW.result END,
            CASE WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.updated_at
                 ELSE statement_timestamp() END);
    IF NEW.task_status IN ('completed', 'recorded') AND OLD.task_status NOT IN ('completed', 'recorded') THEN
        UPDATE workers SET waiting_on = waiting_on - 1
        WHERE worker_id = ANY (ARRAY(SELECT worker_id FROM task_dependencies WHERE depends_on = NEW.worker_id))
          AND waiting_on > 0;
    END IF;
    RETURN NULL;
END
$$;
