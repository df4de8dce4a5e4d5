"""agentstate/aio.py is generated from the synchronous classes: it must match what the generator
writes today, so a method added or changed on the sync side cannot be missing on the async side."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

from agentstate import aio
from agentstate.agents import Agents
from agentstate.messages import MessageLog
from agentstate.tasks import TaskManager

ROOT = Path(__file__).resolve().parent.parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_async", ROOT / "scripts" / "gen_async.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_async"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_async_module_is_up_to_date() -> None:
    assert _generator().render() == (ROOT / "agentstate" / "aio.py").read_text(encoding="utf-8"), (
        "agentstate/aio.py is stale: run python scripts/gen_async.py"
    )


@pytest.mark.parametrize(
    ("sync", "async_"),
    [(TaskManager, aio.AsyncTaskManager), (MessageLog, aio.AsyncMessageLog), (Agents, aio.AsyncAgents)],
)
def test_every_public_method_has_an_awaitable_twin_with_the_same_signature(sync: type, async_: type) -> None:
    public = [name for name, _ in inspect.getmembers(sync, inspect.isfunction) if not name.startswith("_")]
    assert public
    for name in public:
        twin = getattr(async_, name)
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(getattr(sync, name)), name


def test_a_stale_module_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    stale = tmp_path / "aio.py"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1
