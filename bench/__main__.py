"""`python -m bench`: run every benchmark, each against a baseline measured in the same run, and print one table.

Each benchmark runs in its own process (so peak RSS is its own) and writes bench/results/<name>.json;
this runner reads those files and prints the ratios side by side, then writes bench/results/summary.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def _consumer_rows(data: dict) -> list[tuple]:
    ceiling = data["ceiling"]["threads"]["reviews_per_second"]
    e2e = data["end_to_end"]
    lag = e2e["lag"]
    sse = e2e["sse_lag"]
    rss = data["consumer_rss_mib"]
    return [
        ("consumer", "end-to-end reviews/s vs MongoDB's review-update ceiling", e2e["consumer_reviews_per_second"],
         ceiling, e2e["ratio_to_ceiling"]),
        ("consumer", "end-to-end reviews/s vs the writes it ran beside", e2e["consumer_reviews_per_second"],
         e2e["write_reviews_per_second"], e2e["ratio_to_concurrent_writes"]),
        ("consumer", "catch-up reviews/s vs the ceiling", data["catch_up"]["reviews_per_second"], ceiling,
         round(data["catch_up"]["reviews_per_second"] / ceiling, 2)),
        ("consumer", "review-to-rollup lag p50 / p95 / p99 ms", f"{lag['p50_ms']} / {lag['p95_ms']} / {lag['p99_ms']}",
         "", ""),
        ("consumer", f"review-to-SSE lag p50 / p95 / p99 ms (updates <= {data['sse_max_updates_per_second']:g}/s)",
         f"{sse.get('p50_ms')} / {sse.get('p95_ms')} / {sse.get('p99_ms')}", "", ""),
        ("consumer", "RSS MiB start -> end (peak)", f"{rss['start']} -> {rss['end']} ({rss['peak']})", "", ""),
    ]


def _predictions_rows(data: dict) -> list[tuple]:
    ceiling, e2e, rss = data["ceiling_inserts_per_second"], data["end_to_end"], data["consumer_rss_mib"]
    return [
        ("predictions", f"end-to-end predictions/s vs the inserts it ran beside ({data['threads']} threads)",
         e2e["consumer_per_second"], e2e["write_per_second"], e2e["ratio_to_concurrent_writes"]),
        ("predictions", "catch-up predictions/s vs MongoDB's insert ceiling", data["catch_up"]["per_second"], ceiling,
         data["catch_up"]["ratio_to_ceiling"]),
        ("predictions", "insert-to-rollup lag p50 / p95 / p99 ms",
         f"{e2e['lag']['p50_ms']} / {e2e['lag']['p95_ms']} / {e2e['lag']['p99_ms']}", "", ""),
        ("predictions", "RSS MiB start -> end (peak)", f"{rss['start']} -> {rss['end']} ({rss['peak']})", "", ""),
    ]


def _replay_rows(data: dict) -> list[tuple]:
    phases = data["phases"]
    ceiling = phases[0]["docs_per_second"]
    rows = [("replay", f"{p['phase']} docs/s" + (f" (peak RSS {p['peak_rss_mib']} MiB)" if p["peak_rss_mib"] != "-"
                                                  else ""), p["docs_per_second"], ceiling, p["ratio_to_ceiling"])
            for p in phases[1:]]
    bounds = data.get("bounds", {})
    return rows + [("replay", _bound_label(name), "", "", ratio) for name, ratio in bounds.items()]


def _bound_label(name: str) -> str:
    """'backfill_over_entry_and_flag_writes' -> 'backfill (no sinks) over entry and flag writes'."""
    subject, _, bound = name.partition("_over_")
    subject = {"backfill": "backfill (no sinks)", "rebuild": "--rebuild",
               "server_recount": "MongoDB recount alone"}.get(subject, subject)
    return f"{subject} over {bound.replace('_', ' ')}"


def _segments_rows(data: dict) -> list[tuple]:
    off, on, ratio = data["median"]["off"], data["median"]["on"], data["on_over_off"]
    rows = [("segments", f"real consumer {kind.split('_')[0]}/s with 2 segment fields vs without (bulk writes)",
             on[kind], off[kind], ratio[kind]) for kind in ("predictions_per_second", "reviews_per_second")]
    for kind, cpu in data.get("cpu_ms_per_1000", {}).items():   # absent from results of older benches
        if cpu["off"]:
            rows.append(("segments", f"CPU ms per 1000 {kind}, every process, with vs without (lower is better)",
                         cpu["on"], cpu["off"], round(cpu["on"] / cpu["off"], 3)))
    return rows


def _web_rows(data: dict) -> list[tuple]:
    return [tuple(row) for row in data.get("rows", [])]


# name -> (module, default arguments, quick arguments, rows from its JSON)
BENCHMARKS: dict[str, tuple[str, list[str], list[str], Callable[[dict], list[tuple]]]] = {
    "consumer": ("bench.consumer_bench", [], ["--reviews", "20000"], _consumer_rows),
    "predictions": ("bench.predictions_bench", [], ["--existing", "200000", "--live", "20000"], _predictions_rows),
    "replay": ("bench.replay_bench", [], ["--reviews", "40000", "--days", "14"], _replay_rows),
    "api": ("bench.api_bench", [], ["--reviews", "200000"], _web_rows),
    "sse": ("bench.sse_bench", [], ["--clients", "100"], _web_rows),
    "estimates": ("bench.estimates_bench", [], ["--per-day", "2000", "--days", "10", "--reference-days", "5"],
                  _web_rows),
    "segments": ("bench.segments_consumer_bench", [], ["--documents", "10000", "--rounds", "2"], _segments_rows),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a first look in about two minutes")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; expected some of {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple] = []
    failed = []
    for name in args.names or list(BENCHMARKS):
        module, default, quick, to_rows = BENCHMARKS[name]
        if not (REPO / (module.replace(".", "/") + ".py")).exists():
            print(f"bench: {name}: {module} is not written yet; skipped", file=sys.stderr)
            continue
        output = RESULTS / f"{name}.json"
        command = [sys.executable, "-m", module, *(quick if args.quick else default), "--output", str(output)]
        print(f"bench: running {' '.join(command[1:])}", file=sys.stderr, flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
        if code != 0:
            failed.append(name)
            print(f"bench: {name} failed with exit code {code}", file=sys.stderr)
            continue
        rows += to_rows(json.loads(output.read_text()))
        print(f"bench: {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print_table(rows)
    summary = {"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
               "quick": args.quick, "rows": [list(row) for row in rows], "failed": failed}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    return 1 if failed else 0


def print_table(rows: list[tuple]) -> None:
    header = ("benchmark", "measure", "value", "baseline", "ratio")
    table = [header] + [tuple("" if cell is None else str(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
    sys.exit(main())
