"""The command line: ``python scripts/bench.py`` (see ``--help``), which contenders can run here,
and the run itself, size by size."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NoReturn

import bench
from bench.contenders.registry import CONTENDERS, ORDER, PEERS
from bench.data import DataSpec, format_size, parse_size
from bench.harness import DEFAULT_SIZES, FULL, QUICK, QUICK_SIZES, Budget, SizeRun
from bench.log import log
from bench.machine import machine_info
from bench.operations import OPERATION, OPERATIONS, QUEUE_SCENARIO
from bench.postgres import BenchServer
from bench.report import Report, markdown
from bench.workers import WorkerError

QUEUE_CONTENDERS = (
    "agentstate", "agentstate_full", "floor_write", "floor_write_full", "litequeue", "huey", "huey_nofsync",
)  # fmt: skip
"""``--queue``'s contenders (the peers left out if not installed)."""
QUEUE_SIZES = (10_000, 1_000_000)

DOC = str(bench.__doc__)
"""The package's docstring: its first two paragraphs are --help's description."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python scripts/bench.py",
        description=DOC.split("\n\n")[0] + "\n\n" + DOC.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python scripts/bench.py --out bench-out            1k, 100k and 1M rows (~15 min on 2 cores)\n"
        "  python scripts/bench.py --out bench-out --quick    500 and 5k rows, under a minute\n"
        "  python scripts/bench.py --out queue-out --queue    the queue users run: 400 tasks a round at 10k and 1M\n"
        "  python scripts/bench.py --out bench-out --size 10M  10M rows (~15 GB of disk per contender; measures the disk\n                                                     where the file cache is smaller)\n"
        "\ncontenders (by default every one whose packages are installed, each left out saying what it needs: the\n"
        "peers need the peers extra, pip install -e '.[bench,peers]'; postgres the postgres extra and a server;\n"
        "agentstate_langgraph the langgraph extra; agentstate_session the openai-agents extra):\n"
        + "\n".join(f"  {n:22} {c.summary}" for n, c in CONTENDERS.items())
        + "\n\noperations:\n"
        + "\n".join(f"  {op.name:23} {op.what}" for op in OPERATIONS),
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="where results.json, results.md and latency.png are written",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (500 and 5k rows) and short rounds: under a minute, a smoke test",
    )
    parser.add_argument(
        "--queue",
        action="store_true",
        help="the queue users run (issue 21): enqueue_one and the claim tests of a queue of 400 tasks a round, "
        f"at 10k and 1M rows, agentstate against the task-queue peers and the write floor (defaults for "
        f"--size, --operations and --contenders: 10k,1M; {','.join(QUEUE_SCENARIO)}; {','.join(QUEUE_CONTENDERS)})",
    )
    parser.add_argument(
        "--size",
        action="append",
        metavar="N",
        help="rows of tasks and of messages, e.g. 10M; repeat or comma-separate for several "
        "(default 1k,100k,1M; --quick 500,5k)",
    )
    parser.add_argument(
        "--contenders",
        metavar="LIST",
        help=f"comma-separated subset of: {', '.join(ORDER)} (default: all whose packages are installed, the others "
        "left out with a line saying so; a contender named here is required: exit 2 if it cannot run; described "
        "below). "
        f"The peers ({', '.join(PEERS)}) are other libraries, from the peers extra; agentstate_full is "
        'agentstate with durability="full"',
    )
    parser.add_argument("--operations", metavar="LIST", help="comma-separated subset of the operations below")
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="interleaved rounds per operation (default 5, --quick 2)"
    )
    parser.add_argument(
        "--seconds", type=float, metavar="S", help="time per contender, operation and round (default 1.0, --quick 0.02)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where the databases are built (default DIR/data; 1.1-1.5 GB per contender at 1M)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the databases afterwards (by default each size's are deleted once measured; a throwaway "
        "PostgreSQL server goes at the end all the same: use --postgres-url to keep its databases)",
    )
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="the postgres contender's server: a postgresql:// URL of a role that may create databases (the "
        "bench makes one per size, agentstate_bench_<pid>_<size>, and drops it). Default: a throwaway server "
        "from the pgserver wheel (or the system's binaries), on 127.0.0.1, fsync and full_page_writes on, "
        "synchronous_commit off, stopped at the end",
    )
    return parser.parse_args(argv)


def fail(message: str) -> NoReturn:
    """Stop before anything is built: the message on stderr and exit status 2 (a usage error, as
    argparse's own)."""
    print(f"bench.py: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def choose(text: str | None, allowed: Sequence[str], what: str) -> list[str]:
    if not text:
        return list(allowed)
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown:
        fail(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [a for a in allowed if a in chosen]


def importable(module: str) -> bool:
    """Whether ``module`` imports in this interpreter (what the contender's process will import)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def unavailable(name: str, postgres_url: str | None = None) -> str | None:
    """What the contender needs that is missing here, with how to install it; None if it can run."""
    for module, package, extra in CONTENDERS[name].needs:
        if not importable(module):
            return f"{package}, which is not installed (pip install -e '.[bench,{extra}]')"
    if name == "postgres" and not postgres_url:
        import postgres_server as servers

        try:
            servers.find_binaries()
        except servers.Unavailable:
            return (
                "a PostgreSQL server: give --postgres-url, or install PostgreSQL's binaries (the pgserver "
                "wheel, pip install -e '.[test]', or the system's postgresql) for a throwaway one"
            )
    return None


def select_contenders(
    text: str | None, postgres_url: str | None = None, default: Sequence[str] = tuple(ORDER)
) -> list[str]:
    """The contenders to run. By default every contender of ``default`` whose packages are
    installed, each of the others left out with a line saying what it needs; the ones named in
    ``text`` (--contenders) are all required: one that cannot run stops the bench (exit 2) with the
    extra to install."""
    names = choose(text, ORDER, "contenders") if text else [n for n in ORDER if n in default]
    chosen: list[str] = []
    for name in names:
        why = unavailable(name, postgres_url)
        if why is None:
            chosen.append(name)
        elif text:
            fail(f"the {name} contender needs {why}; or leave {name} out of --contenders")
        else:
            log(f"leaving out {name}: it needs {why}")
    return chosen


def check_dependencies(names: Iterable[str]) -> None:
    """Fail at once, with the fix, rather than minutes into a run (the contenders' own packages are
    checked by :func:`select_contenders`)."""
    names = list(names)
    if {"agentstate", "agentstate_full", "postgres"} & set(names):
        try:
            import agentstate.messages
            import agentstate.tasks  # noqa: F401
        except ImportError as exc:
            fail(
                f"the agentstate contender needs agentstate.tasks and agentstate.messages ({exc}); "
                "leave it out with --contenders orm_today,orm_indexed,raw_apsw,floor"
            )
    for reader in ("agentstate_unmonitored", "agentstate_async"):
        if reader in names and "agentstate" not in names:
            fail(f"{reader} reads agentstate's database: include agentstate")
    if "floor" in names and not {"agentstate", "raw_apsw"} & set(names):
        fail("the floor reads agentstate's (or raw_apsw's) database: include one of them")


def check_bench_extra() -> None:
    """The bench extra (the ORM baselines' SQLAlchemy, the chart's matplotlib) is always required."""
    missing = [module for module in ("sqlalchemy", "matplotlib") if not importable(module)]
    if missing:
        fail(f"{', '.join(missing)} not installed: pip install -e '.[bench]'")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_bench_extra()
    if args.queue:
        names = select_contenders(args.contenders, args.postgres_url, default=QUEUE_CONTENDERS)
        args.operations = args.operations or ",".join(QUEUE_SCENARIO)
        args.size = args.size or [",".join(map(str, QUEUE_SIZES))]
    else:
        names = select_contenders(args.contenders, args.postgres_url)
    ops = [OPERATION[o] for o in choose(args.operations, [op.name for op in OPERATIONS], "operations")]
    check_dependencies(names)
    base = QUICK if args.quick else FULL
    budget = Budget(
        rounds=args.rounds or base.rounds,
        seconds=args.seconds or base.seconds,
        max_calls=base.max_calls,
        min_calls=base.min_calls,
        claim_quota=base.claim_quota,
        keys=base.keys,
    )
    try:
        sizes = (
            sorted({parse_size(s) for arg in args.size for s in arg.split(",")})
            if args.size
            else list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
        )
    except ValueError as exc:
        raise SystemExit(f"bench.py: {exc}") from exc
    workdir = args.workdir or args.out / "data"
    report = Report(
        machine_info(),
        {
            "contenders": names,
            "operations": [op.name for op in ops],
            "sizes": sizes,
            "rounds": budget.rounds,
            "budget": budget.__dict__,
            "quick": args.quick,
            "argv": list(argv if argv is not None else sys.argv[1:]),
        },
    )
    log(f"benchmark: {', '.join(names)} at {', '.join(map(format_size, sizes))} rows; results in {args.out}")
    postgres: BenchServer | None = None
    try:
        if "postgres" in names:
            postgres = BenchServer.start(args.postgres_url)
            report.machine["postgres"] = postgres.describe()
            pg = report.machine["postgres"]
            log(f"postgres: {pg['version']} ({pg['origin']}) over {pg['transport']}")
        for size in sizes:
            run = SizeRun(DataSpec.for_size(size), names, ops, budget, workdir / format_size(size), postgres)
            try:
                run.start()
                report.db_bytes[format_size(size)] = run.db_bytes
                report.results += run.measure()
            except WorkerError as exc:
                log(f"FAILED at {format_size(size)}: {exc}")
                report.write(args.out)
                return 1
            finally:
                report.mismatches += run.mismatches
                run.stop(args.keep_data)
            report.write(args.out)
            log(f"{format_size(size)}: done; {args.out / 'results.md'} updated")
    finally:
        if postgres is not None:
            postgres.stop(args.keep_data)
            if postgres.throwaway:
                log("postgres: the throwaway server is stopped")
    with contextlib.suppress(OSError):
        workdir.rmdir()  # gone if empty, i.e. unless --keep-data
    print(markdown(report))
    return 0
