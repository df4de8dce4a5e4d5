"""The demo workload behind ``agentstate demo`` (filled in as the library grows)."""

from __future__ import annotations

from pathlib import Path

from agentstate.database import connect
from agentstate.migrations import status


def run(path: Path, *, tasks: int = 20) -> None:
    """Create or open the database at ``path`` and print its schema version."""
    conn = connect(path)
    try:
        print(f"{path}: schema version {status(conn).version}")
    finally:
        conn.close()
