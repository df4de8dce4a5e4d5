"""scripts/bench_claim_costs.py runs at a small size and prints its two tables: every variant of
a claim + complete (median, p99, tasks/s, ratios to litequeue's) and of an enqueue (median, p99,
ratio); its timings are not checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_claim_costs.py"


def test_it_prints_a_row_per_variant() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--tasks", "1000", "--rounds", "2"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    claims = re.findall(
        r"^\| (.+?) \| ([\d,.]+) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \|$", run.stdout, re.MULTILINE
    )
    assert [row[0] for row in claims] == [
        "agentstate API (claim + complete)", "agentstate API, without history", "its SQL alone, with history",
        "its SQL alone, without history", "litequeue",
    ]  # fmt: skip
    assert claims[-1][4] == claims[-1][5] == "1.00"
    enqueues = re.findall(r"^\| (.+?) \| ([\d,.]+) \| ([\d,]+) \| ([\d.]+) \|$", run.stdout, re.MULTILINE)
    assert [row[0] for row in enqueues] == [
        "agentstate API (create_task)", "agentstate API, without history", "its SQL alone, with history",
        "its SQL alone, without history", "litequeue",
    ]  # fmt: skip
    assert enqueues[-1][3] == "1.00"
    assert "claims: round 1/2" in run.stderr and "enqueues: round 1/2" in run.stderr, "no progress was shown"


def test_bad_arguments_are_refused_with_a_reason() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--rounds" in run.stderr
    run = subprocess.run([sys.executable, str(SCRIPT), "--tasks", "300"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--tasks must be >= 400" in run.stderr
