"""The issues' targets: each one this run has the figures for, met or not as measured."""

from __future__ import annotations

import math
from typing import Any

from bench.contenders.adk_sessions import ADK_OPERATIONS
from bench.contenders.agentstate import AsyncContender
from bench.contenders.checkpointers import CHECKPOINT_OPERATIONS
from bench.contenders.registry import CONTENDERS, PAIRS, PEERS
from bench.data import format_size
from bench.formats import format_ratio, format_us
from bench.operations import CLAIM_OPERATIONS, OPERATIONS, QUEUE_SCENARIO


def reference(op: str) -> str:
    """The contender an operation's "x agentstate" ratios are taken against: agentstate, or for the
    checkpoint operations (agentstate's core API has none) agentstate's LangGraph saver."""
    if op in ADK_OPERATIONS:  # the ADK session service's, at the durability of ADK's own service
        return "agentstate_adk_full"
    return "agentstate_langgraph" if op in CHECKPOINT_OPERATIONS else "agentstate"


def evaluate_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target this run has the figures for, at the largest size: issue 11's first, then issue
    12's (agentstate's framework integrations against the frameworks' own SQLite backends), issue
    13's (agentstate on PostgreSQL against agentstate on SQLite), then the earlier ones issue 11
    left standing. Met or not is read from the figures, never assumed."""
    if not results:
        return []
    size = max(r["size"] for r in results)
    smallest = min(r["size"] for r in results)
    fig = {(r["contender"], r["operation"], r["size"]): r for r in results}
    out: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool, source: str = "issue 11") -> None:
        out.append({"size": size, "target": target, "measured": measured, "met": met, "source": source})

    def row(contender: str, op: str) -> dict[str, Any] | None:
        return fig.get((contender, op, size))

    def clean(r: dict[str, Any]) -> bool:
        return r.get("duplicates", 0) == 0 and r.get("unfinished", 0) == 0

    for op, floor_rate in (
        ("claim_finish_4p", 5_000),
        ("claim_finish_1p", 6_000),
        ("claim_finish_4p_batch10", 15_000),
        ("enqueue_batch_100", 15_000),
        ("append_turn_100", 100_000),
        ("append_bulk_10k", 50_000),
    ):
        if r := row("agentstate", op):
            claims = op in CLAIM_OPERATIONS
            unit = "messages" if op.startswith("append") else "tasks"
            add(
                f"{op}: at least {floor_rate:,} {unit}/s" + (", none done twice" if claims else ""),
                f"{r['throughput_per_s']:,.0f}/s" + (f", {r['duplicates']} done twice" if claims else ""),
                r["throughput_per_s"] >= floor_rate and clean(r),
            )
    if r := row("agentstate", "enqueue_one"):
        add("enqueue_one: median at most 80 µs", f"{format_us(r['median_us'])} µs", r["median_us"] <= 80)
    if r := row("agentstate", "claim_finish_4p"):
        add("claim_finish_4p: p99 at most 5 ms", f"{format_us(r['p99_us'])} µs", r["p99_us"] <= 5_000)
        add("claim_finish_4p: p99.9 at most 20 ms", f"{format_us(r['p999_us'])} µs", r["p999_us"] <= 20_000)
    # At durability full, against the fastest peer that fsyncs every commit too: by throughput on
    # the claim tests (their figure), by median latency on the single calls.
    full_peers = [n for n in PEERS if CONTENDERS[n].durability == "full"]
    for op in ("enqueue_one", "claim_finish_1p", "claim_finish_4p", "append_one", "append_turn_100"):
        ours = row("agentstate_full", op)
        theirs = [r for n in full_peers if (r := row(n, op))]
        if not (ours and theirs):
            continue
        if op in CLAIM_OPERATIONS:
            best = max(theirs, key=lambda r: float(r["throughput_per_s"]))
            add(
                f"{op}: agentstate_full at least as many tasks/s as the fastest FULL-durability peer ({best['contender']})",
                f"{ours['throughput_per_s']:,.0f}/s vs {best['throughput_per_s']:,.0f}/s",
                ours["throughput_per_s"] >= best["throughput_per_s"] and clean(ours),
            )
        else:
            best = min(theirs, key=lambda r: float(r["median_us"]))
            add(
                f"{op}: agentstate_full's median at most the fastest FULL-durability peer's ({best['contender']})",
                f"{format_us(ours['median_us'])} vs {format_us(best['median_us'])} µs",
                ours["median_us"] <= best["median_us"],
            )
    for op in AsyncContender.operations:
        sync, awaited = row("agentstate", op), row("agentstate_async", op)
        if sync and awaited:
            extra = awaited["median_us"] - sync["median_us"]
            add(
                f"{op}: the async API adds at most 30 µs per call (median, over the sync one)",
                f"+{format_us(extra)} µs ({format_us(awaited['median_us'])} vs {format_us(sync['median_us'])})",
                extra <= 30,
            )
    ours, raw = row("agentstate", "latest_50"), row("raw_apsw", "latest_50")
    if ours and raw:
        add(
            "latest_50: median at most raw_apsw's",
            f"{format_us(ours['median_us'])} vs {format_us(raw['median_us'])} µs",
            ours["median_us"] <= raw["median_us"],
        )
    for op, source in (("get_completed_task", "issue 11"), ("get_current_task", "earlier")):
        ours, floor = row("agentstate", op), row("floor", op)
        if ours and floor:
            ratio = ours["median_us"] / floor["median_us"]
            add(f"{op}: median within 2x of the floor's primary-key lookup", format_ratio(ratio), ratio <= 2, source)

    # Issue 12: each framework integration against the framework's own SQLite backend, at both
    # one's defaults, on every operation they share (by median latency; met: ours is not slower).
    for ours_name, theirs_name in PAIRS:
        for op in OPERATIONS:
            ours, theirs = row(ours_name, op.name), row(theirs_name, op.name)
            if not (ours and theirs):
                continue
            durabilities = CONTENDERS[ours_name].durability, CONTENDERS[theirs_name].durability
            writes = op.name.startswith(("append", "checkpoint_put", "adk_append"))
            add(
                f"{op.name}: {ours_name}'s median at most {theirs_name}'s"
                + (f" (synchronous {durabilities[0].upper()} vs {durabilities[1].upper()})" if writes else ""),
                f"{format_us(ours['median_us'])} vs {format_us(theirs['median_us'])} µs "
                f"({format_ratio(ours['median_us'] / theirs['median_us'])})",
                ours["median_us"] <= theirs["median_us"],
                "issue 12",
            )

    # Issue 13: the postgres contender (agentstate's API on PostgreSQL, loopback) against
    # agentstate on one SQLite file in the same run.
    if r := row("postgres", "claim_finish_16p"):
        add(
            "claim_finish_16p: postgres at least 2,000 tasks/s with 16 executor processes",
            f"{r['throughput_per_s']:,.0f}/s",
            r["throughput_per_s"] >= 2_000 and clean(r),
            "issue 13",
        )
    for op in ("latest_50", "get_current_task"):
        pg, ours = row("postgres", op), row("agentstate", op)
        if pg and ours:
            ratio = pg["median_us"] / ours["median_us"]
            add(
                f"{op}: postgres's median within 3x of agentstate's (SQLite)",
                f"{format_ratio(ratio)} ({format_us(pg['median_us'])} vs {format_us(ours['median_us'])} µs)",
                ratio <= 3,
                "issue 13",
            )
    pg_claims = [r for r in results if r["contender"] == "postgres" and r["operation"] in CLAIM_OPERATIONS]
    if pg_claims:
        twice = sum(r["duplicates"] for r in pg_claims)
        unfinished = sum(r["unfinished"] for r in pg_claims)
        add(
            "postgres: no task ever handed out twice (every claim test, every size)",
            f"{twice:,} done twice, {unfinished:,} unfinished in {len(pg_claims)} claim rows",
            twice == 0 and unfinished == 0,
            "issue 13",
        )

    # Issue 21: the queue users run (400 tasks a round), at every size measured, against the
    # task-queue peers at the same durability.
    for at in sorted({r["size"] for r in results}):
        out += queue_targets(fig, at)

    # Earlier targets, still held.
    for op in ("get_current_task", "get_completed_task"):
        ours = row("agentstate", op)
        for other, factor in (("orm_today", 1_000), ("orm_indexed", 20)):
            if ours and (theirs := row(other, op)):
                ratio = theirs["median_us"] / ours["median_us"]
                add(f"{op}: at least {factor:,}x faster than {other}", format_ratio(ratio), ratio >= factor, "earlier")
    if one := row("agentstate", "append_one"):
        add("append_one: p99.9 under 2 ms", f"{format_us(one['p999_us'])} µs", one["p999_us"] < 2_000, "earlier")
    if smallest < size:
        bound = math.log(size) / math.log(smallest)
        for op in ("get_current_task", "get_completed_task", "latest_50", "keyset_page"):
            small, big = fig.get(("agentstate", op, smallest)), row("agentstate", op)
            if small and big:
                growth = big["median_us"] / small["median_us"]
                add(
                    f"{op}: from {format_size(smallest)} to {format_size(size)} rows grows no faster than log n "
                    f"(≤ {bound:.2f}x)",
                    format_ratio(growth),
                    growth <= bound,
                    "earlier",
                )
    return out


def queue_targets(fig: dict[tuple[str, str, int], dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """Issue 21's targets at one size: one task at a time (two calls) at least 1.2x litequeue's
    throughput at NORMAL and huey's at FULL, with 1 and 4 processes; enqueue_one's median at most
    litequeue's; the 4-process p99.9 at most 20 ms; no task done twice or left unfinished."""
    out: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool) -> None:
        out.append({"size": size, "target": target, "measured": measured, "met": met, "source": "issue 21"})

    for ours_name, peer in (("agentstate", "litequeue"), ("agentstate_full", "huey")):
        for op in ("claim_complete_1p", "claim_complete_4p"):
            ours, theirs = fig.get((ours_name, op, size)), fig.get((peer, op, size))
            if ours and theirs:
                ratio = ours["throughput_per_s"] / theirs["throughput_per_s"]
                add(
                    f"{op} at {format_size(size)}: {ours_name} at least 1.2x {peer}'s tasks/s",
                    f"{format_ratio(ratio)} ({ours['throughput_per_s']:,.0f} vs {theirs['throughput_per_s']:,.0f}/s)",
                    ratio >= 1.2,
                )
    ours, theirs = fig.get(("agentstate", "enqueue_one", size)), fig.get(("litequeue", "enqueue_one", size))
    if ours and theirs:
        add(
            f"enqueue_one at {format_size(size)}: agentstate's median at most litequeue's",
            f"{format_us(ours['median_us'])} vs {format_us(theirs['median_us'])} µs",
            ours["median_us"] <= theirs["median_us"],
        )
    for name in ("agentstate", "agentstate_full"):
        if r := fig.get((name, "claim_complete_4p", size)):
            add(
                f"claim_complete_4p at {format_size(size)}: {name}'s p99.9 at most 20 ms",
                f"{format_us(r['p999_us'])} µs",
                r["p999_us"] <= 20_000,
            )
    claims = [
        r
        for (name, op, at), r in fig.items()
        if at == size and name.startswith("agentstate") and op in QUEUE_SCENARIO and op in CLAIM_OPERATIONS
    ]
    if claims:
        twice = sum(r["duplicates"] for r in claims)
        unfinished = sum(r["unfinished"] for r in claims)
        add(
            f"the queue's claim tests at {format_size(size)}: no task done twice or left unfinished",
            f"{twice:,} done twice, {unfinished:,} unfinished in {len(claims)} rows",
            twice == 0 and unfinished == 0,
        )
    return out
