"""The library's structure, checked: floors with no import circle, engines side by side, managers
that never see a driver, one module that asks which engine a connection is.

Every import counts, function-local and ``TYPE_CHECKING`` ones included (an AST walk, not an
import of the modules), so a late import cannot hide a circle or an upward dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import agentstate
from agentstate import calls
from agentstate.agents import Agents
from agentstate.messages import MessageLog
from agentstate.tasks import TaskManager

PACKAGE = Path(agentstate.__file__).parent

# Floors, lowest first: a module imports only modules of its own floor or lower ones (and none
# on its own floor in a circle). Listed by module name or by package prefix ("agentstate.sqlite.").
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base: errors, values, declarations, settings, statistics, the .sql files, the engine protocol", (
        "agentstate.errors", "agentstate.values", "agentstate.rows", "agentstate.calls", "agentstate.settings",
        "agentstate.monitor", "agentstate.schema_files", "agentstate.queries", "agentstate.engine",
        "agentstate.async_calls",
    )),
    ("the engines, side by side", ("agentstate.sqlite", "agentstate.sqlite.", "agentstate.postgres", "agentstate.postgres.")),
    ("the one module that picks an engine", ("agentstate.engines",)),
    ("the query path", ("agentstate.runner", "agentstate.transactions", "agentstate.migrations")),
    ("the managers", (
        "agentstate.tasks", "agentstate.task_", "agentstate.messages", "agentstate.message_", "agentstate.agents",
        "agentstate.agent_",
    )),
    ("what is built on the managers", (
        "agentstate.aio", "agentstate.store_stats", "agentstate.retention", "agentstate.backup", "agentstate.demo",
    )),
    ("the public face, the command line and the framework adapters", (
        "agentstate", "agentstate.cli", "agentstate.cli.", "agentstate.integrations", "agentstate.integrations.",
    )),
]
MANAGERS = ("agentstate.tasks", "agentstate.messages", "agentstate.agents")
DRIVERS = ("apsw", "psycopg", "psycopg_pool")
ENGINE_PACKAGES = ("agentstate.sqlite", "agentstate.postgres")
# Modules above the picker that may reach into the SQLite engine, because their work is about an
# SQLite file itself (its bytes, its pages, a copy of it, a file the OpenAI SDK left in it).
SQLITE_FILE_TOOLS = {
    "agentstate.backup": "copies the file page by page (apsw's backup API)",
    "agentstate.cli.files": "opens a file read-only to look at it before anything changes it",
    "agentstate.cli.inspecting": "integrity_check and EXPLAIN QUERY PLAN of the file",
    "agentstate.integrations.openai_agents": "checks a session's path as SQLite checks a file path",
    "agentstate.integrations._openai_agents_sdk_tables": "reads the SDK's own tables in the same file",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> Iterator[str]:
    """Every module ``name`` imports, wherever the import statement is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            yield from submodules  # `from agentstate import tasks` imports the module tasks
            if len(submodules) < len(node.names):
                yield base


def ours(name: str) -> Iterator[str]:
    yield from (i for i in imports(name) if i in MODULES and i != name)


def floor(name: str) -> int:
    for number, (_, members) in enumerate(FLOORS):
        if name in members or any(m.endswith((".", "_")) and name.startswith(m) for m in members):
            return number
    raise AssertionError(f"{name} is on no floor: add it to FLOORS in {__file__}")


def test_every_module_is_on_a_floor() -> None:
    for name in MODULES:
        floor(name)


def test_no_module_imports_a_module_above_it() -> None:
    upward = [
        f"{name} (floor {floor(name)}) imports {other} (floor {floor(other)})"
        for name in MODULES
        for other in ours(name)
        if floor(other) > floor(name)
    ]
    assert not upward, "\n".join(upward)


