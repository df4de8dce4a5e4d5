-- agentstate schema v1: agents, conversations, tasks (rows of `workers`) and three message streams.
--
-- Table and column names follow the performance guide so its query patterns run verbatim.
-- Timestamps are UTC text, 'YYYY-MM-DDTHH:MM:SS.ffffffZ': fixed width, so they sort as text,
-- and any SQLite tool can read them. JSON columns are text checked by json_valid().
-- Tables are STRICT (SQLite 3.37+); nothing here needs more than SQLite 3.37.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;

CREATE TABLE routers (
    router_id   TEXT PRIMARY KEY NOT NULL CHECK (length(router_id) BETWEEN 1 AND 128),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;

CREATE TABLE planners (
    planner_id  TEXT PRIMARY KEY NOT NULL CHECK (length(planner_id) BETWEEN 1 AND 128),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;

-- One row per task. `claimed` is the executing state; a claim holds a lease until
-- lease_expires_at, and `fence` grows by one on every claim so a stale owner is refused.
CREATE TABLE workers (
    worker_id           TEXT PRIMARY KEY NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
    planner_id          TEXT NOT NULL REFERENCES planners (planner_id),
    task_status         TEXT NOT NULL DEFAULT 'pending'
                        CHECK (task_status IN ('pending', 'claimed', 'completed', 'failed_validation', 'recorded')),
    description         TEXT NOT NULL DEFAULT '',
    acceptance_criteria TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(acceptance_criteria)),
    task_context        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(task_context)),
    input_images        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(input_images)),
    metadata            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    result              TEXT CHECK (result IS NULL OR json_valid(result)),
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    fence               INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0),
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    updated_by          TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                        CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                        CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    -- a claimed task always has an owner and a lease; no other state has either
    CHECK ((task_status = 'claimed') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (lease_owner IS NULL OR lease_expires_at IS NOT NULL)
) STRICT;

-- The guide's composite index, extended with the order columns so "oldest pending task of a
-- planner" is one index seek with no sort.
CREATE INDEX idx_workers_planner_status ON workers (planner_id, task_status, created_at, worker_id);
-- The guide's global status index.
CREATE INDEX idx_workers_status ON workers (task_status);
-- Retention ("recorded before X") is a range seek that heartbeats and transitions never touch.
CREATE INDEX idx_workers_recorded ON workers (task_status, updated_at) WHERE task_status = 'recorded';
-- Partial indexes stay as small as the work in flight.
CREATE INDEX idx_workers_pending ON workers (task_status, created_at, worker_id)
    WHERE task_status = 'pending';
CREATE INDEX idx_workers_leases ON workers (task_status, lease_expires_at)
    WHERE task_status = 'claimed';
CREATE INDEX idx_workers_done ON workers (planner_id, created_at, worker_id)
    WHERE task_status IN ('completed', 'failed_validation');

-- Every change of a task's status (or owner, on a reclaim) leaves one row here, written by the
-- triggers below in the same transaction as the change, whoever made it. `detail` keeps the
-- result or failure reason of that step, so retries do not erase why an attempt failed.
CREATE TABLE task_events (
    event_id    INTEGER PRIMARY KEY,
    worker_id   TEXT NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    fence       INTEGER NOT NULL,
    actor       TEXT,
    detail      TEXT CHECK (detail IS NULL OR json_valid(detail)),
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX idx_task_events_worker ON task_events (worker_id, event_id);

CREATE TRIGGER trg_workers_created AFTER INSERT ON workers
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, at)
    VALUES (new.worker_id, NULL, new.task_status, new.fence, new.updated_by, new.created_at);
END;

CREATE TRIGGER trg_workers_transition AFTER UPDATE OF task_status, fence ON workers
WHEN old.task_status IS NOT new.task_status OR old.fence IS NOT new.fence
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, detail, at)
    VALUES (new.worker_id, old.task_status, new.task_status, new.fence, new.updated_by,
            CASE WHEN new.task_status IN ('completed', 'failed_validation') THEN new.result END, new.updated_at);
END;

CREATE TABLE router_planner_links (
    link_id     INTEGER PRIMARY KEY,
    router_id   TEXT NOT NULL REFERENCES routers (router_id) ON DELETE CASCADE,
    planner_id  TEXT NOT NULL REFERENCES planners (planner_id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;
-- One link per pair; the guide's two lookup indexes, each covering the other side.
CREATE UNIQUE INDEX idx_router_planner_links_router ON router_planner_links (router_id, planner_id);
CREATE INDEX idx_router_planner_links_planner ON router_planner_links (planner_id, router_id);

-- The guide's status indexes, extended with the keyset order of "list by status".
CREATE INDEX idx_conversations_status ON conversations (status, created_at, id);
CREATE INDEX idx_routers_status ON routers (status, created_at, router_id);
CREATE INDEX idx_planners_status ON planners (status, created_at, planner_id);

-- Message streams. Each table is clustered on (stream, position) so one stream's messages sit
-- together on disk and "latest 50" reads a handful of pages. `position` is assigned inside the
-- appending write transaction: unique and strictly increasing in commit order per stream.
CREATE TABLE router_messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    role            TEXT NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    idempotency_key TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                    CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    PRIMARY KEY (conversation_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX idx_router_messages_conv_time ON router_messages (conversation_id, created_at);
CREATE UNIQUE INDEX idx_router_messages_idempotency ON router_messages (conversation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE planner_messages (
    agent_id        TEXT NOT NULL REFERENCES planners (planner_id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    role            TEXT NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    idempotency_key TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                    CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    PRIMARY KEY (agent_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX idx_planner_messages_agent_time ON planner_messages (agent_id, created_at);
CREATE UNIQUE INDEX idx_planner_messages_idempotency ON planner_messages (agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE worker_messages (
    agent_id        TEXT NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 1),
    role            TEXT NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    idempotency_key TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
                    CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    PRIMARY KEY (agent_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX idx_worker_messages_agent_time ON worker_messages (agent_id, created_at);
CREATE UNIQUE INDEX idx_worker_messages_idempotency ON worker_messages (agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
