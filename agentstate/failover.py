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
waited for: that is raised at once. On SQLite none of this applies: the wrapper calls straight
through.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from agentstate import errors
from agentstate.postgres.handle import PostgresConnection

F = TypeVar("F", bound=Callable[..., Any])

_PAUSES_S = (0.02, 0.05, 0.1, 0.2)


def _keyed(messages: Any) -> bool:
    """Whether every message of a batch carries an idempotency key (repeating it is harmless)."""
    return isinstance(messages, list) and all(getattr(m, "idempotency_key", None) is not None for m in messages)


def _repeatable_when_unknown(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if name == "append":
        return kwargs.get("idempotency_key") is not None
    if name == "append_many":
        return _keyed(args[2] if len(args) > 2 else kwargs.get("messages"))
    if name == "append_bulk":
        pairs = args[1] if len(args) > 1 else kwargs.get("messages")
        return isinstance(pairs, list) and _keyed([p[1] for p in pairs if isinstance(p, tuple) and len(p) == 2])
    return True  # the names listed as always repeatable


def retried(method: F, always: bool) -> F:
    """``method`` repeated across a lost PostgreSQL connection (see the module's docstring)."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self.__dict__.get("conn") or self.__dict__.get("_conn")
        if type(conn) is not PostgresConnection or conn.in_transaction():
            return method(self, *args, **kwargs)  # SQLite, or inside the caller's own transaction
        # A generator argument cannot be replayed: consume it once, here.
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        deadline = 0.0
        for attempt in itertools.count():
            try:
                return method(self, *args, **kwargs)
            except errors.ConnectionLostError as exc:
                if exc.outcome_unknown and not (always and _repeatable_when_unknown(name, args, kwargs)):
                    raise
                now = time.monotonic()
                deadline = deadline or now + conn.failover_timeout_s
                if now >= deadline:
                    raise
                time.sleep(min(_PAUSES_S[min(attempt, len(_PAUSES_S) - 1)], deadline - now))

    return call  # type: ignore[return-value]


def protect(cls: type, *, always: Iterable[str] = ()) -> None:
    """Wrap every public method of a manager class with :func:`retried`; those named in
    ``always`` are repeated even when a COMMIT's outcome is unknown."""
    repeatable = set(always)
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and callable(value) and not isinstance(value, (type, staticmethod, classmethod)):
            setattr(cls, name, retried(value, name in repeatable))
    unknown = repeatable - set(vars(cls))
    assert not unknown, f"{cls.__name__} has no methods {sorted(unknown)}"
