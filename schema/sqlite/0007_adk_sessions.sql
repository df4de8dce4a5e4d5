-- Google ADK sessions (agentstate.integrations.adk): ADK's three scopes of state and each
-- session's events, as ADK's own session services keep them.
--
-- State is JSON text, one object per scope: adk_app_states per app (ADK's `app:` keys, stored
-- without the prefix), adk_user_states per app and user (`user:` keys), and each session's own
-- keys in adk_sessions.state; `temp:` keys are never stored. A session's revision grows by one
-- with every write to it: it is the marker a loaded session carries, so a session object that
-- is older than what is stored is refused (the stale-session check), inside the write.
-- Events are the events' JSON as ADK dumps them, clustered on (session_key, timestamp, seq):
-- ADK orders a session's events by timestamp, ties in append order (seq, the session's event
-- counter), so the latest N events, or those from a time on, are one range of the key read
-- backwards. session_key is the session's rowid, so an event row does not repeat the three
-- ids; deleting a session deletes its events (ON DELETE CASCADE). AUTOINCREMENT: a key is
-- never handed out twice, so a session deleted and made again under the same ids does not take
-- the old one's key, and a copy of the old one is stale (its marker names the old key).

CREATE TABLE adk_app_states (
    app_name    TEXT NOT NULL PRIMARY KEY,
    state       TEXT NOT NULL CHECK (json_valid(state)),
    update_time REAL NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE adk_user_states (
    app_name    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (json_valid(state)),
    update_time REAL NOT NULL,
    PRIMARY KEY (app_name, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE adk_sessions (
    session_key INTEGER PRIMARY KEY AUTOINCREMENT,
    app_name    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (json_valid(state)),
    create_time REAL NOT NULL,
    update_time REAL NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision >= 1),
    events      INTEGER NOT NULL DEFAULT 0 CHECK (events >= 0)
) STRICT;

CREATE UNIQUE INDEX idx_adk_sessions_id ON adk_sessions (app_name, user_id, session_id);
-- list_sessions: an app's sessions, or one user's, oldest update first (ADK's order).
CREATE INDEX idx_adk_sessions_app_updated ON adk_sessions (app_name, update_time, user_id, session_id);
CREATE INDEX idx_adk_sessions_user_updated ON adk_sessions (app_name, user_id, update_time, session_id);

CREATE TABLE adk_events (
    session_key INTEGER NOT NULL REFERENCES adk_sessions (session_key) ON DELETE CASCADE,
    timestamp   REAL NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    PRIMARY KEY (session_key, timestamp, seq)
) STRICT, WITHOUT ROWID;
