"""Latency summaries and result files shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
from pathlib import Path

import psutil


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def percentiles(ms: list[float], digits: int = 1) -> dict:
    """n, p50, p95 and max of millisecond samples."""
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), digits), "p95_ms": round(percentile(ms, 95), digits),
            "max_ms": round(max(ms), digits)}


def write_result(output: str, result: dict) -> None:
    """Write a benchmark's JSON result, stamped with the Python, the cores and the time it was measured."""
    result |= {"python": sys.version.split()[0], "cpus": psutil.cpu_count(),
               "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result, indent=2) + "\n")
