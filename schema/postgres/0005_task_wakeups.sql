-- Wake-ups for waiting claims (issue 20): a claim or wait_completed called with a wait LISTENs
-- on agentstate_tasks (agentstate/postgres/wakeups.py); these triggers NOTIFY it from every
-- transaction that may have made a task claimable or finished one. PostgreSQL delivers a
-- notification at commit, once per transaction however many rows notified, to listeners on
-- every host.
CREATE FUNCTION agentstate_task_wakeup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentstate_tasks', '');
    RETURN NULL;
END
$$;

-- New tasks: once per statement, however many rows it inserts.
CREATE TRIGGER trg_workers_wakeup_created AFTER INSERT ON workers
    FOR EACH STATEMENT EXECUTE FUNCTION agentstate_task_wakeup();

-- A task back to pending (release, retry, a prerequisite done, a delay over), finished,
-- cancelled or failed by its lease. Claims and heartbeats, the busiest updates, notify nobody.
CREATE TRIGGER trg_workers_wakeup_changed AFTER UPDATE OF task_status, available_at, waiting_on ON workers
    FOR EACH ROW WHEN (NEW.task_status <> 'claimed') EXECUTE FUNCTION agentstate_task_wakeup();
