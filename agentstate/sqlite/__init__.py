"""The SQLite engine (apsw): the embedded default, one file shared by any number of processes.

:mod:`agentstate.engines` picks it for a path. Its parts, each one concern:

- :mod:`~agentstate.sqlite.engine`: the :class:`~agentstate.engine.Engine` over apsw;
- :mod:`~agentstate.sqlite.connection`: agentstate's apsw connection, the fork guard;
- :mod:`~agentstate.sqlite.opening`: opening connections sync and async, inline reader and writer;
- :mod:`~agentstate.sqlite.configure`: ``schema/sqlite/pragmas.sql`` and the other settings of a
  fresh connection;
- :mod:`~agentstate.sqlite.files`: paths, planted files, file modes;
- :mod:`~agentstate.sqlite.busy`: the busy handler;
- :mod:`~agentstate.sqlite.gate`: the writer gate (writers queue in arrival order);
- :mod:`~agentstate.sqlite.transactions`: ``BEGIN IMMEDIATE``, savepoints, read snapshots;
- :mod:`~agentstate.sqlite.translate`: apsw's exceptions as agentstate's;
- :mod:`~agentstate.sqlite.migrations`: applying ``schema/sqlite/NNNN_name.sql``;
- :mod:`~agentstate.sqlite.wal_checkpoints`: the background WAL checkpointer;
- :mod:`~agentstate.sqlite.vacuum`: giving space back after deletes;
- :mod:`~agentstate.sqlite.query_plans`: judging ``EXPLAIN QUERY PLAN`` against ``-- uses:``;
- :mod:`~agentstate.sqlite.async_worker`: the lean controller of apsw's async mode.

Nothing here imports :mod:`agentstate.postgres`, nor the reverse.
"""
