"""Message history: three append-only streams, read back in order by position.

``"router"`` messages belong to a conversation (``router_messages``), ``"planner"`` and
``"worker"`` messages to an agent (``planner_messages``, ``worker_messages``; a worker is a task,
keyed by its ``worker_id``). The owner must exist before its stream is written.

**Positions.** Every message gets a position in its stream, assigned inside the appending write
transaction: the last position plus one. Positions are unique per stream and strictly increase
in commit order, so "everything after position p" never misses a message that commits later.
They are not dense: :meth:`MessageLog.trim` removes old ones, and readers must not assume
``p + 1`` exists. Trimming always keeps a stream's last message, so positions never restart.

**Idempotency.** An append may carry a client-chosen ``idempotency_key``, unique per stream. A
retry with the same key and the same role, content and metadata returns the stored message (same
position) and writes nothing; the same key with anything different raises
:class:`~agentstate.errors.IdempotencyConflictError`. Keys of trimmed messages are forgotten.

**Pages.** :meth:`MessageLog.latest`, :meth:`~MessageLog.before` and :meth:`~MessageLog.after`
return messages in chronological order and are keyset pages over the stream's clustered key, so
each is one short index range read at any depth::

    page = log.latest("planner", planner_id, 50)          # the newest 50, oldest first
    older = log.before("planner", planner_id, page[0].position, limit=50)
    newer = log.after("planner", planner_id, page[-1].position, limit=50)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from agentstate import errors
from agentstate.calls import keyed, reads, reads_all, writes
from agentstate.engines import Connection, require_connection
from agentstate.message_batches import Draft, conflict, draft_of, make_draft, position_and_insert, same_message
from agentstate.message_streams import ROW_FIELDS as ROW_FIELDS
from agentstate.message_streams import STREAM_SQL as _SQL  # noqa: F401  (tests read messages._SQL)
from agentstate.message_streams import StreamSQL, stream_sql
from agentstate.message_types import MAX_ROLE_LENGTH as MAX_ROLE_LENGTH
from agentstate.message_types import (
    STREAMS,
    Message,
    NewMessage,
    Stream,
    build_message,
    messages_from_rows,
    messages_from_stored_rows,
)
from agentstate.runner import run, run_each
from agentstate.transactions import reading, write
from agentstate.values import as_timestamp, from_json, iterable, require_int, require_str, utc_now

# Bounds for an open-ended time range: every stored timestamp starts with a digit.
_EARLIEST = ""
_LATEST = "~"


def _stream_id(value: object) -> str:
    return require_str("stream_id", value)


def _keyed_append(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return kwargs.get("idempotency_key") is not None


def _keyed_many(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return keyed(args[2] if len(args) > 2 else kwargs.get("messages"))


def _keyed_bulk(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    pairs = args[1] if len(args) > 1 else kwargs.get("messages")
    return isinstance(pairs, list) and keyed([p[1] for p in pairs if isinstance(p, tuple) and len(p) == 2])


# Across a PostgreSQL failover, an append is harmless to repeat when every message has an
# idempotency key: a repeat returns the stored message (see agentstate.postgres.failover).


class MessageLog:
    """Append to and read the three message streams through one connection.

    Appends run in their own ``BEGIN IMMEDIATE`` transaction (a savepoint inside yours); a batch is
    all or nothing. Reads of an unknown stream return nothing rather than raising.
    """

    def __init__(self, conn: Connection) -> None:
        engine = require_connection(conn, "MessageLog")
        self._conn = conn
        engine.protect(self)

    # --- appending --------------------------------------------------------------------------

    @writes(repeat=_keyed_append)
    def append(
        self,
        stream: Stream,
        stream_id: str,
        *,
        role: str,
        content: str,
        metadata: Any = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Append one message at the end of a stream and return it as stored.

        :param metadata: any JSON value; ``None`` stores ``{}``.
        :param idempotency_key: makes a retry return the stored message instead of a duplicate.
        :raises NotFoundError: the conversation or agent does not exist.
        :raises IdempotencyConflictError: the key names a different stored message.
        :raises InvalidTypeError: content is not a str (or an id is not a str).
        :raises InvalidValueError: metadata is not JSON, or role is empty or too long.
        """
        sql = stream_sql(stream)
        draft = make_draft(_stream_id(stream_id), role, content, metadata, idempotency_key)
        params = {
            "stream_id": draft.stream_id,
            "role": draft.role,
            "content": draft.content,
            "metadata": draft.metadata,
            "idempotency_key": draft.idempotency_key,
        }
        try:
            with write(self._conn):
                # Stamped after the write lock is taken, so created_at follows commit order closely.
                created_at = params["created_at"] = utc_now()
                row = run(self._conn, sql.append, params)
                if row is None:  # the idempotency key is taken: this is a retry, or a conflict
                    stored = run(self._conn, sql.by_idempotency_key, params)
                    if not same_message(stored, draft):
                        raise conflict(sql, stored)
                    return messages_from_stored_rows(sql.name, [stored])[0]
        except errors.ForeignKeyError as exc:
            # Looked up after the rollback: a failed statement ends a PostgreSQL transaction.
            self._raise_if_unknown_owner(sql, [draft.stream_id], exc)
            raise
        if len(row) > 1:  # the statement stamped the time itself (PostgreSQL's: the server's clock)
            created_at = row[1]
        meta = from_json(draft.metadata)
        return build_message(
            sql.name,
            draft.stream_id,
            row[0],
            draft.role,
            draft.content,
            meta,
            draft.idempotency_key,
            created_at,
        )

    @writes(repeat=_keyed_many)
    def append_many(self, stream: Stream, stream_id: str, messages: Iterable[NewMessage]) -> list[Message]:
        """Append a batch to one stream in one transaction, in order; returns them as stored.

        A message whose idempotency key is already stored (or repeated earlier in the batch with
        the same content) comes back as the stored one and takes no new position.

        :raises NotFoundError, IdempotencyConflictError, InvalidTypeError, InvalidValueError: as
            :meth:`append`; the whole batch is then rolled back.
        """
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        return self._append_drafts(sql, [draft_of(key, message) for message in iterable("messages", messages)])

    @writes(repeat=_keyed_bulk)
    def append_bulk(self, stream: Stream, messages: Iterable[tuple[str, NewMessage]]) -> list[Message]:
        """Append ``(stream_id, message)`` pairs spread over many streams of one table, in one
        transaction; returns them as stored, in the same order.

        :raises NotFoundError, IdempotencyConflictError, InvalidTypeError, InvalidValueError: as
            :meth:`append`; the whole batch is then rolled back.
        """
        sql = stream_sql(stream)
        drafts = []
        for pair in iterable("messages", messages):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise errors.InvalidTypeError(f"append_bulk takes (stream_id, NewMessage) pairs, not {pair!r:.80}")
            drafts.append(draft_of(_stream_id(pair[0]), pair[1]))
        return self._append_drafts(sql, drafts)

    def _append_drafts(self, sql: StreamSQL, drafts: list[Draft]) -> list[Message]:
        if not drafts:
            return []
        stream_ids = list(dict.fromkeys(draft.stream_id for draft in drafts))
        try:
            with write(self._conn):
                rows = position_and_insert(self._conn, sql, drafts, stream_ids, utc_now())
        except errors.ForeignKeyError as exc:
            self._raise_if_unknown_owner(sql, stream_ids, exc)  # after the rollback, as in append
            raise
        return messages_from_stored_rows(sql.name, rows)

    def _raise_if_unknown_owner(self, sql: StreamSQL, stream_ids: Sequence[str], exc: errors.ForeignKeyError) -> None:
        """Turn a failed foreign key into NotFoundError naming the first unknown owner."""
        found = {row[0] for row in run_each(self._conn, sql.owner_exists, [{"id": s} for s in stream_ids])}
        for stream_id in stream_ids:
            if stream_id not in found:
                raise errors.NotFoundError(sql.owner_kind, stream_id) from exc

    # --- reading ----------------------------------------------------------------------------

    def _read(self, sql: StreamSQL, query: str, params: dict[str, Any], newest_first: bool) -> list[Message]:
        rows = run(self._conn, query, params)
        if newest_first:
            rows.reverse()
        return messages_from_rows(sql.name, params["stream_id"], rows)

    @reads
    def latest(self, stream: Stream, stream_id: str, limit: int = 50) -> list[Message]:
        """The last ``limit`` messages of a stream, oldest first (what a model call needs)."""
        sql = stream_sql(stream)
        params = {"stream_id": _stream_id(stream_id), "limit": require_int("limit", limit, minimum=1)}
        return self._read(sql, sql.latest, params, newest_first=True)

    @reads
    def before(self, stream: Stream, stream_id: str, position: int, *, limit: int = 50) -> list[Message]:
        """Up to ``limit`` messages just before ``position``, oldest first: a page backwards.

        Pass the first position of the page you have to get the one before it.
        """
        return self._page(stream, stream_id, position, limit, backwards=True)

    @reads
    def after(self, stream: Stream, stream_id: str, position: int = 0, *, limit: int = 50) -> list[Message]:
        """Up to ``limit`` messages just after ``position``, oldest first: a page forwards.

        Start from 0 for the beginning; pass the last position of a page to get the next one.
        """
        return self._page(stream, stream_id, position, limit, backwards=False)

    def _page(self, stream: Stream, stream_id: str, position: int, limit: int, *, backwards: bool) -> list[Message]:
        """The page before ``position`` (``backwards``) or after it, oldest first."""
        sql = stream_sql(stream)
        params = {
            "stream_id": _stream_id(stream_id),
            "position": require_int("position", position),
            "limit": require_int("limit", limit, minimum=1),
        }
        return self._read(sql, sql.before if backwards else sql.after, params, newest_first=backwards)

    @reads
    def between(
        self,
        stream: Stream,
        stream_id: str,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Messages created in ``[since, until)`` (either end open when None), ordered by
        (created_at, position), at most ``limit`` of them.

        Times are aware datetimes or stored timestamp strings. To page through a long range,
        continue with :meth:`after` from the last position, or narrow ``since``.
        """
        sql = stream_sql(stream)
        params = {
            "stream_id": _stream_id(stream_id),
            "since": _EARLIEST if since is None else as_timestamp("since", since),
            "until": _LATEST if until is None else as_timestamp("until", until),
            "limit": -1 if limit is None else require_int("limit", limit, minimum=1),
        }
        return self._read(sql, sql.time_range, params, newest_first=False)

    @reads
    def get(self, stream: Stream, stream_id: str, position: int) -> Message:
        """One message by position. :raises NotFoundError: no message has that position."""
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        row = run(self._conn, sql.get, {"stream_id": key, "position": require_int("position", position)})
        if row is None:
            raise errors.NotFoundError(f"{stream} message", (stream_id, position))
        return messages_from_rows(sql.name, key, [row])[0]

    @reads
    def count(self, stream: Stream, stream_id: str) -> int:
        """How many messages a stream holds (reads an index range the size of the stream)."""
        sql = stream_sql(stream)
        return cast(int, run(self._conn, sql.count, {"stream_id": _stream_id(stream_id)}))

    @reads
    def last_position(self, stream: Stream, stream_id: str) -> int:
        """The position of a stream's last message, 0 when it has none (one index seek)."""
        sql = stream_sql(stream)
        return cast(int, run(self._conn, sql.last_position, {"stream_id": _stream_id(stream_id)})[1])

    # --- retention --------------------------------------------------------------------------

    @writes()
    def clear(self, stream: Stream, stream_id: str, *, delete_owner: bool = False) -> int:
        """Delete a whole stream in one transaction; returns how many messages went (0 for an
        unknown or empty stream).

        The owner (conversation, planner, task) stays, and so does the stream's place: its next
        message takes the next position, never one a reader has already seen. Its idempotency
        keys are forgotten. With ``delete_owner=True`` (router streams only) the conversation
        goes too, in the same transaction: a conversation made later with the same id starts
        from position 1. To delete a planner or a task, use :meth:`Agents.delete_planner` or
        retention, which take their tasks' state into account.

        :raises NotFoundError: ``delete_owner`` and there is no such conversation.
        """
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        if not isinstance(delete_owner, bool):
            raise errors.InvalidTypeError(f"delete_owner must be True or False, not {delete_owner!r}")
        if delete_owner and sql.name != "router":
            raise errors.InvalidValueError(
                f"clear(..., delete_owner=True) deletes conversations only; a {sql.owner_kind} is deleted "
                "with Agents.delete_planner() or by retention (they respect its tasks)"
            )
        with write(self._conn):
            deleted = cast(int, run(self._conn, sql.clear, {"stream_id": key}))
            if delete_owner and not run(self._conn, "agents.delete_conversations", {"id": key}):
                raise errors.NotFoundError("conversation", key)
        return deleted

    @writes()
    def pop_last(self, stream: Stream, stream_id: str) -> Message | None:
        """Delete and return a stream's newest message, or None when it has none.

        One write transaction: two callers popping at once never get the same message, and a pop
        never passes over a message appended before it. The popped position is not reused: the
        next append takes the one after it.
        """
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        with write(self._conn):
            # Take the stream's head first, as an append does: on PostgreSQL a pop arriving while
            # an append holds it then waits, and its own statement (a fresh snapshot) sees and pops
            # that message; on SQLite the write lock already orders them (one index seek).
            run(self._conn, sql.last_position, {"stream_id": key})
            row = run(self._conn, sql.pop_last, {"stream_id": key})
        return None if row is None else messages_from_rows(sql.name, key, [row])[0]

    @reads_all
    def all(self, stream: Stream, stream_id: str, *, page_size: int = 1000) -> list[Message]:
        """Every message of a stream, oldest first, read in pages of ``page_size`` inside one
        snapshot (consistent even while others append). For long streams prefer :meth:`latest`
        or paging with :meth:`after`: this holds the whole stream in memory."""
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        size = require_int("page_size", page_size, minimum=1)
        found: list[Message] = []
        with reading(self._conn):
            while True:
                params = {"stream_id": key, "position": found[-1].position if found else 0, "limit": size}
                page = self._read(sql, sql.after, params, newest_first=False)
                found += page
                if len(page) < size:
                    return found

    @writes()
    def trim(self, stream: Stream, stream_id: str, *, before: int | None = None, keep_last: int | None = None) -> int:
        """Delete a stream's old messages; returns how many were deleted.

        Give exactly one of ``before`` (delete positions below it) or ``keep_last`` (keep the last
        N, N >= 1). The stream's last message is always kept, so its positions never restart.
        The freed pages are reused by later appends; run ``PRAGMA incremental_vacuum`` to hand
        them back to the file system.
        """
        sql = stream_sql(stream)
        key = _stream_id(stream_id)
        if (before is None) == (keep_last is None):
            raise errors.InvalidValueError("trim takes exactly one of before= or keep_last=")
        if before is not None:
            query, params = sql.trim_before, {"stream_id": key, "position": require_int("before", before)}
        else:
            query, params = (
                sql.trim_keep_last,
                {"stream_id": key, "keep": require_int("keep_last", keep_last, minimum=1)},
            )
        with write(self._conn):
            return cast(int, run(self._conn, query, params))


__all__ = ["STREAMS", "Message", "MessageLog", "NewMessage", "Stream"]
