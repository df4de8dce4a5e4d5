"""A pytest plugin for LangGraph's own graph-execution tests (``libs/langgraph/tests``, shipped in
the ``langgraph`` sdist): agentstate's savers as the checkpointers LangGraph's conftest names
``sqlite``, ``sqlite_aes`` and ``sqlite_aio`` (tests/integrations/test_langgraph_suites.py runs it).

Its conftest makes those with ``SqliteSaver.from_conn_string(":memory:")`` and
``AsyncSqliteSaver.from_conn_string(":memory:")`` (``sqlite_aes`` then sets an encrypting serde),
and imports both names when it is loaded, after this plugin: replacing them in
``langgraph.checkpoint.sqlite`` and its ``aio`` module is the whole substitution. Only the tests
run on one of those three checkpointers are kept; the others (on in-memory savers) are deselected,
and ``NO_DOCKER`` is set, as LangGraph's CI does without servers, so that nothing asks for
PostgreSQL or Redis. Loaded from its own file inside LangGraph's tree: it
imports agentstate, LangGraph and pytest only.
"""

from __future__ import annotations

import os
from typing import Any

import langgraph.checkpoint.sqlite
import langgraph.checkpoint.sqlite.aio
import pytest

from agentstate.integrations.langgraph import AgentStateSaver, AsyncAgentStateSaver

# The conftest reads it on import: without it, it parametrises over PostgreSQL and Redis too, and
# a test taking both our saver and a Redis cache would need a Redis server.
os.environ["NO_DOCKER"] = "true"
langgraph.checkpoint.sqlite.SqliteSaver = AgentStateSaver  # type: ignore[misc, assignment]
langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver = AsyncAgentStateSaver  # type: ignore[misc, assignment]

OURS = {"sqlite", "sqlite_aes", "sqlite_aio"}
"""The conftest's checkpointer params that are agentstate's savers once substituted."""
FIXTURES = ("sync_checkpointer", "async_checkpointer")


def runs_on_ours(item: pytest.Item) -> bool:
    params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    return any(params.get(fixture) in OURS for fixture in FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept = [item for item in items if runs_on_ours(item)]
    config.hook.pytest_deselected(items=[item for item in items if not runs_on_ours(item)])
    items[:] = kept
