"""schema/postgres/0001_initial.sql: rows that read like SQLite's, the triggers (task events,
message heads), and the CHECKs, foreign keys and cascades of SQLite's schema."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from agentstate import errors
from agentstate.runner import run
from tests.postgres.test_concurrency import create_conversation, create_planner, create_tasks, message


@contextlib.contextmanager
def violates(kind: type[psycopg.Error]) -> Iterator[None]:
    """The statement fails with PostgreSQL's ``kind``: raised as it is (SQL of the test's own) or
    as the agentstate error the runner made of it."""
    with pytest.raises((kind, errors.AgentStateError)) as caught:
        yield
    cause = caught.value if isinstance(caught.value, kind) else caught.value.__cause__
    assert isinstance(cause, kind), repr(caught.value)


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


# The planning fields (0004) of a task created with none of them.
PLAIN = {"priority": 0, "delay_seconds": 0, "waiting_on": 0, "idempotency_key": None}


def claim(conn: Any, owner: str = "executor-1") -> Any:
    return run(conn, "tasks.claim_any", {"owner": owner, "lease_seconds": 60, "lease_backoff_seconds": 0})


def finish(conn: Any, row: Any, to_status: str, result: str | None) -> Any:
    return run(conn, "tasks.finish", {"worker_id": row[0], "token": row[11], "to_status": to_status,
                                      "result": result, "actor": row[12]})  # fmt: skip


def heads(conn: Any) -> dict[tuple[str, str], int]:
    rows = conn.execute("SELECT stream_table, stream_id, last_position FROM message_heads").fetchall()
    return {(table, stream_id): last for table, stream_id, last in rows}


def test_rows_read_like_sqlites(pg: Any) -> None:
    """Timestamps come back as agentstate's UTC text, JSON columns as JSON text."""
    create_planner(pg, "p")
    row = run(pg, "tasks.create", {
        "worker_id": "t", "planner_id": "p", "description": "d", "acceptance_criteria": '["short"]',
        "task_context": '{"doc": "a.pdf", "n": 1.5}', "input_images": "[]", "metadata": "{}", "max_attempts": 3,
        "actor": "p", **PLAIN,
    })  # fmt: skip
    assert STAMP.match(row[15]) and row[15] == row[16]
    assert json.loads(row[4]) == ["short"] and json.loads(row[5]) == {"doc": "a.pdf", "n": 1.5}
    claimed = claim(pg)
    assert STAMP.match(claimed[13]) and claimed[12] == "executor-1"
    planner = run(pg, "agents.get_planners", {"id": "p"})
    assert json.loads(planner[2]) == {} and STAMP.match(planner[3])


def test_every_transition_leaves_an_event_with_who_and_when(pg: Any) -> None:
    create_planner(pg, "p")
    create_tasks(pg, "p", 1)
    claimed = claim(pg)
    done = finish(pg, claimed, "completed", '{"summary": "ok"}')
    pg.execute("UPDATE workers SET task_status = 'pending', result = NULL")  # by hand, in psql, say
    events = run(pg, "tasks.history", {"worker_id": claimed[0]})
    steps = [(e[2], e[3], e[4], e[5]) for e in events]
    assert steps == [
        (None, "pending", 0, "p"),
        ("pending", "claimed", 1, "executor-1"),
        ("claimed", "completed", 1, "executor-1"),
        ("completed", "pending", 1, None),  # a manual change: no actor
    ]
    assert json.loads(events[2][6]) == {"summary": "ok"} and events[1][6] is None
    assert events[1][7] == claimed[16] and events[2][7] == done[16]
    assert events[3][7] > done[16]  # when it happened, from the server's clock
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_checks_and_foreign_keys(pg: Any) -> None:
    create_planner(pg, "p")
    with violates(psycopg.errors.ForeignKeyViolation):
        create_tasks(pg, "nobody", 1)
    create_tasks(pg, "p", 1)
    bad = [
        "UPDATE workers SET task_status = 'claimed'",  # a claim without an owner and a lease
        "UPDATE workers SET task_status = 'done'",
        "UPDATE workers SET attempts = -1",
        "UPDATE workers SET max_attempts = 0",
        "UPDATE workers SET lease_owner = 'x'",  # an owner without a lease
        "UPDATE planners SET status = ''",
        "INSERT INTO planners (planner_id) VALUES (repeat('x', 129))",
    ]
    for statement in bad:
        with violates(psycopg.errors.CheckViolation):
            pg.execute(statement)
    with violates(psycopg.errors.InvalidTextRepresentation):
        run(pg, "agents.update_planners", {"id": "p", "status": None, "metadata": "{not json"})
    with violates(psycopg.errors.ForeignKeyViolation):
        run(pg, "messages.append_planner_messages", message("no-such-planner", "hi"))
    with violates(psycopg.errors.CheckViolation):
        run(pg, "messages.append_planner_messages", {**message("p", "hi"), "role": "r" * 65})
    with violates(psycopg.errors.ForeignKeyViolation):  # a planner with tasks cannot go
        run(pg, "agents.delete_planners", {"id": "p"})


