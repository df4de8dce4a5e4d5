"""Shared fixtures: a migrated in-memory database, a file path for WAL and multi-process tests,
and a check that every test closes the connections it opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

import agentstate
from agentstate import runner
from agentstate.checkpoint import is_background

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
