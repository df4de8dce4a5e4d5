-- Message streams on PostgreSQL: the names of schema/sqlite/queries/messages.sql.
--
-- Positions come from the stream's row in message_heads (see 0001_initial.sql): an append upserts
-- it to one past the last position, and the row lock that takes is held until COMMIT, so a second
-- appender to the same stream waits, then reads the committed head: positions are unique and
-- strictly increase in commit order, and a reader paging with after(p) never misses a message
-- that commits later. Appenders to different streams never wait for each other.
-- The batch path (MessageLog.append_many / append_bulk) locks the same row with
-- last_position_{stream} (FOR UPDATE), numbers its rows, and insert_{stream} moves the head on.
-- An idempotency key is unique per stream (a partial unique index); INSERT ... ON CONFLICT DO
-- NOTHING makes two racing appends of one key store one message: the second waits for the first
-- to commit, then inserts nothing and returns no row (the caller reads the stored one).
-- created_at is the server's clock_timestamp() read after the head lock is taken, so within a
-- stream it follows position order. It comes back as agentstate's text, formatted by to_char on the
-- server: the C text loader then takes it, ~35 µs cheaper per 50 rows than formatting in Python.
-- streams: router_messages:conversation_id planner_messages:agent_id worker_messages:agent_id

-- name: append_{stream} :returning
-- uses: message_heads_pkey, {stream}_pkey, idx_{stream}_idempotency
-- Append one message after the stream's last position; returns its position and created_at. A
-- key the stream already holds (seen in this statement's snapshot) moves no head; one committed
-- by a racing append meanwhile costs a position (positions are not dense) and stores nothing.
WITH head AS (
    INSERT INTO message_heads AS h (stream_table, stream_id, last_position)
    SELECT '{stream}', :stream_id::text,
           coalesce((SELECT max(position) FROM {stream} WHERE {key} = :stream_id::text), 0) + 1
    WHERE :idempotency_key::text IS NULL
       OR NOT EXISTS (SELECT 1 FROM {stream}
                      WHERE {key} = :stream_id::text AND idempotency_key = :idempotency_key::text)
    ON CONFLICT (stream_table, stream_id) DO UPDATE
        SET last_position = greatest(h.last_position + 1, excluded.last_position)
    RETURNING last_position
)
INSERT INTO {stream} ({key}, position, role, content, metadata, idempotency_key, created_at)
SELECT :stream_id::text, head.last_position, :role::text, :content::text, :metadata::json,
       :idempotency_key::text, clock_timestamp()
FROM head
ON CONFLICT ({key}, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING position, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- name: insert_{stream} :exec
-- uses: none
-- Insert one message at a position the batch already assigned (run through executemany, inside
-- the transaction whose last_position_{stream} locked the head), and move the head on to it.
WITH message AS (
    INSERT INTO {stream} ({key}, position, role, content, metadata, idempotency_key, created_at)
    VALUES (:stream_id, :position, :role, :content, :metadata, :idempotency_key, :created_at)
    RETURNING {key}, position
)
INSERT INTO message_heads AS h (stream_table, stream_id, last_position)
SELECT '{stream}', {key}, position FROM message
ON CONFLICT (stream_table, stream_id) DO UPDATE
    SET last_position = greatest(h.last_position, excluded.last_position);

-- name: last_position_{stream} :one
-- uses: message_heads_pkey, {stream}_pkey
-- The stream id, the last position it has used (0 for a new stream), and the server's time; locks
-- the stream's head until the transaction ends, so a batch numbered from it cannot race another
-- appender (outside a transaction the lock ends with the statement). max(position) covers rows
-- inserted by hand.
SELECT :stream_id::text,
       greatest((SELECT last_position FROM message_heads
                 WHERE stream_table = '{stream}' AND stream_id = :stream_id::text
                 FOR UPDATE),
                (SELECT max(position) FROM {stream} WHERE {key} = :stream_id::text),
                0),
       clock_timestamp();

-- name: pop_last_{stream} :returning
-- uses: {stream}_pkey
-- Delete and return the stream's newest message (none for an empty stream). FOR UPDATE makes a
-- second popper wait and then take the next message, not the one just popped; the head keeps its
-- position, so it is never handed out again.
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position = (SELECT position FROM {stream} WHERE {key} = :stream_id
                  ORDER BY position DESC LIMIT 1 FOR UPDATE)
RETURNING position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- name: by_idempotency_key_{stream} :one
-- uses: idx_{stream}_idempotency
-- The stored message of an idempotency key, if any.
SELECT {key}, position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM {stream}
WHERE {key} = :stream_id AND idempotency_key = :idempotency_key;

-- name: get_{stream} :one
-- uses: {stream}_pkey
-- One message by position.
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM {stream}
WHERE {key} = :stream_id AND position = :position;

-- name: latest_{stream} :many
-- uses: {stream}_pkey
-- The last :limit messages, newest first.
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM {stream}
WHERE {key} = :stream_id
ORDER BY position DESC
LIMIT :limit;

-- name: before_{stream} :many
-- uses: {stream}_pkey
-- The :limit messages just before a position, newest first (a page backwards).
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM {stream}
WHERE {key} = :stream_id AND position < :position
ORDER BY position DESC
LIMIT :limit;

-- name: after_{stream} :many
-- uses: {stream}_pkey
-- The :limit messages just after a position, oldest first (a page forwards).
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM {stream}
WHERE {key} = :stream_id AND position > :position
ORDER BY position
LIMIT :limit;

-- name: trim_before_{stream} :exec
-- uses: {stream}_pkey
-- Delete the messages before a position, always keeping the last one.
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position < :position
  AND position < (SELECT max(position) FROM {stream} WHERE {key} = :stream_id);

-- name: trim_keep_last_{stream} :exec
-- uses: {stream}_pkey
-- Delete all but the last :keep messages (:keep >= 1).
DELETE FROM {stream}
WHERE {key} = :stream_id
  AND position < (
      SELECT min(position) FROM (
          SELECT position FROM {stream} WHERE {key} = :stream_id ORDER BY position DESC LIMIT :keep
      ) AS kept
  );

-- name: clear_{stream} :exec
-- uses: {stream}_pkey | idx_{stream}_
-- Delete a whole stream.
DELETE FROM {stream} WHERE {key} = :stream_id;

-- The blocks below name each table's own time index, so they are written out per table.

-- name: count_router_messages :value
-- uses: router_messages_pkey | idx_router_messages_conv_time
-- How many messages the stream holds: a count over its range of an index.
SELECT count(*)
FROM router_messages
WHERE conversation_id = :stream_id;

-- name: count_planner_messages :value
-- uses: planner_messages_pkey | idx_planner_messages_agent_time
-- How many messages the stream holds: a count over its range of an index.
SELECT count(*)
FROM planner_messages
WHERE agent_id = :stream_id;

-- name: count_worker_messages :value
-- uses: worker_messages_pkey | idx_worker_messages_agent_time
-- How many messages the stream holds: a count over its range of an index.
SELECT count(*)
FROM worker_messages
WHERE agent_id = :stream_id;

-- name: time_range_router_messages :many
-- uses: idx_router_messages_conv_time
-- Messages created in [:since, :until), ordered by (created_at, position) ('' and '~' are open
-- bounds): one range of the (stream, created_at, position) index.
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM router_messages
WHERE conversation_id = :stream_id
  AND created_at >= agentstate_time(:since) AND created_at < agentstate_time(:until)
ORDER BY created_at, position
LIMIT NULLIF(:limit, -1);

-- name: time_range_planner_messages :many
-- uses: idx_planner_messages_agent_time
-- Messages created in [:since, :until), ordered by (created_at, position).
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM planner_messages
WHERE agent_id = :stream_id
  AND created_at >= agentstate_time(:since) AND created_at < agentstate_time(:until)
ORDER BY created_at, position
LIMIT NULLIF(:limit, -1);

-- name: time_range_worker_messages :many
-- uses: idx_worker_messages_agent_time
-- Messages created in [:since, :until), ordered by (created_at, position).
SELECT position, role, content, metadata, idempotency_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM worker_messages
WHERE agent_id = :stream_id
  AND created_at >= agentstate_time(:since) AND created_at < agentstate_time(:until)
ORDER BY created_at, position
LIMIT NULLIF(:limit, -1);
