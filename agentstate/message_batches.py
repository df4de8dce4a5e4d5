"""Appending a batch: each message checked and encoded as a :class:`Draft` before any transaction,
compared with the stored message its idempotency key names, then numbered after its stream's last
position and inserted with one executemany, inside the caller's write transaction."""

from __future__ import annotations

from operator import itemgetter
from typing import Any, NamedTuple, cast

from agentstate import errors
from agentstate.engines import Connection
from agentstate.message_streams import StreamSQL
from agentstate.message_types import MAX_ROLE_LENGTH, NewMessage
from agentstate.runner import run, run_each
from agentstate.values import canonical_json, require_str, text, to_json

_by_stream_id = itemgetter(0)


class Draft(NamedTuple):
    """A validated message, encoded for SQLite, not yet positioned."""

    stream_id: str
    role: str
    content: str
    metadata: str
    idempotency_key: str | None


def make_draft(stream_id: str, role: object, content: object, metadata: object, idempotency_key: object) -> Draft:
    # The common message (a short plain role, str content, no metadata, no key) takes three
    # checks and no encoder call: a turn of 100 spent 118 µs here with every check made in full.
    if type(role) is not str or not 0 < len(role) <= MAX_ROLE_LENGTH or "\x00" in role:
        role = _role(role)
    if not isinstance(content, str):
        raise errors.InvalidTypeError(
            f"content must be a str, not {type(content).__name__} (put structured data in metadata)"
        )
    return Draft(
        stream_id,
        role,
        text("content", content),
        "{}" if metadata is None else to_json("metadata", metadata),
        None if idempotency_key is None else require_str("idempotency_key", idempotency_key),
    )


def _role(role: object) -> str:
    """A role the common case did not pass: a str subclass, or one of the errors."""
    role = require_str("role", role)
    if len(role) > MAX_ROLE_LENGTH:
        raise errors.InvalidValueError(f"role is {len(role)} characters long; the limit is {MAX_ROLE_LENGTH}")
    if "\x00" in role:  # SQLite's length() stops at a NUL, so the schema's CHECK would refuse it
        raise errors.InvalidValueError(f"role must not contain NUL characters: {role!r}")
    return role


def draft_of(stream_id: str, message: object) -> Draft:
    if not isinstance(message, NewMessage):
        raise errors.InvalidTypeError(f"messages must be NewMessage objects, not {type(message).__name__}")
    return make_draft(stream_id, message.role, message.content, message.metadata, message.idempotency_key)


def same_message(stored: tuple[Any, ...], draft: Draft) -> bool:
    """Whether a stored row (stream_id, position, role, content, metadata, ...) is this draft."""
    if stored[2] != draft.role or stored[3] != draft.content:
        return False
    # Compare metadata as canonical JSON: the same object may encode with its keys in another
    # order, but true is not 1 and 1 is not 1.0 (Python's == would say they are).
    return bool(stored[4] == draft.metadata or canonical_json(stored[4]) == canonical_json(draft.metadata))


def conflict(stream: StreamSQL, stored: tuple[Any, ...]) -> errors.IdempotencyConflictError:
    return errors.IdempotencyConflictError(
        f"idempotency key {stored[5]!r} of {stream.owner_kind} {stored[0]!r} already names the message at "
        f"position {stored[1]} with a different role, content or metadata; a new message needs a new key"
    )


def position_and_insert(
    conn: Connection, sql: StreamSQL, drafts: list[Draft], stream_ids: list[str], created_at: str
) -> list[tuple[Any, ...]]:
    """Inside the write transaction: read each stream's last position once, number the batch
    in Python, and insert it with one executemany. Returns the stored rows, in batch order.
    ``created_at`` is this process's time, stamped under the lock (PostgreSQL stamps the server's)."""
    if len(stream_ids) == 1:
        found = [run(conn, sql.last_position, {"stream_id": stream_ids[0]})]
    else:
        # In one order (sorted): on PostgreSQL each lookup locks the stream's head until COMMIT,
        # and two bulk loads locking shared streams in different orders would deadlock.
        found = run_each(conn, sql.last_position, [{"stream_id": s} for s in sorted(stream_ids)])
    last: dict[str, int] = {cast(str, row[0]): cast(int, row[1]) for row in found}
    if len(found[0]) > 2:  # the statement read the time itself (PostgreSQL's: the server's, under the head's lock)
        created_at = found[-1][2]
    stored: dict[tuple[str, str], tuple[Any, ...]] = {}
    keyed = list(dict.fromkeys((d.stream_id, d.idempotency_key) for d in drafts if d.idempotency_key is not None))
    if keyed:
        bindings = [{"stream_id": s, "idempotency_key": k} for s, k in keyed]
        for row in run_each(conn, sql.by_idempotency_key, bindings):
            stored[row[0], row[5]] = row
    rows: list[tuple[Any, ...]] = []
    inserts: list[tuple[Any, ...]] = []
    for draft in drafts:
        stream_id, role, content, metadata, idempotency_key = draft
        if idempotency_key is not None:
            prior = stored.get((stream_id, idempotency_key))
            if prior is not None:
                if not same_message(prior, draft):
                    raise conflict(sql, prior)
                rows.append(prior)
                continue
        position = last[stream_id] + 1
        last[stream_id] = position
        row = (stream_id, position, role, content, metadata, idempotency_key, created_at)
        if idempotency_key is not None:
            stored[stream_id, idempotency_key] = row
        rows.append(row)
        inserts.append(row)  # laid out as ROW_FIELDS: the insert statement's parameters, in order
    if len(stream_ids) > 1:
        # One stream after another walks the clustered b-tree in order instead of jumping
        # between streams per row: about twice the insert rate for a bulk load. The sort is
        # stable, so each stream's positions stay ascending.
        inserts.sort(key=_by_stream_id)
    if inserts:
        run_each(conn, sql.insert, inserts)
    return rows
