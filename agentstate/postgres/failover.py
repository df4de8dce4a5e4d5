"""Carrying on through a PostgreSQL restart or failover: which calls agentstate repeats.

When the server goes away (a crash, a restart, a standby being promoted), a call fails with
:class:`~agentstate.errors.ConnectionLostError`, and the pool reconnects on the next call (a
multi-host URL with ``target_session_attrs=read-write`` finds the new primary). Whether the call
may simply be made again depends on what it had done:

- The connection broke **before COMMIT was sent** (``outcome_unknown`` False): the transaction
  rolled back, nothing happened. Every call is repeated.
- It broke **while COMMIT was on its way** (``outcome_unknown`` True): the transaction may have
  committed. Only calls that are harmless to repeat are repeated: reads; ``claim`` and
  ``claim_many`` (a claim that did commit unseen is a lease nobody holds: it expires and the task
  is claimed again, so it is not lost and not run twice); ``heartbeat``;
  ``get_or_create_conversation``; appends whose every message has an idempotency key (a repeat
  returns the stored message). Anything else raises, and the caller decides (``complete`` can
  be checked with ``get_task``).

Repeats go on, with a growing pause, until ``connect(failover_timeout_s=...)`` has passed since
the first failure. A server that answers and refuses a new connection for good (the database
was dropped, the password changed: :class:`~agentstate.errors.ConnectionRejectedError`) is not
waited for: that is raised at once. Which calls are harmless to repeat is declared on each method (:mod:`agentstate.calls`);
this engine wraps a manager's methods when the manager is made on a PostgreSQL handle. On
SQLite there is no wrapper at all.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from agentstate import errors
from agentstate.calls import Call, declared
from agentstate.postgres.handle import PostgresConnection

_PAUSES_S = (0.02, 0.05, 0.1, 0.2)


def retried(method: Callable[..., Any], conn: PostgresConnection, call: Call) -> Callable[..., Any]:
    """A bound ``method`` repeated across a lost PostgreSQL connection (see the module's docstring)."""

    @functools.wraps(method)
    def repeat(*args: Any, **kwargs: Any) -> Any:
        if conn.in_transaction():
            return method(*args, **kwargs)  # inside the caller's own transaction: theirs to repeat
        # A generator argument cannot be replayed: consume it once, here.
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        deadline = 0.0
        for attempt in itertools.count():
            try:
                return method(*args, **kwargs)
            except errors.ConnectionLostError as exc:
                if exc.outcome_unknown and not call.repeatable_when_unknown(args, kwargs):
                    raise
                now = time.monotonic()
                deadline = deadline or now + conn.failover_timeout_s
                if now >= deadline:
                    raise
                time.sleep(min(_PAUSES_S[min(attempt, len(_PAUSES_S) - 1)], deadline - now))
        raise AssertionError("unreachable")

    return repeat


def protect(manager: Any) -> None:
    """Wrap each declared public method of a manager made on a PostgreSQL handle with
    :func:`retried`, on the instance (the class, and SQLite's managers, stay as written)."""
    conn: PostgresConnection = manager.__dict__.get("conn") or manager.__dict__["_conn"]
    for name, value in vars(type(manager)).items():
        call = declared(value)
        if call is not None and not name.startswith("_"):
            setattr(manager, name, retried(getattr(manager, name), conn, call))