def test_there_is_no_import_circle() -> None:
    graph = {name: set(ours(name)) for name in MODULES}
    # A package's __init__ is imported whenever one of its modules is: that edge is not a circle.
    for name in graph:
        graph[name] -= {p for p in graph[name] if name.startswith(p + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                circle = [*stack[stack.index(other) :], other]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if other not in state:
                visit(other)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_two_engines_do_not_know_each_other() -> None:
    for name in MODULES:
        for mine, theirs in (("agentstate.sqlite", "agentstate.postgres"), ("agentstate.postgres", "agentstate.sqlite")):
            if name == mine or name.startswith(mine + "."):
                crossing = [i for i in imports(name) if i == theirs or i.startswith(theirs + ".")]
                assert not crossing, f"{name} imports {crossing}: the engines sit side by side"


def test_sqlite_works_without_psycopg() -> None:
    for name in MODULES:
        if not name.startswith("agentstate.postgres"):
            continue
        path = MODULES[name]
        top = [n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        drivers = [n for n in top for i in ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]) if i.startswith("psycopg")]
        if name in ("agentstate.postgres", "agentstate.postgres.handle"):  # imported on every connect()
            assert not drivers, f"{name} imports psycopg at import time: SQLite users do not have it"


def test_the_managers_never_see_a_driver_or_an_engine() -> None:
    for name in MODULES:
        if floor(name) != floor("agentstate.tasks"):
            continue
        bad = [i for i in imports(name) if i.split(".")[0] in DRIVERS or i.startswith(ENGINE_PACKAGES)]
        assert not bad, f"{name} imports {bad}: a manager names queries and transactions only"


def test_above_the_picker_only_sqlite_file_tools_reach_into_an_engine() -> None:
    for name in MODULES:
        if floor(name) <= floor("agentstate.engines") or name in SQLITE_FILE_TOOLS:
            continue
        bad = [i for i in imports(name) if i.startswith(ENGINE_PACKAGES)]
        assert not bad, f"{name} imports {bad}: go through agentstate.engines (or add it to SQLITE_FILE_TOOLS, saying why)"


CONNECTION_TYPES = {"Connection", "PostgresConnection", "AsyncConnection", "AsyncSqlite"}


def _names_a_connection_type(node: ast.expr) -> bool:
    if isinstance(node, ast.Tuple):
        return any(_names_a_connection_type(e) for e in node.elts)
    text = ast.unparse(node)
    return text.rpartition(".")[2] in CONNECTION_TYPES


def connection_type_checks(name: str) -> list[str]:
    """Every ``isinstance(x, <a connection class>)`` and ``type(x) is <one>`` in a module."""
    found = []
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        instance_check = (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "isinstance"
            and len(node.args) == 2
            and _names_a_connection_type(node.args[1])
        )
        type_check = (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Call)
            and ast.unparse(node.left.func) == "type"
            and any(isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) for op in node.ops)
            and any(_names_a_connection_type(c) for c in node.comparators)
        )
        if instance_check or type_check:
            found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_picker_asks_which_connection_type_it_has() -> None:
    checks = [c for name in MODULES if name != "agentstate.engines" for c in connection_type_checks(name)]
    assert not checks, "ask agentstate.engines (engine_of, is_sqlite, ...) instead:\n" + "\n".join(checks)
    assert connection_type_checks("agentstate.engines"), "the grep itself must find the picker's own checks"


def test_every_public_manager_method_declares_what_it_does() -> None:
    for cls in (TaskManager, MessageLog, Agents):
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("_") and not isinstance(value, (staticmethod, classmethod, type)):
                assert calls.declared(value) is not None, f"{cls.__name__}.{name} needs @reads, @writes(...) or @claims(...)"


def test_no_library_module_is_long() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if name != "agentstate.aio" and (lines := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert not long, f"split these by concern: {long}"


def test_a_task_spec_takes_exactly_create_tasks_arguments() -> None:
    """create_tasks' specs are checked against TASK_FIELDS, written out once beside the encoder."""
    from inspect import signature

    from agentstate.task_arguments import TASK_FIELDS

    assert tuple(signature(TaskManager.create_task).parameters)[1:] == TASK_FIELDS
