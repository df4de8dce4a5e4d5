-- agentstate schema for PostgreSQL: the tables SQLite's migrations 0001-0005 produce, in one file.
--
-- Same tables, columns, CHECKs, foreign keys, cascades and index names as schema/sqlite; the
-- types are PostgreSQL's own:
--   * times are timestamptz (microseconds, like SQLite's 'YYYY-MM-DDTHH:MM:SS.ffffffZ' text) and
--     are stamped by the server's clock in the named queries, never by a client's;
--   * JSON is jsonb where SQL looks inside it or where it is a document (task fields, agents'
--     metadata, task event details, LangGraph metadata), and json for message metadata, which is
--     appended on the hot path and read back verbatim (json only validates it; jsonb would parse
--     and re-serialise every value, both ways);
--   * integers are bigint (SQLite's INTEGER is 64 bits), surrogate keys bigint identities;
--   * identifiers and statuses are text COLLATE "C": byte order, as SQLite's BINARY collation, so
--     keyset pages and ORDER BY agree between engines whatever the database's default collation.
--
-- Triggers are plpgsql; the message-head and owner triggers are statement-level with transition
-- tables, so a bulk insert or purge runs one statement per trigger, not one per row.

-- Keyset cursors and time bounds arrive as agentstate's timestamp text; '' means "before every
-- time" (the first page) and '~' "after every time", as they sort in SQLite's text columns.
CREATE FUNCTION agentstate_time(value text) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE value WHEN '' THEN '-infinity'::timestamptz
                      WHEN '~' THEN 'infinity'::timestamptz
                      ELSE value::timestamptz END
$$;

CREATE TABLE conversations (
    id          text COLLATE "C" NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
    status      text COLLATE "C" NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT conversations_pkey PRIMARY KEY (id)
);

CREATE TABLE routers (
    router_id   text COLLATE "C" NOT NULL CHECK (length(router_id) BETWEEN 1 AND 128),
    status      text COLLATE "C" NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT routers_pkey PRIMARY KEY (router_id)
);

CREATE TABLE planners (
    planner_id  text COLLATE "C" NOT NULL CHECK (length(planner_id) BETWEEN 1 AND 128),
    status      text COLLATE "C" NOT NULL DEFAULT 'active' CHECK (length(status) BETWEEN 1 AND 64),
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT planners_pkey PRIMARY KEY (planner_id)
);

-- One row per task. `claimed` is the executing state; a claim holds a lease until
-- lease_expires_at, and `fence` grows by one on every claim so a stale owner is refused.
CREATE TABLE workers (
    worker_id           text COLLATE "C" NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 128),
    planner_id          text COLLATE "C" NOT NULL REFERENCES planners (planner_id),
    task_status         text COLLATE "C" NOT NULL DEFAULT 'pending'
                        CHECK (task_status IN ('pending', 'claimed', 'completed', 'failed_validation', 'recorded')),
    description         text NOT NULL DEFAULT '',
    acceptance_criteria jsonb NOT NULL DEFAULT '[]',
    task_context        jsonb NOT NULL DEFAULT '{}',
    input_images        jsonb NOT NULL DEFAULT '[]',
    metadata            jsonb NOT NULL DEFAULT '{}',
    result              jsonb,
    attempts            bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        bigint NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    fence               bigint NOT NULL DEFAULT 0 CHECK (fence >= 0),
    lease_owner         text,
    lease_expires_at    timestamptz,
    updated_by          text,
    created_at          timestamptz NOT NULL DEFAULT statement_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT workers_pkey PRIMARY KEY (worker_id),
    -- a claimed task always has an owner and a lease; no other state has either
    CHECK ((task_status = 'claimed') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (lease_owner IS NULL OR lease_expires_at IS NOT NULL)
);

-- "Oldest pending task of a planner" is one index seek with no sort. (SQLite's 0002 dropped the
-- guide's global idx_workers_status; it is not created here.)
CREATE INDEX idx_workers_planner_status ON workers (planner_id, task_status, created_at, worker_id);
-- Partial indexes stay as small as the work in flight; a column the predicate fixes is left out.
CREATE INDEX idx_workers_recorded ON workers (updated_at) WHERE task_status = 'recorded';
CREATE INDEX idx_workers_recorded_planner ON workers (planner_id, updated_at) WHERE task_status = 'recorded';
CREATE INDEX idx_workers_pending ON workers (created_at, worker_id) WHERE task_status = 'pending';
CREATE INDEX idx_workers_leases ON workers (lease_expires_at) WHERE task_status = 'claimed';
CREATE INDEX idx_workers_done ON workers (planner_id, created_at, worker_id)
    WHERE task_status IN ('completed', 'failed_validation');

-- Every change of a task's status (or owner, on a reclaim) leaves one row here, written by the
-- triggers below in the same transaction as the change, whoever made it.
CREATE TABLE task_events (
    event_id    bigint GENERATED BY DEFAULT AS IDENTITY,
    worker_id   text COLLATE "C" NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    from_status text COLLATE "C",
    to_status   text COLLATE "C" NOT NULL,
    fence       bigint NOT NULL,
    actor       text,
    detail      jsonb,
    at          timestamptz NOT NULL,
    CONSTRAINT task_events_pkey PRIMARY KEY (event_id)
);
CREATE INDEX idx_task_events_worker ON task_events (worker_id, event_id);

CREATE FUNCTION agentstate_task_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, at)
    SELECT worker_id, NULL, task_status, fence, updated_by, created_at FROM created;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_workers_created AFTER INSERT ON workers
    REFERENCING NEW TABLE AS created FOR EACH STATEMENT EXECUTE FUNCTION agentstate_task_created();

-- A transition agentstate makes stamps updated_at; one that leaves it unchanged (a manual UPDATE
-- in psql, say) is recorded with no actor, at the time it happened (SQLite's 0003 rule).
CREATE FUNCTION agentstate_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_events (worker_id, from_status, to_status, fence, actor, detail, at)
    VALUES (NEW.worker_id, OLD.task_status, NEW.task_status, NEW.fence,
            CASE WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.updated_by END,
            CASE WHEN NEW.task_status IN ('completed', 'failed_validation') THEN NEW.result END,
            CASE WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.updated_at
                 ELSE statement_timestamp() END);
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_workers_transition AFTER UPDATE OF task_status, fence ON workers
    FOR EACH ROW
    WHEN (OLD.task_status IS DISTINCT FROM NEW.task_status OR OLD.fence IS DISTINCT FROM NEW.fence)
    EXECUTE FUNCTION agentstate_task_transition();

CREATE TABLE router_planner_links (
    link_id     bigint GENERATED BY DEFAULT AS IDENTITY,
    router_id   text COLLATE "C" NOT NULL REFERENCES routers (router_id) ON DELETE CASCADE,
    planner_id  text COLLATE "C" NOT NULL REFERENCES planners (planner_id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT router_planner_links_pkey PRIMARY KEY (link_id)
);
-- One link per pair; the two lookup indexes, each covering the other side.
CREATE UNIQUE INDEX idx_router_planner_links_router ON router_planner_links (router_id, planner_id);
CREATE INDEX idx_router_planner_links_planner ON router_planner_links (planner_id, router_id);

-- Status indexes in the keyset order of "list by status".
CREATE INDEX idx_conversations_status ON conversations (status, created_at, id);
CREATE INDEX idx_routers_status ON routers (status, created_at, router_id);
CREATE INDEX idx_planners_status ON planners (status, created_at, planner_id);

-- Message streams. PostgreSQL has no clustered tables: the primary key (stream, position) is a
-- b-tree every read by position searches, already in order. The time indexes end with position,
-- as SQLite's do implicitly (a WITHOUT ROWID table's index carries its key), so a time range
-- comes out in (created_at, position) order with no sort. The key INCLUDEs created_at so that
-- retention ("older than X, oldest first") reads positions in order from the key alone; without
-- it the planner read the time index and sorted.
CREATE TABLE router_messages (
    conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        bigint NOT NULL CHECK (position >= 1),
    role            text NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         text NOT NULL,
    metadata        json NOT NULL DEFAULT '{}',
    idempotency_key text COLLATE "C",
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT router_messages_pkey PRIMARY KEY (conversation_id, position) INCLUDE (created_at)
);
CREATE INDEX idx_router_messages_conv_time ON router_messages (conversation_id, created_at, position);
CREATE UNIQUE INDEX idx_router_messages_idempotency ON router_messages (conversation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE planner_messages (
    agent_id        text COLLATE "C" NOT NULL REFERENCES planners (planner_id) ON DELETE CASCADE,
    position        bigint NOT NULL CHECK (position >= 1),
    role            text NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         text NOT NULL,
    metadata        json NOT NULL DEFAULT '{}',
    idempotency_key text COLLATE "C",
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT planner_messages_pkey PRIMARY KEY (agent_id, position) INCLUDE (created_at)
);
CREATE INDEX idx_planner_messages_agent_time ON planner_messages (agent_id, created_at, position);
CREATE UNIQUE INDEX idx_planner_messages_idempotency ON planner_messages (agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE worker_messages (
    agent_id        text COLLATE "C" NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    position        bigint NOT NULL CHECK (position >= 1),
    role            text NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    content         text NOT NULL,
    metadata        json NOT NULL DEFAULT '{}',
    idempotency_key text COLLATE "C",
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT worker_messages_pkey PRIMARY KEY (agent_id, position) INCLUDE (created_at)
);
CREATE INDEX idx_worker_messages_agent_time ON worker_messages (agent_id, created_at, position);
CREATE UNIQUE INDEX idx_worker_messages_idempotency ON worker_messages (agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Each stream's head: the last position handed out, never lowered, so positions never restart
-- whatever is deleted. Under READ COMMITTED, max(position) + 1 races (two appenders read the same
-- max); instead every append upserts this row, and the row lock it takes is held to COMMIT, so
-- appenders of one stream take turns and positions are unique and increase in commit order.
-- A head row is created with its owner (conversation, planner or task) and goes with it, so the
-- batch path (messages.last_position_*) always finds a row to lock.
-- (SQLite's message_heads holds only the highest position deleted from a stream's end; here it
-- holds every stream's last position. Same table, same key, a stronger meaning.)
CREATE TABLE message_heads (
    stream_table  text COLLATE "C" NOT NULL
                  CHECK (stream_table IN ('router_messages', 'planner_messages', 'worker_messages')),
    stream_id     text COLLATE "C" NOT NULL,
    last_position bigint NOT NULL CHECK (last_position >= 0),
    CONSTRAINT message_heads_pkey PRIMARY KEY (stream_table, stream_id)
);

CREATE FUNCTION agentstate_conversations_heads_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    SELECT 'router_messages', id, 0 FROM created
    ON CONFLICT (stream_table, stream_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_conversations_heads_created AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS created FOR EACH STATEMENT EXECUTE FUNCTION agentstate_conversations_heads_created();

CREATE FUNCTION agentstate_planners_heads_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    SELECT 'planner_messages', planner_id, 0 FROM created
    ON CONFLICT (stream_table, stream_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_planners_heads_created AFTER INSERT ON planners
    REFERENCING NEW TABLE AS created FOR EACH STATEMENT EXECUTE FUNCTION agentstate_planners_heads_created();

CREATE FUNCTION agentstate_workers_heads_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_heads (stream_table, stream_id, last_position)
    SELECT 'worker_messages', worker_id, 0 FROM created
    ON CONFLICT (stream_table, stream_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_workers_heads_created AFTER INSERT ON workers
    REFERENCING NEW TABLE AS created FOR EACH STATEMENT EXECUTE FUNCTION agentstate_workers_heads_created();

-- An owner that goes takes its head with it.
CREATE FUNCTION agentstate_conversations_heads_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_heads AS h USING gone
    WHERE h.stream_table = 'router_messages' AND h.stream_id = gone.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_conversations_heads AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_conversations_heads_deleted();

CREATE FUNCTION agentstate_planners_heads_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_heads AS h USING gone
    WHERE h.stream_table = 'planner_messages' AND h.stream_id = gone.planner_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_planners_heads AFTER DELETE ON planners
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_planners_heads_deleted();

CREATE FUNCTION agentstate_workers_heads_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM message_heads AS h USING gone
    WHERE h.stream_table = 'worker_messages' AND h.stream_id = gone.worker_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_workers_heads AFTER DELETE ON workers
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_workers_heads_deleted();

-- A message inserted or deleted by hand (not through the named queries, which keep the head) must
-- not let a position be handed out twice: a delete raises the head to the highest position it
-- removed. It only raises an existing head, so a cascade from a deleted owner leaves none behind.
CREATE FUNCTION agentstate_router_messages_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE message_heads AS h SET last_position = g.top
    FROM (SELECT conversation_id AS stream_id, max(position) AS top FROM gone GROUP BY conversation_id) AS g
    WHERE h.stream_table = 'router_messages' AND h.stream_id = g.stream_id AND h.last_position < g.top;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_router_messages_head AFTER DELETE ON router_messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_router_messages_head();

CREATE FUNCTION agentstate_planner_messages_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE message_heads AS h SET last_position = g.top
    FROM (SELECT agent_id AS stream_id, max(position) AS top FROM gone GROUP BY agent_id) AS g
    WHERE h.stream_table = 'planner_messages' AND h.stream_id = g.stream_id AND h.last_position < g.top;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_planner_messages_head AFTER DELETE ON planner_messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_planner_messages_head();

CREATE FUNCTION agentstate_worker_messages_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE message_heads AS h SET last_position = g.top
    FROM (SELECT agent_id AS stream_id, max(position) AS top FROM gone GROUP BY agent_id) AS g
    WHERE h.stream_table = 'worker_messages' AND h.stream_id = g.stream_id AND h.last_position < g.top;
    RETURN NULL;
END
$$;
CREATE TRIGGER trg_worker_messages_head AFTER DELETE ON worker_messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION agentstate_worker_messages_head();

-- LangGraph checkpoints (agentstate.integrations.langgraph), as SQLite's 0005: one row per
-- checkpoint (LangGraph's serialiser gives a type tag and bytes), keyed (thread, namespace, id);
-- checkpoint ids grow with time, so a thread's newest checkpoint and its history are ranges of
-- the key. Metadata is jsonb (list() filters on its top-level keys). Writes have no foreign key:
-- LangGraph may store a task's writes before their checkpoint commits.
CREATE TABLE langgraph_checkpoints (
    thread_id            text COLLATE "C" NOT NULL,
    checkpoint_ns        text COLLATE "C" NOT NULL,
    checkpoint_id        text COLLATE "C" NOT NULL,
    parent_checkpoint_id text COLLATE "C",
    run_id               text COLLATE "C",
    type                 text NOT NULL,
    checkpoint           bytea NOT NULL,
    metadata             jsonb NOT NULL,
    CONSTRAINT langgraph_checkpoints_pkey PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
-- A thread's checkpoints across all its namespaces, newest first (list() without checkpoint_ns).
CREATE INDEX idx_langgraph_checkpoints_thread ON langgraph_checkpoints (thread_id, checkpoint_id);
-- delete_for_runs; checkpoints written outside a run (no run_id) are not in it.
CREATE INDEX idx_langgraph_checkpoints_run ON langgraph_checkpoints (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE langgraph_writes (
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    task_id       text COLLATE "C" NOT NULL,
    idx           bigint NOT NULL,
    task_path     text NOT NULL,
    channel       text NOT NULL,
    type          text NOT NULL,
    value         bytea NOT NULL,
    CONSTRAINT langgraph_writes_pkey PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
