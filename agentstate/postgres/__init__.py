"""The PostgreSQL engine: ``agentstate.connect("postgresql://...")`` (see docs/postgres.md).

:mod:`agentstate.runner` and :mod:`agentstate.engine` dispatch here when given a
:class:`~agentstate.postgres.handle.PostgresConnection`; the managers never know. Its parts:

- :mod:`agentstate.postgres.handle`: the handle, a psycopg pool; transactions pinned to a thread;
  its async form runs calls on a thread pool;
- :mod:`agentstate.postgres.migrations`: numbered ``schema/postgres/NNNN_name.sql`` files with
  the same bookkeeping and refusals as SQLite's, serialised by an advisory lock;
- :mod:`agentstate.postgres.queries`: the named queries of ``schema/postgres/queries/`` (loaded
  by :func:`agentstate.queries.registry`, the same loader as SQLite's), converted to psycopg's
  placeholders, with the runner's cardinalities;
- :mod:`agentstate.postgres.connection`: psycopg connections whose rows look like SQLite's
  (timestamps as agentstate's UTC text, JSON as text);
- :mod:`agentstate.postgres.translate`: psycopg's exceptions as agentstate's;
- :mod:`agentstate.postgres.plans`: ``EXPLAIN (FORMAT JSON)`` judged against ``-- uses:``.

Only :mod:`~agentstate.postgres.handle` is imported by the rest of agentstate, and it imports
psycopg only when a handle is made: the ``postgres`` extra (psycopg 3, psycopg_pool) is needed
for PostgreSQL alone.
"""

ENGINE = "postgres"
