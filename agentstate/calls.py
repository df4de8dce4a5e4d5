"""How each public manager method touches the database, declared where it is written.

Every public method of :class:`~agentstate.TaskManager`, :class:`~agentstate.MessageLog` and
:class:`~agentstate.Agents` carries one of these decorators. They change nothing at call time
(the method is returned as it is, with a :class:`Call` attached); two readers use them:

- ``scripts/gen_async.py`` writes each Async twin from its declaration: a bounded read runs on
  the event loop's thread (the inline reader), an unbounded one and a write of several
  transactions on the worker thread, a write inline when the lock is free, a claim released if
  its caller is cancelled, a wait sleeping on the event loop between its tries.
- An engine whose connections can be lost (PostgreSQL: a restart, a failover) repeats calls by
  ``repeat``: ``"if_not_sent"`` when the transaction surely did not commit (the default), and
  also when a COMMIT was cut off (its outcome unknown) for ``"always"``, or when the predicate
  given says this call's arguments make a repeat harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

Kind = Literal["read", "read_all", "write", "writes", "claim", "wait"]
Repeat = Literal["if_not_sent", "always"] | Callable[[tuple[Any, ...], dict[str, Any]], bool]
ATTRIBUTE = "__agentstate_call__"


@dataclass(frozen=True)
class Call:
    """What a method does to the database."""

    kind: Kind
    """``read``: a bounded read; ``read_all``: a read of a size the caller does not bound;
    ``write``: one write transaction; ``writes``: several, with pauses between them;
    ``claim``: a write that takes leases on tasks; ``wait``: a read repeated until it finds
    something (see ``attempt``)."""
    repeat: Repeat = "if_not_sent"
    """After a lost connection: repeat only if the transaction surely did not commit, or
    ``always`` (harmless even if it did), or when ``repeat(args, kwargs)`` says so."""

    attempt: str = ""
    """For ``wait``: the method of the same class that each try calls (the Async twin awaits
    its own twin between sleeps on the event loop)."""

    def repeatable_when_unknown(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a call whose COMMIT may have gone through can be made again."""
        if self.repeat == "always":
            return True
        if self.repeat == "if_not_sent":
            return False
        return self.repeat(args, kwargs)


def _declare(call: Call) -> Callable[[F], F]:
    def mark(method: F) -> F:
        setattr(method, ATTRIBUTE, call)
        return method

    return mark


def reads(method: F) -> F:
    """A bounded read (a page, one row, a count)."""
    return _declare(Call("read"))(method)


def reads_all(method: F) -> F:
    """A read whose size the caller does not bound (a whole stream)."""
    return _declare(Call("read_all"))(method)


def writes(*, repeat: Repeat = "if_not_sent", several: bool = False) -> Callable[[F], F]:
    """A write: one transaction, or ``several`` with pauses between them."""
    return _declare(Call("writes" if several else "write", repeat))


def claims(*, repeat: Repeat = "if_not_sent") -> Callable[[F], F]:
    """A write that takes leases on tasks (``always`` for a bare claim: a claim that committed
    unseen is a lease nobody holds, which expires, so the task is neither lost nor run twice)."""
    return _declare(Call("claim", repeat))


def waits(attempt: str) -> Callable[[F], F]:
    """A read that waits: it repeats the bounded read ``attempt`` (a method's name) until that
    finds something or its time is up, sleeping in between (:mod:`agentstate.task_waiting`)."""
    return _declare(Call("wait", attempt=attempt))


def declared(method: object) -> Call | None:
    """The declaration of a method (None: undeclared)."""
    found = getattr(method, ATTRIBUTE, None)
    return found if isinstance(found, Call) else None


def keyed(messages: Any) -> bool:
    """Whether every message of a batch carries an idempotency key (repeating it is harmless)."""
    return isinstance(messages, list) and all(getattr(m, "idempotency_key", None) is not None for m in messages)
