"""Named SQL blocks loaded from ``schema/<engine>/queries/*.sql`` into one registry.

A block looks like::

    -- name: current_task :one
    -- uses: idx_workers_planner_status
    -- The oldest pending task of a planner.
    SELECT ... ;

``name`` and a cardinality (``:one :many :value :exec :returning``) are required; ``uses`` names
the indexes the query plan must search (``none`` for a plain ``INSERT ... VALUES``; ``a | b`` for
either of two equally good ones), and the plan
tests check every registered query against it, so a new query cannot skip its plan test. An
operator's statistics query may say ``-- scans: why`` to read a whole covering index on purpose
(only in ``stats.sql``; a test keeps it there). :mod:`agentstate.runner` runs them all. The
loader is strict: a duplicate name, an empty block or a bad header fails at import with file:line.

A file may declare ``-- streams: table:key table:key ...``; a block whose name holds ``{stream}``
is then stamped out once per message table, with ``{stream}`` and ``{key}`` replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agentstate import errors
from agentstate.schema_files import schema_dir

CARDINALITIES = frozenset({"one", "many", "value", "exec", "returning"})
_NAME = re.compile(r"^--\s*name:\s*([\w{}]+)\s+:(\w+)\s*$")
_USES = re.compile(r"^--\s*uses:\s*(.+?)\s*$")
_SCANS = re.compile(r"^--\s*scans:\s*(.+?)\s*$")
_ONLY = re.compile(r"^--\s*only:\s*(\w+)\s*(.*?)\s*$")
_STREAMS = re.compile(r"^--\s*streams:\s*(.+?)\s*$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Query:
    """One named statement."""

    name: str
    cardinality: str
    sql: str
    file: Path
    line: int
    doc: str
    uses: tuple[str, ...]
    scans: str = ""
    """Why this query may read a whole covering index ('' for none: it must search)."""
    only: str = ""
    """The one engine that has this query (``-- only: postgres: what the other does instead``):
    a fusion of steps the other engine runs as several statements ('' for a query both have)."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def identifier(name: str) -> str:
    """The one gate for identifiers spliced into SQL: lowercase names only, double-quoted."""
    if not _IDENTIFIER.match(name):
        raise errors.QueryFileError(f"{name!r} is not a plain lowercase SQL identifier")
    return f'"{name}"'


def parse(path: Path) -> list[Query]:
    """Parse one .sql file into its queries."""
    lines = path.read_text(encoding="utf-8").splitlines()
    streams: list[tuple[str, str]] = []
    blocks: list[tuple[int, str, str, list[str]]] = []  # line, name, cardinality, body lines
    for lineno, line in enumerate(lines, 1):
        if match := _STREAMS.match(line):
            for pair in match.group(1).split():
                table, _, key = pair.partition(":")
                identifier(table), identifier(key)
                streams.append((table, key))
        elif match := _NAME.match(line):
            if match.group(2) not in CARDINALITIES:
                raise errors.QueryFileError(
                    f"{path}:{lineno}: unknown cardinality :{match.group(2)} (use one of "
                    f"{', '.join(':' + c for c in sorted(CARDINALITIES))})"
                )
            blocks.append((lineno, match.group(1), match.group(2), []))
        elif blocks:
            blocks[-1][3].append(line)
        elif line.strip() and not line.lstrip().startswith("--"):
            raise errors.QueryFileError(f"{path}:{lineno}: SQL before the first '-- name:' header")
    queries = []
    for lineno, name, cardinality, body in blocks:
        uses: tuple[str, ...] = ()
        scans = only = ""
        doc: list[str] = []
        sql: list[str] = []
        for text in body:
            if match := _USES.match(text):
                uses = tuple(u.strip() for u in match.group(1).split(",")) if match.group(1) != "none" else ("none",)
            elif match := _SCANS.match(text):
                scans = match.group(1)
            elif match := _ONLY.match(text):
                only = match.group(1)
                if not match.group(2):
                    raise errors.QueryFileError(f"{path}:{lineno}: '-- only: {only}' must say what the other engine does")
            elif text.lstrip().startswith("--") and not sql:
                doc.append(text.lstrip()[2:].strip())
            else:
                sql.append(text)
        statement = "\n".join(sql).strip()
        if not statement:
            raise errors.QueryFileError(f"{path}:{lineno}: query {name!r} has no SQL")
        if not uses:
            raise errors.QueryFileError(f"{path}:{lineno}: query {name!r} needs a '-- uses: index, ...' line")
        variants = [(t, k) for t, k in streams] if "{stream}" in name else [("", "")]
        if "{stream}" in name and not streams:
            raise errors.QueryFileError(
                f"{path}:{lineno}: {name!r} uses {{stream}} but the file has no '-- streams:' line"
            )
        for table, key in variants:
            full = f"{path.stem}.{name.replace('{stream}', table)}"
            text = statement.replace("{stream}", table).replace("{key}", key)
            queries.append(
                Query(
                    name=full,
                    cardinality=cardinality,
                    # The leading comment names the query in traces and slow-query logs.
                    sql=f"-- agentstate:{full}\n{text}",
                    file=path,
                    line=lineno,
                    doc=" ".join(doc),
                    uses=tuple(u.replace("{stream}", table) for u in uses),
                    scans=scans,
                    only=only,
                )
            )
    return queries


@cache
def registry(folder: Path | None = None) -> dict[str, Query]:
    """Every named query of a folder (default: SQLite's), by qualified name (``file_stem.name``)."""
    folder = folder or schema_dir("sqlite") / "queries"
    found: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        for query in parse(path):
            if query.name in found:
                raise errors.QueryFileError(
                    f"{query.where}: duplicate query name {query.name!r} (first at {found[query.name].where})"
                )
            found[query.name] = query
    return found
