"""The consumer's batch transaction with and without segments, alternating in one run on one mongod.

Starts its own mongod (clara.embedded_mongo), then per round and per mode (`off`: no segments; `on`:
segments.fields = model_version (3 values) and site (10 values)) in a fresh database: inserts N
predictions spread over --hours hours, counts them as the stream does (consumer.batch.commit_batch with
insert events, --batch per transaction), reviews every one of them and counts the reviews as the catch-up
does (commit_batch, --batch ids per transaction). Modes alternate within each round so that drift in the
machine's load falls on both (after one short warm-up run of each). The rate is documents per second of commit_batch time (the drain of the
outbox is not run). Prints the median per mode and the on/off ratio; writes bench/results/segments.json.

    .venv/bin/python -m bench.segments_bench [--documents 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bson import Timestamp
from pymongo import UpdateOne

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from consumer.batch import commit_batch  # noqa: E402
from consumer.outbox_queue import sink_names  # noqa: E402
from consumer.predictions import Inserted  # noqa: E402

UTC = dt.timezone.utc
MODES = {"off": {}, "on": {"segments": {"fields": ["model_version", "site"], "max_values": 20}}}


def documents(n: int, hours: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    return [{"filename": f"img_{i:08d}.jpg", "output_prediction": rng.randrange(7),
             "output_confidence": round(rng.uniform(0.3, 1.0), 4),
             "timestamp": start + dt.timedelta(seconds=hours * 3600 * i / n),
             "model_version": f"v{rng.randrange(3)}", "site": f"site-{rng.randrange(10)}"} for i in range(n)]


def one_run(uri: str, tmp: Path, mode: str, docs: list[dict], batch: int, run: int) -> dict:
    raw = {"mongodb": {"database": f"segments_bench_{run + 1}_{mode}"},
           "profiles": {"local_store": True, "local_store_dir": str(tmp / f"profiles-{run}-{mode}")}} | MODES[mode]
    config = config_from_mapping(raw, {"MONGODB_URI": uri}, source="bench")
    client = connect(config)
    cols = Collections.of(client, config)
    try:
        ensure_indexes(cols)
        cols.state.insert_one({"_id": "bench"})   # the state collection exists, as it does beside a running consumer
        fresh = [dict(doc) for doc in docs]
        cols.source.insert_many(fresh)
        sinks = sink_names(config)
        started = time.perf_counter()
        for i in range(0, len(fresh), batch):
            commit_batch(client, cols, config, [], sinks=sinks,
                         inserted=[Inserted(doc, Timestamp(1, 1)) for doc in fresh[i:i + batch]])
        predictions = time.perf_counter() - started
        rng = random.Random(run)
        reviewed_at = dt.datetime(2026, 3, 5, tzinfo=UTC)
        cols.source.bulk_write([UpdateOne({"_id": doc["_id"]}, {"$set": {
            "output_validated": doc["output_prediction"] if rng.random() < 0.8 else rng.randrange(7),
            "timestamp_validated": reviewed_at}}) for doc in fresh], ordered=False)
        started = time.perf_counter()
        for i in range(0, len(fresh), batch):
            commit_batch(client, cols, config, [doc["_id"] for doc in fresh[i:i + batch]], sinks=sinks)
        reviews = time.perf_counter() - started
        assert sum(d.get("reviews", 0) for d in cols.rollups.find()) == len(fresh), "reviews miscounted"
        return {"predictions_per_second": len(fresh) / predictions, "reviews_per_second": len(fresh) / reviews}
    finally:
        client.drop_database(config.mongodb.database)
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000, help="predictions, all reviewed (default 20000)")
    parser.add_argument("--hours", type=int, default=48, help="hours of prediction time they span (default 48)")
    parser.add_argument("--batch", type=int, default=500, help="documents per transaction (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of off and on (default 3)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "segments.json"))
    args = parser.parse_args(argv)
    docs = documents(args.documents, args.hours)
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="segments-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            for mode in MODES:   # warm-up, not counted: the first runs pay for the server's and Python's caches
                one_run(mongo.uri, Path(tmp), mode, docs[:args.batch * 4], args.batch, -1)
            for run in range(args.rounds):
                for mode in (list(MODES) if run % 2 == 0 else list(reversed(MODES))):
                    runs[mode].append(one_run(mongo.uri, Path(tmp), mode, docs, args.batch, run))
                    print(f"round {run + 1} {mode}: " + ", ".join(f"{k} {v:,.0f}" for k, v in runs[mode][-1].items()),
                          flush=True)
        finally:
            mongo.stop()
    medians = {mode: {key: round(statistics.median(r[key] for r in rows)) for key in rows[0]}
               for mode, rows in runs.items()}
    ratios = {key: round(medians["on"][key] / medians["off"][key], 3) for key in medians["off"]}
    write_result(args.output, {"documents": args.documents, "hours": args.hours, "batch": args.batch,
                               "rounds": args.rounds, "runs": runs, "median": medians, "on_over_off": ratios})
    print(f"median off: {medians['off']}\nmedian on:  {medians['on']}\non / off: {ratios}\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
