"""Fixtures for the PostgreSQL-only tests (the shared server and template are in tests/conftest.py).

The server (see scripts/postgres_server.py for where it comes from) starts once; a template
database is migrated once; each test that writes gets a fresh database copied from the template
(``CREATE DATABASE ... TEMPLATE``, a file copy) and dropped after. The README's test command
installs the ``postgres`` extra and pgserver (in ``test``), so a missing psycopg fails at
collection and a server that cannot start fails the tests: nothing here is skipped quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import postgres_server as servers
import pytest

from agentstate.postgres import connection
from tests.engines import fresh_database
from tests.postgres.cluster import Cluster, start_cluster


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


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    """A primary with a synchronous standby (tests/postgres/cluster.py), stopped after the test."""
    try:
        cluster = start_cluster()
    except servers.Unavailable as exc:
        pytest.fail(f"no PostgreSQL primary and standby for tests/postgres: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
