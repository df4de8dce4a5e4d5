"""LangGraph's own checkpointer conformance suite (langgraph-checkpoint-conformance) against both
savers, one capability per test: each must be detected, and every one of its tests pass, none
skipped, the optional capabilities (delete_for_runs, copy_thread, prune) included. The suite has
no timeouts of its own, so each run is bounded here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

# The langgraph extra. Imported here so that a CI without it fails on collection, loudly, instead
# of skipping the suite.
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer
from langgraph.checkpoint.conformance.report import ProgressCallbacks

import agentstate
from agentstate.integrations.langgraph import AgentStateSaver, AsyncAgentStateSaver
from tests.engines import ENGINES, fresh_database

TIMEOUT_S = 120
# How many tests langgraph-checkpoint-conformance 0.0.2 (pinned by the extra) has per capability:
# a capability whose tests did not all run cannot pass.
TESTS = {
    "put": 17,
    "put_writes": 10,
    "get_tuple": 10,
    "list": 16,
    "delete_thread": 5,
    "delete_for_runs": 7,
    "copy_thread": 8,
    "prune": 8,
}


def registered(kind: str, folder: Path, new_database: Callable[[], str] | None = None) -> RegisteredCheckpointer:
    """A factory of fresh savers, each on a new database file in ``folder`` (or, given
    ``new_database``, on a new PostgreSQL database: it returns the URL)."""
    made = iter(range(1_000_000))

    def where(prefix: str) -> str:
        return new_database() if new_database else str(folder / f"{prefix}-{next(made)}.db")

    async def sync_saver() -> AsyncIterator[AgentStateSaver]:
        conn = agentstate.connect(where("sync"))
        try:
            yield AgentStateSaver(conn)
        finally:
            conn.close()

    async def async_saver() -> AsyncIterator[AsyncAgentStateSaver]:
        async with AsyncAgentStateSaver.from_conn_string(where("async")) as saver:
            yield saver

    factory = sync_saver if kind == "AgentStateSaver" else async_saver
    return checkpointer_test(name=kind)(factory)


def test_the_pinned_suite_has_the_capabilities_counted_here() -> None:
    assert {c.value for c in Capability} == set(TESTS)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("capability", sorted(TESTS))
@pytest.mark.parametrize("kind", ["AgentStateSaver", "AsyncAgentStateSaver"])
def test_conformance(kind: str, capability: str, engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    errors: list[str] = []
    new_database = None
    if engine == "postgres":
        server, template = request.getfixturevalue("pg_server"), request.getfixturevalue("pg_template")
        made: list[str] = []

        def new_database() -> str:
            name, _ = fresh_database(server, template)
            made.append(name)
            return str(server.url(name))

        request.addfinalizer(lambda: [server.drop_database(name) for name in made])

    def on_test_result(_: str, test: str, passed: bool, error: str | None) -> None:
        if not passed:
            errors.append(f"{test}:\n{error}")

    async def main() -> None:
        report = await asyncio.wait_for(
            validate(
                registered(kind, tmp_path, new_database),
                capabilities={capability},
                progress=ProgressCallbacks(on_test_result=on_test_result),
            ),
            TIMEOUT_S,
        )
        result = report.results[capability]
        assert result.detected, f"{kind} does not implement {capability}"
        assert not errors, "\n\n".join(errors)
        assert (result.tests_passed, result.tests_failed, result.tests_skipped) == (TESTS[capability], 0, 0)

    asyncio.run(main())
