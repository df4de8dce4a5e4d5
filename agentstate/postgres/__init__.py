"""PostgreSQL groundwork (issue 13): schema, migrator, named queries, plan judging, connections.

Nothing else in agentstate imports this package yet: ``connect("postgresql://...")`` and the
managers' dispatch onto it come later. Its parts:

- :mod:`agentstate.postgres.migrations`: numbered ``schema/postgres/NNNN_name.sql`` files with
  the same bookkeeping and refusals as SQLite's, serialised by an advisory lock;
- :mod:`agentstate.postgres.queries`: the named queries of ``schema/postgres/queries/`` (loaded
  by :func:`agentstate.queries.registry`, the same loader as SQLite's), converted to psycopg's
  placeholders, and a small :func:`~agentstate.postgres.queries.run` with the runner's
  cardinalities;
- :mod:`agentstate.postgres.connection`: opening a psycopg connection whose rows look like
  SQLite's (timestamps as agentstate's UTC text, JSON as text);
- :mod:`agentstate.postgres.plans`: ``EXPLAIN (FORMAT JSON)`` judged against ``-- uses:``.

It needs the ``postgres`` extra (psycopg 3, psycopg_pool).
"""

ENGINE = "postgres"
