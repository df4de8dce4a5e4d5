-- Claims as cheap as before planning (issue 20: within 10% of the claim before 0008). 0008 made
-- a claim + complete 16% slower (bench: claim_finish_1p 188 -> 219 µs at 100k rows): each claim
-- took a task out of three partial indexes of pending tasks instead of one, and each completion
-- ran the prerequisite trigger's UPDATE, even for a task nothing depends on.

-- One index of pending tasks, not two: everyone's ready tasks in claim order are its prefix
-- (task_status, waiting_on = 0, available_at IS NULL), the delayed and the waiting after them.
-- The claims and the waiting look read that prefix; the operator's "oldest pending" statistic
-- walks the whole index (the queue, not the table).
DROP INDEX idx_workers_pending;
DROP INDEX idx_workers_ready_any;
CREATE INDEX idx_workers_pending_ready
    ON workers (task_status, waiting_on, available_at, priority DESC, created_at, worker_id)
    WHERE task_status = 'pending';

-- has_dependants: 1 once a task was named in some task's depends_on. A completion runs the
-- countdown only then; a task nothing depends on (most) skips it for a column test.
ALTER TABLE workers ADD COLUMN has_dependants INTEGER NOT NULL DEFAULT 0 CHECK (has_dependants IN (0, 1));
UPDATE workers INDEXED BY sqlite_autoindex_workers_1 SET has_dependants = 1
WHERE worker_id IN (SELECT depends_on FROM task_dependencies);

CREATE TRIGGER trg_task_dependencies_added AFTER INSERT ON task_dependencies
BEGIN
    UPDATE workers SET has_dependants = 1 WHERE worker_id = new.depends_on AND has_dependants = 0;
END;

DROP TRIGGER trg_workers_prerequisite_done;
CREATE TRIGGER trg_workers_prerequisite_done AFTER UPDATE OF task_status ON workers
WHEN new.has_dependants AND new.task_status IN ('completed', 'recorded')
     AND old.task_status NOT IN ('completed', 'recorded')
BEGIN
    UPDATE workers SET waiting_on = waiting_on - 1
    WHERE worker_id IN (SELECT worker_id FROM task_dependencies WHERE depends_on = new.worker_id)
      AND waiting_on > 0;
END;
