"""Consumer throughput, lag and memory, against the rate MongoDB itself accepts review updates.

Starts its own mongod (clara.embedded_mongo, a single-node replica set), inserts N unreviewed predictions
(the contract's shape, prediction times spread over the last two hours), then in one run measures:

1. the ceiling: reviews written as a reviewers' service would (one `update_one` per review setting
   `output_validated` and `timestamp_validated`), single-threaded and from --threads writer threads,
   over the first half of the documents, with no consumer running;
2. end to end: the real consumer (`python -m consumer`, a subprocess, profiles to the local store) first
   catches up on that half; then the same writer threads review the second half as fast as they can,
   and the consumer's rate is the second half divided by the time from the first write until the hourly
   rollups count every review. Review-to-rollup lag per review is `logged_at` (stamped by the consumer
   inside its transaction) minus `timestamp_validated` (stamped by the writer); the consumer's RSS, and
   its workers' process's (consumer/workers.py), are sampled every 0.2 s. Its JSON log gives the batch sizes and transaction times.
   The web server (`python -m web`, a subprocess) runs through this phase too, with one SSE client on
   /api/stream recording the wall-clock arrival of every `update` event; review-to-SSE lag per review is
   the first update that arrived at or after its `logged_at`, minus `timestamp_validated`. The hub
   coalesces updates to at most web.sse_max_updates_per_second (default 4/s, kept), so this lag includes
   up to one coalescing interval. The web process's RSS is sampled too.

Prints a table and writes bench/results/consumer.json.

    .venv/bin/python -m bench.consumer_bench [--reviews 100000] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import multiprocessing
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import psutil
from bson import ObjectId
from pymongo import MongoClient, UpdateOne

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_bench import wait_ready  # noqa: E402
from bench.batch_writes import reviewed, writes_alone_rate  # noqa: E402
from bench.replay_bench import RssSampler  # noqa: E402
from bench.stats import percentile, write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import CONSUMER_STATE_ID, Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from consumer.stream import EVENTS, RAW_EVENTS  # noqa: E402
from tests.support.processes import start, write_config  # noqa: E402
from tests.support.sse import sse_events  # noqa: E402

UTC = dt.timezone.utc
N_CLASSES = 7


class ProcessRss(RssSampler):
    """replay_bench's sampler pointed at another process; stops quietly when that process is gone."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(interval)
        self.process = psutil.Process(pid)

    def run(self) -> None:
        try:
            super().run()
        except psutil.Error:
            pass

    def now_mib(self) -> float:
        return round(self.process.memory_info().rss / 2**20, 1)


