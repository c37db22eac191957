"""Latency summaries shared by the benchmarks."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def percentiles(ms: list[float], digits: int = 1) -> dict:
    """n, p50, p95 and max of millisecond samples."""
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), digits), "p95_ms": round(percentile(ms, 95), digits),
            "max_ms": round(max(ms), digits)}
