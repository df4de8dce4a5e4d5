"""The figures of a row of results: percentiles of the timed calls, and the row itself."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.data import DataSpec
from bench.operations import Operation


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(samples_ns: Sequence[int]) -> dict[str, Any]:
    ordered = sorted(s / 1_000 for s in samples_ns)
    return {
        "median_us": round(percentile(ordered, 0.5), 3),
        "p99_us": round(percentile(ordered, 0.99), 3),
        "n": len(ordered),
        "p999_us": round(percentile(ordered, 0.999), 3),
        "mean_us": round(sum(ordered) / len(ordered), 3),
        "min_us": round(ordered[0], 3),
        "max_us": round(ordered[-1], 3),
    }


def record(contender: str, op: Operation, spec: DataSpec, samples: Sequence[int], **extra: Any) -> dict[str, Any]:
    """One row of results.json."""
    row = {
        "contender": contender,
        "operation": op.name,
        "size": spec.size,
        **summarize(samples),
        "items_per_call": op.items,
    }
    if op.items > 1:  # messages per second over all timed batches
        row["throughput_per_s"] = round(op.items * len(samples) / (sum(samples) / 1e9), 1)
    row.update(extra)
    return row
