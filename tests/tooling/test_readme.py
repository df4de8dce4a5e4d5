"""Every code block of the README and of the docs/ pages runs as written.

The fenced blocks are read from README.md and every docs/*.md page: each ```python block runs as
a program of its own with this venv's python in a fresh temporary folder, and each page's python
blocks also run one after another in one folder of that page's own (as a reader trying them in
order would); each ```sh block runs with
bash (``-e -o pipefail``) in a fresh folder, with this venv's ``bin`` first on PATH (the venv
activated, as the README asks); a ```crontab block's command runs with its absolute paths made
relative. A block that needs PostgreSQL gets a fresh database of the test session's server (see
tests/conftest.py) in ``AGENTSTATE_POSTGRES_URL``, which is where docs/postgres.md's block reads it.

A block that cannot run here (it installs, or runs the whole suite) carries an HTML comment
``<!-- not run: reason -->`` on the line right above it; each is reported as a skip with that
reason, and there may be only a few per page. Plain ``` blocks (diagrams, sample output) are not
code. README.md links every docs/ page, and every relative link in them names a file that exists.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import postgres_server as servers
import psycopg
import pytest

import agentstate
from agentstate import errors
from tests import engines

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
"""README.md first, then the docs/ pages: every fenced block of each is checked here."""
VENV_BIN = Path(sys.executable).parent
TIMEOUT_S = 120
MAX_NOT_RUN = 5
"""Blocks of one page that may be marked ``<!-- not run: ... -->``: a few, each with its reason."""
PG_URL_VARIABLE = "AGENTSTATE_POSTGRES_URL"
RUNNABLE = ("python", "sh", "crontab")
"""Languages the test runs; a plain fence (no language) is a diagram or sample output."""

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")
_HEADING = re.compile(r"^#+\s+(?P<title>.+?)\s*$")
_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@dataclass(frozen=True)
class Block:
    page: str
    """The file it is in, relative to the repository: ``README.md``, ``docs/tasks.md``."""
    line: int
    """The line of its opening fence (1-based)."""
    lang: str
    code: str
    heading: str
    not_run: str | None
    """The reason in a ``<!-- not run: reason -->`` right above it, if there is one."""

    @property
    def name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"{Path(self.page).stem}-{self.lang}-{slug}-line{self.line}"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"

    @property
    def needs_postgres(self) -> bool:
        return PG_URL_VARIABLE in self.code


def read_blocks(page: Path) -> list[Block]:
    """A page's fenced blocks, in order (indented ones, inside a list item, included)."""
    name = page.relative_to(ROOT).as_posix()
    text = page.read_text(encoding="utf-8")
    blocks: list[Block] = []
    lines = text.splitlines()
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if found := _HEADING.match(line):
            heading = found["title"]
        fence = _FENCE.match(line)
        if fence is None:
            index += 1
            continue
        start, indent = index, fence["indent"]
        index += 1
        while index < len(lines) and lines[index].rstrip() != f"{indent}```":
            index += 1
        assert index < len(lines), f"{name} line {start + 1}: the block is never closed"
        body = textwrap.dedent("\n".join(lines[start + 1 : index])) + "\n"
        above = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marked = _NOT_RUN.match(above)
        blocks.append(Block(name, start + 1, fence["lang"], body, heading, marked["reason"] if marked else None))
        index += 1
    return blocks


BLOCKS_OF = {page.relative_to(ROOT).as_posix(): read_blocks(page) for page in PAGES}
BLOCKS = [block for blocks in BLOCKS_OF.values() for block in blocks]
TO_RUN = [block for block in BLOCKS if block.lang in RUNNABLE and block.not_run is None]
NOT_RUN = [block for block in BLOCKS if block.not_run is not None]
PYTHON_OF = {
    page: [block for block in blocks if block.lang == "python" and block.not_run is None]
    for page, blocks in BLOCKS_OF.items()
}
IN_ORDER = [page for page, blocks in PYTHON_OF.items() if len(blocks) > 1]
"""Pages with more than one python block: those run one after another in one folder too."""


