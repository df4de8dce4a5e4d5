-- LangGraph checkpoints, for list(None) and the delta-channel history, as SQLite's 0006.
--
-- list(None) (every thread) walks all checkpoints newest first, in pages of a key range:
-- checkpoint_id, then thread_id and checkpoint_ns, so a page boundary is one exact key even
-- where copy_thread made two threads share a checkpoint id.
CREATE INDEX idx_langgraph_checkpoints_newest ON langgraph_checkpoints (checkpoint_id, thread_id, checkpoint_ns);

-- delete_for_runs keeps what a checkpoint left behind still replays: it finds a deleted
-- checkpoint's children by their parent.
CREATE INDEX idx_langgraph_checkpoints_parent
    ON langgraph_checkpoints (thread_id, checkpoint_ns, parent_checkpoint_id) WHERE parent_checkpoint_id IS NOT NULL;

-- What a checkpoint's blob holds, written by put as JSON arrays of channel names: channels,
-- those whose value the checkpoint stores (where a DeltaChannel's history starts, its seed);
-- replays, those LangGraph rebuilds from the history at this checkpoint, which prune and
-- delete_for_runs keep the history of. NULL in rows stored before this migration.
ALTER TABLE langgraph_checkpoints ADD COLUMN channels jsonb, ADD COLUMN replays jsonb;
