"""The frameworks' own test suites, run against agentstate's adapters.

A framework's source distribution ships its tests; ``sdist()`` fetches the one of the installed
version (once, into a cache) and ``run_pytest()`` runs some of those tests in a subprocess, inside
the framework's tree and with its own pytest configuration, plus one plugin of ours that puts
agentstate's adapter where the framework's SQLite backend was. The caller asserts on the outcome
of every test, so a test that stops passing, or stops running, fails our suite.

The plugin runs inside the framework's tree, where ``tests`` is the framework's package: it may
import agentstate and the framework, not this repository's ``tests``. It is loaded from its file
under a name of its own, so a dotted name like ``tests.integrations.suite_langgraph`` works.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from tests import background

REPOSITORY = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("AGENTSTATE_SUITES_CACHE", Path.home() / ".cache" / "agentstate" / "framework-suites"))
"""Where the sdists are kept between runs (``AGENTSTATE_SUITES_CACHE`` overrides it)."""

DOWNLOAD_TIMEOUT_S = 300


def sdist(distribution: str) -> Path:
    """The extracted source distribution of the installed version of ``distribution``: fetched
    with pip (``--no-binary :all: --no-deps``, so the index pip is configured with) the first time,
    then from the cache. Raises ``RuntimeError`` with pip's output if it cannot be fetched: a
    suite that cannot run fails, it is never skipped."""
    version = importlib.metadata.version(distribution)
    folder = CACHE / f"{distribution}-{version}"
    done = folder / ".extracted"
    if done.exists():
        return _root(folder)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
             f"{distribution}=={version}", "-d", scratch],
            capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False,
        )
        archives = sorted(Path(scratch).glob("*.tar.gz"))
        if fetched.returncode != 0 or len(archives) != 1:
            raise RuntimeError(f"could not fetch the sdist of {distribution}=={version}:\n{fetched.stdout}{fetched.stderr}")
        staging = Path(scratch) / "tree"
        with tarfile.open(archives[0]) as archive:
            archive.extractall(staging, filter="data")
        (staging / ".sha256").write_text(hashlib.sha256(archives[0].read_bytes()).hexdigest())
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)  # whole or not at all: a run cut short leaves no half tree
    done.touch()
    return _root(folder)


def _root(folder: Path) -> Path:
    """The sdist's top folder (``name-version/``) inside ``folder``."""
    (top,) = (p for p in folder.iterdir() if p.is_dir())
    return top


def run_pytest(
    root: Path, args: list[str], plugin: str, *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, str]:
    """Run ``python -m pytest *args`` in ``root`` with ``plugin`` loaded (a module of this
    repository, dotted, e.g. ``tests.integrations.suite_langgraph``), and return every test's
    outcome by node id: ``passed``, ``failed``, ``error`` or ``skipped``. Raises ``RuntimeError``
    if pytest itself broke (no report written) or ran over ``timeout`` seconds. ``env``: variables
    for the child, on top of this process's (never set here: the run may be on a background thread)."""
    source = REPOSITORY.joinpath(*plugin.split(".")).with_suffix(".py")
    if not source.is_file():
        raise FileNotFoundError(source)
    with tempfile.TemporaryDirectory() as scratch:
        alias = "_agentstate_" + source.stem
        shutil.copyfile(source, Path(scratch) / f"{alias}.py")
        report = Path(scratch) / "report.xml"
        path = os.pathsep.join(filter(None, [scratch, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, **(env or {}), "PYTHONPATH": path}
        command = [sys.executable, "-m", "pytest", *args, "-p", alias, "-p", "no:cacheprovider",
                   f"--junitxml={report}", "--continue-on-collection-errors", "-q", "--no-header", "-rN"]
        try:
            ran = background.run_process(command, cwd=root, env=env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{' '.join(args)} ran over {timeout} s:\n{_text(e.stdout)[-4000:]}") from None
        if not report.exists():
            raise RuntimeError(f"pytest wrote no report (exit {ran.returncode}):\n{ran.stdout[-4000:]}{ran.stderr[-4000:]}")
        return outcomes(report)


def _text(out: bytes | str | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def outcomes(report: Path) -> dict[str, str]:
    """Each test case of a junit xml report, by its pytest node id, with its outcome."""
    found: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        # junit names a test "tests.memory.test_session.TestX" + "test_y[param]": back to a node id.
        if classname:
            module_parts, inner = _split(classname.split("."))
            nodeid = "/".join(module_parts) + ".py::" + "::".join([*inner, name])
        else:  # a module that failed to collect: junit names it "tests.test_x"
            nodeid = name.replace(".", "/") + ".py"
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            found[nodeid] = "failed"
        elif "error" in kinds:
            found[nodeid] = "error"
        elif "skipped" in kinds:
            found[nodeid] = "skipped"
        else:
            found[nodeid] = "passed"
    return found


def _split(parts: list[str]) -> tuple[list[str], list[str]]:
    """junit's dotted classname split into the module path and the classes inside it: classes
    start with a capital letter (pytest's ``Test*`` convention), modules do not."""
    for i, part in enumerate(parts):
        if part[:1].isupper():
            return parts[:i], parts[i:]
    return parts, []