def test_heads_come_and_go_with_their_owners(pg: Any) -> None:
    create_conversation(pg, "c")
    create_planner(pg, "p")
    create_tasks(pg, "p", 2)
    assert heads(pg) == {("router_messages", "c"): 0, ("planner_messages", "p"): 0,
                         ("worker_messages", "task-00000"): 0, ("worker_messages", "task-00001"): 0}  # fmt: skip
    run(pg, "messages.append_worker_messages", message("task-00000", "out"))
    run(pg, "messages.append_router_messages", message("c", "hi"))
    run(pg, "agents.delete_conversations", {"id": "c"})
    assert pg.execute("SELECT count(*) FROM router_messages").fetchone() == (0,)
    with pg.transaction():
        deleted = run(pg, "tasks.delete_planner_tasks", {"planner_id": "p", "force": False, "limit": 10})
    assert deleted == 2
    assert heads(pg) == {("planner_messages", "p"): 0}
    assert pg.execute("SELECT count(*) FROM task_events").fetchone() == (0,)
    assert pg.execute("SELECT count(*) FROM worker_messages").fetchone() == (0,)


def test_positions_never_restart_whatever_is_deleted(pg: Any) -> None:
    create_conversation(pg, "c")
    for n in range(5):
        run(pg, "messages.append_router_messages", message("c", f"m{n}"))
    assert run(pg, "messages.trim_keep_last_router_messages", {"stream_id": "c", "keep": 1}) == 4
    assert run(pg, "messages.clear_router_messages", {"stream_id": "c"}) == 1
    assert run(pg, "messages.append_router_messages", message("c", "after clear"))[0] == 6
    # A row inserted by hand, past the head, then deleted by hand: its position is not reused.
    pg.execute("INSERT INTO router_messages (conversation_id, position, role, content) VALUES ('c', 20, 'user', 'x')")
    assert run(pg, "messages.last_position_router_messages", {"stream_id": "c"})[1] == 20
    pg.execute("DELETE FROM router_messages WHERE position = 20")
    assert run(pg, "messages.append_router_messages", message("c", "next"))[0] == 21
    assert run(pg, "messages.last_position_router_messages", {"stream_id": "c"})[:2] == ("c", 21)


def test_keyset_pages_and_open_time_bounds(pg: Any) -> None:
    create_planner(pg, "p")
    create_tasks(pg, "p", 5)
    page = run(pg, "tasks.list_by_status", {"planner_id": "p", "status": "pending", "after_created_at": "",
                                            "after_worker_id": "", "limit": 3})  # fmt: skip
    rest = run(pg, "tasks.list_by_status", {"planner_id": "p", "status": "pending", "after_created_at": page[-1][15],
                                            "after_worker_id": page[-1][0], "limit": 3})  # fmt: skip
    assert [r[0] for r in page + rest] == [f"task-{i:05d}" for i in range(5)]
    assert dict(run(pg, "tasks.counts", {"planner_id": "p"})) == {
        "pending": 5,
        "claimed": 0,
        "completed": 0,
        "failed_validation": 0,
        "recorded": 0,
        "cancelled": 0,
    }
    create_conversation(pg, "c")
    for n in range(3):
        run(pg, "messages.append_router_messages", message("c", f"m{n}"))
    everything = run(pg, "messages.time_range_router_messages",
                     {"stream_id": "c", "since": "", "until": "~", "limit": 10})  # fmt: skip
    assert [r[0] for r in everything] == [1, 2, 3]
    since_second = run(pg, "messages.time_range_router_messages",
                       {"stream_id": "c", "since": everything[1][5], "until": "~", "limit": 10})  # fmt: skip
    assert [r[0] for r in since_second] == [2, 3]
    assert run(pg, "retention.count_recorded", {"before": ""}) == 0  # '' is before every time


def test_poison_tasks_fail_with_the_reason(pg: Any) -> None:
    create_planner(pg, "p")
    create_tasks(pg, "p", 1)
    pg.execute(
        "UPDATE workers SET task_status = 'claimed', lease_owner = 'dead', fence = 3, attempts = 3, "
        "lease_expires_at = statement_timestamp() - interval '1 second', updated_at = statement_timestamp()"
    )
    assert claim(pg) is None  # no attempts left: not handed out
    assert run(pg, "tasks.expire_exhausted_any", {"owner": "executor-1"}) == 1
    task = run(pg, "tasks.get", {"worker_id": "task-00000"})
    assert task[2] == "failed_validation" and task[12] is None
    assert json.loads(task[8])["last_owner"] == "dead"
    assert run(pg, "tasks.completed_task", {"planner_id": "p"})[0] == "task-00000"


def test_timestamps_read_the_same_in_any_session_time_zone(pg: Any) -> None:
    create_planner(pg, "p")
    utc = run(pg, "agents.get_planners", {"id": "p"})[3]
    pg.execute("SET TIME ZONE 'Asia/Kolkata'")  # +05:30: the loader's slow path
    assert run(pg, "agents.get_planners", {"id": "p"})[3] == utc
    pg.execute("SET TIME ZONE 'UTC'")
    whole = pg.execute("SELECT timestamptz '2026-01-02 03:04:05+00', timestamptz '2026-01-02 03:04:05.1+00'").fetchone()
    assert whole == ("2026-01-02T03:04:05.000000Z", "2026-01-02T03:04:05.100000Z")
