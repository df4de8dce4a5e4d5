"""How figures are written in the log, the targets and the report: microseconds and ratios."""

from __future__ import annotations


def format_us(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def format_ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"
