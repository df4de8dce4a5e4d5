"""The PostgreSQL named queries: ``schema/postgres/queries/*.sql``, read by the same loader as SQLite's.

:func:`agentstate.queries.registry` parses the folder (headers, ``-- uses:``, ``{stream}``
stamping, the same strictness); this module turns each block's ``:name`` parameters into
psycopg's ``%(name)s`` (and a ``$1, $2, ...`` form for ``PREPARE``), so values are always bound,
never spliced. SQL text is scanned properly: a ``:`` or ``%`` inside a string literal, a quoted
identifier, a dollar-quoted body or a comment is left alone (``%`` is doubled, as psycopg needs),
and ``::type`` casts stay casts.

A parameter list given as a tuple binds in the order each name first appears, as SQLite binds a
tuple to ``:name`` parameters (the message batch path relies on it).

:mod:`agentstate.runner` runs them (through :mod:`agentstate.postgres.engine`), as it runs SQLite's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentstate import errors
from agentstate import queries as base
from agentstate.schema_files import schema_dir

if TYPE_CHECKING:
    pass  # type: ignore[import-not-found, unused-ignore]  # the postgres extra may be absent

_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def folder() -> Path:
    """Where the PostgreSQL query files are (in a wheel or a checkout)."""
    return schema_dir("postgres") / "queries"


@dataclass(frozen=True)
class Converted:
    """One statement with its parameters in psycopg's and PostgreSQL's own styles."""

    pyformat: str
    """``%(name)s`` placeholders, literal ``%`` doubled: for ``cursor.execute(sql, dict)``."""
    numbered: str
    """``$1, $2, ...`` placeholders: for ``PREPARE name AS ...`` (plans, server-side statements)."""
    names: tuple[str, ...]
    """Each parameter once, in the order it first appears (``$n`` is ``names[n - 1]``)."""


def convert(sql: str) -> Converted:
    """Rewrite ``:name`` parameters outside literals, quoted identifiers and comments."""
    py: list[str] = []
    num: list[str] = []
    names: dict[str, int] = {}
    i, n = 0, len(sql)

    def copy(text: str) -> None:
        py.append(text.replace("%", "%%"))
        num.append(text)

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            copy(sql[i:end])
            i = end
        elif c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2  # PostgreSQL's block comments nest
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            copy(sql[i:j])
            i = j
        elif c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while j < n:
                if escapes and sql[j] == "\\":
                    j += 2
                elif sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                    else:
                        break
                else:
                    j += 1
            copy(sql[i : j + 1])
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < n:
                if sql[j] == '"':
                    if j + 1 < n and sql[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            copy(sql[i : j + 1])
            i = j + 1
        elif (
            c == "$"
            and (match := _DOLLAR_TAG.match(sql, i))
            and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_"))
        ):
            tag = match.group(0)
            end = sql.find(tag, match.end())
            end = n if end < 0 else end + len(tag)
            copy(sql[i:end])
            i = end
        elif c == ":" and sql.startswith("::", i):
            copy("::")
            i += 2
        elif c == ":" and i + 1 < n and _IDENT_START.match(sql, i + 1):
            match = _IDENT.match(sql, i + 1)
            assert match is not None
            name = match.group(0)
            number = names.setdefault(name, len(names) + 1)
            py.append(f"%({name})s")
            num.append(f"${number}")
            i = match.end()
        else:
            j = i + 1
            while j < n and sql[j] not in "-/'\"$:":
                j += 1
            copy(sql[i:j])
            i = j
    return Converted("".join(py), "".join(num), tuple(names))


@dataclass(frozen=True)
class Query:
    """One registered PostgreSQL statement: the loader's block and its converted SQL."""

    block: base.Query
    converted: Converted

    def __getattr__(self, attribute: str) -> Any:
        """The block's ``name``, ``cardinality``, ``uses``, ``scans``, ``where``, ... as its own."""
        if attribute.startswith("__"):  # copy and pickle look for these before the fields exist
            raise AttributeError(attribute)
        return getattr(self.block, attribute)

    @property
    def sql(self) -> str:
        """The statement for psycopg (``%(name)s`` placeholders)."""
        return self.converted.pyformat

    @property
    def params(self) -> tuple[str, ...]:
        return self.converted.names

    def bind(self, params: Mapping[str, Any] | Sequence[Any] = ()) -> dict[str, Any]:
        """The parameters as the dict psycopg binds: a mapping as given (names the statement does
        not use are ignored), a sequence by order of first appearance."""
        if isinstance(params, Mapping):
            missing = [name for name in self.converted.names if name not in params]
            if missing:
                raise errors.InvalidValueError(f"{self.name}: parameter(s) {', '.join(missing)} not given")
            return {name: params[name] for name in self.converted.names}
        values = tuple(params)
        if len(values) != len(self.converted.names):
            raise errors.InvalidValueError(
                f"{self.name} takes {len(self.converted.names)} parameters ({', '.join(self.converted.names)}), "
                f"got {len(values)}"
            )
        return dict(zip(self.converted.names, values, strict=True))


@cache
def registry(where: Path | None = None) -> dict[str, Query]:
    """Every PostgreSQL query by qualified name (``file_stem.name``), as SQLite's registry names them."""
    blocks = base.registry(where or folder())
    return {name: Query(block, convert(block.sql)) for name, block in blocks.items()}


def query(name: str) -> Query:
    try:
        return registry()[name]
    except KeyError:
        raise errors.QueryFileError(f"no query named {name!r} in {folder()}") from None
