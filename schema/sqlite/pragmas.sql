-- Applied, in this order, to every connection agentstate opens (https://sqlite.org/pragma.html).
-- One pragma per line; `connect()` may override a value (durability="full" sets synchronous=FULL).

-- First, because the pragmas after it may need a lock another process holds: milliseconds a
-- writer waits for the write lock before raising DatabaseBusyError.
PRAGMA busy_timeout = 10000;
-- Only takes effect on a new, empty database; set before anything is written so retention can
-- hand pages back with incremental_vacuum. Ignored on an existing database.
PRAGMA auto_vacuum = INCREMENTAL;
-- Readers never block the writer and the writer never blocks readers.
PRAGMA journal_mode = WAL;
-- NORMAL in WAL mode: a power loss may drop the last commits but never corrupts.
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
-- Negative means KiB: 64 MiB of page cache per connection.
PRAGMA cache_size = -65536;
PRAGMA temp_store = MEMORY;
-- PRAGMA optimize (run when a connection closes, and hourly by the checkpointer) samples at most
-- this many rows per index, so it stays a few milliseconds at any size.
PRAGMA analysis_limit = 1000;
-- After a checkpoint lets the WAL start over, truncate its file to 64 MiB at most.
PRAGMA journal_size_limit = 67108864;
