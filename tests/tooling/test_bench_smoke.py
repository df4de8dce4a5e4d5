"""scripts/bench.py runs end to end at tiny sizes (--quick), every contender and peer included, and
writes well-formed results: the JSON, the markdown table and the PNG chart. Its timings are not
checked, only its shape and the facts that do not depend on the machine (every contender found the
same rows, checkpoints included; no task was done twice). The postgres contender (agentstate on
PostgreSQL) runs on a throwaway server the bench starts and stops itself."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The bench and peers extras. Imported here so that a CI without them fails on collection, loudly,
# instead of skipping the benchmark's only test.
import agents  # noqa: F401  (openai-agents)
import google.adk  # noqa: F401  (google-adk)
import huey  # noqa: F401
import langgraph.checkpoint.sqlite  # noqa: F401  (langgraph-checkpoint-sqlite)
import litequeue  # noqa: F401
import matplotlib  # noqa: F401
import psycopg  # noqa: F401  (the postgres extra: the postgres contender)
import pytest
import sqlalchemy  # noqa: F401

from tests import background

ROOT = Path(__file__).resolve().parents[2]
TASK_AND_MESSAGE_OPS = {
    "get_current_task", "get_completed_task", "latest_50", "keyset_page", "append_one",
    "append_turn_100", "append_bulk_10k", "claim_finish_1p", "claim_finish_4p",
}  # fmt: skip
# The queue users run (issue 21): two calls per task for every contender, and agentstate's own.
TWO_CALLS = {"claim_complete_1p", "claim_complete_4p"}
QUEUE_CLAIMS = TWO_CALLS | {"complete_and_claim_next_1p", "complete_and_claim_next_4p", "claim_many_10_1p", "claim_many_10_4p"}
QUEUE_OPS = {"enqueue_one", "claim_finish_1p", "claim_finish_4p", "claim_backlog_5k"} | TWO_CALLS
SESSION_OPS = {"latest_50", "append_one", "append_turn_100"}
CHECKPOINT_OPS = {"checkpoint_get", "checkpoint_list_50", "checkpoint_put"}
ADK_OPS = {"adk_get_session_50", "adk_append_event"}
CLAIM_OPS = {
    "claim_finish_1p", "claim_finish_4p", "claim_finish_16p", "claim_finish_4p_batch10", "claim_backlog_5k",
} | QUEUE_CLAIMS  # fmt: skip
AGENTSTATE_WRITES = {
    "append_one", "append_turn_100", "append_bulk_10k", "enqueue_one", "enqueue_batch_100",
    "claim_finish_1p", "claim_finish_4p", "claim_finish_4p_batch10", "claim_backlog_5k",
} | QUEUE_CLAIMS  # fmt: skip
AGENTSTATE_OPS = TASK_AND_MESSAGE_OPS | AGENTSTATE_WRITES | {"claim_finish_16p"}
EXPECTED = {
    "orm_today": TASK_AND_MESSAGE_OPS,
    "orm_indexed": TASK_AND_MESSAGE_OPS,
    "agentstate": AGENTSTATE_OPS,
    "postgres": AGENTSTATE_OPS | {"select_1"},  # the same calls, on PostgreSQL; and its round trip
    "agentstate_full": AGENTSTATE_WRITES,
    "agentstate_planned": {"claim_finish_1p", "claim_finish_4p", "claim_finish_4p_batch10"},
    "agentstate_unmonitored": {"get_current_task", "get_completed_task", "latest_50", "keyset_page"},
    "agentstate_async": {"get_current_task", "get_completed_task", "latest_50", "append_one"},
    "raw_apsw": TASK_AND_MESSAGE_OPS,
    "floor": {"get_current_task", "get_completed_task", "select_1"},
    "floor_write": {"enqueue_one"} | TWO_CALLS,
    "floor_write_full": {"enqueue_one"} | TWO_CALLS,
    "litequeue": QUEUE_OPS,
    "huey": QUEUE_OPS,
    "huey_nofsync": QUEUE_OPS,
    "openai_session": SESSION_OPS,
    "agentstate_session": SESSION_OPS,
    "openai_session_normal": SESSION_OPS,
    "agentstate_session_full": SESSION_OPS,
    "langgraph_sqlite": CHECKPOINT_OPS,
    "agentstate_langgraph": CHECKPOINT_OPS,
    "adk_sqlite": ADK_OPS,
    "adk_sqlite_wal": ADK_OPS,
    "adk_database_normal": ADK_OPS,
    "agentstate_adk_full": ADK_OPS,
    "agentstate_adk": ADK_OPS,
}
QUICK_SIZES = {500}  # one size keeps the suite short; every contender and operation still runs

pytestmark = pytest.mark.slow


def _run_bench() -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
    run = background.run_process(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--size", "500", "--out", str(out)],
        timeout=600, cwd=ROOT,
    )  # fmt: skip
    return out, run


background.declare("bench-smoke", __name__, _run_bench)


@pytest.fixture(scope="module")
def out() -> Iterator[Path]:
    out, run = background.result("bench-smoke")
    try:
        assert run.returncode == 0, f"bench.py --quick exited {run.returncode}:\n{run.stderr[-6000:]}"
        assert "round 1/" in run.stderr, "no progress was shown"
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return data


def test_json_rows_have_the_documented_keys_and_types(report: dict[str, Any]) -> None:
    assert isinstance(report["results"], list) and report["results"]
    for row in report["results"]:
        assert row["contender"] in EXPECTED
        assert isinstance(row["operation"], str)
        assert isinstance(row["size"], int) and not isinstance(row["size"], bool)
        assert isinstance(row["n"], int) and row["n"] > 0
        for key in ("median_us", "p99_us", "p999_us"):
            assert isinstance(row[key], float) and row[key] > 0, (key, row)
        assert row["median_us"] <= row["p99_us"] <= row["p999_us"]
        # The share of the machine other work took meanwhile: None when /proc saw no tick pass.
        assert row["others_cpu"] is None or 0.0 <= row["others_cpu"] <= 1.0, row


def test_json_has_every_contender_operation_and_size(report: dict[str, Any]) -> None:
    found = {(r["contender"], r["operation"], r["size"]) for r in report["results"]}
    wanted = {(c, op, size) for c, ops in EXPECTED.items() for op in ops for size in QUICK_SIZES}
    assert found == wanted
    assert len(found) == len(report["results"]), "a contender, operation and size appears twice"


def test_batches_and_claims_report_a_throughput(report: dict[str, Any]) -> None:
    for row in report["results"]:
        if row["operation"] in CLAIM_OPS | {"append_turn_100", "append_bulk_10k", "enqueue_batch_100"}:
            assert isinstance(row["throughput_per_s"], float) and row["throughput_per_s"] > 0, row


def test_no_task_was_done_twice_or_left_unfinished(report: dict[str, Any]) -> None:
    claims = [r for r in report["results"] if r["operation"] in CLAIM_OPS]
    assert {r["contender"] for r in claims} == {c for c, ops in EXPECTED.items() if ops & CLAIM_OPS}
    for row in claims:
        assert row["duplicates"] == 0 and row["unfinished"] == 0, row


def test_all_contenders_found_the_same_rows(report: dict[str, Any]) -> None:
    assert report["mismatches"] == []


def test_targets_are_evaluated(report: dict[str, Any]) -> None:
    targets = report["targets"]
    assert targets and all(isinstance(t["met"], bool) and t["target"] and t["measured"] for t in targets)
    # Issue 11's, including agentstate_full against the FULL-durability peers on each shared write.
    texts = " ".join(t["target"] for t in targets)
    for needle in ("enqueue_one: median at most 80 µs", "enqueue_batch_100", "claim_finish_4p: p99.9", "(huey)"):
        assert needle in texts, needle
    assert sum("agentstate_full" in t["target"] for t in targets if t["source"] == "issue 11") == 5
    # Issue 21's: the queue of 400 against litequeue (NORMAL) and huey (FULL), 1 and 4 processes.
    queue = [t["target"] for t in targets if t["source"] == "issue 21"]
    for ours, peer in (("agentstate", "litequeue"), ("agentstate_full", "huey")):
        for op in sorted(TWO_CALLS):
            assert f"{op} at 500: {ours} at least 1.2x {peer}'s tasks/s" in queue, (op, ours, queue)
    assert len(queue) == 8, queue
    # Issue 12's: each framework integration against the framework's own backend, on every shared operation.
    pairs = {
        (t["target"].split(":")[0], t["target"].split(": ")[1].split("'")[0])
        for t in targets
        if t["source"] == "issue 12"
    }
    assert pairs == {(op, ours) for op in SESSION_OPS for ours in ("agentstate_session", "agentstate_session_full")} | {
        (op, "agentstate_langgraph") for op in CHECKPOINT_OPS
    } | {(op, ours) for op in ADK_OPS for ours in ("agentstate_adk_full", "agentstate_adk")}
    # Issue 13's: agentstate on PostgreSQL against agentstate on one SQLite file.
    postgres = sorted(t["target"].split(":")[0] for t in targets if t["source"] == "issue 13")
    assert postgres == ["claim_finish_16p", "get_current_task", "latest_50", "postgres"], postgres


def test_postgres_ran_on_a_throwaway_server_with_fair_settings(report: dict[str, Any], out: Path) -> None:
    """fsync and full_page_writes on, synchronous_commit off (as the report says, read back from
    the server), reached over loopback TCP; the server is stopped and its folder deleted."""
    pg = report["machine"]["postgres"]
    assert pg["throwaway"] is True and pg["transport"].startswith("TCP to 127.0.0.1:"), pg
    settings = pg["settings"]
    assert (settings["fsync"], settings["full_page_writes"], settings["synchronous_commit"]) == ("on", "on", "off")
    assert pg["folder"] and not Path(pg["folder"]).exists(), "the throwaway server's folder is still there"
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert f"PostgreSQL {pg['version']}" in markdown
    assert "fsync=on, full_page_writes=on and synchronous_commit=off match" in markdown
    # agentstate against postgres, every shared operation at every size, with the ratio.
    rows = _table(markdown, "## PostgreSQL against one SQLite file")
    ops = AGENTSTATE_OPS | {"select_1 (SQLite: the floor's)"}
    assert {(row[0], row[1]) for row in rows} == {(op, size) for op in ops for size in ("500",)}
    for op, _size, ours, theirs, ratio, others in rows:
        assert re.fullmatch(r"[\d,.]+x", ratio), (op, ratio)
        assert re.fullmatch(r"(\d+%)?", others), (op, others)  # the CPU other work took meanwhile, if measured
        if op in CLAIM_OPS:  # claim rows carry their throughput
            assert ours.endswith("/s)") and theirs.endswith("/s)"), (op, ours, theirs)


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the markdown table under ``heading``, as lists of cell texts."""
    section = markdown.split(heading, 1)[1]
    lines: list[str] = []
    for line in section.strip().splitlines():  # the first table after the heading, and only it
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert re.fullmatch(r"[-: ]+", "".join(rows[1])), "the second line is not a header separator"
    return rows[2:]


