-- LangGraph checkpoints (agentstate.integrations.langgraph): a graph's state after each step,
-- and the writes its tasks made since, per thread.
--
-- A checkpoint is one row: LangGraph's serialiser turns the whole checkpoint (channel values
-- included) into a type tag and a blob, as LangGraph's own SqliteSaver stores it. Rows are
-- clustered on (thread_id, checkpoint_ns, checkpoint_id): checkpoint ids grow with time, so a
-- thread's newest checkpoint, its history newest first and its pages are ranges of the key.
-- checkpoint_ns is '' for the graph itself and names a subgraph otherwise. Metadata is JSON
-- text (list() filters on it); run_id is copied out of it for delete_for_runs.
-- Writes have no foreign key: LangGraph may store a task's writes before the checkpoint they
-- belong to is committed (its background puts race), as its own savers allow.

CREATE TABLE langgraph_checkpoints (
    thread_id            TEXT NOT NULL,
    checkpoint_ns        TEXT NOT NULL,
    checkpoint_id        TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id               TEXT,
    type                 TEXT NOT NULL,
    checkpoint           BLOB NOT NULL,
    metadata             TEXT NOT NULL CHECK (json_valid(metadata)),
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
) STRICT, WITHOUT ROWID;

-- A thread's checkpoints across all its namespaces, newest first (list() without checkpoint_ns).
CREATE INDEX idx_langgraph_checkpoints_thread ON langgraph_checkpoints (thread_id, checkpoint_id);
-- delete_for_runs; checkpoints written outside a run (no run_id) are not in it.
CREATE INDEX idx_langgraph_checkpoints_run ON langgraph_checkpoints (run_id) WHERE run_id IS NOT NULL;

-- idx is the write's position in its task's batch; LangGraph's special channels (errors,
-- interrupts, ...) take fixed negative ones, so a retried put_writes lands on the same keys.
CREATE TABLE langgraph_writes (
    thread_id     TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    task_path     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    type          TEXT NOT NULL,
    value         BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
) STRICT, WITHOUT ROWID;