def _env(pg_url: str | None = None) -> dict[str, str]:
    """The environment of a shell with this venv activated (and the PostgreSQL URL, if any)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", PG_URL_VARIABLE)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    if pg_url is not None:
        env[PG_URL_VARIABLE] = pg_url
    return env


def _crontab_commands(code: str) -> str:
    """A crontab's commands (the five schedule fields dropped), absolute paths made relative."""
    commands = []
    for line in code.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            command = line.split(None, 5)[5]
            commands.append(re.sub(r"(?<![\w.])/(?:[\w.-]+/)*([\w.-]+)", r"\1", command))
    return "agentstate migrate agents.db >/dev/null\n" + "\n".join(commands) + "\n"


def run_block(block: Block, folder: Path, pg_url: str | None) -> None:
    """Run one block in ``folder``; fails the test with its output if it exits non-zero."""
    if block.lang == "python":
        script = folder / f"{Path(block.page).stem}_line{block.line}.py"
        script.write_text(block.code, encoding="utf-8")
        args = [sys.executable, script.name]
    elif block.lang == "sh":
        args = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        args = ["bash", "-e", "-o", "pipefail", "-c", _crontab_commands(block.code)]
    done = subprocess.run(args, cwd=folder, env=_env(pg_url), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (
        f"{block.where} ({block.lang}, under {block.heading!r}) exited {done.returncode}:\n"
        f"{block.code}\n--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-5000:]}"
    )


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database's URL (the test session's server)."""
    server: servers.Server = request.getfixturevalue("pg_server")
    name, _ = engines.fresh_database(server, request.getfixturevalue("pg_template"))
    yield server.url(name)
    server.drop_database(name)


def _missing(block: Block) -> str | None:
    """Why a block cannot run in this venv: the Prometheus block needs prometheus-client (no
    extra installed it, once), and the reason says so with the install line."""
    if "prometheus_client" in block.code and importlib.util.find_spec("prometheus_client") is None:
        return f"{block.where} needs prometheus-client: pip install prometheus-client"
    return None


@pytest.mark.parametrize("block", TO_RUN, ids=[block.name for block in TO_RUN])
def test_block_runs_in_a_fresh_folder(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if reason := _missing(block):
        pytest.skip(reason)
    pg_url = request.getfixturevalue("pg_database") if block.needs_postgres else None
    run_block(block, tmp_path, pg_url)


@pytest.mark.parametrize("page", IN_ORDER)
def test_python_blocks_run_one_after_another_in_one_folder(
    page: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    blocks = PYTHON_OF[page]
    pg_url = request.getfixturevalue("pg_database") if any(block.needs_postgres for block in blocks) else None
    left_out = []
    for block in blocks:
        if reason := _missing(block):
            left_out.append(reason)
            continue
        run_block(block, tmp_path, pg_url)
    if left_out:  # the others ran and passed; say which did not run, and why
        pytest.skip(f"the other blocks ran in order and passed; left out: {'; '.join(left_out)}")


@pytest.mark.parametrize("block", NOT_RUN, ids=[block.name for block in NOT_RUN])
def test_block_marked_not_run(block: Block) -> None:
    pytest.skip(f"{block.where} ({block.lang}): not run: {block.not_run}")


def test_the_pages_have_blocks_of_known_kinds_only() -> None:
    assert len(PYTHON_OF["README.md"]) >= 2 and any(block.lang == "sh" for block in TO_RUN)
    assert sum(len(blocks) for blocks in PYTHON_OF.values()) >= 5
    unknown = [(block.where, block.lang) for block in BLOCKS if block.lang and block.lang not in RUNNABLE]
    assert not unknown, f"blocks in a language this test cannot run (where, language): {unknown}"
    for page, blocks in BLOCKS_OF.items():
        marked = [(block.where, block.not_run) for block in blocks if block.not_run is not None]
        assert len(marked) <= MAX_NOT_RUN, (page, marked)


def test_the_readme_links_every_docs_page_and_every_link_is_there() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= 10, pages
    linked = {(ROOT / target).resolve() for target in _LINK.findall(README.read_text(encoding="utf-8"))}
    unlinked = [page.name for page in pages if page.resolve() not in linked]
    assert not unlinked, f"docs/ pages README.md does not link: {unlinked}"
    broken = []
    for page in PAGES:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append((page.relative_to(ROOT).as_posix(), target))
    assert not broken, f"relative links to files that do not exist (page, link): {broken}"


def test_the_migrations_table_names_every_migration_file() -> None:
    files = {path.name for path in (ROOT / "schema" / "sqlite").glob("[0-9][0-9][0-9][0-9]_*.sql")}
    text = (DOCS / "schema.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(\d{4}_[\w.]+\.sql)` \|", text, flags=re.MULTILINE))
    assert listed == files, (
        f"missing from docs/schema.md's table: {sorted(files - listed)}; not files: {sorted(listed - files)}"
    )


def test_ci_runs_the_readmes_test_command() -> None:
    """The README says its test command is the one CI runs: .ci/run holds it (pip's -q aside)."""
    commands = [line for block in BLOCKS_OF["README.md"] for line in block.code.splitlines() if "-m pytest" in line]
    assert len(commands) == 1, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace(" -q ", " ")
    assert commands[0].strip() in ci.splitlines()


@pytest.mark.parametrize("kind", ["conversation", "router", "planner"])
def test_a_duplicate_id_names_a_method_that_exists(tmp_path: Path, kind: str) -> None:
    """The README's first blocks, run twice, end in this message: what it tells you to call must exist."""
    conn = agentstate.connect(tmp_path / "agents.db")
    try:
        agents = agentstate.Agents(conn)
        create = getattr(agents, f"create_{kind}")
        create(f"{kind}-1")
        with pytest.raises(errors.DuplicateError) as raised:
            create(f"{kind}-1")
    finally:
        conn.close()
    named = re.findall(r"(\w+)\(\)", str(raised.value))
    assert named, str(raised.value)
    for method in named:
        assert callable(getattr(agentstate.Agents, method, None)), (method, str(raised.value))
    assert f"get_{kind}" in named


# --- scripts/try_postgres.py, the README's "try it on your machine" -----------------------------------

TRY_POSTGRES = [sys.executable, str(ROOT / "scripts" / "try_postgres.py"), "--tasks", "3"]
DEMO_LINE = re.compile(r"^(database|router|planner|executor|history|message) {2,}|^done in ")
"""The lines ``agentstate demo`` prints (agentstate/demo.py), as opposed to the script's own."""


@pytest.fixture
def server_temp() -> Iterator[Path]:
    """A system temp folder of the script's own (its server's data directory goes in it); under
    root the server runs as another user, so it must be a folder that user can enter."""
    folder = Path(tempfile.mkdtemp(prefix="agentstate-try-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_try_postgres_prints_no_url_of_a_server_it_deleted(server_temp: Path) -> None:
    done = subprocess.run(
        TRY_POSTGRES, env={**os.environ, "TMPDIR": str(server_temp)}, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    # The script's own lines (not the demo's report of what it ran on) hand out no URL: the
    # server's URL names its socket folder.
    own = [line for line in done.stdout.splitlines() if not DEMO_LINE.match(line)]
    assert not [line for line in own if "agentstate-pg-" in line or "postgresql://" in line], done.stdout
    assert "deleted" in own[-1], done.stdout
    assert list(server_temp.iterdir()) == []  # its data directory is gone


def test_try_postgres_keep_prints_the_url_and_sigterm_stops_the_server(server_temp: Path) -> None:
    help_text = subprocess.run([*TRY_POSTGRES, "--help"], capture_output=True, text=True, timeout=TIMEOUT_S).stdout
    assert "--keep" in help_text and "SIGTERM" in help_text
    script = subprocess.Popen(
        [*TRY_POSTGRES, "--keep"],
        env={**os.environ, "TMPDIR": str(server_temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert script.stdout is not None
        lines = []
        for line in script.stdout:
            lines.append(line)
            if "keeps running at" in line:
                break
        found = re.search(r"(postgresql://\S+)", lines[-1])
        assert found, "".join(lines)
        url = found[1].rstrip(";,")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM workers").fetchone() == (3,)
        script.send_signal(signal.SIGTERM)
        rest = script.communicate(timeout=60)[0]
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert script.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest, rest
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
    assert list(server_temp.iterdir()) == []
