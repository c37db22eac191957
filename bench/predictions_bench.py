"""Counting every prediction at insert: the consumer against the rate MongoDB itself accepts inserts.

Starts its own mongod (a single-node replica set) and, in one run, measures:

1. the ceiling: a model service inserting predictions one `insert_one` per prediction from --threads
   threads, as fast as MongoDB takes them, with no consumer running;
2. catch-up: --existing predictions already in the collection when the consumer (`python -m consumer`,
   a subprocess) starts for the first time; the rate is --existing divided by the time from its start
   until the prediction rollups count them all (the recount runs beside the live stream);
3. end to end: the same writer threads insert --live predictions while the consumer runs, and one
   reviewer thread reviews earlier predictions (two fields, one update, as a reviewers' service does).
   The consumer's rate is --live divided by the time from the first insert until the rollups count
   every prediction. Insert-to-rollup lag: a poller reads the rollups' total every 20 ms; the k-th
   insert to complete is counted by the first poll that saw k more predictions than at the start.
   The consumer's RSS is sampled every 0.2 s.

Prints a table and writes bench/results/predictions.json.

    .venv/bin/python -m bench.predictions_bench [--existing 1000000] [--live 100000] [--threads 4]
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pymongo import MongoClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.consumer_bench import ProcessRss, insert, predictions, stop_consumer  # noqa: E402
from bench.stats import percentile, write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from tests.support.processes import start, write_config  # noqa: E402

UTC = dt.timezone.utc


def insert_one_by_one(collection, n: int, threads: int, seed: int) -> tuple[float, list[float]]:
    """n inserts from `threads` threads, one insert_one each; (seconds, completion times in order)."""
    docs = list(predictions(n, seed=seed))
    done: list[float] = []
    lock = threading.Lock()

    def writer(part: list[dict]) -> None:
        for doc in part:
            collection.insert_one(doc)
            now = time.perf_counter()
            with lock:
                done.append(now)

    started = time.perf_counter()
    workers = [threading.Thread(target=writer, args=(docs[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started, sorted(done)


def rollup_total(predictions_rollups) -> int:
    return sum(doc.get("predictions", 0) for doc in predictions_rollups.find({}, {"predictions": 1}))


class TotalPoller(threading.Thread):
    """(time, total) of the prediction rollups every `interval` seconds, until stopped."""

    def __init__(self, rollups, interval: float = 0.02):
        super().__init__(daemon=True)
        self.rollups, self.interval = rollups, interval
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.perf_counter(), rollup_total(self.rollups)))
            self.done.wait(self.interval)


def wait_total(rollups, total: int, consumer: subprocess.Popen, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while rollup_total(rollups) < total:
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with code {consumer.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the rollups did not reach {total} predictions in {timeout:.0f} s")
        time.sleep(0.02)
    return time.perf_counter()


def insert_lags(done: list[float], samples: list[tuple[float, int]], base: int) -> dict:
    """Per insert: the first poll whose total covers it, minus the time it completed."""
    times, totals = [t for t, _ in samples], [n - base for _, n in samples]
    lags = []
    for k, finished in enumerate(done, start=1):
        i = bisect.bisect_left(totals, k)
        if i < len(times):
            lags.append(max(times[i] - finished, 0.0) * 1000)
    return {f"p{q}_ms": round(percentile(lags, q)) for q in (50, 95, 99)} | {"measured": len(lags)}


def review_some(collection, stop: threading.Event, seed: int = 5) -> int:
    rng, reviewed = random.Random(seed), 0
    ids = [doc["_id"] for doc in collection.find({"output_validated": None}, {"_id": 1}).limit(50_000)]
    for doc_id in ids:
        if stop.is_set():
            break
        collection.update_one({"_id": doc_id}, {"$set": {"output_validated": rng.randrange(7),
                                                        "timestamp_validated": dt.datetime.now(UTC)}})
        reviewed += 1
        time.sleep(0.002)
    return reviewed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=1_000_000, help="predictions before the first start")
    parser.add_argument("--live", type=int, default=100_000, help="predictions inserted while the consumer runs")
    parser.add_argument("--threads", type=int, default=4, help="inserting threads of the model service (default 4)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "predictions.json"))
    args = parser.parse_args(argv)
    consumer = None
    with tempfile.TemporaryDirectory(prefix="predictions-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            raw = {"mongodb": {"database": "predictions_bench"}, "drift": {"enabled": False},
                   "profiles": {"local_store": True, "local_store_dir": str(Path(tmp) / "profiles")}}
            config = config_from_mapping(raw, {"MONGODB_URI": mongo.uri}, source="bench")
            config_path = write_config(Path(tmp) / "config.toml", raw)
            admin = connect(config)
            cols = Collections.of(admin, config)
            ensure_indexes(cols)
            service = MongoClient(mongo.uri, tz_aware=True, maxPoolSize=args.threads + 2)
            source = service[config.mongodb.database][config.mongodb.source_collection]
            ceiling_n = max(args.live // 2, 2000)
            print(f"measuring the insert ceiling ({ceiling_n:,} inserts, {args.threads} threads) ...", flush=True)
            seconds, _ = insert_one_by_one(source, ceiling_n, args.threads, seed=1)
            ceiling = round(ceiling_n / seconds)
            print(f"ceiling {ceiling:,} inserts/s; inserting {args.existing:,} existing predictions ...", flush=True)
            insert(source, args.existing)
            existing = args.existing + ceiling_n
            launched = time.perf_counter()
            consumer = start("consumer", config_path, mongo.uri, env={"LOG_LEVEL": "INFO"},
                             log_path=Path(tmp) / "consumer.log")
            with ProcessRss(consumer.pid) as rss:
                caught_up = wait_total(cols.predictions, existing, consumer, args.timeout) - launched
                time.sleep(0.5)
                rss_start = rss.now_mib()
                print(f"caught up on {existing:,} in {caught_up:.1f} s; {args.live:,} live inserts ...", flush=True)
                poller = TotalPoller(cols.predictions)
                poller.start()
                stop_reviews = threading.Event()
                reviews: dict = {}
                reviewer = threading.Thread(target=lambda: reviews.update(n=review_some(source, stop_reviews)))
                reviewer.start()
                first = time.perf_counter()
                written, done = insert_one_by_one(source, args.live, args.threads, seed=2)
                counted = wait_total(cols.predictions, existing + args.live, consumer, args.timeout) - first
                stop_reviews.set()
                reviewer.join()
                poller.done.set()
                poller.join()
                rss_end, peak = rss.now_mib(), round(max(rss.samples) / 2**20, 1)
            lag = insert_lags(done, poller.samples, existing)
        finally:
            stop_consumer(consumer)
            mongo.stop()
    writes_rate, consumer_rate = round(args.live / written), round(args.live / counted)
    result = {
        "threads": args.threads, "ceiling_inserts_per_second": ceiling,
        "catch_up": {"predictions": existing, "seconds": round(caught_up, 1),
                     "per_second": round(existing / caught_up), "ratio_to_ceiling": round(existing / caught_up / ceiling, 2)},
        "end_to_end": {"predictions": args.live, "write_per_second": writes_rate, "consumer_per_second": consumer_rate,
                       "ratio_to_concurrent_writes": round(consumer_rate / writes_rate, 2),
                       "ratio_to_ceiling": round(consumer_rate / ceiling, 2), "reviews_beside": reviews.get("n", 0),
                       "lag": lag},
        "consumer_rss_mib": {"start": rss_start, "end": rss_end, "peak": peak},
    }
    write_result(args.output, result)
    e2e = result["end_to_end"]
    print(f"ceiling {ceiling:,}/s; catch-up {result['catch_up']['per_second']:,}/s "
          f"({result['catch_up']['ratio_to_ceiling']}x); end to end {consumer_rate:,}/s beside writes of "
          f"{writes_rate:,}/s ({e2e['ratio_to_concurrent_writes']}x); lag p95 {lag['p95_ms']} ms; "
          f"RSS {rss_start} -> {rss_end} MiB (peak {peak})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