def test_markdown_table_has_a_row_per_contender_operation_and_size(out: Path) -> None:
    markdown = (out / "results.md").read_text(encoding="utf-8")
    rows = _table(markdown, "## All figures")
    assert all(len(row) == 11 for row in rows)
    found = {(row[2], row[0], row[1]) for row in rows}
    wanted = {(c, op, label) for c, ops in EXPECTED.items() for op in ops for label in ("500",)}
    assert found == wanted
    for row in rows:  # every claim row shows its duplicate check, and only those
        assert (row[8] == "0") if row[0] in CLAIM_OPS else (row[8] == ""), row
    for contender, op, _size, median, p99, *_rest, vs_median, vs_p99 in ((r[2], *r[:2], *r[3:]) for r in rows):
        assert re.fullmatch(r"[\d,.]+", median) and re.fullmatch(r"[\d,.]+", p99), (contender, op)
        # agentstate has every operation but the floor's SELECT 1 and the checkpoints, which are
        # taken against agentstate_langgraph (itself at 1.00x)
        if op != "select_1":
            assert re.fullmatch(r"[\d,.]+x", vs_median) and re.fullmatch(r"[\d,.]+x", vs_p99), (contender, op)
        if contender in ("agentstate_langgraph", "agentstate_adk_full"):
            assert vs_median == vs_p99 == "1.00x", (contender, op)
    # The summary gives LangGraph's own saver a ratio to agentstate's, and agentstate's none.
    heading = "## Median µs at 500 rows (x agentstate)"
    header = next(line for line in markdown.split(heading, 1)[1].splitlines() if line.startswith("| operation"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    put = dict(zip(columns, next(row for row in _table(markdown, heading) if row[0] == "checkpoint_put"), strict=True))
    assert re.fullmatch(r"[\d,.]+ \([\d,.]+x\)", put["langgraph_sqlite"]), put
    assert re.fullmatch(r"[\d,.]+", put["agentstate_langgraph"]) and put["agentstate"] == "", put
    assert "## The issue's targets" in markdown and "Machine:" in markdown


def test_chart_is_a_png(out: Path) -> None:
    data = (out / "latency.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    assert data[12:16] == b"IHDR" and width > 400 and height > 300
    assert len(data) > 20_000, "the chart is suspiciously small: are the lines there?"


def test_a_task_handed_out_twice_shows_in_the_table(report: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue that gives one task to two executors keeps its row, with the count in bold."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import bench.data  # type: ignore[import-not-found]
    import bench.report  # type: ignore[import-not-found]

    rows = [dict(r) for r in report["results"]]
    broken = next(r for r in rows if r["contender"] == "litequeue" and r["operation"] == "claim_finish_4p")
    broken.update(duplicates=7, unfinished=2)
    fake = bench.report.Report(report["machine"], report["config"], results=rows)
    markdown = bench.report.markdown(fake)
    where = ["claim_finish_4p", bench.data.format_size(broken["size"]), "litequeue"]
    row = next(r for r in _table(markdown, "## All figures") if r[:3] == where)
    assert row[8] == "**7** (2 unfinished)"
    assert "litequeue handed out 7 tasks a second time" in markdown
