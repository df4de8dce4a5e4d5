"""The apply script and the `agentstate` command, and the schema files inside a built wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import agentstate
from agentstate import migrations

ROOT = Path(__file__).resolve().parent.parent
APPLY = [sys.executable, str(ROOT / "scripts" / "apply_schema.py")]
CLI = [sys.executable, "-m", "agentstate.cli"]
FIRST = migrations.discover()[0].filename


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [APPLY, [*CLI, "migrate"]], ids=["apply_schema.py", "agentstate migrate"])
def test_apply_reports_then_is_a_noop(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "db.sqlite"
    first = run([*command, str(path)])
    assert first.returncode == 0, first.stderr
    assert f"applied  {FIRST}" in first.stdout and "migrated to schema version" in first.stdout
    again = run([*command, str(path)])
    assert again.returncode == 0 and "nothing to apply" in again.stdout


def test_list_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    listed = run([*APPLY, "--list", str(path)])
    assert listed.returncode == 0 and f"pending  {FIRST}" in listed.stdout
    assert not path.exists()
    run([*APPLY, str(path)])
    before = path.read_bytes()
    listed = run([*APPLY, "--list", str(path)])
    assert listed.returncode == 0 and f"applied  {FIRST}" in listed.stdout and "0 pending" in listed.stdout
    assert path.read_bytes() == before


def test_refusal_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    run([*APPLY, str(path)])
    conn = agentstate.connect(path)
    conn.execute("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1")
    conn.close()
    for args in ([*APPLY, str(path)], [*APPLY, "--list", str(path)], [*CLI, "migrate", str(path)]):
        refused = run(args)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and FIRST in refused.stderr and "modified" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_help_reads_well() -> None:
    for args in ([*CLI, "--help"], [*CLI, "migrate", "--help"], [*CLI, "demo", "--help"], [*APPLY, "--help"]):
        shown = run(args)
        assert shown.returncode == 0 and "usage:" in shown.stdout


@pytest.mark.slow
def test_schema_files_work_from_a_built_wheel(tmp_path: Path) -> None:
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)])
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("agentstate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert f"agentstate/_schema/sqlite/{FIRST}" in names and "agentstate/py.typed" in names
        archive.extractall(tmp_path / "site")
    code = (
        "import agentstate, agentstate.engine as e; c = agentstate.connect(':memory:');"
        "print(agentstate.__file__); print(e.schema_dir()); print(c.pragma('user_version'))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    module, schema, version = out.stdout.split()
    assert module.startswith(str(tmp_path / "site")) and schema.startswith(str(tmp_path / "site"))
    assert int(version) == migrations.discover()[-1].version
