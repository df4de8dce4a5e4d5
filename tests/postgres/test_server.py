"""The tests' throwaway server (scripts/postgres_server.py) starts wherever the project is cloned."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import postgres_server as servers
import psycopg
import pytest


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root run starts the server as another user (nobody)")
def test_the_server_starts_from_binaries_its_user_cannot_reach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root the server runs as nobody, who could not reach binaries in a clone under a 0700
    folder (/root, a mktemp -d): every PostgreSQL test errored with PermissionError."""
    bindir, origin = servers.find_binaries()
    if origin != "the pgserver wheel":
        pytest.skip(f"the binaries are {origin}: this copies the pgserver wheel's layout into a 0700 folder")
    package = bindir.parent.parent  # site-packages/pgserver; its libraries are in site-packages/pgserver.libs
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(package, private / package.name, symlinks=True)
    if (package.parent / f"{package.name}.libs").is_dir():
        shutil.copytree(package.parent / f"{package.name}.libs", private / f"{package.name}.libs", symlinks=True)
    copied = private / package.name / bindir.parent.name / "bin"
    monkeypatch.setenv("AGENTSTATE_TEST_POSTGRES_BIN", str(copied))
    monkeypatch.delenv("AGENTSTATE_TEST_POSTGRES_URL", raising=False)
    server = servers.start()
    try:
        assert server.process is not None and not server.process.args[0].startswith(str(private))
        with psycopg.connect(server.admin_conninfo) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
