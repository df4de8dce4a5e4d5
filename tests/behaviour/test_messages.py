"""Message streams: append (one, a batch, a bulk load), positions, idempotency, keyset pages,
time ranges, counts, retention, bad input, and the async twin; on SQLite and PostgreSQL (the
``db`` fixture), except what is about SQLite itself (apsw's binding, EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import pickle
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import apsw
import apsw.ext
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentstate
from agentstate import errors, runner
from agentstate import messages as messages_module
from agentstate.aio import AsyncAgents, AsyncMessageLog
from agentstate.messages import STREAMS, Message, MessageLog, NewMessage, Stream
from agentstate.postgres import queries as pg_queries
from agentstate.rows import Builder
from agentstate.values import format_time, parse_time, to_json, utc_now
from tests.engines import is_postgres, rows, scalar
from tests.messages_support import dump, examples, make_owner
from tests.plans import plan_details, plan_problems

HYPOTHESIS_EXAMPLES = 60  # on SQLite; PostgreSQL runs a share of them (tests/messages_support.py)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


def positions(messages: list[Message]) -> list[int]:
    return [m.position for m in messages]


@pytest.fixture
def log(db: Any) -> MessageLog:
    return MessageLog(db)


# --- appending ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_batches_bind_row_tuples_in_the_insert_statements_parameter_order(
    fresh_db: apsw.Connection, stream: Stream
) -> None:
    """SQLite-only: asks apsw how the statement binds (PostgreSQL's twin follows)."""
    insert = runner.query(messages_module._SQL[stream].insert).sql
    assert apsw.ext.query_info(fresh_db, insert).bindings_names == messages_module.ROW_FIELDS


@pytest.mark.parametrize("stream", STREAMS)
def test_batches_bind_row_tuples_in_the_postgres_insert_statements_parameter_order(stream: Stream) -> None:
    """A tuple binds to PostgreSQL's named parameters in the order each first appears."""
    insert = pg_queries.query(messages_module._SQL[stream].insert)
    assert insert.params == messages_module.ROW_FIELDS
    assert insert.bind(tuple(messages_module.ROW_FIELDS)) == {name: name for name in messages_module.ROW_FIELDS}


@pytest.mark.parametrize("stream", STREAMS)
def test_append_and_read_back(db: Any, log: MessageLog, stream: Stream) -> None:
    owner = make_owner(db, stream, "owner-1")
    first = log.append(stream, owner, role="user", content="hello", metadata={"tokens": 3})
    assert isinstance(first, Message)
    assert (first.stream, first.stream_id, first.position) == (stream, owner, 1)
    assert (first.role, first.content, first.metadata, first.idempotency_key) == ("user", "hello", {"tokens": 3}, None)
    second = log.append(stream, owner, role="assistant", content="")
    assert second.position == 2
    assert second.metadata == {}
    assert second.created_at >= first.created_at
    assert log.latest(stream, owner) == [first, second]
    assert log.get(stream, owner, 2) == second
    assert log.count(stream, owner) == 2
    assert log.last_position(stream, owner) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.content = "changed"  # type: ignore[misc]
    assert dataclasses.replace(first, content="copy").content == "copy"


def test_streams_are_separate(db: Any, log: MessageLog) -> None:
    a, b = make_owner(db, "planner"), make_owner(db, "planner")
    log.append("planner", a, role="user", content="a1")
    log.append("planner", b, role="user", content="b1")
    log.append("planner", a, role="user", content="a2")
    assert [(m.content, m.position) for m in log.latest("planner", a)] == [("a1", 1), ("a2", 2)]
    assert [(m.content, m.position) for m in log.latest("planner", b)] == [("b1", 1)]
    assert log.latest("planner", "nobody") == []
    assert log.count("planner", "nobody") == 0
    assert log.last_position("planner", "nobody") == 0
    with pytest.raises(errors.NotFoundError):
        log.get("planner", a, 3)


@pytest.mark.parametrize("stream", STREAMS)
def test_append_many_one_transaction(db: Any, log: MessageLog, stream: Stream) -> None:
    owner = make_owner(db, stream)
    log.append(stream, owner, role="system", content="start")
    turn = [NewMessage("user", f"m{n}", {"n": n}) for n in range(100)]
    stored = log.append_many(stream, owner, turn)
    assert positions(stored) == list(range(2, 102))
    assert [m.content for m in stored] == [f"m{n}" for n in range(100)]
    assert [m.metadata for m in stored] == [{"n": n} for n in range(100)]
    assert len({m.created_at for m in stored}) == 1  # one transaction, one timestamp
    assert log.after(stream, owner, 1, limit=1000) == stored
    assert log.append_many(stream, owner, []) == []


def test_append_bulk_over_many_streams(db: Any, log: MessageLog) -> None:
    owners = [make_owner(db, "router") for _ in range(20)]
    log.append("router", owners[3], role="user", content="already here")
    pairs = [(owners[n % 20], NewMessage("user", f"bulk {n}")) for n in range(200)]
    stored = log.append_bulk("router", pairs)
    assert [(m.stream_id, m.content) for m in stored] == [(o, m.content) for o, m in pairs]  # input order
    for owner in owners:
        mine = [m for m in stored if m.stream_id == owner]
        start = 2 if owner == owners[3] else 1
        assert positions(mine) == list(range(start, start + 10))
        assert log.latest("router", owner, 10) == mine
    assert log.append_bulk("router", []) == []


def test_positions_continue_after_gaps(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "planner")
    log.append_many("planner", owner, [NewMessage("user", str(n)) for n in range(10)])
    assert log.trim("planner", owner, before=6) == 5
    assert positions(log.after("planner", owner)) == [6, 7, 8, 9, 10]
    assert log.append("planner", owner, role="user", content="next").position == 11
    assert log.count("planner", owner) == 6


# --- idempotency -------------------------------------------------------------------------------


def test_idempotent_retry_returns_the_stored_message(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "worker")
    first = log.append("worker", owner, role="tool", content="result", metadata={"a": 1, "b": 2}, idempotency_key="k1")
    log.append("worker", owner, role="user", content="in between")
    # the same metadata with its keys in another order is the same message
    again = log.append("worker", owner, role="tool", content="result", metadata={"b": 2, "a": 1}, idempotency_key="k1")
    assert again == first
    batch = log.append_many(
        "worker",
        owner,
        [
            NewMessage("tool", "result", {"a": 1, "b": 2}, "k1"),  # stored before
            NewMessage("user", "new", None, "k2"),
            NewMessage("user", "new", None, "k2"),  # repeated inside the batch
            NewMessage("user", "plain"),
        ],
    )
    assert batch[0] == first
    assert batch[1] == batch[2]
    assert positions(batch) == [1, 3, 3, 4]
    assert log.count("worker", owner) == 4


def test_idempotency_conflict_changes_nothing(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "planner")
    log.append("planner", owner, role="user", content="original", metadata={"v": 1}, idempotency_key="k")
    before = dump(db)
    for role, content, metadata in (
        ("user", "changed", {"v": 1}),
        ("tool", "original", {"v": 1}),
        ("user", "original", {"v": 2}),
    ):
        with pytest.raises(errors.IdempotencyConflictError, match="'k'"):
            log.append("planner", owner, role=role, content=content, metadata=metadata, idempotency_key="k")
    with pytest.raises(errors.IdempotencyConflictError):
        log.append_many("planner", owner, [NewMessage("user", "fine"), NewMessage("user", "changed", {"v": 1}, "k")])
    with pytest.raises(errors.IdempotencyConflictError):
        log.append_many("planner", owner, [NewMessage("user", "x", None, "new"), NewMessage("user", "y", None, "new")])
    assert dump(db) == before


def test_idempotency_keys_are_per_stream(db: Any, log: MessageLog) -> None:
    a, b = make_owner(db, "planner"), make_owner(db, "planner")
    log.append("planner", a, role="user", content="for a", idempotency_key="shared")
    stored = log.append("planner", b, role="user", content="for b", idempotency_key="shared")
    assert (stored.stream_id, stored.position, stored.content) == (b, 1, "for b")


# --- reading -----------------------------------------------------------------------------------


def test_pages_both_ways(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "router")
    log.append_many("router", owner, [NewMessage("user", str(n)) for n in range(1, 11)])
    assert positions(log.latest("router", owner, 3)) == [8, 9, 10]
    assert positions(log.before("router", owner, 8, limit=3)) == [5, 6, 7]
    assert positions(log.before("router", owner, 2, limit=3)) == [1]
    assert log.before("router", owner, 1) == []
    assert positions(log.after("router", owner, limit=4)) == [1, 2, 3, 4]
    assert positions(log.after("router", owner, 8, limit=4)) == [9, 10]
    assert log.after("router", owner, 10) == []
    assert positions(log.latest("router", owner, 1000)) == list(range(1, 11))


def test_time_range(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "planner")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [start + timedelta(minutes=n) for n in range(10)]
    for n, stamp in enumerate(stamps):
        rows(
            db,
            "INSERT INTO planner_messages (agent_id, position, role, content, created_at) VALUES (?, ?, 'user', ?, ?)",
            (owner, n + 1, str(n), stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        )
    assert positions(log.between("planner", owner, since=stamps[2], until=stamps[5])) == [3, 4, 5]
    assert positions(log.between("planner", owner, since=stamps[8])) == [9, 10]
    assert positions(log.between("planner", owner, until=stamps[1])) == [1]
    assert positions(log.between("planner", owner, limit=4)) == [1, 2, 3, 4]
    text = log.get("planner", owner, 7).created_at
    assert positions(log.between("planner", owner, since=text, until=text)) == []
    assert positions(log.between("planner", owner, since=text)) == [7, 8, 9, 10]
    with pytest.raises(errors.InvalidValueError):
        log.between("planner", owner, since=datetime(2026, 1, 1))  # naive
    with pytest.raises(errors.InvalidValueError):
        log.between("planner", owner, since="yesterday")
    with pytest.raises(errors.InvalidTypeError):
        log.between("planner", owner, since=5)  # type: ignore[arg-type]


def test_time_range_ties_are_ordered_by_position(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "worker")
    stored = log.append_many("worker", owner, [NewMessage("user", str(n)) for n in range(5)])
    assert log.between("worker", owner, since=stored[0].created_at) == stored


APPENDS = {
    "append": lambda log, owner: [log.append("planner", owner, role="user", content="one")],
    "append_many": lambda log, owner: log.append_many(
        "planner", owner, [NewMessage("user", "a"), NewMessage("user", "b")]
    ),
    "append_bulk": lambda log, owner: log.append_bulk(
        "planner", [(owner, NewMessage("user", "a")), (owner, NewMessage("user", "b"))]
    ),
}


@pytest.mark.parametrize("how", APPENDS)
def test_created_at_is_stamped_by_the_servers_clock_on_postgres(
    db: Any, log: MessageLog, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """SQLite stamps a message with this process's clock; PostgreSQL with the server's (so hosts
    whose clocks disagree still write one time line). The message returned is the one stored."""
    owner = make_owner(db, "planner")
    client_clock = "2001-02-03T04:05:06.000007Z"  # a clock far off the server's
    monkeypatch.setattr(messages_module, "utc_now", lambda: client_clock)
    server_before = scalar(db, "SELECT clock_timestamp()") if is_postgres(db) else None
    stored = APPENDS[how](log, owner)
    server_after = scalar(db, "SELECT clock_timestamp()") if is_postgres(db) else None
    assert log.after("planner", owner) == stored
    assert len({m.created_at for m in stored}) == 1  # one transaction, one time
    parse_time(stored[0].created_at)
    if is_postgres(db):
        assert server_before <= stored[0].created_at <= server_after, (server_before, stored, server_after)
    else:
        assert stored[0].created_at == client_clock
    again = log.append("planner", owner, role="user", content="retried", idempotency_key="k")
    assert log.append("planner", owner, role="user", content="retried", idempotency_key="k") == again
    assert log.get("planner", owner, again.position) == again


@pytest.mark.parametrize("stream", STREAMS)
def test_trim(db: Any, log: MessageLog, stream: Stream) -> None:
    owner = make_owner(db, stream)
    log.append_many(stream, owner, [NewMessage("user", str(n)) for n in range(20)])
    assert log.trim(stream, owner, keep_last=15) == 5
    assert positions(log.after(stream, owner, limit=100)) == list(range(6, 21))
    assert log.trim(stream, owner, keep_last=100) == 0
    assert log.trim(stream, owner, before=10) == 4
    assert log.trim(stream, owner, before=1_000) == 10  # the last message always stays
    assert positions(log.latest(stream, owner)) == [20]
    assert log.append(stream, owner, role="user", content="after trim").position == 21
    with pytest.raises(errors.InvalidValueError):
        log.trim(stream, owner)
    with pytest.raises(errors.InvalidValueError):
        log.trim(stream, owner, before=3, keep_last=3)
    with pytest.raises(errors.InvalidValueError):
        log.trim(stream, owner, keep_last=0)


def test_guide_query_uses_the_time_index(fresh_db: apsw.Connection) -> None:
    """The performance guide's own query still runs, as an index walk with no sort. SQLite-only:
    EXPLAIN QUERY PLAN (tests/postgres/test_query_plans.py checks PostgreSQL's plans)."""
    log = MessageLog(fresh_db)
    owner = make_owner(fresh_db, "planner")
    log.append_many("planner", owner, [NewMessage("user", str(n)) for n in range(5)])
    sql = "SELECT * FROM planner_messages WHERE agent_id = ? ORDER BY created_at"
    details = plan_details(fresh_db, sql)
    assert not plan_problems(details, ("idx_planner_messages_agent_time",)), details
    found = fresh_db.execute(sql, (owner,)).fetchall()
    assert [row[3] for row in found] == ["0", "1", "2", "3", "4"]


# --- hypothesis --------------------------------------------------------------------------------
# Each test runs its examples against the one database of its engine, so a test builds its
# hypothesis settings from the connection (fewer examples on PostgreSQL) and runs them inside.


def test_paging_reproduces_the_history(db: Any) -> None:
    log = MessageLog(db)

    @examples(db, HYPOTHESIS_EXAMPLES)
    @given(count=st.integers(min_value=0, max_value=60), size=st.integers(min_value=1, max_value=25))
    def check(count: int, size: int) -> None:
        owner = make_owner(db, "planner")
        history = log.append_many("planner", owner, [NewMessage("user", f"#{n}") for n in range(count)])
        if count > 3:  # holes from retention must not disturb paging
            log.trim("planner", owner, before=3)
            history = history[2:]

        forwards: list[Message] = []
        page = log.after("planner", owner, 0, limit=size)
        while page:
            assert len(page) <= size
            forwards += page
            page = log.after("planner", owner, page[-1].position, limit=size)
        assert forwards == history

        backwards: list[Message] = []
        page = log.latest("planner", owner, size)
        while page:
            assert len(page) <= size
            backwards = page + backwards
            page = log.before("planner", owner, page[0].position, limit=size)
        assert backwards == history

    check()


def test_idempotent_appends_never_duplicate(db: Any) -> None:
    """Any mix of keyed and unkeyed appends, single or batched, stores each key once."""
    log = MessageLog(db)

    @examples(db, HYPOTHESIS_EXAMPLES)
    @given(
        plan=st.lists(
            st.tuples(st.sampled_from(["k1", "k2", "k3", None]), st.booleans()),
            min_size=1,
            max_size=30,
        )
    )
    def check(plan: list[tuple[str | None, bool]]) -> None:
        owner = make_owner(db, "router")
        acknowledged: dict[str, Message] = {}
        batch: list[NewMessage] = []
        for key, batched in plan:
            message = NewMessage("user", f"content of {key}" if key else "unkeyed", None, key)
            if batched:
                batch.append(message)
                continue
            stored = log.append("router", owner, role=message.role, content=message.content, idempotency_key=key)
            if key:
                assert acknowledged.setdefault(key, stored) == stored
        for stored in log.append_many("router", owner, batch):
            if stored.idempotency_key:
                assert acknowledged.setdefault(stored.idempotency_key, stored) == stored
        everything = log.after("router", owner, limit=1000)
        keys = [m.idempotency_key for m in everything if m.idempotency_key]
        assert sorted(keys) == sorted(acknowledged)
        assert len(everything) == len(acknowledged) + sum(1 for key, _ in plan if key is None)
        assert positions(everything) == sorted(set(positions(everything)))

    check()


def test_any_text_and_json_round_trip(db: Any) -> None:
    log = MessageLog(db)
    # PostgreSQL's text holds no NUL: content with one is refused there (tested below)
    contents = st.text(st.characters(codec="utf-8", exclude_characters="\x00")) if is_postgres(db) else st.text()

    @examples(db, HYPOTHESIS_EXAMPLES)
    @given(
        content=contents,
        metadata=json_values,
        # lone surrogates are not text SQLite can store (UTF-8 has none): they are refused, elsewhere tested
        role=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=64),
    )
    def check(content: str, metadata: Any, role: str) -> None:
        owner = make_owner(db, "worker")
        stored = log.append("worker", owner, role=role, content=content, metadata=metadata)
        expected = {} if metadata is None else metadata
        assert (stored.role, stored.content, stored.metadata) == (role, content, expected)
        batched = log.append_many("worker", owner, [NewMessage(role, content, metadata)])
        assert (batched[0].content, batched[0].metadata) == (content, expected)
        read = log.latest("worker", owner, 2)
        assert read == [stored, batched[0]]
        assert [(m.role, m.content, m.metadata) for m in read] == [(role, content, expected)] * 2

    check()


def test_content_with_nul_is_stored_by_sqlite_and_refused_by_postgres(db: Any, log: MessageLog) -> None:
    """SQLite stores any text; PostgreSQL's text type cannot hold NUL, so there the append is
    refused as an InvalidValueError and changes nothing, whichever way it was made. (In JSON
    metadata a NUL is an escape, which message metadata keeps verbatim on both engines.)"""
    owner = make_owner(db, "worker")
    appends = (
        lambda content: [log.append("worker", owner, role="user", content=content)],
        lambda content: log.append_many("worker", owner, [NewMessage("user", "fine"), NewMessage("user", content)]),
        lambda content: log.append_bulk(
            "worker", [(owner, NewMessage("user", "fine")), (owner, NewMessage("user", content))]
        ),
    )
    for append in appends:
        before = dump(db)
        if is_postgres(db):
            with pytest.raises(errors.InvalidValueError, match="NUL"):
                append("a\x00b")
            assert dump(db) == before
        else:
            stored = append("a\x00b")
            assert stored[-1].content == "a\x00b"
            assert log.get("worker", owner, stored[-1].position) == stored[-1]
    stored = log.append("worker", owner, role="user", content="x", metadata={"a\x00": "b\x00"})
    assert log.get("worker", owner, stored.position).metadata == {"a\x00": "b\x00"}


# --- bad input ---------------------------------------------------------------------------------


BAD_APPENDS = [
    pytest.param({"stream_id": "nobody"}, errors.NotFoundError, id="unknown-owner"),
    pytest.param({"stream_id": 17}, errors.InvalidTypeError, id="int-id"),
    pytest.param({"stream_id": ""}, errors.InvalidValueError, id="empty-id"),
    pytest.param({"content": b"bytes"}, errors.InvalidTypeError, id="bytes-content"),
    pytest.param({"content": {"text": "hi"}}, errors.InvalidTypeError, id="dict-content"),
    pytest.param({"content": None}, errors.InvalidTypeError, id="none-content"),
    pytest.param({"metadata": {"at": datetime.now(UTC)}}, errors.InvalidValueError, id="datetime-metadata"),
    pytest.param({"metadata": {"x": float("inf")}}, errors.InvalidValueError, id="inf-metadata"),
    pytest.param({"metadata": object()}, errors.InvalidValueError, id="object-metadata"),
    pytest.param({"role": ""}, errors.InvalidValueError, id="empty-role"),
    pytest.param({"role": "r" * 65}, errors.InvalidValueError, id="long-role"),
    pytest.param({"role": 1}, errors.InvalidTypeError, id="int-role"),
    pytest.param({"role": "\x00user"}, errors.InvalidValueError, id="nul-role"),
    pytest.param({"idempotency_key": 5}, errors.InvalidTypeError, id="int-key"),
    pytest.param({"stream": "tasks"}, errors.InvalidValueError, id="unknown-stream"),
]


# SQLite runs each case in a database of its own; PostgreSQL runs them all in one database per
# stream (a database costs a tenth of a second to make; every case has an owner of its own).


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize(("change", "error"), BAD_APPENDS)
def test_bad_append_changes_nothing(
    db: Any, log: MessageLog, stream: Stream, change: dict[str, Any], error: type[Exception]
) -> None:
    check_bad_append(db, log, stream, change, error)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("stream", STREAMS)
def test_bad_appends_change_nothing_in_one_database(db: Any, log: MessageLog, stream: Stream) -> None:
    for case in BAD_APPENDS:
        change, error = case.values
        try:
            check_bad_append(db, log, stream, change, error)  # type: ignore[arg-type]
        except BaseException as exc:
            exc.add_note(f"in the case {case.id!r}")
            raise


def check_bad_append(db: Any, log: MessageLog, stream: Stream, change: dict[str, Any], error: type[Exception]) -> None:
    owner = make_owner(db, stream)
    log.append(stream, owner, role="user", content="existing", idempotency_key="k")
    before = dump(db)
    call: dict[str, Any] = {"stream": stream, "stream_id": owner, "role": "user", "content": "new"} | change
    with pytest.raises(error) as info:
        log.append(
            call["stream"],
            call["stream_id"],
            role=call["role"],
            content=call["content"],
            metadata=call.get("metadata"),
            idempotency_key=call.get("idempotency_key"),
        )
    if error is errors.NotFoundError:
        kind = {"router": "conversation", "planner": "planner", "worker": "worker"}[stream]
        assert (info.value.kind, info.value.key) == (kind, "nobody")  # type: ignore[attr-defined]
    good = NewMessage("user", "fine")
    bad = NewMessage(call["role"], call["content"], call.get("metadata"), call.get("idempotency_key"))
    # The same mistake anywhere in a batch or a bulk load rolls back the good messages with it.
    with pytest.raises(error):
        log.append_many(call["stream"], call["stream_id"], [good, good, bad])
    with pytest.raises(error):
        log.append_bulk(call["stream"], [(owner, good), (call["stream_id"], bad), (owner, good)])
    assert dump(db) == before


def test_unknown_owner_in_a_bulk_load_is_named(db: Any, log: MessageLog) -> None:
    owners = [make_owner(db, "planner") for _ in range(3)]
    before = dump(db)
    pairs = [(o, NewMessage("user", "x")) for o in owners] + [("ghost", NewMessage("user", "y"))]
    pairs += [(o, NewMessage("user", "z")) for o in owners]
    with pytest.raises(errors.NotFoundError) as info:
        log.append_bulk("planner", pairs)
    assert (info.value.kind, info.value.key) == ("planner", "ghost")
    assert dump(db) == before


def test_bad_batch_items_change_nothing(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "planner")
    before = dump(db)
    with pytest.raises(errors.InvalidTypeError):
        log.append_many("planner", owner, [NewMessage("user", "ok"), {"role": "user", "content": "x"}])  # type: ignore[list-item]
    with pytest.raises(errors.InvalidTypeError):
        log.append_bulk("planner", [(owner, NewMessage("user", "ok")), NewMessage("user", "x")])  # type: ignore[list-item]
    with pytest.raises(errors.InvalidTypeError):
        log.append_bulk("planner", [(owner, "just text")])  # type: ignore[list-item]
    for bad_limit in (0, -1):
        with pytest.raises(errors.InvalidValueError):
            log.latest("planner", owner, bad_limit)
    with pytest.raises(errors.InvalidTypeError):
        log.after("planner", owner, "3")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidTypeError):
        log.before("planner", owner, 3, limit=True)
    assert dump(db) == before


def test_appends_join_an_open_transaction(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "router")
    before = dump(db)
    with pytest.raises(RuntimeError), agentstate.write(db):
        log.append("router", owner, role="user", content="one")
        log.append_many("router", owner, [NewMessage("user", "two")])
        assert log.count("router", owner) == 2
        raise RuntimeError("caller gives up")
    assert dump(db) == before
    assert log.append("router", owner, role="user", content="again").position == 1


# --- async -------------------------------------------------------------------------------------


def test_async_message_log(db_url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_url)
        try:
            await AsyncAgents(conn).create_planner("p1")
            log = AsyncMessageLog(conn)
            first = await log.append("planner", "p1", role="user", content="hi", idempotency_key="k")
            assert await log.append("planner", "p1", role="user", content="hi", idempotency_key="k") == first
            turn = await log.append_many("planner", "p1", (NewMessage("assistant", str(n)) for n in range(5)))
            assert positions(turn) == [2, 3, 4, 5, 6]
            bulk = await log.append_bulk("planner", iter([("p1", NewMessage("user", "bulk"))]))
            assert positions(bulk) == [7]
            assert positions(await log.latest("planner", "p1", 3)) == [5, 6, 7]
            assert positions(await log.before("planner", "p1", 5, limit=2)) == [3, 4]
            assert positions(await log.after("planner", "p1", 5)) == [6, 7]
            assert positions(await log.between("planner", "p1", since=first.created_at, limit=2)) == [1, 2]
            assert await log.get("planner", "p1", 1) == first
            assert await log.count("planner", "p1") == 7
            assert await log.last_position("planner", "p1") == 7
            assert await log.trim("planner", "p1", keep_last=2) == 5
            with pytest.raises(errors.NotFoundError):
                await log.append("planner", "ghost", role="user", content="x")
            # concurrent appends from many tasks on one connection: each gets its own position
            many = await asyncio.gather(*(log.append("planner", "p1", role="user", content=str(n)) for n in range(20)))
            assert sorted(positions(list(many))) == list(range(8, 28))
        finally:
            await conn.aclose()

    asyncio.run(main())


# --- rows ----------------------------------------------------------------------------------------


def test_fast_built_rows_are_ordinary_frozen_rows(db: Any, log: MessageLog) -> None:
    owner = make_owner(db, "planner")
    log.append("planner", owner, role="user", content="x", metadata=[1])
    read = log.latest("planner", owner)
    direct = Message("planner", owner, 1, "user", "x", [1], None, read[0].created_at)
    assert type(read[0]) is Message
    assert read[0] == direct and repr(read[0]) == repr(direct)
    assert pickle.loads(pickle.dumps(read[0])) == direct
    assert copy.deepcopy(read[0]) == direct
    with pytest.raises(dataclasses.FrozenInstanceError):
        read[0].position = 2  # type: ignore[misc]


def test_builder_refuses_classes_it_cannot_build() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Mutable, NoSlots):
        with pytest.raises(TypeError):
            Builder(cls)


# --- the fast paths of agentstate.values agree with the plain library calls ---------------------


@settings(max_examples=100, deadline=None)
@given(epoch_us=st.integers(min_value=0, max_value=253_402_300_799_999_998))
def test_fast_timestamps_match_strftime(epoch_us: int) -> None:
    def reference(us: int) -> str:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    assert format_time(epoch_us) == reference(epoch_us)
    assert format_time(epoch_us + 1) == reference(epoch_us + 1)  # same second, cached


def test_utc_now_is_a_stored_timestamp() -> None:
    before = format_time(time.time_ns() // 1000)
    now = utc_now()
    assert before <= now <= format_time(time.time_ns() // 1000)
    parse_time(now)


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_fast_json_encoding_matches_json_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert to_json("metadata", value) == expected


def test_metadata_that_is_not_json_is_refused() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    for bad in (cycle, {"x": float("nan")}, {"x": {1, 2}}, [b"bytes"], object()):
        with pytest.raises(errors.InvalidValueError, match="metadata is not JSON-serialisable"):
            to_json("metadata", bad)
