"""Google ADK sessions on an agentstate database: an agent's sessions, their events and ADK's
app, user and session state live in the same file (or PostgreSQL database) as the tasks and
messages of the agents around it.

    from agentstate.integrations.adk import AgentStateSessionService

    session_service = AgentStateSessionService("agents.db")   # was: SqliteSessionService("agents.db")
    runner = Runner(agent=agent, app_name="app", session_service=session_service)

or, for ``adk web`` / ``adk api_server``, by URI: ``--session_service_uri agentstate:///agents.db``
(a path relative to the working directory; ``agentstate:////abs/path.db`` for an absolute one,
as ADK's ``sqlite://`` URIs) or ``agentstate+postgresql://user@host/db``. ADK finds the scheme in
its service registry once this module is imported: put ``import agentstate.integrations.adk``
in the agents folder's ``services.py`` (ADK imports that file before it makes its services).

:class:`AgentStateSessionService` is a ``google.adk.sessions.BaseSessionService``: create, get,
list and delete sessions, ``append_event`` and ``get_user_state``. The tables are
``adk_app_states``, ``adk_user_states``, ``adk_sessions`` and ``adk_events`` (migration 0007 on
SQLite, 0003 on PostgreSQL); every statement is a named query of ``queries/adk.sql``.

**What it promises** (those of ADK's own services, and more):

- ``append_event`` is one write transaction: the stale-session check, the state delta split by
  scope (``app:`` keys per app, ``user:`` per app and user, the rest per session; ``temp:`` keys
  are applied to the session object only and never stored), the event and the session's new
  update time, all or nothing. A partial event is neither stored nor applied.
- The stale-session check runs inside that transaction (under SQLite's write lock, or with the
  session's row locked on PostgreSQL): of two session objects loaded at the same revision, the
  first append wins and the second raises :class:`StaleSessionError`, in any number of
  processes. (ADK's own ``SqliteSessionService`` before 2.15 reads the stored update time before
  its write transaction begins, so two appends that check at once both pass, and the session forks.)
- ``get_session(config=GetSessionConfig(num_recent_events=N, after_timestamp=T))`` reads the
  session's row, then its latest N events from T on as one range of an index, newest first and
  stopping after N: the cost does not grow with the session's length. ``num_recent_events=0``
  returns the session with no events (and reads none).
- Events come back in timestamp order, ties in the order they were appended.
- State that JSON cannot hold (a callable, an object, NaN) is refused with
  :class:`~agentstate.errors.InvalidValueError` (also a ``ValueError``) before anything is
  written, where ADK's own services store the value's ``repr``.
- Errors are :class:`~agentstate.errors.AgentStateError` subclasses; where ADK defines the class
  its callers catch, the error is that class too: :class:`SessionExistsError` (ADK's
  ``AlreadyExistsError``), :class:`SessionNotFoundError` (ADK's, a ``ValueError``),
  :class:`StaleSessionError` (ADK's, a ``ValueError``).

**Where it runs.** Given a path or URL, the service opens its own connection with
:func:`agentstate.connect` (migrating the schema) and runs every call on a worker thread, one
at a time; close it with ``await service.close()`` (or ``async with``). Given a connection from
:func:`agentstate.connect` or :func:`agentstate.connect_async`, it uses that one, which stays
yours to close. A write cancelled mid-way finishes (commits or rolls back) before
``CancelledError`` reaches the caller.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlparse

from google.adk.errors._stale_session_error import StaleSessionError as AdkStaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError as AdkSessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
from google.adk.sessions.session import Session

from agentstate import errors
from agentstate.async_calls import call_async, run_async, settled
from agentstate.engines import DEFAULT_PATH, AsyncConnection, Connection, connect, is_connection, is_sqlite, translating
from agentstate.integrations import _adk_operations as operations
from agentstate.integrations._adk_operations import _event_json, _id, _split, _timestamp
from agentstate.values import require_int

T = TypeVar("T")

SCHEMES = ("agentstate", "agentstate+postgresql", "agentstate+postgres")
"""The URI schemes registered in ADK's service registry."""


class SessionExistsError(errors.DuplicateError, AlreadyExistsError):
    """``create_session`` was given the id of a session that exists: ADK's ``AlreadyExistsError``."""

    def __init__(self, message: str) -> None:
        AlreadyExistsError.__init__(self, message)


class SessionNotFoundError(errors.NotFoundError, AdkSessionNotFoundError):
    """``append_event`` to a session that is not stored (never created, or deleted): ADK's
    ``SessionNotFoundError``, a ``ValueError``."""


class StaleSessionError(errors.StaleSessionError, AdkStaleSessionError):
    """``append_event`` with a session object older than the stored session (another append
    came first): reload it with ``get_session``. ADK's ``StaleSessionError``, a ``ValueError``."""


