"""``agentstate demo --db FILE`` (agentstate.demo.run) on a database that already holds a user's
work: the demo touches only what it created (its own planner's tasks), on both engines, and its
progress lines end at its final figures."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

import agentstate
from agentstate import demo, errors
from agentstate.agents import Agents
from agentstate.tasks import Task, TaskManager


@pytest.fixture
def users(db_url: str) -> Iterator[Any]:
    """A connection to ``db_url`` holding a user's planner "user-planner" with no tasks yet."""
    conn = agentstate.connect(db_url)
    Agents(conn).create_planner("user-planner")
    yield conn
    conn.close()


def snapshot(tm: TaskManager, worker_id: str) -> tuple[Task, int]:
    """A task as stored, and how many events its history holds."""
    return tm.get_task(worker_id), len(tm.history(worker_id))


def test_the_demo_leaves_a_users_pending_task_alone(users: Any, db_url: str) -> None:
    """A user's task with the demo's own context shape ({'step': 0}) was claimed and completed."""
    tm = TaskManager(users, "user-planner")
    mine = tm.create_task("the user's own step", task_context={"step": 0})
    before = snapshot(tm, mine.worker_id)
    demo.run(db_url, tasks=4)
    assert snapshot(tm, mine.worker_id) == before
    assert before[0].task_status == "pending" and before[0].result is None
    assert tm.counts()["pending"] == 1


def test_the_demo_runs_beside_a_task_of_another_shape_and_leaves_it_alone(users: Any, db_url: str) -> None:
    """A user's task without a 'step' made the demo die with KeyError: 'step', leaving it claimed."""
    tm = TaskManager(users, "user-planner")
    mine = tm.create_task("something else", task_context={"ticket": 42})
    before = snapshot(tm, mine.worker_id)
    demo.run(db_url, tasks=4)
    assert snapshot(tm, mine.worker_id) == before


def test_the_demo_leaves_a_users_lapsed_lease_alone(users: Any, db_url: str) -> None:
    """A user's claimed task on its last attempt whose lease ran out is the user's executors' to
    sweep: the demo's claims neither fail it nor take it over."""
    tm = TaskManager(users, "user-planner")
    lapsed = tm.create_task("held too long", task_context={"step": 1}, max_attempts=1)
    assert TaskManager(users).claim("user-executor", lease_seconds=0.05) is not None
    time.sleep(0.2)
    before = snapshot(tm, lapsed.worker_id)
    assert before[0].lease_owner == "user-executor"
    demo.run(db_url, tasks=4)
    assert snapshot(tm, lapsed.worker_id) == before


def test_two_demo_runs_on_one_database_each_record_their_own(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    demo.run(db_url, tasks=4)
    demo.run(db_url, tasks=6)
    out = capsys.readouterr().out
    assert re.findall(r"planner    recorded (\d+) tasks", out) == ["4", "6"]


@pytest.mark.parametrize(("tasks", "failed"), [(20, 5), (4, 1), (37, 9), (1, 0)])
def test_the_last_progress_line_gives_the_final_figures(
    db_url: str, tasks: int, failed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 20 tasks the progress lines ended at '16 completed, 4 failed' (the run ends at 20 and 5)."""
    demo.run(db_url, tasks=tasks)
    progress = re.findall(r"executor   (\d+) completed, (\d+) failed", capsys.readouterr().out)
    assert progress, "no progress line"
    assert progress[-1] == (str(tasks), str(failed))
    assert len(progress) <= 11  # about ten lines, whatever the size


@pytest.mark.parametrize(("tasks", "error"), [(0, errors.InvalidValueError), ("3", errors.InvalidTypeError)])
def test_a_bad_task_count_raises_an_agentstate_error(db_url: str, tasks: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        demo.run(db_url, tasks=tasks)