class SseUpdates(threading.Thread):
    """One SSE client on /api/stream, in its own asyncio loop: the time.time() of every `update` event."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.times, self.error = url, [], None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self.listen())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller; ends when the web server stops
            self.error = exc

    async def listen(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(self.url) as response:
            assert response.status == 200, response.status
            async for event in sse_events(response.content):
                if event.get("event") == "update":
                    self.times.append(time.time())
                elif event.get("event") == "status":
                    self.connected.set()


def predictions(n: int, seed: int = 7, segment_fields: bool = False):
    """Unreviewed prediction documents, as the model's service writes them, over the last ~2 hours (with
    `segment_fields`, each from one of 3 model versions and 10 sites)."""
    rng = random.Random(seed)
    now = dt.datetime.now(UTC)
    for i in range(n):
        at = now - dt.timedelta(seconds=7200 * (n - i) / n)
        doc = {"filename": f"img_{i:08d}.jpg", "output_prediction": rng.randrange(N_CLASSES),
               "output_confidence": round(rng.uniform(0.3, 1.0), 4), "timestamp": at}
        if segment_fields:
            doc |= {"model_version": f"v{rng.randrange(3)}", "site": f"site-{rng.randrange(10)}"}
        yield doc


def insert(collection, n: int, chunk: int = 20_000, segment_fields: bool = False) -> float:
    started, buffer = time.perf_counter(), []
    for doc in predictions(n, segment_fields=segment_fields):
        buffer.append(doc)
        if len(buffer) == chunk:
            collection.insert_many(buffer, ordered=False)
            buffer = []
    if buffer:
        collection.insert_many(buffer, ordered=False)
    return time.perf_counter() - started


def review_plan(collection, seed: int = 11) -> list[tuple]:
    """(_id, true class) per document in insertion order: the reviewer agrees with the model 80% of the time."""
    rng = random.Random(seed)
    plan = []
    for doc in collection.find({}, {"output_prediction": 1}).sort("_id", 1):
        pred = doc["output_prediction"]
        plan.append((doc["_id"], pred if rng.random() < 0.8 else rng.randrange(N_CLASSES)))
    return plan


def write_reviews(collection, reviews: list[tuple], threads: int, bulk: int = 0,
                  until: threading.Event | None = None) -> dict:
    """Review every (_id, truth) from `threads` threads, one update_one each or, with `bulk`, that many
    UpdateOne per bulk_write (a labelling tool saving a page of reviews at once); returns timing. With
    `until`, the writers go over their reviews again and again until it is set."""
    errors: list[BaseException] = []
    started = [0.0]
    written = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def writer(index: int, part: list[tuple]) -> None:
        try:
            barrier.wait()
            while True:
                step = bulk or 1
                for i in range(0, len(part), step):
                    now = dt.datetime.now(UTC)
                    if bulk:
                        collection.bulk_write([UpdateOne({"_id": doc_id}, {"$set": {
                            "output_validated": truth, "timestamp_validated": now}})
                            for doc_id, truth in part[i:i + bulk]], ordered=False)
                    else:
                        doc_id, truth = part[i]
                        collection.update_one({"_id": doc_id}, {"$set": {
                            "output_validated": truth, "timestamp_validated": now}})
                    written[index] += len(part[i:i + step])
                    if until is not None and until.is_set():
                        return
                if until is None:
                    return
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(i, reviews[i::threads]), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started[0] = time.perf_counter()
    wall_start = dt.datetime.now(UTC)
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started[0]
    if errors:
        raise errors[0]
    return {"reviews": sum(written), "threads": threads, "seconds": round(seconds, 2),
            "reviews_per_second": round(sum(written) / seconds), "started_at": wall_start,
            "started_perf": started[0], "ended_perf": started[0] + seconds}


def beside_writers(reviewers: MongoClient, admin: MongoClient, config, scratch: list[dict], args, n: int) -> dict:
    """The stream's batch transactions alone while the bench's writers keep saving reviews on other documents
    of the same mongod, and the consumer's change stream (its own pipeline) reads what they write: the bound
    for the end-to-end phase, where all three share the server."""
    others = reviewers["consumer_bench_writers"]["image_logs"]
    insert(others, n)
    until, wrote, seen = threading.Event(), {}, [0]

    def follow() -> None:
        with others.with_options(codec_options=RAW_EVENTS).watch(EVENTS, max_await_time_ms=250,
                                                                 batch_size=config.consumer.batch_size) as stream:
            while not until.is_set():
                seen[0] += stream.try_next() is not None

    streams = threading.Thread(target=follow, daemon=True)
    streams.start()
    writers = threading.Thread(target=lambda: wrote.update(write_reviews(others, review_plan(others), args.threads,
                                                                         args.bulk, until)), daemon=True)
    writers.start()
    time.sleep(0.2)
    try:   # in a process of its own, as the consumer is: the writers' and the stream's threads hold this one's GIL
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            row = pool.apply(alone_in_child, (config, scratch, config.consumer.batch_size, not args.no_mark))
    finally:
        until.set()
        writers.join()
        streams.join()
        reviewers.drop_database("consumer_bench_writers")
    return row | {"writers_reviews_per_second": wrote["reviews_per_second"], "events_read": seen[0]}


def alone_in_child(config, scratch: list[dict], batch_size: int, mark: bool) -> dict:
    """writes_alone_rate with a client of its own (run in a child process)."""
    with connect(config) as client:
        return writes_alone_rate(client, config, scratch, batch_size, mark=mark)


def rollup_total(rollups, field: str = "reviews") -> int:
    result = list(rollups.aggregate([{"$group": {"_id": None, "n": {"$sum": f"${field}"}}}]))
    return result[0]["n"] if result else 0


def wait_for_total(rollups, field: str, total: int, consumer: subprocess.Popen, timeout: float) -> float:
    """perf_counter time at which the rollups' `field` first summed to `total` (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        if rollup_total(rollups, field) >= total:
            return time.perf_counter()
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with {consumer.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the rollups did not reach {total} {field} in {timeout:.0f} s "
                               f"(at {rollup_total(rollups, field)})")
        time.sleep(0.02)


