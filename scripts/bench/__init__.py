"""Benchmark agentstate against the performance guide's ORM implementation, its peers and the SQLite floor.

Builds the same generated data set (tasks over ~1k planners, ~10% pending; messages over the same
agents) into one database per contender, then times every operation on every contender in
interleaved rounds, so machine drift hits all of them alike. Writes DIR/results.json (raw
figures), DIR/results.md (the table, with ratios to agentstate and the issue's targets) and
DIR/latency.png (latency against data size, log scale, one line per contender).

Each contender runs in a process of its own, driven over a pipe: the ORM baselines and the peers
(litequeue, huey, the OpenAI Agents SDK's SQLiteSession, LangGraph's SqliteSaver) use the stdlib
sqlite3 and the rest apsw, two different SQLite libraries that must never share a file in one
process. Only one contender runs at a time (except the executors of one claim test). agentstate's
framework integrations (AgentStateSession, AgentStateSaver) run against those frameworks' own
SQLite backends, each on a file of its own built with the same data as its peer. A contender
whose packages are not installed (the peers, postgres, langgraph and openai-agents extras) is left
out of a default run, with a line naming the extra that brings it; one named with --contenders is
required, and the bench stops at once (exit 2) if it cannot run.

The ``postgres`` contender is the same agentstate API on ``connect("postgresql://...")``, in a
database of its own on a PostgreSQL server (``--postgres-url``, else a throwaway one started for
the run and stopped at its end; see postgres.py), with the same data and operations, and
claim + finish with 1, 4 and 16 executor processes beside agentstate's on one SQLite file.

The package, one concern a module (``python scripts/bench.py`` runs :func:`bench.cli.main`):

- ``operations``: what is measured. ``contenders/``: who is measured, a module per family
  (``registry`` names them all). ``data`` and ``generate``: the data set every contender gets.
  ``postgres``: the PostgreSQL server, bulk load and bookkeeping of the ``postgres`` contender.
- ``contender_process`` (in each contender's process) and ``workers`` (the coordinator's end of
  its pipe), ``timing`` (the timed loops), ``harness`` (one data size: build, measure, check).
- ``statistics``, ``machine`` (the machine, its CPU taken by other work), ``targets`` (the
  issues' targets), ``formats``, ``report`` (results.json and results.md), ``plot``
  (latency.png), ``log``, and ``cli``.
"""
