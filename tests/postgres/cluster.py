"""A throwaway PostgreSQL primary with one synchronous streaming standby, for failover tests.

A store that claims "a committed write survives losing the primary" has to be shown that on a
real failover: the primary dies without warning (SIGKILL of the postmaster and every backend,
no shutdown checkpoint, no goodbye to clients), the standby is promoted, and clients that name
both nodes in one libpq URL find the new primary. This module sets that up on this machine with
the same binaries and rules as scripts/postgres_server.py (``find_binaries()``, copied where
``nobody`` can run them if need be; under root every
process runs as ``nobody``; Unix sockets only; one fresh temp folder, deleted after).

- The primary: ``initdb``, then ``postgres`` with ``wal_level=replica`` and
  ``synchronous_standby_names='*'``, so every commit (``synchronous_commit=on``: remote flush)
  returns only once the standby has the WAL. fsync is off: we kill processes, not the machine.
- The standby: ``pg_basebackup -R`` (standby.signal and ``primary_conninfo``, with
  ``application_name=standby``), started on its own socket folder and port.
  :func:`start_cluster` returns once the primary's ``pg_stat_replication`` shows it
  ``streaming`` with ``sync_state = 'sync'``.
- Settings are given on the command line, not in postgresql.conf, so the standby does not
  inherit ``synchronous_standby_names``: once promoted, with no standby of its own, its commits
  would otherwise wait forever.

:meth:`Cluster.kill_primary` stops the primary's postmaster (SIGSTOP, so it forks nothing more),
SIGKILLs it and every process it started (found in /proc: each child calls setsid(), so a
process-group kill would miss them) and waits until none is left.
``dynamic_shared_memory_type=mmap`` keeps the killed node's dynamic shared memory in its data
folder (not /dev/shm), and :meth:`Cluster.stop` removes the small System V segment a killed
postmaster leaves behind, so killing leaks nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import psycopg
from postgres_server import Unavailable, _run_as, find_binaries, runnable_binaries

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
USER = "postgres"
PRIMARY_PORT, STANDBY_PORT = 5432, 5433
# Both nodes; the standby gets them through the command line, not a copied postgresql.conf.
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "hot_standby": "on",
    "synchronous_commit": "on",
    "dynamic_shared_memory_type": "mmap",
    "max_connections": "30",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
PRIMARY_SETTINGS = {"synchronous_standby_names": "*"}

Which = Literal["primary", "standby"]


@dataclass
class Node:
    """One postmaster: its data folder, socket folder and port, and its process."""

    name: str
    data: Path
    sockets: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    killed: bool = False

    def conninfo(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.sockets), port=self.port, user=USER, dbname=dbname)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-4000:]
        return ""


@dataclass
class Cluster:
    """A running primary and synchronous standby. ``primary``/``standby`` name the nodes' roles
    at start: after :meth:`promote` the ``standby`` node is the one that takes writes."""

    folder: Path
    primary: Node
    standby: Node
    origin: str
    bindir: Path
    version: str = ""
    started_in_s: float = 0.0
    _owner: tuple[int, int] | None = field(default=None, repr=False)

    @property
    def primary_dir(self) -> Path:
        return self.primary.data

    @property
    def standby_dir(self) -> Path:
        return self.standby.data

    @property
    def primary_sockets(self) -> Path:
        return self.primary.sockets

    @property
    def standby_sockets(self) -> Path:
        return self.standby.sockets

    @property
    def primary_port(self) -> int:
        return self.primary.port

    @property
    def standby_port(self) -> int:
        return self.standby.port

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL naming both nodes that connects only to the one taking writes."""
        hosts = ",".join(quote(str(node.sockets), safe="/") for node in (self.primary, self.standby))
        ports = f"{self.primary.port},{self.standby.port}"
        return (
            f"postgresql://{USER}@/{quote(dbname, safe='')}"
            f"?host={hosts}&port={ports}&target_session_attrs=read-write&connect_timeout=2"
        )

    def node_url(self, which: Which, dbname: str = "postgres") -> str:
        """A libpq URL for one node, whatever its role."""
        node = self._node(which)
        return (
            f"postgresql://{USER}@/{quote(dbname, safe='')}"
            f"?host={quote(str(node.sockets), safe='/')}&port={node.port}&connect_timeout=2"
        )

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and every backend; returns once none is left."""
        _kill(self.primary)

    def promote(self) -> float:
        """Promote the standby and wait until it takes writes; returns the seconds taken."""
        begin = time.monotonic()
        with psycopg.connect(self.standby.conninfo(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_promote(wait => true, wait_seconds => 30)").fetchone()
        if not row or not row[0]:
            raise RuntimeError(f"the standby was not promoted in 30 s:\n{self.standby.log_tail()}")
        return time.monotonic() - begin

    def stop(self) -> None:
        """Stop both nodes (fast shutdown; SIGKILL if that hangs) and delete the folder. Idempotent."""
        live = [node for node in (self.primary, self.standby) if node.process and node.process.poll() is None]
        for node in live:
            node.process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        for node in live:
            try:
                node.process.wait(timeout=STOP_TIMEOUT_S)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                _kill(node)
        for node in (self.primary, self.standby):
            if node.killed:
                _drop_sysv_segment(node.data)
                node.killed = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def _node(self, which: Which) -> Node:
        if which == "primary":
            return self.primary
        if which == "standby":
            return self.standby
        raise ValueError(f"which must be 'primary' or 'standby', not {which!r}")


def start_cluster() -> Cluster:
    """Start a primary and its synchronous standby; raises :class:`Unavailable` if they cannot."""
    begin = time.monotonic()
    bindir, origin = find_binaries()
    for tool in ("initdb", "postgres", "pg_basebackup"):
        if not (bindir / tool).exists():
            raise Unavailable(f"no {tool} in {bindir} ({origin})")
    owner = _run_as()
    bindir = runnable_binaries(bindir, owner)
    folder = Path(tempfile.mkdtemp(prefix="agentstate-pgcluster-"))
    if owner is not None:
        os.chown(folder, *owner)
    nodes = {}
    for name, port in (("primary", PRIMARY_PORT), ("standby", STANDBY_PORT)):
        sockets = folder / f"{name}-sockets"
        sockets.mkdir()
        if owner is not None:
            os.chown(sockets, *owner)
        nodes[name] = Node(name, folder / name, sockets, port, folder / f"{name}.log")
    cluster = Cluster(folder, nodes["primary"], nodes["standby"], origin, bindir, _owner=owner)
    try:
        _run(cluster, "initdb", "-D", str(cluster.primary.data), "-U", USER, "--auth=trust", "-E", "UTF8",
             "--locale=C", "--no-sync")  # fmt: skip
        _start(cluster, cluster.primary, {**SETTINGS, **PRIMARY_SETTINGS})
        with psycopg.connect(cluster.primary.conninfo(), autocommit=True) as conn:
            cluster.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        source = psycopg.conninfo.make_conninfo(
            host=str(cluster.primary.sockets), port=cluster.primary.port, user=USER, application_name="standby"
        )  # -R writes these into the standby's primary_conninfo
        _run(cluster, "pg_basebackup", "-D", str(cluster.standby.data), "-d", source, "-R", "-X", "stream",
             "-c", "fast", "--no-sync")  # fmt: skip
        _start(cluster, cluster.standby, SETTINGS)
        _wait_for_sync(cluster)
    except BaseException:
        cluster.stop()
        raise
    cluster.started_in_s = time.monotonic() - begin
    return cluster


@contextlib.contextmanager
def running() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def _user(cluster: Cluster) -> dict[str, object]:
    if cluster._owner is None:
        return {}
    return {"user": cluster._owner[0], "group": cluster._owner[1], "extra_groups": []}


def _run(cluster: Cluster, tool: str, *args: str) -> None:
    try:
        subprocess.run(
            [str(cluster.bindir / tool), *args],
            cwd=cluster.folder,
            check=True,
            capture_output=True,
            timeout=120,
            **_user(cluster),  # type: ignore[call-overload]
        )
    except subprocess.CalledProcessError as exc:
        raise Unavailable(f"{tool} ({cluster.origin}) failed: {exc.stderr.decode(errors='replace')[-2000:]}") from exc


def _start(cluster: Cluster, node: Node, settings: dict[str, str]) -> None:
    """Start one postmaster (in a session of its own, away from our terminal's signals); wait for connections."""
    args = [str(cluster.bindir / "postgres"), "-D", str(node.data), "-k", str(node.sockets), "-p", str(node.port)]
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    with open(node.log, "wb") as out:
        node.process = subprocess.Popen(
            args, cwd=cluster.folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            **_user(cluster),  # type: ignore[call-overload]
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if node.process.poll() is not None:
            raise Unavailable(f"{node.name} postgres ({cluster.origin}) exited at start:\n{node.log_tail()}")
        try:
            with psycopg.connect(node.conninfo(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise Unavailable(f"{node.name} did not accept connections in {START_TIMEOUT_S:.0f} s") from None
            time.sleep(0.02)


def _wait_for_sync(cluster: Cluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with psycopg.connect(cluster.primary.conninfo(), autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication"
                " WHERE application_name = 'standby' AND state = 'streaming' AND sync_state = 'sync'"
            ).fetchone()
            if row and row[0] == 1:
                return
            if time.monotonic() > deadline:
                raise Unavailable(f"the standby did not become a sync standby:\n{cluster.standby.log_tail()}")
            time.sleep(0.02)


def _kill(node: Node) -> None:
    """SIGKILL a postmaster and all its children; returns once none of them is left.

    Not a process-group kill: each child of the postmaster calls setsid(), so it is alone in its
    group. The postmaster is stopped first (SIGSTOP, waited for) so that it forks no child after
    the list of its children is taken from /proc.
    """
    if node.process is None or node.killed:
        return
    postmaster = node.process.pid
    deadline = time.monotonic() + STOP_TIMEOUT_S
    with contextlib.suppress(ProcessLookupError):
        os.kill(postmaster, signal.SIGSTOP)
    while (found := _processes().get(postmaster)) and found[0] not in "TZX":  # a signal lands later
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node.name}: postmaster {postmaster} did not stop")
        time.sleep(0.001)
    doomed = _descendants(postmaster)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    node.process.wait()
    node.killed = True
    while left := [pid for pid, (state, _, began) in _processes().items() if doomed.get(pid) == began
                   and state not in "ZX"]:  # fmt: skip
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node.name}: processes {left} survived SIGKILL")
        time.sleep(0.001)


def _processes() -> dict[int, tuple[str, int, str]]:
    """Every process on the machine: pid -> (state, parent pid, start time), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ..., starttime (22nd)
        found[int(entry.name)] = (fields[0], int(fields[1]), fields[19])
    return found


def _descendants(root: int) -> dict[int, str]:
    """A process and all its descendants: pid -> start time (to tell a reused pid apart)."""
    table = _processes()
    found = {root: table[root][2]} if root in table else {}
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, began) in table.items():
            if parent in found and pid not in found:
                found[pid] = began
                grew = True
    return found


def _drop_sysv_segment(data: Path) -> None:
    """Remove the System V segment a SIGKILLed postmaster leaves (its id is in postmaster.pid)."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        shmid = int(lines[6].split()[1])  # line 7: "<shmem key> <shmem id>"
    except (OSError, IndexError, ValueError):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.shmctl(shmid, 0, None)  # IPC_RMID; nobody is attached any more
