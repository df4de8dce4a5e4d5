-- Message streams: append, chronological reads, keyset pages, time ranges, counts, retention.
--
-- Each {stream} block is stamped out once per message table; {key} is the table's stream column.
-- The tables are clustered on ({key}, position), so every read by position is one range of
-- the primary key, already in order. Positions are assigned by the appending write
-- transaction: it holds the write lock, so the next position cannot race another writer. The
-- next position is one past the larger of max(position) and the stream's head in
-- message_heads (the highest position deleted from its end, see 0004_message_heads.sql), so
-- positions never restart.
-- Reads return newest-first where the page is taken from the end; the caller reverses the
-- few rows in Python instead of asking SQLite for a second sort.
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: append_{stream} :returning
-- uses: PRIMARY KEY
-- Append one message after the stream's last position. A message whose idempotency key the
-- stream already holds inserts nothing and returns no row; the caller then reads the stored one.
INSERT INTO {stream} ({key}, position, role, content, metadata, idempotency_key, created_at)
VALUES (
    :stream_id,
    max(coalesce((SELECT max(position) FROM {stream} WHERE {key} = :stream_id), 0),
        coalesce((SELECT last_position FROM message_heads
                  WHERE stream_table = '{stream}' AND stream_id = :stream_id), 0)) + 1,
    :role, :content, :metadata, :idempotency_key, :created_at
)
ON CONFLICT ({key}, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING position;

-- name: insert_{stream} :exec
-- uses: none
-- Insert one message at a position the batch already assigned (run through executemany).
INSERT INTO {stream} ({key}, position, role, content, metadata, idempotency_key, created_at)
VALUES (:stream_id, :position, :role, :content, :metadata, :idempotency_key, :created_at);

-- name: last_position_{stream} :one
-- uses: PRIMARY KEY
-- The stream id and the last position it has used (0 for a new stream): one seek to the end of
-- the key, and one into message_heads.
SELECT :stream_id,
       max(coalesce(max(position), 0),
           coalesce((SELECT last_position FROM message_heads
                     WHERE stream_table = '{stream}' AND stream_id = :stream_id), 0))
FROM {stream}
WHERE {key} = :stream_id;

-- name: pop_last_{stream} :returning
-- uses: PRIMARY KEY
-- Delete and return the stream's newest message (none for an empty stream). Its position is
-- remembered in message_heads by trigger, so it is never handed out again.
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position = (SELECT max(position) FROM {stream} WHERE {key} = :stream_id)
RETURNING position, role, content, metadata, idempotency_key, created_at;


-- name: by_idempotency_key_{stream} :one
-- uses: idx_{stream}_idempotency
-- The stored message of an idempotency key, if any.
SELECT {key}, position, role, content, metadata, idempotency_key, created_at
FROM {stream}
WHERE {key} = :stream_id AND idempotency_key = :idempotency_key;

-- name: get_{stream} :one
-- uses: PRIMARY KEY
-- One message by position.
SELECT position, role, content, metadata, idempotency_key, created_at
FROM {stream}
WHERE {key} = :stream_id AND position = :position;

-- name: latest_{stream} :many
-- uses: PRIMARY KEY
-- The last :limit messages, newest first.
SELECT position, role, content, metadata, idempotency_key, created_at
FROM {stream}
WHERE {key} = :stream_id
ORDER BY position DESC
LIMIT :limit;

-- name: before_{stream} :many
-- uses: PRIMARY KEY
-- The :limit messages just before a position, newest first (a page backwards).
SELECT position, role, content, metadata, idempotency_key, created_at
FROM {stream}
WHERE {key} = :stream_id AND position < :position
ORDER BY position DESC
LIMIT :limit;

-- name: after_{stream} :many
-- uses: PRIMARY KEY
-- The :limit messages just after a position, oldest first (a page forwards).
SELECT position, role, content, metadata, idempotency_key, created_at
FROM {stream}
WHERE {key} = :stream_id AND position > :position
ORDER BY position
LIMIT :limit;

-- name: trim_before_{stream} :exec
-- uses: PRIMARY KEY
-- Delete the messages before a position, always keeping the last one so positions never restart.
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position < :position
  AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id);

-- name: trim_keep_last_{stream} :exec
-- uses: PRIMARY KEY
-- Delete all but the last :keep messages (:keep >= 1).
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position < (
      SELECT min(position) FROM (
          SELECT position FROM {stream} WHERE {key} = :stream_id ORDER BY position DESC LIMIT :keep
      )
  );

-- name: clear_{stream} :exec
-- uses: PRIMARY KEY | idx_{stream}_
-- Delete a whole stream.
DELETE FROM {stream} WHERE {key} = :stream_id;

-- The blocks below name each table's own time index, so they are written out per table.

-- name: count_router_messages :value
-- uses: idx_router_messages_conv_time
-- How many messages the stream holds: a count over its range of the smaller time index.
SELECT count(*)
FROM router_messages
WHERE conversation_id = :stream_id;

-- name: count_planner_messages :value
-- uses: idx_planner_messages_agent_time
-- How many messages the stream holds: a count over its range of the smaller time index.
SELECT count(*)
FROM planner_messages
WHERE agent_id = :stream_id;

-- name: count_worker_messages :value
-- uses: idx_worker_messages_agent_time
-- How many messages the stream holds: a count over its range of the smaller time index.
SELECT count(*)
FROM worker_messages
WHERE agent_id = :stream_id;

-- name: time_range_router_messages :many
-- uses: idx_router_messages_conv_time
-- Messages created in [:since, :until), ordered by (created_at, position).
SELECT position, role, content, metadata, idempotency_key, created_at
FROM router_messages
WHERE conversation_id = :stream_id AND created_at >= :since AND created_at < :until
ORDER BY created_at, position
LIMIT :limit;

-- name: time_range_planner_messages :many
-- uses: idx_planner_messages_agent_time
-- Messages created in [:since, :until), ordered by (created_at, position).
SELECT position, role, content, metadata, idempotency_key, created_at
FROM planner_messages
WHERE agent_id = :stream_id AND created_at >= :since AND created_at < :until
ORDER BY created_at, position
LIMIT :limit;

-- name: time_range_worker_messages :many
-- uses: idx_worker_messages_agent_time
-- Messages created in [:since, :until), ordered by (created_at, position).
SELECT position, role, content, metadata, idempotency_key, created_at
FROM worker_messages
WHERE agent_id = :stream_id AND created_at >= :since AND created_at < :until
ORDER BY created_at, position
LIMIT :limit;
