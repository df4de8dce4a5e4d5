"""Conversations, routers and planners: create, get, update, keyset lists; router-planner links.
Every test runs on SQLite and PostgreSQL (the ``db`` and ``db_url`` fixtures)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentstate
from agentstate import errors
from agentstate.agents import Agents, Conversation, Link, Planner, Router
from agentstate.aio import AsyncAgents
from tests.engines import rows
from tests.messages_support import dump, examples

# (kind, create, get, update, list, key attribute) for the three agent tables
KINDS = {
    "conversation": ("create_conversation", "get_conversation", "update_conversation", "list_conversations", "id"),
    "router": ("create_router", "get_router", "update_router", "list_routers", "router_id"),
    "planner": ("create_planner", "get_planner", "update_planner", "list_planners", "planner_id"),
}
ROW_TYPES = {"conversation": Conversation, "router": Router, "planner": Planner}


def ops(agents: Agents, kind: str) -> tuple[Callable[..., Any], ...]:
    create, get, update, list_, _ = KINDS[kind]
    return getattr(agents, create), getattr(agents, get), getattr(agents, update), getattr(agents, list_)


def key_of(row: Any, kind: str) -> str:
    return str(getattr(row, KINDS[kind][4]))


@pytest.mark.parametrize("kind", KINDS)
def test_create_get_update(db: Any, kind: str) -> None:
    create, get, update, _ = ops(Agents(db), kind)
    row = create(f"{kind}-1", metadata={"model": "small", "tags": ["a", "b"]})
    assert type(row) is ROW_TYPES[kind]
    assert key_of(row, kind) == f"{kind}-1"
    assert row.status == "active"
    assert row.metadata == {"model": "small", "tags": ["a", "b"]}
    assert row.created_at == row.updated_at
    assert get(f"{kind}-1") == row

    updated = update(f"{kind}-1", status="paused")
    assert updated.status == "paused"
    assert updated.metadata == row.metadata  # None keeps it
    assert updated.updated_at >= row.updated_at
    assert updated.created_at == row.created_at

    replaced = update(f"{kind}-1", metadata={"model": "large"})
    assert (replaced.status, replaced.metadata) == ("paused", {"model": "large"})
    assert get(f"{kind}-1") == replaced

    with pytest.raises(dataclasses.FrozenInstanceError):
        replaced.status = "x"


@pytest.mark.parametrize("kind", KINDS)
def test_generated_ids_and_defaults(db: Any, kind: str) -> None:
    create, get, _, _ = ops(Agents(db), kind)
    first, second = create(), create()
    assert key_of(first, kind) != key_of(second, kind)
    assert len(key_of(first, kind)) == 32
    assert first.metadata == {}
    assert get(key_of(second, kind)) == second


@pytest.mark.parametrize("kind", KINDS)
def test_missing_rows(db: Any, kind: str) -> None:
    _, get, update, _ = ops(Agents(db), kind)
    with pytest.raises(errors.NotFoundError) as info:
        get("nobody")
    assert (info.value.kind, info.value.key) == (kind, "nobody")
    before = dump(db)
    with pytest.raises(errors.NotFoundError):
        update("nobody", status="paused")
    assert dump(db) == before


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_create_changes_nothing(db: Any, kind: str) -> None:
    create, _, _, _ = ops(Agents(db), kind)
    create("same", metadata={"v": 1})
    before = dump(db)
    with pytest.raises(errors.DuplicateError, match="'same' already exists"):
        create("same", metadata={"v": 2})
    assert dump(db) == before


BAD_INPUT = [
    ((42,), {}, errors.InvalidTypeError),
    ((b"bytes-id",), {}, errors.InvalidTypeError),
    (("",), {}, errors.InvalidValueError),
    (("x" * 129,), {}, errors.InvalidValueError),
    (("\x00id",), {}, errors.InvalidValueError),
    (("ok",), {"status": 3}, errors.InvalidTypeError),
    (("ok",), {"status": ""}, errors.InvalidValueError),
    (("ok",), {"status": "s" * 65}, errors.InvalidValueError),
    (("ok",), {"status": "\x00"}, errors.InvalidValueError),
    (("ok",), {"metadata": {"when": object()}}, errors.InvalidValueError),
    (("ok",), {"metadata": {"nan": float("nan")}}, errors.InvalidValueError),
    (("ok",), {"metadata": {1, 2}}, errors.InvalidValueError),
]

# SQLite runs each case in a database of its own; PostgreSQL runs them all in one database per
# kind (a database costs a tenth of a second to make; every case must leave it unchanged).


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("args", "kwargs", "error"), BAD_INPUT)
def test_bad_input_changes_nothing(
    db: Any, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    ops(Agents(db), kind)[0]("ok")
    check_bad_input(db, kind, args, kwargs, error)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_changes_nothing_in_one_database(db: Any, kind: str) -> None:
    ops(Agents(db), kind)[0]("ok")
    for n, (args, kwargs, error) in enumerate(BAD_INPUT):
        try:
            check_bad_input(db, kind, args, kwargs, error)
        except BaseException as exc:
            exc.add_note(f"in the case BAD_INPUT[{n}]: {args!r:.40}, {kwargs!r:.40}")
            raise


def check_bad_input(db: Any, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]) -> None:
    """A bad create or update raises ``error`` and changes nothing (the row "ok" exists)."""
    create, _, update, list_ = ops(Agents(db), kind)
    before = dump(db)
    with pytest.raises(error):
        create(*args, **kwargs)
    if args != ("ok",):
        with pytest.raises(error):
            update(*args, status="paused")
    elif kwargs:
        with pytest.raises(error):
            update("ok", **kwargs)
    assert dump(db) == before
    with pytest.raises(errors.InvalidTypeError):
        list_("active", limit="10")
    with pytest.raises(errors.InvalidValueError):
        list_("active", limit=0)


@pytest.mark.parametrize("kind", KINDS)
def test_list_by_status_pages_in_order(db: Any, kind: str) -> None:
    create, _, update, list_ = ops(Agents(db), kind)
    made = [create(f"{kind}-{n:02d}") for n in range(25)]
    for row in made[::3]:
        update(key_of(row, kind), status="idle")
    active = [key_of(r, kind) for r in made if r not in made[::3]]
    for size in (1, 2, 7, 16, 100):
        seen: list[str] = []
        page = list_("active", limit=size)
        while page:
            assert len(page) <= size
            seen += [key_of(r, kind) for r in page]
            page = list_("active", after=page[-1], limit=size)
        assert seen == active
    assert [key_of(r, kind) for r in list_("idle")] == [key_of(r, kind) for r in made[::3]]
    assert list_("retired") == []


def test_keyset_pages_with_tied_timestamps(db: Any) -> None:
    """Rows sharing a created_at still come back once each, ordered by (created_at, id)."""
    agents = Agents(db)

    @examples(db, 40)
    @given(
        stamps=st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=30),
        size=st.integers(min_value=1, max_value=8),
    )
    def check(stamps: list[int], size: int) -> None:
        rows(db, "DELETE FROM conversations")
        for n, stamp in enumerate(stamps):
            rows(
                db,
                "INSERT INTO conversations (id, created_at, updated_at) VALUES (?, ?, ?)",
                (f"c{n:03d}", f"2026-01-01T00:00:0{stamp}.000000Z", "2026-01-01T00:00:00.000000Z"),
            )
        expected = [c for _, c in sorted((stamp, f"c{n:03d}") for n, stamp in enumerate(stamps))]
        seen: list[str] = []
        page = agents.list_conversations(limit=size)
        while page:
            seen += [c.id for c in page]
            page = agents.list_conversations(after=page[-1], limit=size)
        assert seen == expected

    check()


def test_links(db: Any) -> None:
    agents = Agents(db)
    for name in ("r1", "r2"):
        agents.create_router(name)
    for name in ("p1", "p2", "p3"):
        agents.create_planner(name)
    link = agents.link("r1", "p2")
    assert isinstance(link, Link)
    assert (link.router_id, link.planner_id) == ("r1", "p2")
    agents.link("r1", "p1")
    agents.link("r2", "p2")
    assert [p.planner_id for p in agents.planners_of("r1")] == ["p1", "p2"]
    assert [r.router_id for r in agents.routers_of("p2")] == ["r1", "r2"]
    assert agents.planners_of("r-unknown") == []
    assert agents.routers_of("p3") == []

    assert agents.unlink("r1", "p2") is True
    assert agents.unlink("r1", "p2") is False
    assert [p.planner_id for p in agents.planners_of("r1")] == ["p1"]
    assert [r.router_id for r in agents.routers_of("p2")] == ["r2"]
    agents.link("r1", "p2")  # a removed pair can be linked again


def test_link_errors_change_nothing(db: Any) -> None:
    agents = Agents(db)
    agents.create_router("r1")
    agents.create_planner("p1")
    agents.link("r1", "p1")
    before = dump(db)

    with pytest.raises(errors.DuplicateError, match="router 'r1' is already linked to planner 'p1'"):
        agents.link("r1", "p1")
    with pytest.raises(errors.NotFoundError) as info:
        agents.link("r-missing", "p1")
    assert (info.value.kind, info.value.key) == ("router", "r-missing")
    with pytest.raises(errors.NotFoundError) as info:
        agents.link("r1", "p-missing")
    assert (info.value.kind, info.value.key) == ("planner", "p-missing")
    with pytest.raises(errors.NotFoundError) as info:
        agents.link("r-missing", "p-missing")
    assert info.value.kind == "router"
    with pytest.raises(errors.InvalidTypeError):
        agents.link("r1", 7)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidTypeError):
        agents.unlink(None, "p1")  # type: ignore[arg-type]
    assert dump(db) == before


def test_writes_join_an_open_transaction(db: Any) -> None:
    """Inside the caller's transaction each call is a savepoint: the caller's rollback undoes it."""
    agents = Agents(db)
    before = dump(db)
    with pytest.raises(RuntimeError), agentstate.write(db):
        agents.create_planner("p1")
        agents.create_router("r1")
        agents.link("r1", "p1")
        raise RuntimeError("caller gives up")
    assert dump(db) == before


def test_async_agents(db_url: str) -> None:
    async def main() -> None:
        conn = await agentstate.connect_async(db_url)
        try:
            agents = AsyncAgents(conn)
            conversation = await agents.create_conversation("c1", metadata={"topic": "billing"})
            assert await agents.get_conversation("c1") == conversation
            assert (await agents.update_conversation("c1", status="closed")).status == "closed"
            assert [c.id for c in await agents.list_conversations("closed")] == ["c1"]
            router, planner = await agents.create_router("r1"), await agents.create_planner("p1")
            await agents.update_router("r1", metadata={"v": 2})
            await agents.update_planner("p1", status="idle")
            assert (await agents.get_router("r1")).metadata == {"v": 2}
            assert (await agents.get_planner("p1")).status == "idle"
            assert await agents.list_routers() == [await agents.get_router("r1")]
            assert await agents.list_planners("idle", after=None, limit=5) == [await agents.get_planner("p1")]
            await agents.link(router.router_id, planner.planner_id)
            assert [p.planner_id for p in await agents.planners_of("r1")] == ["p1"]
            assert [r.router_id for r in await agents.routers_of("p1")] == ["r1"]
            with pytest.raises(errors.DuplicateError):
                await agents.link("r1", "p1")
            assert await agents.unlink("r1", "p1") is True
            with pytest.raises(errors.NotFoundError):
                await agents.get_planner("nobody")
        finally:
            await conn.aclose()

    asyncio.run(main())
