"""A pytest plugin for ``langgraph-checkpoint-sqlite``'s own tests: agentstate's savers where its
SqliteSaver and AsyncSqliteSaver were (tests/integrations/test_langgraph_suites.py runs it).

The test modules import the savers by name when they are collected, after this plugin is loaded,
so replacing the names in ``langgraph.checkpoint.sqlite`` and its ``aio`` module is the whole
substitution: every ``SqliteSaver.from_conn_string(":memory:")`` opens an agentstate database.
Loaded from its own file inside the framework's tree: it imports agentstate and LangGraph only.
"""

from __future__ import annotations

import langgraph.checkpoint.sqlite
import langgraph.checkpoint.sqlite.aio

from agentstate.integrations.langgraph import AgentStateSaver, AsyncAgentStateSaver

langgraph.checkpoint.sqlite.SqliteSaver = AgentStateSaver  # type: ignore[misc, assignment]
langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver = AsyncAgentStateSaver  # type: ignore[misc, assignment]
