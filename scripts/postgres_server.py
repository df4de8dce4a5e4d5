"""A throwaway PostgreSQL server for the tests, the benchmark and scripts/try_postgres.py, with no
manual step. (The tests import it as ``postgres_server``: pyproject.toml puts scripts/ on pytest's
pythonpath.)

Where it comes from, first found wins:

1. ``AGENTSTATE_TEST_POSTGRES_URL``: a server you run (the role needs CREATEDB); the tests make
   their own databases in it and drop them after.
2. ``AGENTSTATE_TEST_POSTGRES_BIN``: a folder holding ``initdb`` and ``postgres``.
3. The ``pgserver`` wheel (PyPI; PostgreSQL 16 binaries, no system packages needed). Only its
   binaries are used: its own launcher, run as root, adds a system user and chmods every folder
   above the data directory, which a test run must not do.
4. System binaries: ``pg_config --bindir``, ``initdb`` on PATH, or Debian's
   ``/usr/lib/postgresql/<version>/bin`` (newest).

The server gets a fresh data directory under the system temp folder (``initdb --locale=C``,
trust authentication), listens on a Unix socket in that folder only (no TCP port to collide on),
and runs with fsync off: it is thrown away. PostgreSQL refuses to run as root, so under root it
runs as ``nobody`` (``AGENTSTATE_TEST_POSTGRES_USER`` to choose another user). That user may
not be able to reach the binaries (a clone under /root or another 0700 folder holds the venv,
and so pgserver's): then the install tree (bin, lib, share) is copied once per test session into
a temp folder everyone can read, and run from there (:func:`runnable_binaries`). Stopping it is
a fast shutdown (SIGINT) of the one postmaster this module started, then the folder is deleted.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg

START_TIMEOUT_S = 30.0
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}


class Unavailable(Exception):
    """No way to get a PostgreSQL server on this machine (the tests skip, saying why)."""


@dataclass
class Server:
    """A running server (or an external one) the tests make databases in."""

    admin_conninfo: str
    """Connects to the ``postgres`` database as a role that may create databases."""
    origin: str
    version: str = ""
    started_in_s: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    _databases: list[str] = field(default_factory=list)
    _command: list[str] = field(default_factory=list)  # how the postmaster was started, for restart()
    _user: dict[str, object] = field(default_factory=dict)

    def conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_conninfo, dbname=dbname)

    def url(self, dbname: str) -> str:
        """A ``postgresql://`` URL for agentstate.connect() (a Unix socket goes in ``?host=``)."""
        parts = psycopg.conninfo.conninfo_to_dict(self.conninfo(dbname))
        netloc = ""
        if parts.get("user"):
            netloc = quote(str(parts["user"]), safe="")
            if parts.get("password"):
                netloc += ":" + quote(str(parts["password"]), safe="")
            netloc += "@"
        query = {k: str(v) for k, v in parts.items() if k not in ("user", "password", "dbname")}
        return f"postgresql://{netloc}/{quote(dbname, safe='')}?{urlencode(query)}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (copied from ``template`` if given); returns its conninfo."""
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            conn.execute(sql.encode())
        self._databases.append(name)
        return self.conninfo(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        with contextlib.suppress(ValueError):
            self._databases.remove(name)

    def restart(self, down_s: float = 0.5) -> None:
        """Fast-shut the server down (every client's connection breaks), leave it down for
        ``down_s`` seconds, start it again on the same data, and return once it takes connections."""
        if self.process is None or self.folder is None:
            raise Unavailable("an AGENTSTATE_TEST_POSTGRES_URL server cannot be restarted by the tests")
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        time.sleep(down_s)
        log = self.folder / "server.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                self._command, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                **self._user,  # type: ignore[call-overload]
            )  # fmt: skip
        _wait_ready(self, log)

    def stop(self) -> None:
        if self.process is None:  # an external server: drop what the tests made
            for name in list(self._databases):
                with contextlib.suppress(psycopg.Error):
                    self.drop_database(name)
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: roll back, disconnect, stop
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def find_binaries() -> tuple[Path, str]:
    """A folder holding initdb and postgres, and where it came from."""
    explicit = os.environ.get("AGENTSTATE_TEST_POSTGRES_BIN")
    if explicit:
        return Path(explicit), "AGENTSTATE_TEST_POSTGRES_BIN"
    # Found, not imported: importing pgserver sets up its launcher (and warns about XDG folders).
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder, "the pgserver wheel"
    candidates: list[Path] = []
    if config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            candidates.append(Path(subprocess.check_output([config, "--bindir"], text=True).strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    candidates.extend(reversed(debian))
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder, f"system binaries in {folder}"
    raise Unavailable(
        "no PostgreSQL for the tests: pip install -e '.[postgres]' (the pgserver wheel), install "
        "postgresql, or set AGENTSTATE_TEST_POSTGRES_URL to a server where the tests may create databases"
    )


_copies: dict[Path, Path] = {}  # a bin folder -> its copy that the server's user can run


def runnable_binaries(bindir: Path, owner: tuple[int, int] | None) -> Path:
    """``bindir``, or a copy of its install tree the server's user can run if it cannot.

    PostgreSQL finds its lib and share folders relative to its binaries, and the wheel's
    binaries find their shared libraries in ``site-packages/pgserver.libs`` (auditwheel's RPATH
    ``$ORIGIN/../../../pgserver.libs``). So the copy keeps that layout: the bin folder's parent's
    ``bin``, ``lib`` and ``share`` two levels down, and a ``<package>.libs`` beside the package,
    readable by everyone, in a temp folder deleted when the test session ends.
    """
    if owner is None or _can_run(bindir, owner):
        return bindir
    if bindir not in _copies:
        folder = Path(tempfile.mkdtemp(prefix="agentstate-pgbin-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        install = bindir.parent  # .../site-packages/pgserver/pginstall
        tree = folder / install.parent.name / install.name
        for part in ("bin", "lib", "share"):
            if (install / part).is_dir():
                shutil.copytree(install / part, tree / part, symlinks=True)
        libs = install.parent.parent / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, folder / libs.name, symlinks=True)
        for path in [folder, *folder.rglob("*")]:  # whatever the umask the wheel was installed with
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o555 if path.is_dir() or mode & 0o100 else mode | 0o444)
        if not _can_run(tree / "bin", owner):
            raise Unavailable(f"the PostgreSQL binaries in {bindir} cannot be run as uid {owner[0]}, even copied to {tree}")
        _copies[bindir] = tree / "bin"
    return _copies[bindir]


def _can_run(bindir: Path, owner: tuple[int, int]) -> bool:
    try:
        subprocess.run(
            [str(bindir / "postgres"), "--version"], check=True, capture_output=True, timeout=30,
            user=owner[0], group=owner[1], extra_groups=[],
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _run_as() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: None unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("AGENTSTATE_TEST_POSTGRES_USER", "nobody")
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def start(settings: Mapping[str, str] | None = None) -> Server:
    """Start (or reach) the server; raises :class:`Unavailable` when there is none to be had.

    :param settings: server settings (``-c name=value``) over :data:`SETTINGS`, for a server this
        call starts (an ``AGENTSTATE_TEST_POSTGRES_URL`` server is used as it runs). A ``port``
        given here is the Unix socket's too, and the admin connection uses it.
    """
    chosen = {**SETTINGS, **(settings or {})}
    url = os.environ.get("AGENTSTATE_TEST_POSTGRES_URL")
    begin = time.monotonic()
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        return Server(url, "AGENTSTATE_TEST_POSTGRES_URL", version, time.monotonic() - begin)
    bindir, origin = find_binaries()
    owner = _run_as()
    bindir = runnable_binaries(bindir, owner)
    folder = Path(tempfile.mkdtemp(prefix="agentstate-pg-"))
    user: dict[str, object] = {}
    if owner is not None:
        os.chown(folder, *owner)
        user = {"user": owner[0], "group": owner[1], "extra_groups": []}
    data, log = folder / "data", folder / "server.log"
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=120,
            **user,  # type: ignore[call-overload]
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Unavailable(f"initdb ({origin}) failed: {exc.stderr.decode(errors='replace')[-2000:]}") from exc
    args = [str(bindir / "postgres"), "-D", str(data), "-k", str(folder)]
    for key, value in chosen.items():
        args += ["-c", f"{key}={value}"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **user
        )  # type: ignore[call-overload]
    port = int(chosen.get("port", 5432))
    admin = psycopg.conninfo.make_conninfo(host=str(folder), port=port, user="postgres", dbname="postgres")
    server = Server(admin, origin, process=process, folder=folder, _command=args, _user=user)
    try:
        _wait_ready(server, log)
    except Unavailable:
        server.stop()
        raise
    server.started_in_s = time.monotonic() - begin
    return server


def _wait_ready(server: Server, log: Path) -> None:
    """Wait until the server's postmaster takes connections (it must not exit first)."""
    assert server.process is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            text = log.read_text(errors="replace")[-4000:]
            raise Unavailable(f"postgres ({server.origin}) exited at start:\n{text}")
        try:
            with psycopg.connect(server.admin_conninfo, connect_timeout=2) as conn:
                server.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"postgres ({server.origin}) did not accept connections in {START_TIMEOUT_S:.0f} s"
                ) from None
            time.sleep(0.05)


@contextlib.contextmanager
def running() -> Iterator[Server]:
    server = start()
    try:
        yield server
    finally:
        server.stop()
