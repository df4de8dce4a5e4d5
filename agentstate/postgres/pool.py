"""The handle's pool of psycopg connections: psycopg_pool's, with what agentstate changes.

- :func:`reach` connects once before the pool opens, so that a server that refuses the
  connection for good (no such database or role, a wrong password: see
  :func:`agentstate.postgres.translate.refusal`) fails ``connect()`` at once with its reason. The
  pool retries every failure until its timeout and then says only that it timed out.
- A connection that comes back broken (the server restarted, crashed, or failed over) is closed
  and its place given up, not replaced at once. psycopg_pool replaced it, and a call waiting for
  that replacement (agentstate repeats calls across a lost connection) made the pool grow by one
  more: every restart left each client one connection more than it used, up to ``pool_size``.
  Now the next call that finds no connection grows the pool again, to what is in use.
  A connection refused at every address (nothing listens there: the server is down, or the host
  or port is wrong) is tried again for :data:`REFUSED_GRACE_S` only, not ``connect_timeout_s``;
  a server that is there but slow, or a standby not yet promoted, is waited for.
- When the server refuses a new connection for good after the handle had reached it (the
  database was dropped, the password changed), the calls waiting for one fail at once with that
  refusal instead of waiting out ``connect_timeout_s``, and agentstate does not repeat them.
- psycopg_pool logs a warning on the ``psycopg.pool`` logger for every failed attempt to
  reconnect (each client, every second or so, for as long as the server is away). For
  agentstate's pools those are dropped; the ``agentstate.postgres`` logger says once, at WARNING,
  that the server cannot be reached and why, and at INFO when it is back.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg.conninfo import conninfo_to_dict  # type: ignore[import-not-found, unused-ignore]
from psycopg.pq import TransactionStatus  # type: ignore[import-not-found, unused-ignore]
from psycopg_pool import ConnectionPool  # type: ignore[import-not-found, unused-ignore]

from agentstate import errors
from agentstate.postgres.translate import connect_cause, nothing_listens, refusal

REFUSED_GRACE_S = 1.0
"""How long ``connect()`` tries again a connection refused at every address: enough for a
restart's blink, not connect_timeout_s for a server that is not running or a wrong port."""

_PAUSES_S = (0.05, 0.1, 0.2, 0.5, 1.0)
_log = logging.getLogger("agentstate.postgres")
_quiet: set[str] = set()  # the names of agentstate's open pools


class _QuietPools(logging.Filter):
    """Drops psycopg_pool's warnings about agentstate's pools (they name the pool first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.levelno >= logging.WARNING and isinstance(args, tuple) and args and args[0] in _quiet)


logging.getLogger("psycopg.pool").addFilter(_QuietPools())


def reach(url: str, kwargs: dict[str, Any], timeout_s: float, shown: str) -> None:
    """Connect to ``url`` once (and close): raises the server's refusal at once, and
    :class:`~agentstate.errors.ConnectionLostError` if no server answered within ``timeout_s``
    (``shown`` is the URL without its password, for the message)."""
    begin = time.monotonic()
    deadline = begin + timeout_s
    own_timeout = "connect_timeout" in conninfo_to_dict(url)  # the URL's, per host tried, wins
    for attempt in itertools.count():
        left = deadline - time.monotonic()
        try:
            params: dict[str, Any] = dict(kwargs)
            if not own_timeout:
                params["connect_timeout"] = max(2, math.ceil(left))  # libpq's least is 2 s
            psycopg.connect(url, **params).close()
            return
        except psycopg.OperationalError as exc:
            if (rejected := refusal(exc)) is not None:
                raise rejected from None
            now, refused = time.monotonic(), nothing_listens(exc)
            if refused and now - begin >= min(REFUSED_GRACE_S, timeout_s):
                raise errors.ConnectionLostError(
                    f"could not connect to {shown}: {connect_cause(exc)}; is the server running, and are the "
                    "host and port right?"
                ) from None
            if now >= deadline:
                raise errors.ConnectionLostError(
                    f"could not connect to {shown} within {timeout_s} s: {connect_cause(exc)}"
                ) from None
        end = min(deadline, begin + REFUSED_GRACE_S) if refused else deadline  # the last try at the end
        time.sleep(min(_PAUSES_S[min(attempt, len(_PAUSES_S) - 1)], max(0.0, end - time.monotonic())))


class Pool(ConnectionPool):  # type: ignore[misc, unused-ignore]
    """A psycopg_pool ``ConnectionPool`` that does not grow across a lost connection, and
    fails its waiting calls when the server refuses a new connection for good."""

    last_failure: Exception | None = None
    """The newest failed attempt to open a connection, until one succeeds."""

    def __init__(self, *args: Any, shown: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown = shown  # the URL without its password, for what is logged
        self._said = threading.Lock()
        _quiet.add(self.name)

    def close(self, timeout: float = 5.0) -> None:
        try:
            super().close(timeout)
        finally:
            _quiet.discard(self.name)

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            conn = super()._connect(timeout)
        except Exception as exc:
            with self._said:
                first, self.last_failure = self.last_failure is None, exc
            if first:  # once per outage, not per attempt
                what = "refused a new connection" if refusal(exc) is not None else "cannot be reached"
                _log.warning("PostgreSQL %s %s (%s): trying again in the background", self.shown, what, connect_cause(exc))
            if refusal(exc) is not None:
                self._fail_waiting(exc)
            raise
        with self._said:
            back, self.last_failure = self.last_failure is not None, None
        if back:
            _log.info("PostgreSQL %s is reachable again", self.shown)
        return conn

    def _fail_waiting(self, exc: Exception) -> None:
        with self._lock:
            if self._pool or self._nconns > 1:  # another connection may still come back to serve them
                return
            while self._waiting:
                self._waiting.popleft().fail(exc)

    def _return_connection(self, conn: Any, *args: Any, **kwargs: Any) -> None:
        if conn.pgconn.transaction_status != TransactionStatus.UNKNOWN:
            super()._return_connection(conn, *args, **kwargs)
            return
        with self._lock:
            self._nconns -= 1
            if self._waiting:  # someone needs one now: open it (psycopg_pool grows one at a time)
                self._maybe_grow_pool()
        self._close_connection(conn)
