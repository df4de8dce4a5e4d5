"""Opening psycopg connections whose rows look like SQLite's.

agentstate's managers read timestamps as ``'YYYY-MM-DDTHH:MM:SS.ffffffZ'`` text and JSON columns
as JSON text (they decode it themselves). PostgreSQL stores timestamptz and jsonb; the loaders
here turn them back into exactly that text on the client, so a row from either engine is the
same tuple. Values are bound as psycopg dumps them: a ``str`` goes as an untyped literal, so
agentstate's timestamp text and JSON text bind straight to timestamptz and jsonb columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg.adapt import Buffer, Loader  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent
from psycopg.types.string import TextLoader  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent

APPLICATION_NAME = "agentstate"


class TimestampTextLoader(Loader):  # type: ignore[misc, unused-ignore]
    """timestamptz (text format) to agentstate's UTC text, microseconds always written out."""

    def load(self, data: Buffer) -> str:
        text = bytes(data).decode("ascii")
        # PostgreSQL writes 'YYYY-MM-DD HH:MM:SS[.f]+00' when the session's TimeZone is UTC.
        if text.endswith("+00") and len(text) >= 22 and text[10] == " " and text[4] == "-":
            clock = text[11:-3]
            if len(clock) == 8:
                return f"{text[:10]}T{clock}.000000Z"
            return f"{text[:10]}T{clock[:8]}.{clock[9:]:0<6}Z"
        if text in ("infinity", "-infinity"):
            return text
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def configure(conn: psycopg.Connection[Any]) -> None:
    """Make a connection's rows look like SQLite's: timestamps as text, JSON as text. Also usable
    as a psycopg_pool ``configure`` callback."""
    conn.adapters.register_loader("timestamptz", TimestampTextLoader)
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)


def connect(conninfo: str, *, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection[Any]:
    """A configured psycopg connection (autocommit by default: agentstate opens its own
    transactions with ``conn.transaction()``). The session's TimeZone is UTC, so timestamps take
    the loader's fast path; ``application_name`` defaults to ``agentstate``."""
    kwargs.setdefault("application_name", APPLICATION_NAME)
    options = kwargs.pop("options", "")
    conn = psycopg.connect(conninfo, autocommit=autocommit, options=f"-c TimeZone=UTC {options}".strip(), **kwargs)
    configure(conn)
    return conn
