"""The handle's pool of psycopg connections: psycopg_pool's, with what agentstate changes.

- A connection that comes back broken (the server restarted, crashed, or failed over) is closed
  and its place given up, not replaced at once. psycopg_pool replaced it, and a call waiting for
  that replacement (agentstate repeats calls across a lost connection) made the pool grow by one
  more: every restart left each client one connection more than it used, up to ``pool_size``.
  Now the next call that finds no connection grows the pool again, to what is in use.
"""

from __future__ import annotations

from typing import Any

from psycopg.pq import TransactionStatus  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg_pool import ConnectionPool  # type: ignore[import-not-found, unused-ignore]


class Pool(ConnectionPool):  # type: ignore[misc, unused-ignore]
    """A psycopg_pool ``ConnectionPool`` that does not grow across a lost connection."""

    def _return_connection(self, conn: Any, *args: Any, **kwargs: Any) -> None:
        if conn.pgconn.transaction_status != TransactionStatus.UNKNOWN:
            super()._return_connection(conn, *args, **kwargs)
            return
        with self._lock:
            self._nconns -= 1
            if self._waiting:  # someone needs one now: open it (psycopg_pool grows one at a time)
                self._maybe_grow_pool()
        self._close_connection(conn)
