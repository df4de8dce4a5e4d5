"""LangGraph's own test suites, from the sdists of the installed versions, with agentstate's savers
where they use SQLite's (tests/integrations/framework_suites.py fetches and runs them; the plugins
tests/integrations/suite_langgraph*.py substitute the savers).

Every test of a suite is accounted for: those we run must all pass, those left out are listed
below with the reason, and the counts are asserted, so a test that stops passing, appears or
disappears fails here loudly. Nothing is skipped silently.
"""

from __future__ import annotations

from tests import background
from tests.integrations.framework_suites import run_pytest, sdist

# --- LangGraph's graph-execution tests (the langgraph sdist's tests/) --------------------------

GRAPH_FILES = [
    "tests/test_checkpoint_migration.py",
    "tests/test_delta_channel_exit_mode.py",
    "tests/test_delta_channel_fork.py",
    "tests/test_delta_channel_parallel_order.py",
    "tests/test_delta_channel_subgraph.py",
    "tests/test_delta_channel_to_plain.py",
    "tests/test_delta_channel_update_state.py",
    "tests/test_interrupt_state.py",
    "tests/test_interruption.py",
    "tests/test_large_cases.py",
    "tests/test_large_cases_async.py",
    "tests/test_pregel.py",
    "tests/test_pregel_async.py",
    "tests/test_pydantic.py",
    "tests/test_strict_resume.py",
    "tests/test_subgraph_persistence.py",
    "tests/test_subgraph_persistence_async.py",
    "tests/test_time_travel.py",
    "tests/test_time_travel_async.py",
]
"""Every test module of the sdist that takes a checkpointer fixture (``sync_checkpointer`` or
``async_checkpointer``); the plugin keeps the tests run on the conftest's ``sqlite``,
``sqlite_aes`` and ``sqlite_aio`` checkpointers, agentstate's savers once substituted."""
GRAPH_TESTS = 1034
"""langgraph 1.2.24: 386 on ``sqlite`` (AgentStateSaver), 386 on ``sqlite_aes`` (the same with
LangGraph's encrypting serde) and 262 on ``sqlite_aio`` (AsyncAgentStateSaver), all passing."""
GRAPH_TIMEOUT_S = 900


background.declare(
    "langgraph-graph-suite",
    __name__,
    lambda: run_pytest(sdist("langgraph"), GRAPH_FILES, "tests.integrations.suite_langgraph", timeout=GRAPH_TIMEOUT_S),
    tests=("test_langgraphs_graph_tests_pass_with_agentstates_savers",),
)


def test_langgraphs_graph_tests_pass_with_agentstates_savers() -> None:
    outcomes: dict[str, str] = background.result("langgraph-graph-suite")
    assert {test: outcome for test, outcome in outcomes.items() if outcome != "passed"} == {}
    assert len(outcomes) == GRAPH_TESTS


# --- langgraph-checkpoint-sqlite's tests ------------------------------------------------------

SQLITE_FILES = [
    "tests/test_sqlite.py",
    "tests/test_aiosqlite.py",
    "tests/test_get_delta_channel_history.py",
    "tests/test_delta_parent_walk.py",
    "tests/test_delta_channel_migration.py",
    "tests/test_conformance_delta.py",
    "tests/test_writes_task_path_migration.py",
]
"""Every module of its tests that is about the savers (the others test SqliteStore, a store)."""

HELPER = "calls SqliteSaver's private query builder (langgraph.checkpoint.sqlite.utils), no saver"
MIGRATION = "SqliteSaver's setup() migrating its own legacy 'writes' table (sqlite3 connections, its schema)"
LEFT_OUT = {
    "tests/test_sqlite.py::TestSqliteSaver::test_search_where": HELPER,
    "tests/test_sqlite.py::TestSqliteSaver::test_metadata_predicate": HELPER,
    "tests/test_sqlite.py::TestSqliteSaver::test_metadata_predicate_sql_injection_prevention": HELPER,
    "tests/test_sqlite.py::TestSqliteSaver::test_informative_async_errors": (
        "asserts SqliteSaver's async methods raise NotImplementedError; AgentStateSaver implements them"
    ),
    "tests/test_delta_parent_walk.py::test_walk_step_looks_up_the_parent_by_primary_key": (
        "EXPLAINs SqliteSaver's own walk SQL on its 'checkpoints' table after setup(); ours is plan-tested "
        "as langgraph.channel_history"
    ),
    "tests/test_conformance_delta.py::test_delta_channel_conformance": (
        "asks the conformance suite for a 'delta_channel_history' capability that the installed "
        "langgraph-checkpoint-conformance 0.0.2 lacks: fails with SqliteSaver too"
    ),
    "tests/test_writes_task_path_migration.py::test_setup_migrates_legacy_writes_table_repeatably": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_put_writes_persists_task_path[fresh]": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_put_writes_persists_task_path[legacy]": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_async_setup_migrates_legacy_writes_table_repeatably": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_setup_does_not_wait_on_another_writer": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_async_setup_does_not_wait_on_another_writer": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_read_only_legacy_database_still_reads_delta_history": MIGRATION,
    "tests/test_writes_task_path_migration.py::test_async_read_only_legacy_database_still_reads_delta_history": MIGRATION,
}
"""The tests about SqliteSaver's internals, with why; the rest must pass."""
SQLITE_TESTS = 40
"""langgraph-checkpoint-sqlite 3.1.2: 26 that must pass, 14 left out (SqliteSaver passes 39: all
but the conformance one)."""
SQLITE_TIMEOUT_S = 300


def test_langgraph_checkpoint_sqlites_tests_pass_with_agentstates_savers() -> None:
    """All of them run (a left-out test renamed or gone would leave the list stale), and every one
    not left out passes; what the left-out ones do is not asserted."""
    outcomes = run_pytest(
        sdist("langgraph-checkpoint-sqlite"),
        SQLITE_FILES,
        "tests.integrations.suite_langgraph_sqlite",
        timeout=SQLITE_TIMEOUT_S,
    )
    assert set(LEFT_OUT) <= set(outcomes)
    assert {test: outcome for test, outcome in outcomes.items() if outcome != "passed" and test not in LEFT_OUT} == {}
    assert len(outcomes) == SQLITE_TESTS
