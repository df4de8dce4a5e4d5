"""scripts/bench.py chooses its contenders from what is installed: by default a contender whose
packages are missing (the peers, postgres and langgraph extras) is left out with one line saying
so, while one named with --contenders is required (exit 2, naming the extra to install).

Nothing is uninstalled: each case runs bench.cli.main in a subprocess whose sys.modules holds None for
the "missing" modules (so importing them raises ImportError), and whose Report is replaced by a
stub that prints the chosen contenders and exits, so no database is built and nothing is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")  # the bench extra itself is required, whatever else is missing
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
CHOSEN = "CHOSEN "

# The modules each extra's contenders import; None in sys.modules makes `import x` raise ImportError.
PEERS = ["litequeue", "huey", "agents", "langgraph.checkpoint.sqlite"]
LANGGRAPH = ["langgraph", "langgraph.checkpoint", "langgraph.checkpoint.base"]
POSTGRES = ["psycopg", "psycopg_pool"]
GOOGLE_ADK = ["google.adk"]
CORE = ["orm_today", "orm_indexed", "agentstate", "agentstate_full", "agentstate_planned", "agentstate_async", "agentstate_unmonitored"]

DRIVER = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None
sys.path.insert(0, sys.argv[2])
import bench.cli

def stub(machine, config):
    print("CHOSEN " + json.dumps(config["contenders"]), flush=True)
    raise SystemExit(0)

bench.cli.Report = stub
bench.cli.machine_info = dict
sys.exit(bench.cli.main(json.loads(sys.argv[3])))
"""


def run(missing: list[str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    argv = ["--quick", "--out", str(tmp_path / "out"), *args]
    return subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(missing), str(ROOT / "scripts"), json.dumps(argv)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def chosen(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-3000:]}"
    line = next(line for line in result.stdout.splitlines() if line.startswith(CHOSEN))
    names: list[str] = json.loads(line[len(CHOSEN) :])
    return names


def names_extra(text: str, extra: str) -> bool:
    """Whether ``text`` tells to install ``extra``: pip install -e '.[extra]' or '.[bench,extra]'."""
    return f"'.[{extra}]'" in text or f"'.[bench,{extra}]'" in text


def left_out_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "leaving out" in line]


def test_quick_with_only_the_bench_extra_leaves_out_what_is_missing(tmp_path: Path) -> None:
    """pip install -e '.[bench]': no peers, no postgres, no langgraph. The run goes on without them."""
    result = run(PEERS + LANGGRAPH + POSTGRES + GOOGLE_ADK, tmp_path=tmp_path)
    names = chosen(result)
    assert names == [*CORE, "raw_apsw", "floor", "floor_write", "floor_write_full"]
    left = left_out_lines(result)
    gone = {"postgres", "litequeue", "huey", "huey_nofsync", "openai_session", "agentstate_session"}
    gone |= {"openai_session_normal", "agentstate_session_full"}
    gone |= {"langgraph_sqlite", "agentstate_langgraph", "adk_sqlite", "adk_sqlite_wal", "adk_database_normal"}
    gone |= {"agentstate_adk_full", "agentstate_adk"}
    for name in gone:  # one line each, naming the contender and the extra that brings it
        lines = [line for line in left if f"leaving out {name}:" in line]
        assert len(lines) == 1, (name, left)
    assert len(left) == len(gone), left
    for name, extra in (
        ("litequeue", "peers"), ("postgres", "postgres"), ("agentstate_langgraph", "langgraph"), ("adk_sqlite", "google-adk"),
    ):  # fmt: skip
        assert any(names_extra(line, extra) for line in left if f"leaving out {name}:" in line), (name, left)
    assert "Traceback" not in result.stderr


def test_only_the_missing_peers_are_left_out(tmp_path: Path) -> None:
    result = run(["litequeue"], "--postgres-url", "postgresql://nobody@127.0.0.1:1/x", tmp_path=tmp_path)
    names = chosen(result)
    assert "litequeue" not in names
    assert {"huey", "openai_session", "langgraph_sqlite", "agentstate_langgraph", "postgres", "adk_sqlite"} <= set(names)
    assert len(left_out_lines(result)) == 1


@pytest.mark.parametrize(
    ("missing", "contenders", "extra"),
    [
        (PEERS, "agentstate,litequeue", "peers"),
        (["huey"], "huey_nofsync", "peers"),
        (["agents"], "agentstate_session", "openai-agents"),
        (LANGGRAPH, "agentstate_langgraph", "langgraph"),
        (GOOGLE_ADK, "agentstate_adk", "google-adk"),
        (POSTGRES, "agentstate,postgres", "postgres"),
    ],
)
def test_a_named_contender_whose_package_is_missing_exits_2(
    missing: list[str], contenders: str, extra: str, tmp_path: Path
) -> None:
    result = run(missing, "--contenders", contenders, tmp_path=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    assert CHOSEN not in result.stdout
    assert "Traceback" not in result.stderr
    named = contenders.split(",")[-1]
    assert f"the {named} contender needs" in result.stderr, result.stderr
    assert names_extra(result.stderr, extra), result.stderr


def test_a_named_contender_that_is_installed_runs(tmp_path: Path) -> None:
    result = run(PEERS + POSTGRES, "--contenders", "agentstate,floor,agentstate_langgraph", tmp_path=tmp_path)
    assert chosen(result) == ["agentstate", "floor", "agentstate_langgraph"]
    assert left_out_lines(result) == []
