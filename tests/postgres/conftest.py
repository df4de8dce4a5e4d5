"""Fixtures for the PostgreSQL groundwork tests: one throwaway server per test session.

The server (see tests/postgres/server.py for where it comes from) starts once; a template
database is migrated once; each test that writes gets a fresh database copied from the template
(``CREATE DATABASE ... TEMPLATE``, a file copy) and dropped after. The README's test command
installs the ``postgres`` extra and pgserver (in ``test``), so a missing psycopg fails at
collection and a server that cannot start fails the tests: nothing here is skipped quietly.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentstate.postgres import connection, migrations
from tests.postgres import server as servers

TEMPLATE = "agentstate_template"
_names = itertools.count(1)
_started: list[servers.Server] = []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.Server]:
    try:
        found = servers.start()
    except servers.Unavailable as exc:
        pytest.fail(f"no PostgreSQL server for tests/postgres: {exc}")
    _started.append(found)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: servers.Server) -> str:
    """The name of a database migrated to the newest schema, to copy."""
    name = f"{TEMPLATE}_{os.getpid()}"
    conninfo = pg_server.create_database(name)
    with connection.connect(conninfo) as conn:
        migrations.migrate(conn)
    return name


def fresh_database(pg_server: servers.Server, template: str | None) -> tuple[str, str]:
    name = f"agentstate_test_{os.getpid()}_{next(_names)}"
    return name, pg_server.create_database(name, template=template)


@pytest.fixture
def pg_url(pg_server: servers.Server, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database of its own for one test."""
    name, conninfo = fresh_database(pg_server, pg_template)
    yield conninfo
    pg_server.drop_database(name)


@pytest.fixture
def pg_empty_url(pg_server: servers.Server) -> Iterator[str]:
    """A fresh database with no schema at all (for the migrator's tests)."""
    name, conninfo = fresh_database(pg_server, None)
    yield conninfo
    pg_server.drop_database(name)


@pytest.fixture
def pg_connect(pg_url: str) -> Iterator[Callable[..., Any]]:
    """Opens configured connections to the test's database; all are closed after the test."""
    opened: list[Any] = []

    def connect(**kwargs: Any) -> Any:
        conn = connection.connect(pg_url, **kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def pg(pg_connect: Callable[..., Any]) -> Any:
    """One autocommit connection to a fresh, migrated database."""
    return pg_connect()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for found in _started:
        terminalreporter.write_line(
            f"postgres: {found.version} from {found.origin}, ready in {found.started_in_s:.2f} s"
        )
