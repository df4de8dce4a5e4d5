-- Google ADK sessions (agentstate.integrations.adk), as SQLite's 0007_adk_sessions.sql: ADK's
-- three scopes of state (JSON text: app, user, session; `temp:` keys are never stored), each
-- session's revision (the stale-session marker, +1 per write), and its events clustered on
-- (session_key, timestamp, seq) so the latest N, or those from a time on, are one index range.

CREATE TABLE adk_app_states (
    app_name    text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    update_time double precision NOT NULL,
    CONSTRAINT adk_app_states_pkey PRIMARY KEY (app_name)
);

CREATE TABLE adk_user_states (
    app_name    text COLLATE "C" NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    update_time double precision NOT NULL,
    CONSTRAINT adk_user_states_pkey PRIMARY KEY (app_name, user_id)
);

CREATE TABLE adk_sessions (
    session_key bigint GENERATED ALWAYS AS IDENTITY,
    app_name    text COLLATE "C" NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    session_id  text COLLATE "C" NOT NULL,
    state       text NOT NULL,
    create_time double precision NOT NULL,
    update_time double precision NOT NULL,
    revision    bigint NOT NULL CHECK (revision >= 1),
    events      bigint NOT NULL DEFAULT 0 CHECK (events >= 0),
    CONSTRAINT adk_sessions_pkey PRIMARY KEY (session_key)
);

CREATE UNIQUE INDEX idx_adk_sessions_id ON adk_sessions (app_name, user_id, session_id);
CREATE INDEX idx_adk_sessions_app_updated ON adk_sessions (app_name, update_time, user_id, session_id);
CREATE INDEX idx_adk_sessions_user_updated ON adk_sessions (app_name, user_id, update_time, session_id);

CREATE TABLE adk_events (
    session_key bigint NOT NULL REFERENCES adk_sessions (session_key) ON DELETE CASCADE,
    timestamp   double precision NOT NULL,
    seq         bigint NOT NULL,
    event_id    text NOT NULL,
    event       text NOT NULL,
    CONSTRAINT adk_events_pkey PRIMARY KEY (session_key, timestamp, seq)
);
