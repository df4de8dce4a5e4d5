"""latency.png: median latency against data size, a panel per operation, a line per contender."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from bench.contenders.registry import ORDER
from bench.data import format_size
from bench.operations import OPERATIONS

if TYPE_CHECKING:
    from bench.report import Report


COLORS = {
    "orm_today": "#d62728",
    "orm_indexed": "#ff7f0e",
    "agentstate": "#1f77b4",
    "agentstate_unmonitored": "#aec7e8",
    "agentstate_async": "#9edae5",
    "agentstate_full": "#17becf",
    "agentstate_planned": "#0b5d8a",
    "postgres": "#393b79",
    "raw_apsw": "#2ca02c",
    "floor": "#7f7f7f",
    "floor_write": "#a0a0a0",
    "floor_write_full": "#c7c7c7",
    "litequeue": "#9467bd",
    "huey": "#8c564b",
    "huey_nofsync": "#c49c94",
    "openai_session": "#e377c2",
    "agentstate_session": "#f7b6d2",
    "openai_session_normal": "#c5b0d5",
    "agentstate_session_full": "#ad494a",
    "langgraph_sqlite": "#bcbd22",
    "agentstate_langgraph": "#dbdb8d",
    "adk_sqlite": "#98df8a",
    "adk_sqlite_wal": "#637939",
    "adk_database_normal": "#b5cf6b",
    "agentstate_adk_full": "#6b6ecf",
    "agentstate_adk": "#9c9ede",
}


def plot(report: Report, path: Path) -> None:
    """Median latency against data size, log-log, a panel per operation and a line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    ops = [op for op in OPERATIONS if any(r["operation"] == op.name for r in report.results)]
    sizes = sorted({r["size"] for r in report.results})
    cols = 3
    rows = max(1, math.ceil(len(ops) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        for name in ORDER:
            points = sorted(
                (r["size"], r["median_us"])
                for r in report.results
                if r["operation"] == op.name and r["contender"] == name
            )
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=COLORS[name], label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [format_size(s) for s in sizes])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        # Labels at 1-2-5 steps in plain numbers: a panel may span less than a decade.
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.tick_params(labelsize=8)
        ax.set_title(op.name + (f" ({op.items:,} per call)" if op.items > 1 else ""), fontsize=10)
        ax.set_xlabel("rows (tasks and messages)", fontsize=8)
        ax.set_ylabel("median µs per " + ("task" if op.processes else "call"), fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(ops) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], color=COLORS[n], marker="o", label=n) for n in ORDER if n in report.config["contenders"]
    ]
    m = report.machine
    fig.suptitle(
        f"agentstate benchmark: median latency against data size ({m['cpu']}, {m['cores']} cores, "
        f"SQLite {m['sqlite_apsw']})",
        y=0.995,
        fontsize=11,
    )
    per_row = 6  # legend entries per line: fifteen contenders do not fit on one
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.975), ncol=per_row, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95 - 0.015 * (math.ceil(len(handles) / per_row) - 1)))
    fig.savefig(path, dpi=100)
    plt.close(fig)
