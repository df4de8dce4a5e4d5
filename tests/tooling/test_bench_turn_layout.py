"""scripts/bench_turn_layout.py runs at a small size and prints its table: every layout, each with
a turn's median, p99 and ratio to SQLiteSession's layout, and the latest 50's median and ratio
(its timings are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_turn_layout.py"


def test_it_prints_a_row_per_layout() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--prefill", "50000", "--rounds", "3"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    rows = re.findall(
        r"^\| (.+?) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+) \| ([\d,]+) \| ([\d.]+) \|$", run.stdout, re.MULTILINE
    )
    assert [row[0] for row in rows] == [
        "agentstate (router_messages)", "- the foreign key", "- the CHECKs", "- the time index",
        "as a rowid table", "SQLiteSession's layout",
    ]  # fmt: skip
    assert rows[-1][3] == rows[-1][5] == "1.00"
    assert "round 1/3" in run.stderr, "no progress was shown"


def test_bad_arguments_are_refused_with_a_reason() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--rounds" in run.stderr
    run = subprocess.run([sys.executable, str(SCRIPT), "--prefill", "300"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--prefill must be >= 50000" in run.stderr
