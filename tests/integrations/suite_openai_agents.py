"""A pytest plugin for the OpenAI Agents SDK's own test suite: every ``SQLiteSession`` its tests
build is an :class:`~agentstate.integrations.openai_agents.AgentStateSession` instead.

Loaded with ``-p`` inside the SDK's source tree (see ``framework_suites.run_pytest``), so it may
import agentstate and the SDK, not this repository's ``tests``. It replaces the two public names
the SDK's tests import the class by, ``agents.SQLiteSession`` and ``agents.memory.SQLiteSession``,
with :class:`SubstituteSession`: ``AgentStateSession`` under ``SQLiteSession``'s signature, so the
tests that subclass it (a session whose ``add_items`` fails, say) subclass ours. The SDK's own
modules keep the class they imported (``EncryptedSession``'s native-pop check, the advanced session's
base class), as they would for any user's session.

Each test that builds one (in its body or its fixtures) is written, by node id, to the file
``AGENTSTATE_SUITE_BUILT`` names (one per line): the caller tells the tests that build a session
from the others with it, so a test that stops building one, or starts, changes the counts it
asserts. The sessions a test built are closed after it, and their files removed at the end.
Importing this module changes nothing; loading it as a plugin (``pytest_configure``) does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import agents
import agents.memory
import pytest

from agentstate.integrations.openai_agents import AgentStateSession

BUILT_ENV = "AGENTSTATE_SUITE_BUILT"
"""The environment variable naming the file the node ids of the tests that built a session go to."""

_folder: Path | None = None
_current: str | None = None
_built: set[str] = set()
_open: list[AgentStateSession] = []
_files = 0


class SubstituteSession(AgentStateSession):
    """``SQLiteSession(session_id, db_path=":memory:", sessions_table=..., messages_table=...,
    session_settings=...)`` as an AgentStateSession. ``":memory:"`` (SQLiteSession's default: a
    database of the session's own, gone with it) becomes a fresh temporary file; the table names
    are SQLiteSession's own schema, which agentstate does not have, and are ignored."""

    def __init__(
        self,
        session_id: str,
        db_path: str | os.PathLike[str] = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: Any = None,
    ) -> None:
        global _files
        if str(db_path) == ":memory:":
            assert _folder is not None, "the plugin is not configured"
            _files += 1
            db_path = _folder / f"memory-{_files}.db"
        super().__init__(session_id, db_path, session_settings=session_settings)
        if _current is not None:
            _built.add(_current)
        _open.append(self)


def pytest_configure(config: pytest.Config) -> None:
    """Put the substitute where the SDK's tests import SQLiteSession from (they import it when
    they are collected, after this)."""
    global _folder
    _folder = Path(tempfile.mkdtemp(prefix="agentstate-sdk-suite-"))
    agents.SQLiteSession = SubstituteSession  # type: ignore[misc, assignment]
    agents.memory.SQLiteSession = SubstituteSession  # type: ignore[misc, assignment]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Note which test is running (a session built in its fixtures counts too), and close the
    sessions it built once it is done."""
    global _current
    _current = item.nodeid
    try:
        return (yield)
    finally:
        _current = None
        while _open:
            _open.pop().close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(BUILT_ENV)
    if target:
        Path(target).write_text("".join(f"{nodeid}\n" for nodeid in sorted(_built)), encoding="utf-8")
    if _folder is not None:
        shutil.rmtree(_folder, ignore_errors=True)
