"""/api/drift over 90 days, every prediction and one segment of --segments values (issue 18: the Drift tab per segment).

Starts its own mongod (clara.embedded_mongo), writes --reviews reviews (plus 5 % pending) over --days days with a
`camera` field of --segments values and their rollups, overall and per segment (bench.api_bench.write_data), serves
the app in this process and times --requests sequential GETs of /api/drift for the 90 days, unsegmented and with
`segment=camera:c3` (the first, which computes the day checks, apart from the next ones, kept while no rollup
changes), and apart from HTTP the checks themselves (drift.queries, drift.segment_days). Prints p50 / p95 in ms.

    .venv/bin/python -m bench.drift_api_bench [--reviews 300000] [--days 100] [--segments 10] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_bench import RANGE_DAYS, START, write_data  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from drift.queries import daily_statistics  # noqa: E402
from drift.segment_days import segment_daily_statistics  # noqa: E402
from web.app import create_app  # noqa: E402


def percentiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    return f"p50 {statistics.median(ms):.1f} / p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms"


def timed(function, requests: int) -> list[float]:
    took = []
    for _ in range(requests):
        began = time.perf_counter()
        function()
        took.append(time.perf_counter() - began)
    return took


async def over_http(config, params: dict, requests: int) -> tuple[float, list[float]]:
    """The first request (the day checks computed; it also opens the app's connections) and the next
    `requests` (kept while no rollup changes: web.api.kept_answer)."""
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    took = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(requests + 1):
                began = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/api/drift", params=params) as response:
                    assert response.status == 200, await response.text()
                    body = await response.json()
                took.append(time.perf_counter() - began)
    finally:
        await runner.cleanup()
    assert body["series"], body
    return took[0], took[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    first = START.date() + dt.timedelta(days=args.days - RANGE_DAYS)
    last = first + dt.timedelta(days=RANGE_DAYS - 1)
    with tempfile.TemporaryDirectory(prefix="drift-api-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            raw = {"mongodb": {"database": "drift_api_bench"}, "profiles": {"local_store": False},
                   "segments": {"fields": ["camera"], "max_values": max(args.segments, 20)}}
            config = config_from_mapping(raw, {"MONGODB_URI": mongo.uri}, source="bench")
            client = connect(config)
            cols = Collections.of(client, config)
            ensure_indexes(cols)
            print(f"writing {args.reviews:,} reviews over {args.days} days in {args.segments} segments ...", flush=True)
            print(write_data(cols, args.reviews, args.days, segments=args.segments), flush=True)
            print(f"segment rollup documents: {cols.segment_rollups.estimated_document_count():,} reviews, "
                  f"{cols.segment_predictions.estimated_document_count():,} predictions; range {first}..{last}")
            print("drift.queries.daily_statistics, every prediction:",
                  percentiles(timed(lambda: daily_statistics(cols, config, first, last), args.requests)))
            print("drift.segment_days.segment_daily_statistics, camera = c3:",
                  percentiles(timed(lambda: segment_daily_statistics(cols, config, first, last, "camera", "c3"),
                                    args.requests)))
            days = {"from": first.isoformat(), "to": last.isoformat()}
            for name, params in (("every prediction", days), ("segment=camera:c3", days | {"segment": "camera:c3"})):
                built, kept = asyncio.run(over_http(config, params, args.requests))
                print(f"GET /api/drift, {name}: first {1000 * built:.1f} ms (computed), then kept:",
                      percentiles(kept), flush=True)
            client.close()
        finally:
            mongo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
