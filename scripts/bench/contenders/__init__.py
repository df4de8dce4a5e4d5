"""The contenders: who is measured, a module per family; registry.py names them all.

Each contender runs in a process of its own (contender_process.py) and answers the same small
interface: ``build`` its database, ``open`` it, ``bind`` an operation to a function and the
arguments to time it with, ``fingerprint`` a result so the harness can check every contender found
the same rows, and ``claim`` / ``finish`` tasks for the executor loop. The ones on the stdlib
sqlite3 (the ORM baselines and the peers) open only their own files: the stdlib sqlite3 and apsw
bundle different SQLite libraries, and one file opened by both in one process breaks SQLite's
locking.

- ``agentstate``: agentstate's public API (on SQLite; ``postgres`` on PostgreSQL; and variants).
- ``floor``: bare apsw on agentstate's file. ``raw_apsw``: the guide's layout in plain SQL.
  ``orm``: the guide's SQLAlchemy ORM implementation, today and indexed.
- The peers and agentstate's drop-ins for them: ``queues`` (litequeue, huey), ``sessions`` (the
  OpenAI Agents SDK's SQLiteSession, AgentStateSession), ``checkpointers`` (LangGraph's
  SqliteSaver, AgentStateSaver).
- ``shared``: what they all use (Bound, the result, fingerprints); ``untimed``: the bulk loads and
  the claim tests' bookkeeping on SQLite files, around the APIs.
"""
