"""A drift evaluation with and without per-segment checks, on weeks of traffic counted by the consumer.

Starts its own mongod (clara.embedded_mongo), writes --days days of --per-day predictions a day spread over
--values values of one segment field (`camera`), reviews --review-fraction of them, counts the predictions
(consumer.predictions.recount_replacing, segment rollups included) and the reviews (the catch-up), then times
drift.evaluate.evaluate at now = the last day's noon with the shipped drift defaults (last 2,000, today, a
14-day rolling reference, calibration and label shift on), alternating: segments off (segments.fields empty:
the overall checks only), on (every value's checks as well), on, off, ... Prints the median per mode, what
the segment rollups' reads cost apart, how many findings an evaluation keeps and the size of the state
document holding them; writes bench/results/drift_segments.json.

    .venv/bin/python -m bench.drift_segments_bench [--days 30] [--per-day 20000] [--values 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from clara.predictions import PredictionTotals  # noqa: E402
from clara.rollups import Totals  # noqa: E402
from consumer.catchup import catch_up  # noqa: E402
from consumer.predictions import recount_replacing  # noqa: E402
from drift.evaluate import DRIFT_STATE_ID, evaluate  # noqa: E402
from drift.segment_windows import read_field  # noqa: E402

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 31, tzinfo=UTC)


def documents(days: int, per_day: int, values: int, review_fraction: float, seed: int = 18):
    rng = random.Random(seed)
    start = END - dt.timedelta(days=days)
    for i in range(days * per_day):
        at = start + dt.timedelta(seconds=rng.randrange(days * 86400))
        truth = rng.randrange(7)
        confidence = round(rng.uniform(0.3, 1.0), 4)
        predicted = truth if rng.random() < confidence else rng.randrange(7)
        doc = {"_id": i, "filename": f"img_{i}.jpg", "timestamp": at, "output_prediction": predicted,
               "output_confidence": confidence, "camera": f"cam{rng.randrange(values)}"}
        if rng.random() < review_fraction:
            doc |= {"output_validated": truth, "timestamp_validated": at + dt.timedelta(minutes=10)}
        yield doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=20000)
    parser.add_argument("--values", type=int, default=10)
    parser.add_argument("--review-fraction", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            return run(mongo.uri, Path(tmp), args)
        finally:
            mongo.stop()


def run(uri: str, tmp: Path, args: argparse.Namespace) -> int:
    config = config_from_mapping({"mongodb": {"database": "bench"}, "profiles": {"local_store": False,
                                  "local_store_dir": str(tmp / "profiles")},
                                  "segments": {"fields": ["camera"]}, "drift": {"evaluate_interval_seconds": 0}},
                                 {"MONGODB_URI": uri}, source="bench")
    plain = dataclasses.replace(config, segments=dataclasses.replace(config.segments, fields=()))
    client = connect(config)
    cols = Collections.of(client, config)
    ensure_indexes(cols)
    began = time.perf_counter()
    batch = []
    for doc in documents(args.days, args.per_day, args.values, args.review_fraction):
        batch.append(doc)
        if len(batch) == 10_000:
            cols.source.insert_many(batch)
            batch = []
    if batch:
        cols.source.insert_many(batch)
    recount_replacing(cols, config.n_classes, config.model.rollup_period, None, config.segments)
    catch_up(client, cols, config, sinks=())
    print(f"{args.days * args.per_day:,} predictions over {args.days} days, {args.values} values, counted in "
          f"{time.perf_counter() - began:.0f} s")
    now = END - dt.timedelta(hours=12)
    timings: dict[str, list[float]] = {"off": [], "on": []}
    reads: list[float] = []
    findings = {}
    evaluate(cols, config, now)   # warm-up: indexes, caches
    for run_index in range(args.rounds):
        for mode in (("off", "on") if run_index % 2 == 0 else ("on", "off")):
            started = time.perf_counter()
            evaluation = evaluate(cols, config if mode == "on" else plain, now)
            timings[mode].append(time.perf_counter() - started)
            findings[mode] = len(evaluation.findings)
            if mode == "on":
                size = len(bson.encode(cols.state.find_one({"_id": DRIFT_STATE_ID})))
        started = time.perf_counter()
        read_field(cols.segment_predictions, "camera", PredictionTotals, config.drift.window_predictions, now, config)
        read_field(cols.segment_rollups, "camera", Totals, config.drift.window_reviews, now, config,
                   now - dt.timedelta(days=config.drift.baseline_days + 1))
        reads.append(time.perf_counter() - started)
    off, on = statistics.median(timings["off"]), statistics.median(timings["on"])
    result = {"days": args.days, "per_day": args.per_day, "values": args.values,
              "review_fraction": args.review_fraction, "rounds": args.rounds, "evaluate_off_s": off,
              "evaluate_on_s": on, "segment_reads_s": statistics.median(reads), "findings_off": findings["off"],
              "findings_on": findings["on"], "state_bytes_on": size}
    print(f"evaluate: segments off {off * 1000:.0f} ms ({findings['off']} findings), on {on * 1000:.0f} ms "
          f"({findings['on']} findings, state document {size / 1024:.0f} KiB); the field's two segment rollup reads "
          f"{statistics.median(reads) * 1000:.0f} ms")
    write_result(str(REPO / "bench" / "results" / "drift_segments.json"), result)
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
