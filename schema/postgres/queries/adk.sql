-- Google ADK sessions on PostgreSQL (the names of schema/sqlite/queries/adk.sql; tables in 0003_adk_sessions.sql). A
-- session is found by its three ids once (idx_adk_sessions_id); its events are read by its
-- session_key, newest first, as one range of adk_events' clustered key. The caller wraps each
-- operation in one transaction: a read snapshot (REPEATABLE READ), or a READ COMMITTED write
-- whose first statement locks the session's row (FOR UPDATE), so the stale-session check and
-- the write it guards are one transaction, and two appends to one session take turns.

-- name: session :one
-- uses: idx_adk_sessions_id
-- A session with the app's and the user's state (NULL where none is stored): get_session's head.
SELECT s.session_key, s.state, s.update_time, s.revision,
       (SELECT a.state FROM adk_app_states AS a WHERE a.app_name = :app_name),
       (SELECT u.state FROM adk_user_states AS u WHERE u.app_name = :app_name AND u.user_id = :user_id)
FROM adk_sessions AS s
WHERE s.app_name = :app_name AND s.user_id = :user_id AND s.session_id = :session_id;

-- name: events :many
-- uses: adk_events_pkey
-- A session's latest :limit events from :after on (timestamp >= :after), newest first: one range
-- of the key read backwards, stopping after :limit rows. The caller reverses the page.
SELECT event
FROM adk_events
WHERE session_key = :session_key AND timestamp >= :after
ORDER BY timestamp DESC, seq DESC
LIMIT :limit;

-- name: latest_event_id :value
-- uses: adk_events_pkey
-- The id of a session's newest event (none for a session without events): the stale check of a
-- session object that carries no revision marker.
SELECT event_id
FROM adk_events
WHERE session_key = :session_key
ORDER BY timestamp DESC, seq DESC
LIMIT 1;

-- name: create_session :returning
-- uses: none
-- A new session at revision 1; a session of these ids already there inserts nothing and returns
-- no row (the caller raises AlreadyExistsError).
INSERT INTO adk_sessions (app_name, user_id, session_id, state, create_time, update_time, revision, events)
VALUES (:app_name, :user_id, :session_id, :state, :now, :now, 1, 0)
ON CONFLICT (app_name, user_id, session_id) DO NOTHING
RETURNING session_key, revision;

-- name: session_for_update :one
-- uses: idx_adk_sessions_id
-- The session an append writes to (PostgreSQL locks the row; SQLite's BEGIN IMMEDIATE holds the
-- write lock already).
SELECT session_key, state, update_time, revision
FROM adk_sessions
WHERE app_name = :app_name AND user_id = :user_id AND session_id = :session_id
FOR UPDATE;

-- name: touch_session :returning
-- uses: adk_sessions_pkey
-- One more event: the session's state (NULL: unchanged), update time, revision and event count.
UPDATE adk_sessions
SET state = coalesce(:state, state), update_time = :now, revision = revision + 1, events = events + 1
WHERE session_key = :session_key
RETURNING events, revision;

-- name: insert_event :exec
-- uses: none
-- Store one event at the sequence number touch_session gave it.
INSERT INTO adk_events (session_key, timestamp, seq, event_id, event)
VALUES (:session_key, :timestamp, :seq, :event_id, :event);

-- name: delete_session :exec
-- uses: idx_adk_sessions_id
-- Delete a session; its events go with it (ON DELETE CASCADE, a range of adk_events' key).
DELETE FROM adk_sessions
WHERE app_name = :app_name AND user_id = :user_id AND session_id = :session_id;

-- name: list_sessions :many
-- uses: idx_adk_sessions_app_updated
-- A page of an app's sessions, oldest update first (ties by user, then id), after the last one
-- of the previous page (the first page: after -infinity, '', ''); without events.
SELECT session_key, user_id, session_id, state, update_time, revision
FROM adk_sessions
WHERE app_name = :app_name AND (update_time, user_id, session_id) > (:after_time, :after_user, :after_id)
ORDER BY update_time, user_id, session_id
LIMIT :limit;

-- name: list_user_sessions :many
-- uses: idx_adk_sessions_user_updated
-- A page of one user's sessions in an app, oldest update first (ties by id), as list_sessions.
SELECT session_key, user_id, session_id, state, update_time, revision
FROM adk_sessions
WHERE app_name = :app_name AND user_id = :user_id AND (update_time, session_id) > (:after_time, :after_id)
ORDER BY update_time, session_id
LIMIT :limit;

-- name: ensure_app_state :exec
-- uses: none
-- An empty app state, unless the app has one (so the read that follows has a row to lock).
INSERT INTO adk_app_states (app_name, state, update_time)
VALUES (:app_name, '{}', :now)
ON CONFLICT (app_name) DO NOTHING;

-- name: ensure_user_state :exec
-- uses: none
-- An empty user state, unless the user has one in this app.
INSERT INTO adk_user_states (app_name, user_id, state, update_time)
VALUES (:app_name, :user_id, '{}', :now)
ON CONFLICT (app_name, user_id) DO NOTHING;

-- name: app_state_for_update :value
-- uses: adk_app_states_pkey
-- An app's state, to merge a delta into (PostgreSQL locks the row).
SELECT state FROM adk_app_states WHERE app_name = :app_name FOR UPDATE;

-- name: user_state_for_update :value
-- uses: adk_user_states_pkey
-- A user's state in an app, to merge a delta into (PostgreSQL locks the row).
SELECT state FROM adk_user_states WHERE app_name = :app_name AND user_id = :user_id FOR UPDATE;

-- name: put_app_state :exec
-- uses: adk_app_states_pkey
-- An app's state after a delta was merged into it.
UPDATE adk_app_states SET state = :state, update_time = :now WHERE app_name = :app_name;

-- name: put_user_state :exec
-- uses: adk_user_states_pkey
-- A user's state after a delta was merged into it.
UPDATE adk_user_states SET state = :state, update_time = :now WHERE app_name = :app_name AND user_id = :user_id;

-- name: app_state :value
-- uses: adk_app_states_pkey
-- An app's state (none stored: no row).
SELECT state FROM adk_app_states WHERE app_name = :app_name;

-- name: user_state :value
-- uses: adk_user_states_pkey
-- A user's state in an app (none stored: no row).
SELECT state FROM adk_user_states WHERE app_name = :app_name AND user_id = :user_id;

-- name: user_states :many
-- uses: adk_user_states_pkey
-- Every user's state in an app (list_sessions across users).
SELECT user_id, state FROM adk_user_states WHERE app_name = :app_name;
