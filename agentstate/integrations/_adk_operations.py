"""The ADK session service's operations on a synchronous connection (the async connection's
worker thread has one): each one read snapshot, or one write transaction, of the named queries
of ``queries/adk.sql``; and the checks that run before anything is written."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import to_jsonable_python

from agentstate import errors, transactions
from agentstate.engines import Connection
from agentstate.runner import run
from agentstate.values import from_json, require_str, short, to_json

MAX_ID_LENGTH = 128
"""The longest app name, user id or session id (ADK's own database schema allows 128)."""
NO_LIMIT = 2**62
"""The ``:limit`` of an events read without ``num_recent_events``: the range bounds it."""
EARLIEST = -math.inf
PAGE = 100
"""How many sessions each read of ``list_sessions`` takes."""
"""The ``:after`` of an events read without ``after_timestamp``."""


# --- checks: everything is refused before the transaction begins ----------------------------


def _id(name: str, value: object, *, strip: bool = False) -> str:
    text = require_str(name, value)
    if strip:  # ADK's in-memory and SQLite services read a padded session id as its stripped form
        text = require_str(name, text.strip())
    if len(text) > MAX_ID_LENGTH:
        raise errors.InvalidValueError(f"{name} is {len(text)} characters long; the limit is {MAX_ID_LENGTH}")
    return text


def _state_json(what: str, state: dict[str, Any]) -> str:
    """A scope's state as JSON text: what pydantic turns into JSON faithfully (datetimes, models,
    ...), as ADK's own services store it; a value it cannot (a callable, an object) is refused,
    where ADK's services would store its repr instead."""
    try:
        plain = to_jsonable_python(state)
    except Exception as exc:  # pydantic's serialisation error: the value came from the caller
        raise errors.InvalidValueError(f"{what} is not JSON-serialisable: {exc}") from exc
    return to_json(what, plain)  # NaN, infinities and lone surrogates are refused here


def _split(what: str, state: object) -> dict[str, dict[str, Any]]:
    """A state or state delta split by scope (``app``, ``user``, ``session``; ``temp:`` keys
    dropped), each checked as JSON. Keys keep no prefix, as ADK stores them."""
    if state is None:
        state = {}
    if not isinstance(state, dict):
        raise errors.InvalidTypeError(f"{what} must be a dict, not {type(state).__name__}")
    scopes: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}}
    for key, value in state.items():
        if not isinstance(key, str):
            raise errors.InvalidTypeError(f"{what} keys must be str, not {type(key).__name__} ({short(key)})")
        if key.startswith(State.APP_PREFIX):
            scopes["app"][key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            scopes["user"][key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            scopes["session"][key] = value
    for scope, values in scopes.items():
        _state_json(f"{what} ({scope} keys)", values)
    return scopes


def _timestamp(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise errors.InvalidValueError(f"{what} must be a finite number of seconds, not {short(value)}")
    return float(value)


def _event_json(event: Event) -> str:
    try:
        return event.model_dump_json(exclude_none=True)
    except Exception as exc:  # pydantic's serialisation error: something in the event is not JSON
        raise errors.InvalidValueError(f"event {event.id!r} cannot be stored as JSON: {exc}") from exc


def _merged(app: str | None, user: str | None, session: str) -> dict[str, Any]:
    """ADK's view of a session's state: its own keys, then the app's and the user's, prefixed."""
    state = cast(dict[str, Any], from_json(session))
    for key, value in cast(dict[str, Any], from_json(app or "{}")).items():
        state[State.APP_PREFIX + key] = value
    for key, value in cast(dict[str, Any], from_json(user or "{}")).items():
        state[State.USER_PREFIX + key] = value
    return state


def marker(session_key: int, revision: int) -> str:
    """The stale-session marker a loaded session carries: the stored row and its revision."""
    return f"agentstate:{session_key}:{revision}"


def _session(app_name: str, user_id: str, session_id: str, state: dict[str, Any], update_time: float,
             session_key: int, revision: int, events: list[Event] | None = None) -> Session:  # fmt: skip
    session = Session(
        id=session_id, app_name=app_name, user_id=user_id, state=state, events=events or [],
        last_update_time=update_time,
    )  # fmt: skip
    session._storage_update_marker = marker(session_key, revision)
    return session


# --- the operations ---------------------------------------------------------------------------


def _merge_scope(conn: Connection, scope: str, keys: dict[str, Any], delta: dict[str, Any], now: float) -> None:
    """Merge a delta into the app's or the user's state (dict.update: the delta's keys win)."""
    run(conn, f"adk.ensure_{scope}_state", {**keys, "now": now})
    stored = cast(dict[str, Any], from_json(run(conn, f"adk.{scope}_state_for_update", keys)))
    stored.update(delta)
    run(conn, f"adk.put_{scope}_state", {**keys, "state": _state_json(f"{scope} state", stored), "now": now})


def create_session(conn: Connection, app_name: str, user_id: str, session_id: str | None,
                   scopes: dict[str, dict[str, Any]], exists: Callable[[str], Exception]) -> Session:  # fmt: skip
    """A new session, its app and user state merged in, in one write transaction."""
    now = time.time()
    session_id = session_id or str(uuid.uuid4())
    app = {"app_name": app_name}
    user = {"app_name": app_name, "user_id": user_id}
    session_state = _state_json("state", scopes["session"])
    with transactions.write(conn):
        created = run(
            conn, "adk.create_session", {**user, "session_id": session_id, "state": session_state, "now": now}
        )
        if created is None:
            raise exists(session_id)
        # Both rows are made here, so an append's locking read always finds one to lock.
        for scope, keys in (("app", app), ("user", user)):
            if scopes[scope]:
                _merge_scope(conn, scope, keys, scopes[scope], now)
            else:
                run(conn, f"adk.ensure_{scope}_state", {**keys, "now": now})
        app_state = run(conn, "adk.app_state", app)
        user_state = run(conn, "adk.user_state", user)
    state = _merged(app_state, user_state, session_state)
    return _session(app_name, user_id, session_id, state, now, created[0], created[1])


def get_session(conn: Connection, app_name: str, user_id: str, session_id: str, limit: int | None,
                after: float | None) -> Session | None:  # fmt: skip
    """A session with its latest ``limit`` events from ``after`` on (None: no bound; 0 events:
    no read of them), in one read snapshot: the session's row, then one range of its events."""
    with transactions.reading(conn):
        found = run(conn, "adk.session", {"app_name": app_name, "user_id": user_id, "session_id": session_id})
        if found is None:
            return None
        session_key, state, update_time, revision, app_state, user_state = found
        rows = [] if limit == 0 else run(conn, "adk.events", {
            "session_key": session_key, "after": EARLIEST if after is None else after,
            "limit": NO_LIMIT if limit is None else limit,
        })  # fmt: skip
    events = [Event.model_validate_json(row[0]) for row in reversed(rows)]
    merged = _merged(app_state, user_state, state)
    return _session(app_name, user_id, session_id, merged, update_time, session_key, revision, events)


def list_sessions(conn: Connection, app_name: str, user_id: str | None) -> list[Session]:
    """An app's sessions (or one user's), oldest update first, state merged, without events:
    pages of :data:`PAGE`, each a range of an index, in one read snapshot."""
    rows: list[Any] = []
    key: dict[str, Any] = {"app_name": app_name, "after_time": EARLIEST, "after_id": "", "limit": PAGE}
    with transactions.reading(conn):
        app_state = run(conn, "adk.app_state", {"app_name": app_name})
        if user_id is None:
            users = dict(run(conn, "adk.user_states", {"app_name": app_name}))
            key["after_user"] = ""
        else:
            users = {user_id: run(conn, "adk.user_state", {"app_name": app_name, "user_id": user_id})}
            key["user_id"] = user_id
        while True:
            page = run(conn, "adk.list_sessions" if user_id is None else "adk.list_user_sessions", key)
            rows.extend(page)
            if len(page) < PAGE:
                break
            key.update(after_time=page[-1][4], after_id=page[-1][2])
            if user_id is None:
                key["after_user"] = page[-1][1]
    return [
        _session(app_name, owner, session_id, _merged(app_state, users.get(owner), state), update_time, key_, revision)
        for key_, owner, session_id, state, update_time, revision in rows
    ]


def delete_session(conn: Connection, app_name: str, user_id: str, session_id: str) -> None:
    with transactions.write(conn):
        run(conn, "adk.delete_session", {"app_name": app_name, "user_id": user_id, "session_id": session_id})


def user_state(conn: Connection, app_name: str, user_id: str) -> dict[str, Any]:
    found = run(conn, "adk.user_state", {"app_name": app_name, "user_id": user_id})
    return cast(dict[str, Any], from_json(found or "{}"))


def _stale(conn: Connection, session: Session, session_key: int, revision: int, update_time: float) -> bool:
    """ADK's stale-session rule, on the row this transaction holds: a session loaded by this
    service carries its revision, which must be the stored one; one without (made by hand, or
    by another service) is stale when storage was updated after it and its last event is not the
    stored last event (DatabaseSessionService's fallback)."""
    carried = session._storage_update_marker
    if carried is not None:
        return carried != marker(session_key, revision)
    if update_time <= session.last_update_time:
        return False
    latest = run(conn, "adk.latest_event_id", {"session_key": session_key})
    return bool(latest != (session.events[-1].id if session.events else None))


def append_event(conn: Connection, session: Session, event: Event, scopes: dict[str, dict[str, Any]],
                 event_json: str, missing: Callable[[], Exception], stale: Callable[[], Exception]) -> None:  # fmt: skip
    """Store an event and its state delta, scope by scope, in one write transaction that first
    checks (under the write lock, or the session row's lock) that ``session`` is not stale.
    Updates the session object's update time and marker once committed."""
    timestamp = _timestamp("event.timestamp", event.timestamp)
    ids = {"app_name": session.app_name, "user_id": session.user_id, "session_id": session.id}
    with transactions.write(conn):
        found = run(conn, "adk.session_for_update", ids)
        if found is None:
            raise missing()
        session_key, state, update_time, revision = found
        if _stale(conn, session, session_key, revision, update_time):
            raise stale()
        if scopes["app"]:
            _merge_scope(conn, "app", {"app_name": session.app_name}, scopes["app"], timestamp)
        if scopes["user"]:
            user = {"app_name": session.app_name, "user_id": session.user_id}
            _merge_scope(conn, "user", user, scopes["user"], timestamp)
        new_state = None
        if scopes["session"]:
            stored = cast(dict[str, Any], from_json(state))
            stored.update(scopes["session"])
            new_state = _state_json("session state", stored)
        seq, revision = run(
            conn, "adk.touch_session", {"session_key": session_key, "state": new_state, "now": timestamp}
        )
        run(conn, "adk.insert_event", {
            "session_key": session_key, "timestamp": timestamp, "seq": seq, "event_id": event.id, "event": event_json,
        })  # fmt: skip
    session.last_update_time = timestamp
    session._storage_update_marker = marker(session_key, revision)
