"""A comparable snapshot of every row of every table, to prove a failed call changed nothing."""

from __future__ import annotations

from typing import Any

import apsw


def dump(conn: apsw.Connection) -> dict[str, list[Any]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
    return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