def wait_for_rollups(rollups, total: int, consumer: subprocess.Popen, timeout: float) -> float:
    return wait_for_total(rollups, "reviews", total, consumer, timeout)


def wait_until_idle(state, consumer: subprocess.Popen, timeout: float, quiet: float = 1.0) -> None:
    """Until the consumer has committed no batch for `quiet` seconds."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        doc = state.find_one({"_id": CONSUMER_STATE_ID}, {"last_batch.id": 1}) or {}
        batch = doc.get("last_batch", {}).get("id")
        if batch != last:
            last, since = batch, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with {consumer.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"the consumer was still busy after {timeout:.0f} s")


def review_times(source, counted, ids: list) -> list[tuple[float, float]]:
    """(timestamp_validated, counted at) of every document in `ids`, as UTC epoch seconds: `at` is stamped
    in the consumer's transaction on the review's counted entry (with or without the source's marker)."""
    times = []
    for start_at in range(0, len(ids), 10_000):
        part = ids[start_at:start_at + 10_000]
        validated = {doc["_id"]: doc["timestamp_validated"].timestamp()
                     for doc in source.find({"_id": {"$in": part}}, {"timestamp_validated": 1})}
        times += [(validated[doc["_id"]], doc["at"].timestamp())
                  for doc in counted.find({"_id": {"$in": part}}, {"at": 1})]
    return times


def first_batch_start(path: Path, since: float) -> float:
    """Epoch time at which the consumer's first batch logged after `since` began (log time minus duration)."""
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "batch_size" in entry and "duration_ms" in entry:
            began = dt.datetime.fromisoformat(entry["time"]).timestamp() - entry["duration_ms"] / 1000
            if began >= since:
                return began
    raise RuntimeError(f"no batch in {path} after the consumer's start")


def lags(times: list[tuple[float, float]]) -> dict:
    """Review-to-rollup lag: logged_at - timestamp_validated, in ms."""
    return lag_summary([(logged - validated) * 1000 for validated, logged in times])


def sse_lags(times: list[tuple[float, float]], updates: list[float]) -> dict:
    """Review-to-SSE lag: (the first `update` received at or after logged_at) - timestamp_validated, in ms."""
    updates = sorted(updates)
    values, missed = [], 0
    for validated, logged in times:
        i = bisect.bisect_left(updates, logged)
        if i == len(updates):
            missed += 1
        else:
            values.append((updates[i] - validated) * 1000)
    return lag_summary(values) | {"update_events": len(updates), "reviews_without_event": missed}


def lag_summary(values: list[float]) -> dict:
    if not values:
        return {"samples": 0}
    return {"samples": len(values), "p50_ms": round(percentile(values, 50)), "p95_ms": round(percentile(values, 95)),
            "p99_ms": round(percentile(values, 99)), "max_ms": round(max(values)),
            "mean_ms": round(statistics.fmean(values))}


def batch_log(path: Path, since: dt.datetime) -> dict:
    """Change-stream batches (those with a lag) logged by the consumer after `since`: sizes and transaction times."""
    sizes, durations = [], []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("lag_seconds") is None or "batch_size" not in entry:
            continue
        if dt.datetime.fromisoformat(entry["time"]) < since:
            continue
        sizes.append(entry["batch_size"])
        durations.append(entry["duration_ms"])
    if not sizes:
        return {"batches": 0}
    return {"batches": len(sizes), "mean_batch_size": round(statistics.fmean(sizes), 1), "max_batch_size": max(sizes),
            "mean_batch_ms": round(statistics.fmean(durations), 1), "p95_batch_ms": round(percentile(durations, 95)),
            "transaction_seconds": round(sum(durations) / 1000, 2)}


def stop_consumer(consumer: subprocess.Popen | None) -> int | None:
    """SIGTERM a child process (the consumer or the web server) and wait for it; its exit code."""
    if consumer is None or consumer.poll() is not None:
        return None if consumer is None else consumer.returncode
    consumer.send_signal(signal.SIGTERM)
    try:
        return consumer.wait(timeout=30)
    except subprocess.TimeoutExpired:
        consumer.kill()
        return consumer.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=100_000, help="predictions, all reviewed (default 100000)")
    parser.add_argument("--threads", type=int, default=2, help="review writer threads (default 2)")
    parser.add_argument("--bulk", type=int, default=0,
                        help="reviews per bulk_write (a labelling tool's bulk save); 0: one update_one each (default)")
    parser.add_argument("--no-mark", action="store_true",
                        help="consumer.mark_source = false: no `logged` marker on the model's documents")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="consumer.batch_size, the stream's largest batch (default: the configuration's)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the consumer (default 600)")
    parser.add_argument("--segments", choices=("none", "off", "on"), default="none",
                        help="documents with model_version and site fields (off: not configured as segments; "
                             "on: segments.fields = both), to compare; none: without those fields (default)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "consumer.json"))
    args = parser.parse_args(argv)
    if args.reviews < 1000:
        parser.error("--reviews must be at least 1000")
    consumer: subprocess.Popen | None = None
    web: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="consumer-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            port = free_port()
            raw = {"mongodb": {"database": "consumer_bench"}, "web": {"host": "127.0.0.1", "port": port},
                   "consumer": {"mark_source": not args.no_mark,
                                **({"batch_size": args.batch_size} if args.batch_size else {})},
                   "profiles": {"local_store": True, "local_store_dir": str(Path(tmp) / "profiles")}}
            if args.segments == "on":
                raw["segments"] = {"fields": ["model_version", "site"]}
            config = config_from_mapping(raw, {"MONGODB_URI": mongo.uri}, source="bench")
            config_path = write_config(Path(tmp) / "config.toml", raw)
            admin = connect(config)
            cols = Collections.of(admin, config)
            ensure_indexes(cols)
            inserted = insert(cols.source, args.reviews, segment_fields=args.segments != "none")
            plan = review_plan(cols.source)
            half = len(plan) // 2
            first, second = plan[:half], plan[half:]
            single_n = max(len(first) // 5, 1)

            # A reviewers' service: its own client, server-default write concern, one update per review.
            reviewers = MongoClient(mongo.uri, tz_aware=True, maxPoolSize=args.threads + 2)
            source = reviewers[config.mongodb.database][config.mongodb.source_collection]
            print(f"inserted {args.reviews:,} predictions in {inserted:.1f} s; measuring the ceiling ...", flush=True)
            # The consumer has been running: it counts the predictions and checkpoints its stream, then
            # stops, so the catch-up below is a restart after a bulk import made while it was down.
            log_path = Path(tmp) / "consumer.log"
            consumer = start("consumer", config_path, mongo.uri, env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"},
                             log_path=log_path)
            wait_for_total(cols.predictions, "predictions", args.reviews, consumer, args.timeout)
            stop_consumer(consumer)
            single = write_reviews(source, first[:single_n], 1, args.bulk)
            ceiling = write_reviews(source, first[single_n:], args.threads, args.bulk)

            print(f"ceiling {ceiling['reviews_per_second']:,} reviews/s; the consumer's own writes alone ...", flush=True)
            scratch = reviewed([dict(doc, _id=ObjectId()) for doc in predictions(half, seed=13)], N_CLASSES)
            alone = {f"{phase}_{'marked' if mark else 'unmarked'}": writes_alone_rate(admin, config, scratch, size,
                                                                                      mark=mark)
                     for phase, size in (("catch_up", config.consumer.catchup_batch_size),
                                         ("stream", config.consumer.batch_size))
                     for mark in (True, False)}
            alone["stream_beside_writers"] = beside_writers(reviewers, admin, config, scratch, args, half)
            print("starting the consumer ...", flush=True)
            launched, launched_wall = time.perf_counter(), time.time()
            consumer = start("consumer", config_path, mongo.uri, env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"},
                             log_path=log_path)
            with ProcessRss(consumer.pid) as rss:
                caught_up = wait_for_rollups(cols.rollups, half, consumer, args.timeout)
                catchup_seconds = caught_up - launched
                wait_until_idle(cols.state, consumer, args.timeout)  # the stream's backlog: the same reviews again
                web = start("web", config_path, mongo.uri, env={"PORT": str(port)}, log_path=Path(tmp) / "web.log")
                asyncio.run(wait_ready(f"http://127.0.0.1:{port}", web))
                sse = SseUpdates(f"http://127.0.0.1:{port}/api/stream")
                sse.start()
                if not sse.connected.wait(30):
                    raise RuntimeError(f"the SSE client did not connect ({sse.error!r})")
                web_rss = ProcessRss(web.pid)  # stops with a last sample below, or when the web server exits
                web_rss.start()
                # The consumer's outbox delivery and alerts run in a child process (consumer/workers.py).
                workers_rss = ProcessRss(next(child.pid for child in rss.process.children()
                                              if "spawn_main" in " ".join(child.cmdline())))
                workers_rss.start()
                time.sleep(0.5)  # let the stream settle; its RSS here is the "start" figure
                rss_start, workers_rss_start = rss.now_mib(), workers_rss.now_mib()
                e2e_since = dt.datetime.now(UTC)
                procs = {"consumer": rss.process, "its workers' process": workers_rss.process,
                         "mongod": psutil.Process(mongo.process.pid),
                         "web": web_rss.process, "bench (writers, SSE client)": psutil.Process()}
                cpu_before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
                print(f"consumer caught up on {half:,} reviews in {catchup_seconds:.1f} s; writing the second half ...",
                      flush=True)
                writes: dict = {}
                writer = threading.Thread(
                    target=lambda: writes.update(write_reviews(source, second, args.threads, args.bulk)), daemon=True)
                writer.start()
                done = wait_for_rollups(cols.rollups, len(plan), consumer, args.timeout)
                writer.join()
                cpu = {name: round(sum(p.cpu_times()[:2]) - cpu_before[name], 1) for name, p in procs.items()}
                time.sleep(0.5)
                rss_end, workers_rss_end = rss.now_mib(), workers_rss.now_mib()
                peak = max(rss.samples) / 2**20
                workers_rss.done.set()
                workers_rss.join()
            times = review_times(cols.source, cols.counted, [doc_id for doc_id, _ in second])
            last_logged, deadline = max(logged for _, logged in times), time.monotonic() + 10
            while not (sse.times and sse.times[-1] >= last_logged) and time.monotonic() < deadline:
                time.sleep(0.05)  # the last batch's update event (at most one coalescing interval away)
            web_rss.done.set()
            web_rss.join()
            web_peak = max(web_rss.samples) / 2**20
            code = stop_consumer(consumer)
            stop_consumer(web)
            sse.join(timeout=10)
            consumer_seconds = done - writes["started_perf"]
            lag = lags(times)
            sse_lag = sse_lags(times, sse.times)
            batches = batch_log(log_path, e2e_since)
            assert rollup_total(cols.rollups) == len(plan), "rollups miscounted"
            if not args.no_mark:
                assert cols.source.count_documents({"logged": True}) == len(plan), "documents not all logged"
            first_batch = first_batch_start(log_path, launched_wall)
            reviewers.close()
            admin.close()
        except BaseException:
            stop_consumer(consumer)
            if consumer is not None and (Path(tmp) / "consumer.log").exists():
                print("consumer log tail:\n" + "\n".join(
                    (Path(tmp) / "consumer.log").read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
            if web is not None and (Path(tmp) / "web.log").exists():
                print("web log tail:\n" + "\n".join(
                    (Path(tmp) / "web.log").read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
            raise
        finally:
            stop_consumer(consumer)
            stop_consumer(web)
            mongo.stop()

    consumer_rate = round(len(second) / consumer_seconds)
    batches_seconds = catchup_seconds - (first_batch - launched_wall)
    marked = "marked" if not args.no_mark else "unmarked"
    catchup_alone = alone[f"catch_up_{marked}"]["reviews_per_second"]
    result = {
        "reviews": args.reviews, "threads": args.threads, "bulk": args.bulk, "segments": args.segments,
        "insert_seconds": round(inserted, 1),
        "ceiling": {"single_thread": {k: single[k] for k in ("reviews", "seconds", "reviews_per_second")},
                    "threads": {k: ceiling[k] for k in ("reviews", "threads", "seconds", "reviews_per_second")}},
        "catch_up": {"reviews": half, "seconds": round(catchup_seconds, 2),
                     "reviews_per_second": round(half / catchup_seconds), "note": "includes process start-up",
                     "start_up_seconds": round(first_batch - launched_wall, 2),
                     "batches_seconds": round(batches_seconds, 2),
                     "batches_reviews_per_second": round(half / batches_seconds),
                     "ratio_to_ceiling": round(half / batches_seconds / ceiling["reviews_per_second"], 3),
                     "ratio_to_writes_alone": round(half / batches_seconds / catchup_alone, 3)},
        "writes_alone": alone, "mark_source": not args.no_mark,
        "end_to_end": {"reviews": len(second), "seconds": round(consumer_seconds, 2),
                       "write_seconds": writes["seconds"], "write_reviews_per_second": writes["reviews_per_second"],
                       "consumer_reviews_per_second": consumer_rate,
                       "ratio_to_ceiling": round(consumer_rate / ceiling["reviews_per_second"], 3),
                       "ratio_to_concurrent_writes": round(consumer_rate / writes["reviews_per_second"], 3),
                       "ratio_to_writes_alone": round(consumer_rate / alone[f"stream_{marked}"]["reviews_per_second"], 3),
                       "ratio_to_writes_beside_writers": round(
                           consumer_rate / alone["stream_beside_writers"]["reviews_per_second"], 3),
                       "drain_after_last_write_seconds": round(done - writes["ended_perf"], 2),
                       "lag": lag, "sse_lag": sse_lag, "batches": batches, "cpu_seconds": cpu},
        "consumer_rss_mib": {"peak": round(peak, 1), "start": rss_start, "end": rss_end, **rss.summary()},
        "consumer_workers_rss_mib": {"peak": round(max(workers_rss.samples) / 2**20, 1), "start": workers_rss_start,
                                     "end": workers_rss_end, **workers_rss.summary()},
        "web_rss_mib": {"peak": round(web_peak, 1), **web_rss.summary()},
        "sse_max_updates_per_second": config.web.sse_max_updates_per_second,
        "consumer_exit_code": code, "batch_size": config.consumer.batch_size,
        "batch_max_seconds": config.consumer.batch_max_seconds,
    }
    write_result(args.output, result)

    e2e = result["end_to_end"]
    how = f"bulk_write of {args.bulk}" if args.bulk else "update_one"
    print(f"\n{args.reviews:,} predictions, reviews written by {how} ({psutil.cpu_count()} CPUs)")
    print(f"{'measure':<44}{'reviews':>10}{'seconds':>9}{'reviews/s':>11}")
    rows = [("ceiling, 1 writer thread, no consumer", single),
            (f"ceiling, {args.threads} writer threads, no consumer", ceiling),
            (f"writes with the consumer running ({args.threads} threads)", writes)]
    for name, row in rows:
        print(f"{name:<44}{row['reviews']:>10,}{row['seconds']:>9}{row['reviews_per_second']:>11,}")
    for key, row in alone.items():
        size, kind = row["batch_size"], "with" if row["mark_source"] else "without"
        name = (f"batch txns beside the writers, {size}/txn" if key == "stream_beside_writers"
                else f"batch txns alone, {size}/txn, {kind} marks")
        print(f"{name:<44}{row['reviews']:>10,}{row['seconds']:>9}{row['reviews_per_second']:>11,}")
    c = result["catch_up"]
    print(f"{'consumer catch-up (incl. start-up)':<44}{half:>10,}{c['seconds']:>9}{c['reviews_per_second']:>11,}")
    print(f"{'consumer catch-up, first batch to last':<44}{half:>10,}{c['batches_seconds']:>9}"
          f"{c['batches_reviews_per_second']:>11,}")
    print(f"{'consumer end to end (first write -> rollups)':<44}{len(second):>10,}{e2e['seconds']:>9}"
          f"{consumer_rate:>11,}")
    print(f"markers on the model's documents (consumer.mark_source): {'on' if result['mark_source'] else 'off'}; "
          f"consumer start-up {c['start_up_seconds']} s")
    print(f"catch-up ratio / ceiling: {c['ratio_to_ceiling']}, / its batch transactions alone: "
          f"{c['ratio_to_writes_alone']}")
    print(f"end-to-end ratio / ceiling: {e2e['ratio_to_ceiling']}, / concurrent writes: "
          f"{e2e['ratio_to_concurrent_writes']}, / its batch transactions beside the writers: "
          f"{e2e['ratio_to_writes_beside_writers']}   "
          f"(rollups complete {e2e['drain_after_last_write_seconds']} s after the last write)")
    print(f"review -> rollup lag ms: p50 {lag['p50_ms']}  p95 {lag['p95_ms']}  p99 {lag['p99_ms']}  "
          f"max {lag['max_ms']}  ({lag['samples']:,} reviews)")
    if sse_lag["samples"]:
        print(f"review -> SSE lag ms:    p50 {sse_lag['p50_ms']}  p95 {sse_lag['p95_ms']}  p99 {sse_lag['p99_ms']}  "
              f"max {sse_lag['max_ms']}  ({sse_lag['samples']:,} reviews, {sse_lag['update_events']} update events; "
              f"coalesced to <= {config.web.sse_max_updates_per_second:g}/s, web's default)")
    if sse_lag.get("reviews_without_event", 0):
        print(f"  {sse_lag['reviews_without_event']:,} reviews logged after the last update event received")
    if batches.get("batches"):
        print(f"stream batches: {batches['batches']}, mean {batches['mean_batch_size']} docs, mean "
              f"{batches['mean_batch_ms']} ms (p95 {batches['p95_batch_ms']}), "
              f"{batches['transaction_seconds']} s in transactions")
    print(f"CPU seconds in the live phase ({e2e['seconds']} s wall, {psutil.cpu_count()} CPUs): "
          + ", ".join(f"{name} {value}" for name, value in cpu.items()))
    r = result["consumer_rss_mib"]
    print(f"consumer RSS MiB: peak {r['peak']}, at start of the live phase {r['start']}, at its end {r['end']}")
    r = result["consumer_workers_rss_mib"]
    print(f"its workers' process RSS MiB: peak {r['peak']}, at start of the live phase {r['start']}, at its end {r['end']}")
    print(f"web RSS MiB: peak {result['web_rss_mib']['peak']} (1 SSE client, live phase)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
