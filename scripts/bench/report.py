"""The report: results.json (every figure), results.md (the tables) and the chart beside them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.contenders.registry import CONTENDERS, ORDER, PEER_DISTRIBUTIONS
from bench.data import format_size
from bench.formats import format_ratio, format_us
from bench.log import elapsed
from bench.operations import OPERATIONS
from bench.plot import plot
from bench.targets import evaluate_targets, reference


@dataclass
class Report:
    machine: dict[str, Any]
    config: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    db_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "duration_s": round(elapsed(), 1),
            "machine": self.machine,
            "config": self.config,
            "contenders": {n: CONTENDERS[n].summary for n in self.config["contenders"]},
            "operations": {op.name: op.what for op in OPERATIONS},
            "db_bytes": self.db_bytes,
            "mismatches": self.mismatches,
            "targets": evaluate_targets(self.results),
            "results": self.results,
        }

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(
            json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (out / "results.md").write_text(markdown(self), encoding="utf-8")
        plot(self, out / "latency.png")


def markdown(report: Report) -> str:
    m = report.machine
    sizes = sorted({r["size"] for r in report.results})
    names = [n for n in ORDER if n in report.config["contenders"]]
    lines = [
        "# agentstate benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']}; Python {m['python']}; "
        f"SQLite {m['sqlite_apsw']} via apsw {m['apsw']}, SQLite {m['sqlite_stdlib']} via the stdlib sqlite3 "
        f"(ORM baselines and peers), SQLAlchemy {m['sqlalchemy']}, "
        + ", ".join(f"{dist} {m['peers'].get(dist, 'missing')}" for dist in PEER_DISTRIBUTIONS)
        + ".",
        f"Run: {report.started}, agentstate {m['agentstate_commit']}, sizes {', '.join(map(format_size, sizes))} "
        f"(tasks and messages each), {report.config['rounds']} interleaved rounds, "
        f"`python scripts/bench.py {' '.join(report.config['argv'])}`.",
        *_postgres_server_lines(report),
        *_others_line(report),
        "",
    ]
    lines += _targets_section(report)
    if sizes:
        lines += _summary_section(report, names, sizes[-1])
        lines += _postgres_section(report, sizes)
    lines += _full_table(report, names)
    lines += ["## Contenders", ""] + [f"- `{n}`: {CONTENDERS[n].summary}." for n in names] + [""]
    lines += ["## Operations", ""] + [f"- `{op.name}`: {op.what}." for op in OPERATIONS] + [""]
    lines += [
        "Latencies are per call (per batch for the append_turn, append_bulk and enqueue_batch rows, per task for "
        "the claim rows), timed one by one after an untimed warm-up pass; openai_session's, agentstate_session's "
        "and agentstate_async's calls are awaited in their event loop. \"vs agentstate\" is the contender's figure "
        "divided by agentstate's (above 1: slower); on the checkpoint rows, by agentstate_langgraph's; on the ADK "
        "rows, by agentstate_adk_full's. "
        "Throughput: items per second over all timed calls (claim rows: tasks per second of wall time, all "
        'executor processes together). "done twice": on every claim row, how many times a claim was handed a '
        "task that another claim of the same round (in any process) already had; a task the round left "
        "unfinished is shown beside it.",
        "",
    ]
    twice = [r for r in report.results if r.get("duplicates") or r.get("unfinished")]
    if twice:
        lines += [
            "## Tasks handed out twice",
            "",
            "Claim tests in which a task went to more than one claim, or was left unfinished:",
            "",
        ]
        lines += [
            f"- {r['operation']} at {format_size(r['size'])}: {r['contender']} handed out {r['duplicates']:,} tasks "
            f"a second time; {r['unfinished']:,} were left unfinished"
            for r in twice
        ] + [""]
    if report.mismatches:
        lines += ["## Disagreements", "", "Contenders that returned different rows for the same keys:", ""]
        lines += [
            f"- {x['operation']} at {format_size(x['size'])}: {x['contender']} differs from {x['reference']} "
            f"on {x['keys_differing']} keys"
            for x in report.mismatches
        ] + [""]
    return "\n".join(lines)


def _targets_section(report: Report) -> list[str]:
    targets = evaluate_targets(report.results)
    if not targets:
        return []
    lines = [
        f"## The issue's targets at {format_size(targets[0]['size'])} rows",
        "",
        "Issue 11's targets, issue 12's (agentstate's framework integrations against the frameworks' own SQLite "
        "backends, each pair at its defaults), issue 13's (agentstate on PostgreSQL, the `postgres` contender, "
        "against agentstate on one SQLite file), then the earlier ones issue 11 left standing; met or not as "
        "measured in this run.",
        "",
        "| target | from | measured | met |",
        "| --- | --- | ---: | :---: |",
    ]
    lines += [
        f"| {t['target']} | {t['source']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in targets
    ]
    return [*lines, ""]


def _others_line(report: Report) -> list[str]:
    """How much of the machine other work took while this run measured (``others_cpu``)."""
    shares = [r["others_cpu"] for r in report.results if r.get("others_cpu") is not None]
    if not shares:
        return []
    return [
        f"Other work on the machine (processes not started by this run) took {min(shares):.0%} to "
        f"{max(shares):.0%} of its CPU while the operations were timed (per row: `others_cpu` in results.json); "
        "figures taken on a busy machine are lower than on an idle one."
    ]


def _postgres_server_lines(report: Report) -> list[str]:
    """The PostgreSQL server the postgres contender ran on, and its settings (read back from it)."""
    pg = report.machine.get("postgres")
    if not pg:
        return []
    settings = pg["settings"]
    listed = ", ".join(f"{k}={v}" for k, v in settings.items())
    kind = (
        f"{pg['origin']}; a throwaway server started for this run and stopped at its end"
        if pg["throwaway"]
        else "a server given with --postgres-url: its work counts as other work below"
    )
    return [
        f"PostgreSQL {pg['version']} ({kind}), reached over {pg['transport']}; settings: {listed}. "
        f"fsync={settings.get('fsync')}, full_page_writes={settings.get('full_page_writes')} and "
        f"synchronous_commit={settings.get('synchronous_commit')} match agentstate's SQLite default, durability "
        '"normal" (synchronous=NORMAL in WAL): a returned commit survives a crash of the process, a power cut may '
        "lose the last ones, and neither corrupts."
        if (settings.get("fsync"), settings.get("full_page_writes"), settings.get("synchronous_commit"))
        == ("on", "on", "off")
        else f"PostgreSQL {pg['version']} ({kind}), reached over {pg['transport']}; settings: "
        f"{listed} (not the benchmark's fair default of fsync=on, full_page_writes=on, synchronous_commit=off)."
    ]


def _postgres_section(report: Report, sizes: list[int]) -> list[str]:
    """agentstate on one SQLite file against agentstate on PostgreSQL, operation by operation:
    medians (and throughput for the claim and batch rows), at every size, with the ratio."""
    fig = {(r["contender"], r["operation"], r["size"]): r for r in report.results}
    if not any(c == "postgres" for c, _, _ in fig) or not any(c == "agentstate" for c, _, _ in fig):
        return []
    lines = [
        "## PostgreSQL against one SQLite file",
        "",
        "agentstate's API on `connect('postgresql://...')` (`postgres`) against the same calls on one SQLite "
        "file (`agentstate`), same data, same run: the per-call cost of going to a server, and where several "
        "executor processes on a server overtake one file's single writer. Median µs (throughput per second in "
        "brackets for the claim and batch rows; claim rows are per task, all processes together). The last "
        "column: the share of the machine's CPU that other work took meanwhile.",
        "",
        "| operation | size | agentstate (SQLite) | postgres | postgres / agentstate | CPU taken by other work |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(r: dict[str, Any]) -> str:
        rate = f" ({r['throughput_per_s']:,.0f}/s)" if "throughput_per_s" in r else ""
        return format_us(r["median_us"]) + rate

    for op in OPERATIONS:
        for size in sizes:
            base = "floor" if op.name == "select_1" else "agentstate"  # the SQLite floor's SELECT 1
            ours, pg = fig.get((base, op.name, size)), fig.get(("postgres", op.name, size))
            if ours and pg:
                others = pg.get("others_cpu")
                label = f"{op.name} (SQLite: the floor's)" if base == "floor" else op.name
                lines.append(
                    f"| {label} | {format_size(size)} | {cell(ours)} | {cell(pg)} | "
                    f"{format_ratio(pg['median_us'] / ours['median_us'])} | "
                    f"{'' if others is None else f'{others:.0%}'} |"
                )
    return [*lines, ""]


def _summary_section(report: Report, names: list[str], size: int) -> list[str]:
    fig = {(r["contender"], r["operation"]): r for r in report.results if r["size"] == size}
    lines = [
        f"## Median µs at {format_size(size)} rows (x agentstate)",
        "",
        "| operation | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    others: set[str] = set()
    for op in OPERATIONS:
        if not any((n, op.name) in fig for n in names):
            continue
        base = reference(op.name)
        ours = fig.get((base, op.name))
        if ours and base != "agentstate":
            others.add(base)
        cells = []
        for n in names:
            row = fig.get((n, op.name))
            if row is None:
                cells.append("")
            elif ours and n != base:
                cells.append(f"{format_us(row['median_us'])} ({format_ratio(row['median_us'] / ours['median_us'])})")
            else:
                cells.append(format_us(row["median_us"]))
        lines.append(f"| {op.name} | " + " | ".join(cells) + " |")
    if others:
        lines += [
            "",
            "The checkpoint and ADK rows' ratios are to " + ", ".join(sorted(others)) + ": agentstate's LangGraph "
            "saver and ADK session service.",
        ]
    return [*lines, ""]


def _full_table(report: Report, names: list[str]) -> list[str]:
    fig = {(r["contender"], r["operation"], r["size"]): r for r in report.results}
    lines = [
        "## All figures",
        "",
        "| operation | size | contender | median µs | p99 µs | p99.9 µs | n | throughput /s | done twice "
        "| median vs agentstate | p99 vs agentstate |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in OPERATIONS:
        for size in sorted({r["size"] for r in report.results}):
            ours = fig.get((reference(op.name), op.name, size))
            for n in names:
                row = fig.get((n, op.name, size))
                if row is None:
                    continue
                throughput = f"{row['throughput_per_s']:,.0f}" if "throughput_per_s" in row else ""
                checked = _queue_check(row)
                vs = (
                    (format_ratio(row["median_us"] / ours["median_us"]), format_ratio(row["p99_us"] / ours["p99_us"]))
                    if ours
                    else ("", "")
                )
                lines.append(
                    f"| {op.name} | {format_size(size)} | {n} | {format_us(row['median_us'])} | "
                    f"{format_us(row['p99_us'])} | {format_us(row['p999_us'])} | {row['n']:,} | {throughput} | "
                    f"{checked} | {vs[0]} | {vs[1]} |"
                )
    return [*lines, ""]


def _queue_check(row: dict[str, Any]) -> str:
    """A claim row's duplicate check: tasks done more than once (and any left unfinished)."""
    if "duplicates" not in row:
        return ""
    text = f"{row['duplicates']:,}" if not row["duplicates"] else f"**{row['duplicates']:,}**"
    return text + (f" ({row['unfinished']:,} unfinished)" if row.get("unfinished") else "")
