"""The machine a run measures on: what the report names (CPU, memory, versions), and how much of
its CPU other work took while the operations were timed (from /proc)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import apsw

from bench.contenders.registry import PEER_DISTRIBUTIONS

ROOT = Path(__file__).resolve().parent.parent.parent


def machine_info() -> dict[str, Any]:
    import sqlite3  # only for its version: this process opens no database
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"

    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "missing"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite_apsw": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "sqlite_stdlib": sqlite3.sqlite_version,
        "sqlalchemy": installed("sqlalchemy"),
        "peers": {dist: installed(dist) for dist in PEER_DISTRIBUTIONS},
        "agentstate_commit": commit,
    }


def cpu_seconds() -> tuple[float, float, float] | None:
    """CPU seconds so far: the machine's busy and total (all cores), and this run's own (this
    process and every process under it: the contender and executor processes, and a throwaway
    PostgreSQL server with its backends; exited ones through their parents' reaped-children
    times). From /proc (Linux); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        times: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry)] = int(stat[1])
            times[int(entry)] = sum(int(x) for x in stat[11:15])  # utime, stime, cutime, cstime
    except (OSError, ValueError, IndexError):
        return None
    ours, frontier = set(), [os.getpid()]
    while frontier:
        pid = frontier.pop()
        ours.add(pid)
        frontier += [child for child, parent in parents.items() if parent == pid and child not in ours]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick, sum(times.get(pid, 0) for pid in ours) / tick


def others_share(before: tuple[float, float, float] | None, after: tuple[float, float, float] | None) -> float | None:
    """The share of the machine's CPU that other work (not this run) took between two readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    busy, total, own = (a - b for a, b in zip(after, before, strict=True))
    return round(min(1.0, max(0.0, (busy - own) / total)), 3)
