-- Agents on PostgreSQL: conversations, routers and planners, and the links between routers and
-- planners (the names of schema/sqlite/queries/agents.sql). Times are the server's.
--
-- The three agent tables share one shape (key, status, metadata, created_at, updated_at), so
-- each {stream} block below is stamped out once per table by the loader; {key} is the table's
-- primary-key column. Lists are keyset-paged on (created_at, key), which the status indexes
-- hold in order, so a page is one index range read however deep it is.
-- streams: conversations:id routers:router_id planners:planner_id

-- name: create_{stream} :returning
-- uses: none
-- Insert one agent row; a taken id fails on the primary key.
INSERT INTO {stream} ({key}, status, metadata, created_at, updated_at)
VALUES (:id, :status, :metadata, statement_timestamp(), statement_timestamp())
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: create_if_absent_{stream} :returning
-- uses: none
-- Insert one agent row unless the id is taken (then nothing is returned and nothing changes).
INSERT INTO {stream} ({key}, status, metadata, created_at, updated_at)
VALUES (:id, :status, :metadata, statement_timestamp(), statement_timestamp())
ON CONFLICT ({key}) DO NOTHING
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: get_{stream} :one
-- uses: {stream}_pkey
-- One agent row by id.
SELECT {key}, status, metadata, created_at, updated_at
FROM {stream}
WHERE {key} = :id;

-- name: update_{stream} :returning
-- uses: {stream}_pkey
-- Set status and/or metadata (a NULL argument keeps the stored value) and touch updated_at.
UPDATE {stream}
SET status = coalesce(:status::text, status),
    metadata = coalesce(:metadata::jsonb, metadata),
    updated_at = statement_timestamp()
WHERE {key} = :id
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: delete_{stream} :exec
-- uses: {stream}_pkey
-- Delete one agent row. Its messages, head and links go with it by cascade; a planner's tasks do
-- not (the caller deletes them first, or the foreign key refuses).
DELETE FROM {stream} WHERE {key} = :id;

-- name: list_{stream} :many
-- uses: idx_{stream}_status
-- A page of the rows in one status, oldest first, after the keyset cursor (created_at, key) of
-- the previous page's last row ('' and '' for the first page).
SELECT {key}, status, metadata, created_at, updated_at
FROM {stream}
WHERE status = :status AND (created_at, {key}) > (agentstate_time(:after_created_at), :after_id::text)
ORDER BY created_at, {key}
LIMIT :limit;

-- name: link :returning
-- uses: none
-- Link a router to a planner; the unique index refuses a second link of the same pair.
INSERT INTO router_planner_links (router_id, planner_id, created_at)
VALUES (:router_id, :planner_id, statement_timestamp())
RETURNING link_id, router_id, planner_id, created_at;

-- name: unlink :exec
-- uses: idx_router_planner_links_router | idx_router_planner_links_planner
-- Remove the link of a pair, if there is one.
DELETE FROM router_planner_links
WHERE router_id = :router_id AND planner_id = :planner_id;

-- name: planners_of_router :many
-- uses: idx_router_planner_links_router, planners_pkey
-- The planners a router is linked to, by planner id: the links' index range, in order, then one
-- key lookup per planner.
SELECT p.planner_id, p.status, p.metadata, p.created_at, p.updated_at
FROM router_planner_links AS l
JOIN planners AS p ON p.planner_id = l.planner_id
WHERE l.router_id = :router_id
ORDER BY l.planner_id;

-- name: routers_of_planner :many
-- uses: idx_router_planner_links_planner, routers_pkey
-- The routers a planner is linked to, by router id.
SELECT r.router_id, r.status, r.metadata, r.created_at, r.updated_at
FROM router_planner_links AS l
JOIN routers AS r ON r.router_id = l.router_id
WHERE l.planner_id = :planner_id
ORDER BY l.router_id;

-- name: worker_exists :value
-- uses: workers_pkey
-- The id back if the worker (task) row exists; used to name the unknown owner of a message.
SELECT worker_id FROM workers WHERE worker_id = :id;
