"""The PostgreSQL engine: ``agentstate.connect("postgresql://...")`` (see docs/postgres.md).

:mod:`agentstate.engines` picks this engine for a ``postgresql://`` URL or a
:class:`~agentstate.postgres.handle.PostgresConnection`; the runner and the managers above it
never know. Its parts:

- :mod:`agentstate.postgres.engine`: the :class:`~agentstate.engine.Engine` (statements on the
  thread's transaction or a pooled connection, transactions, errors, migrations, retries);
- :mod:`agentstate.postgres.failover`: which calls are repeated after a lost connection;
- :mod:`agentstate.postgres.pool`: psycopg_pool's pool, without a connection more per restart;
- :mod:`agentstate.postgres.handle`: the handle, a psycopg pool; transactions pinned to a thread;
  its async form runs calls on a thread pool;
- :mod:`agentstate.postgres.migrations`: numbered ``schema/postgres/NNNN_name.sql`` files with
  the same bookkeeping and refusals as SQLite's, serialised by an advisory lock;
- :mod:`agentstate.postgres.queries`: the named queries of ``schema/postgres/queries/`` (loaded
  by :func:`agentstate.queries.registry`, the same loader as SQLite's), converted to psycopg's
  placeholders;
- :mod:`agentstate.postgres.connection`: psycopg connections whose rows look like SQLite's
  (timestamps as agentstate's UTC text, JSON as text);
- :mod:`agentstate.postgres.translate`: psycopg's exceptions as agentstate's;
- :mod:`agentstate.postgres.query_plans`: ``EXPLAIN (FORMAT JSON)`` judged against ``-- uses:``.

Only :mod:`~agentstate.postgres.handle` is imported when agentstate is, and it imports psycopg
only when a handle is made (then :mod:`~agentstate.postgres.engine`): the ``postgres`` extra
(psycopg 3, psycopg_pool) is needed for PostgreSQL alone. Nothing here imports
:mod:`agentstate.sqlite`, nor the reverse.
"""
