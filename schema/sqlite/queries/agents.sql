-- Agents: conversations, routers and planners, and the links between routers and planners.
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
VALUES (:id, :status, :metadata, :now, :now)
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: create_if_absent_{stream} :returning
-- uses: none
-- Insert one agent row unless the id is taken (then nothing is returned and nothing changes).
INSERT INTO {stream} ({key}, status, metadata, created_at, updated_at)
VALUES (:id, :status, :metadata, :now, :now)
ON CONFLICT ({key}) DO NOTHING
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: get_{stream} :one
-- uses: sqlite_autoindex_{stream}_1
-- One agent row by id.
SELECT {key}, status, metadata, created_at, updated_at
FROM {stream}
WHERE {key} = :id;

-- name: update_{stream} :returning
-- uses: sqlite_autoindex_{stream}_1
-- Set status and/or metadata (a NULL argument keeps the stored value) and touch updated_at.
UPDATE {stream}
SET status = coalesce(:status, status),
    metadata = coalesce(:metadata, metadata),
    updated_at = :now
WHERE {key} = :id
RETURNING {key}, status, metadata, created_at, updated_at;

-- name: delete_{stream} :exec
-- uses: sqlite_autoindex_{stream}_1
-- Delete one agent row. Its messages and links go with it by cascade; a planner's tasks do not
-- (the caller deletes them first, or the foreign key refuses).
DELETE FROM {stream} WHERE {key} = :id;

-- name: list_{stream} :many
-- uses: idx_{stream}_status
-- A page of the rows in one status, oldest first, after the keyset cursor (created_at, key) of
-- the previous page's last row ('' and '' for the first page).
SELECT {key}, status, metadata, created_at, updated_at
FROM {stream}
WHERE status = :status AND (created_at, {key}) > (:after_created_at, :after_id)
ORDER BY created_at, {key}
LIMIT :limit;

-- name: link :returning
-- uses: none
-- Link a router to a planner; the unique index refuses a second link of the same pair.
INSERT INTO router_planner_links (router_id, planner_id, created_at)
VALUES (:router_id, :planner_id, :now)
RETURNING link_id, router_id, planner_id, created_at;

-- name: unlink :exec
-- uses: idx_router_planner_links_router
-- Remove the link of a pair, if there is one.
DELETE FROM router_planner_links
WHERE router_id = :router_id AND planner_id = :planner_id;

-- name: planners_of_router :many
-- uses: idx_router_planner_links_router, sqlite_autoindex_planners_1
-- The planners a router is linked to, by planner id. CROSS JOIN keeps the links as the outer loop
-- and INDEXED BY the key lookup: with a small store's statistics (PRAGMA optimize records them at
-- close) the planner preferred to scan planners, and that plan would stay as the store grows.
SELECT p.planner_id, p.status, p.metadata, p.created_at, p.updated_at
FROM router_planner_links AS l
CROSS JOIN planners AS p INDEXED BY sqlite_autoindex_planners_1 ON p.planner_id = l.planner_id
WHERE l.router_id = :router_id
ORDER BY l.planner_id;

-- name: routers_of_planner :many
-- uses: idx_router_planner_links_planner, sqlite_autoindex_routers_1
-- The routers a planner is linked to, by router id.
SELECT r.router_id, r.status, r.metadata, r.created_at, r.updated_at
FROM router_planner_links AS l
CROSS JOIN routers AS r INDEXED BY sqlite_autoindex_routers_1 ON r.router_id = l.router_id
WHERE l.planner_id = :planner_id
ORDER BY l.router_id;

-- name: worker_exists :value
-- uses: sqlite_autoindex_workers_1
-- The id back if the worker (task) row exists; used to name the unknown owner of a message.
SELECT worker_id FROM workers WHERE worker_id = :id;
