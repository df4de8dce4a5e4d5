"""Shared fixtures: a migrated in-memory database, a file path for WAL and multi-process tests,
a check that every test closes the connections it opened, and the two engines (``db``,
``db_url``: see tests/engines.py), with the session's throwaway PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import postgres_server as servers
import pytest

import agentstate
from agentstate import runner
from agentstate.sqlite.wal_checkpoints import is_background
from tests import background, engines

_started: list[servers.Server] = []

# Every query a test runs proves it returned no more rows than its header declares.
runner.CHECK_CARDINALITY = True


@pytest.fixture(autouse=True)
def no_leaked_connections() -> Iterator[None]:
    before = {id(c) for c in apsw.connections()}
    yield
    leaked = [c for c in apsw.connections() if id(c) not in before and not is_background(c)]
    for conn in leaked:
        conn.close()
    assert not leaked, f"test left {len(leaked)} connection(s) open: {[c.filename for c in leaked]}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "agentstate.db"


@pytest.fixture
def fresh_db() -> Iterator[apsw.Connection]:
    conn = agentstate.connect(":memory:")
    yield conn
    conn.close()


@pytest.fixture
def file_db(db_path: Path) -> Iterator[apsw.Connection]:
    conn = agentstate.connect(db_path)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.Server]:
    """The test session's PostgreSQL server, started on first use (so an SQLite-only run never
    starts one) and stopped at the end."""
    try:
        found = servers.start()
    except servers.Unavailable as exc:
        pytest.fail(f"no PostgreSQL server for the tests: {exc}")
    _started.append(found)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: servers.Server) -> str:
    """The name of a database migrated to the newest schema, to copy."""
    name = f"{engines.TEMPLATE}_{os.getpid()}"
    pg_server.create_database(name)
    agentstate.connect(pg_server.url(name), pool_size=1).close()
    return name


@pytest.fixture(params=engines.ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What agentstate.connect() takes, for a fresh, migrated database of this test's own: an
    SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "agentstate.db"
        agentstate.connect(path).close()
        yield str(path)
        return
    server: servers.Server = request.getfixturevalue("pg_server")
    name, _ = engines.fresh_database(server, request.getfixturevalue("pg_template"))
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    """A connection to ``db_url``, closed after the test."""
    conn = agentstate.connect(db_url)
    yield conn
    conn.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for found in _started:
        terminalreporter.write_line(f"postgres: {found.version} from {found.origin}, ready in {found.started_in_s:.2f} s")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the long subprocess runs the collected tests need (see tests/background.py)."""
    if session.config.option.collectonly:
        return
    background.start(
        (item.module.__name__, item.originalname) for item in session.items if isinstance(item, pytest.Function)
    )


def pytest_sessionfinish() -> None:
    background.stop()
