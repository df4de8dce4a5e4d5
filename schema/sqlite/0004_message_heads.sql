-- Message positions never restart, whatever is deleted.
--
-- An append took max(position) + 1, so deleting a stream's newest message (pop_last, clear, a
-- manual DELETE) let the next append reuse a position that a reader paging with after(p) had
-- already seen: it would never see the new message. message_heads keeps, per stream, the
-- highest position ever deleted from its end; appends take one past the larger of that and the
-- stream's max(position). It is written only when the newest message goes, so appends still
-- write nothing but their own rows.

CREATE TABLE message_heads (
    stream_table  TEXT NOT NULL CHECK (stream_table IN ('router_messages', 'planner_messages', 'worker_messages')),
    stream_id     TEXT NOT NULL,
    last_position INTEGER NOT NULL CHECK (last_position >= 1),
    PRIMARY KEY (stream_table, stream_id)
) STRICT, WITHOUT ROWID;

-- A deleted message with nothing after it is the stream's end: remember its position.
CREATE TRIGGER trg_router_messages_head AFTER DELETE ON router_messages
WHEN NOT EXISTS (SELECT 1 FROM router_messages WHERE conversation_id = old.conversation_id AND position > old.position)
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    VALUES ('router_messages', old.conversation_id, old.position)
    ON CONFLICT (stream_table, stream_id) DO UPDATE SET last_position = max(last_position, excluded.last_position);
END;

CREATE TRIGGER trg_planner_messages_head AFTER DELETE ON planner_messages
WHEN NOT EXISTS (SELECT 1 FROM planner_messages WHERE agent_id = old.agent_id AND position > old.position)
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    VALUES ('planner_messages', old.agent_id, old.position)
    ON CONFLICT (stream_table, stream_id) DO UPDATE SET last_position = max(last_position, excluded.last_position);
END;

CREATE TRIGGER trg_worker_messages_head AFTER DELETE ON worker_messages
WHEN NOT EXISTS (SELECT 1 FROM worker_messages WHERE agent_id = old.agent_id AND position > old.position)
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    VALUES ('worker_messages', old.agent_id, old.position)
    ON CONFLICT (stream_table, stream_id) DO UPDATE SET last_position = max(last_position, excluded.last_position);
END;

-- An owner that goes takes its head with it, so deleted conversations, planners and tasks leave
-- no rows behind (SQLite deletes the owner's messages by cascade before these run). The message
-- triggers above name no other table, so a later migration that rebuilds an owner's table (the
-- 12-step ALTER) need only recreate its own trigger here.
CREATE TRIGGER trg_conversations_heads AFTER DELETE ON conversations
BEGIN
    DELETE FROM message_heads WHERE stream_table = 'router_messages' AND stream_id = old.id;
END;

CREATE TRIGGER trg_planners_heads AFTER DELETE ON planners
BEGIN
    DELETE FROM message_heads WHERE stream_table = 'planner_messages' AND stream_id = old.planner_id;
END;

CREATE TRIGGER trg_workers_heads AFTER DELETE ON workers
BEGIN
    DELETE FROM message_heads WHERE stream_table = 'worker_messages' AND stream_id = old.worker_id;
END;
