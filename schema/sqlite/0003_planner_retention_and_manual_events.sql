-- Retention per planner, and honest history for changes made outside agentstate.
--
-- 1. A planner's TaskManager purges only its own recorded tasks. Finding "this planner's tasks
--    recorded before X" is a range seek on this partial index, which holds recorded tasks only,
--    so transitions and heartbeats never touch it.
CREATE INDEX idx_workers_recorded_planner ON workers (planner_id, updated_at) WHERE task_status = 'recorded';

-- 2. The transition trigger named new.updated_by and new.updated_at as who and when. A manual
--    UPDATE (say, a requeue typed into the sqlite3 shell) leaves both as they were, so it was
--    recorded as done by the previous executor at the previous step's time. agentstate stamps
--    updated_at on every transition it makes; when a transition leaves it unchanged, the event
--    says what is known: no actor, and the time it happened.
DROP TRIGGER trg_workers_transition;
CREATE TRIGGER trg_workers_transition AFTER UPDATE OF task_status, fence ON workers
WHEN old.task_status IS NOT new.task_status OR old.fence IS NOT new.fence
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, detail, at)
    VALUES (new.worker_id, old.task_status, new.task_status, new.fence,
            CASE WHEN new.updated_at IS NOT old.updated_at THEN new.updated_by END,
            CASE WHEN new.task_status IN ('completed', 'failed_validation') THEN new.result END,
            CASE WHEN new.updated_at IS NOT old.updated_at THEN new.updated_at
                 ELSE strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') END);
END;
