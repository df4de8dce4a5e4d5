-- Drop the guide's global index on workers(task_status).
--
-- Every status change of a task moved its entry in this index: about 3 of the ~15 pages a
-- finish-and-claim transaction writes (measured at 1M tasks). No agentstate query uses it: the
-- per-planner index and the partial indexes for pending, claimed, finished and recorded tasks
-- answer every status lookup, each holding only the rows of its state. A global query on one
-- status (say, count the completed tasks) still runs on an index: it reads the covering
-- (planner_id, task_status, created_at, worker_id) index instead of the table.
DROP INDEX idx_workers_status;