def _options(where: str, options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :func:`agentstate.connect`, refused by name if it has no such one."""
    known = set(inspect.signature(connect).parameters) - {"path"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise errors.UnknownFieldError(f"{where}: agentstate.connect() takes no {', '.join(unknown)}")
    return options


def target(uri: str) -> tuple[str, dict[str, Any]]:
    """The path or URL, and the connect() options, of an ``agentstate:`` or
    ``agentstate+postgresql:`` URI (ADK's ``sqlite://`` conventions: ``agentstate:///rel.db`` is
    relative to the working directory, ``agentstate:////abs.db`` absolute, no path in memory)."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme not in SCHEMES:
        raise errors.InvalidValueError(f"{uri!r} is not an agentstate URI (schemes: {', '.join(SCHEMES)})")
    if scheme != "agentstate":
        return "postgresql" + uri[len(parsed.scheme) :], {}  # "://user@host/db" and whatever follows
    if parsed.netloc not in ("", "localhost"):
        raise errors.InvalidValueError(
            f"{uri!r}: an agentstate URI names a file after three slashes (agentstate:///relative.db, "
            "agentstate:////absolute/path.db), not a host"
        )
    path = unquote(parsed.path)
    path = path[1:] if path.startswith("/") else path
    options: dict[str, Any] = dict(parse_qsl(parsed.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"durability", "busy_timeout_ms"})
    if unknown:  # a query string holds text: only the options whose text is their value
        raise errors.UnknownFieldError(
            f"{uri!r}: an agentstate URI takes durability and busy_timeout_ms, not {unknown}"
        )
    if "busy_timeout_ms" in options:
        try:
            options["busy_timeout_ms"] = int(options["busy_timeout_ms"])
        except ValueError:
            raise errors.InvalidValueError(f"{uri!r}: busy_timeout_ms must be an integer") from None
    return path or ":memory:", _options(uri, options)


class AgentStateSessionService(BaseSessionService):
    """A Google ADK session service on an agentstate database (see the module).

    :param db: a database path (created and migrated if needed), a ``postgresql://`` URL, or a
        connection from :func:`agentstate.connect` / :func:`agentstate.connect_async` (it stays
        yours to close).
    :param uri: instead of ``db``, an ``agentstate:`` or ``agentstate+postgresql:`` URI (what
        ADK's service registry passes).
    :param options: for a path or URL, keyword arguments of :func:`agentstate.connect`
        (``durability="full"``, ``busy_timeout_ms``, ``pool_size``, ...).
    :raises InvalidTypeError, InvalidValueError, UnknownFieldError: a bad path, URI or option.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | Connection | AsyncConnection | None = None,
        *,
        uri: str | None = None,
        agents_dir: str | None = None,
        **options: Any,
    ) -> None:
        del agents_dir  # what ADK's registry passes every session service; nothing of ours
        if uri is not None:
            if db is not None:
                raise errors.InvalidValueError("AgentStateSessionService takes a db or a uri, not both")
            if not isinstance(uri, str):
                raise errors.InvalidTypeError(f"uri must be a str, not {type(uri).__name__}")
            db, from_uri = target(uri)
            options = {**from_uri, **options}
        db = DEFAULT_PATH if db is None else db
        self._owned = False
        self._async = False
        self._turn: threading.Lock | None = None
        if isinstance(db, (str, os.PathLike)):
            self.conn: Any = connect(db, **_options("AgentStateSessionService", options))
            self._owned = True
        elif is_connection(db):
            if options:
                raise errors.InvalidValueError("connect() options are for a path or URL, not a connection")
            self.conn = db
            with translating("AgentStateSessionService"):  # a closed connection answers nothing
                self._async = bool(getattr(db, "is_async", False))
        else:
            raise errors.InvalidTypeError(
                "db must be a path (a str or pathlib.Path), a postgresql:// URL, or a connection from "
                f"agentstate.connect() or connect_async(), not {type(db).__name__}"
            )
        if not self._async and is_sqlite(self.conn):
            # Calls on one SQLite connection take turns: two transactions interleaved on one
            # connection would be one. (A PostgreSQL handle lends each thread a connection.)
            self._turn = threading.Lock()
        self._closed = False

    # --- where the calls run -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise errors.SessionClosedError("AgentStateSessionService is closed")

    def _call(self, operation: Callable[..., T], *args: Any) -> T:
        if self._turn is None:
            return operation(self.conn, *args)
        with self._turn:
            return operation(self.conn, *args)

    async def _read(self, operation: Callable[..., T], *args: Any) -> T:
        self._check_open()
        with translating():
            if self._async:
                return await run_async(self.conn, operation, self.conn, *args)
            return await asyncio.to_thread(self._call, operation, *args)

    async def _write(self, operation: Callable[..., T], *args: Any) -> T:
        self._check_open()
        with translating():
            if self._async:
                return await call_async(self.conn, operation, self.conn, *args)
            result, cancelled = await settled(asyncio.to_thread(self._call, operation, *args))
        if cancelled:
            raise asyncio.CancelledError
        return result

    async def close(self) -> None:
        """Close the connection the service opened (one it was given stays open). Later calls
        raise :class:`~agentstate.errors.SessionClosedError`."""
        self._closed = True
        if self._owned:
            self._owned = False
            await asyncio.to_thread(self._call, type(self.conn).close)

    async def __aenter__(self) -> AgentStateSessionService:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- ADK's session service -------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """A new session, with ``state`` split by scope (``app:`` and ``user:`` keys merged into
        the app's and the user's state, ``temp:`` keys dropped); ``session_id`` None (or blank)
        makes a UUID.

        :raises SessionExistsError: the app and user already have a session of that id.
        """
        app_name, user_id = _id("app_name", app_name), _id("user_id", user_id)
        wanted = None
        if session_id is not None:
            if not isinstance(session_id, str):
                raise errors.InvalidTypeError(f"session_id must be a str, not {type(session_id).__name__}")
            wanted = _id("session_id", session_id, strip=True) if session_id.strip() else None
        scopes = _split("state", state)
        return await self._write(operations.create_session, app_name, user_id, wanted, scopes, _exists)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events (``config``: the latest ``num_recent_events``, 0 for none;
        those from ``after_timestamp`` on), or None if it is not stored."""
        app_name, user_id = _id("app_name", app_name), _id("user_id", user_id)
        session_id = _id("session_id", session_id, strip=True)
        limit, after = None, None
        if config is not None:
            if not isinstance(config, GetSessionConfig):
                raise errors.InvalidTypeError(f"config must be a GetSessionConfig, not {type(config).__name__}")
            if config.num_recent_events is not None:
                limit = require_int("num_recent_events", config.num_recent_events, minimum=0)
            if config.after_timestamp is not None:
                after = _timestamp("after_timestamp", config.after_timestamp)
        return await self._read(operations.get_session, app_name, user_id, session_id, limit, after)

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """The app's sessions (``user_id`` None: every user's), oldest update first, with their
        merged state and no events."""
        app_name = _id("app_name", app_name)
        owner = None if user_id is None else _id("user_id", user_id)
        return ListSessionsResponse(sessions=await self._read(operations.list_sessions, app_name, owner))

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete a session and its events (nothing happens if it is not stored)."""
        app_name, user_id = _id("app_name", app_name), _id("user_id", user_id)
        session_id = _id("session_id", session_id, strip=True)
        await self._write(operations.delete_session, app_name, user_id, session_id)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's state in the app, keys without the ``user:`` prefix ({} if none)."""
        app_name, user_id = _id("app_name", app_name), _id("user_id", user_id)
        return await self._read(operations.user_state, app_name, user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store ``event`` and its state delta in one transaction, then apply it to ``session``
        (a partial event is returned untouched). Everything is checked before the transaction.

        :raises SessionNotFoundError: the session is not stored.
        :raises StaleSessionError: ``session`` is older than the stored session.
        :raises InvalidValueError: the delta or the event is not JSON-serialisable.
        """
        if not isinstance(session, Session):
            raise errors.InvalidTypeError(f"session must be an ADK Session, not {type(session).__name__}")
        if not isinstance(event, Event):
            raise errors.InvalidTypeError(f"event must be an ADK Event, not {type(event).__name__}")
        if event.partial:
            return event
        for name in ("app_name", "user_id"):
            _id(f"session.{name}", getattr(session, name))
        _id("session.id", session.id)
        _timestamp("event.timestamp", event.timestamp)
        delta = event.actions.state_delta if event.actions else None
        scopes = _split("event.actions.state_delta", delta or {})
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        event_json = _event_json(event)
        missing = _missing(session)
        await self._write(operations.append_event, session, event, scopes, event_json, missing, _stale)
        return self._commit_event_to_session(session, event)


def _exists(session_id: str) -> Exception:
    return SessionExistsError(f"Session with id {session_id} already exists.")


def _missing(session: Session) -> Callable[[], Exception]:
    def make() -> Exception:
        return SessionNotFoundError("ADK session", (session.app_name, session.user_id, session.id))

    return make


def _stale() -> Exception:
    return StaleSessionError(
        "The session has been modified in storage since it was loaded (another append came first). "
        "Please reload the session with get_session before appending more events."
    )


# --- ADK's service registry ---------------------------------------------------------------------


def _factory(uri: str, **kwargs: Any) -> AgentStateSessionService:
    kwargs.pop("agents_dir", None)
    return AgentStateSessionService(uri=uri, **kwargs)


def register(registry: Any = None) -> None:
    """Register the ``agentstate:`` and ``agentstate+postgresql:`` schemes in ADK's service
    registry (done when this module is imported; call it again for a registry of your own)."""
    if registry is None:
        from google.adk.cli.service_registry import get_service_registry

        registry = get_service_registry()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, cast(Any, _factory))


register()

__all__ = [
    "SCHEMES",
    "AgentStateSessionService",
    "SessionExistsError",
    "SessionNotFoundError",
    "StaleSessionError",
    "register",
    "target",
]
