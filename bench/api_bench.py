"""API latency over a 90-day range of N reviews (hourly rollups), against the same numbers from raw documents.

Starts its own mongod (clara.embedded_mongo) and writes N reviewed predictions (plus 5 % not yet
reviewed; 2 % legacy `true` and 2 % legacy `false` reviews) spread over --days days, in the contract's
shape and already counted as the consumer leaves them: marked `logged`, with what each review added in
CLARA's counted collection (one entry per review, keyed by the document's _id).

How the rollups are made: the consumer or `replay --rebuild` count about 7,000 reviews/s on 2 cores
(bench/results/replay.json), i.e. minutes for a million, so this benchmark derives them with the
pipeline's own counting code instead: each document goes through clara.records.parse_document,
clara.rollups.Counted.of and RollupDelta (the consumer's per-batch merge), and each hour's merged
increments are written as one `$inc` upsert, the consumer's write. Then `python -m replay --rebuild`
(the real pipeline) recounts --verify-days whole days in place, its rate is recorded, and the rebuilt
rollup documents must equal the derived ones.

Then `python -m web` (a subprocess) answers /api/summary, /api/daily and /api/classes for a 90-day
range: cold (the first requests after a fresh start, --restarts times, with the time the start took),
warm (sequential), under --clients concurrent aiohttp clients, and --viewers dashboards connected to
/api/stream that reload the overview tab (summary, daily and volume at once, as the page does) on every
`update` event, after a review is counted in the range (--reload-rounds times; each round's review must be
in every viewer's summary). The baseline, in the same run: read the range's raw documents with pymongo
and compute the same metrics with scikit-learn in Python; every figure the API gave at the end is
compared for equality with it. Prints a table and writes bench/results/api.json.

With --segments N (issue 18), every document also has a `camera` field of N values (`segments.fields =
["camera"]`), the segment rollups of reviews and predictions are derived the same way (RollupDelta and
PredictionDelta per segment, written by clara.segment_rollups.write_segment_rollups, the consumer's write),
and the same endpoints are timed with `segment=camera:c3` in the same web process, sequentially, beside the
unsegmented figures, once the web has logged its segment warm-up done (it loads the busiest values of each
field at start, web/warm.py, each in a pause in requests, so the bench's back-to-back requests before hold it
back; its count and seconds are printed): the first request of each, then the kept ones
after it, each endpoint's p50 with its ratio to the unsegmented warm p50 printed in one table; the segments'
reviews must add up to the overall answer. Then, AFTER_BATCH_ROUNDS times, a consumer batch's writes to one
hour's rollup and segment rollup, each followed by the summary overall and of the segment: what a dashboard
asks for under live traffic.

    .venv/bin/python -m bench.api_bench [--reviews 1000000] [--days 100] [--segments 10]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import json
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import redirect_stdout
from pathlib import Path

import aiohttp
from bson import ObjectId
import numpy as np
import psutil
from pymongo import UpdateOne
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import percentiles, write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from clara.periods import HOUR  # noqa: E402
from clara.metrics import REJECTED  # noqa: E402
from clara.records import Record, parse_document  # noqa: E402
from clara.predictions import PredictionDelta, prediction_key  # noqa: E402
from clara.rollups import Counted, RollupDelta, day_bounds  # noqa: E402
from clara.segment_rollups import write_segment_rollups  # noqa: E402
from clara.segments import segment_id  # noqa: E402
from consumer.migrate import migrate_logged_as  # noqa: E402
from replay.cli import main as replay_main  # noqa: E402
from tests.support.processes import start, write_config  # noqa: E402
from tests.support.running import wait_for  # noqa: E402
from tests.support.sse import sse_events  # noqa: E402

UTC = dt.timezone.utc
START = dt.datetime(2025, 1, 1, tzinfo=UTC)
N_CLASSES = 7
RANGE_DAYS = 90
AFTER_BATCH_ROUNDS = 20   # consumer batches written while the summary is asked after each (--segments)
AVERAGES = ("macro", "weighted")
ENDPOINTS = ["summary", "daily", "classes"]
OVERVIEW_TAB = ["summary", "daily", "volume"]   # what the dashboard's first tab asks for (web/static/js/tabs/overview.js)


def documents(reviews: int, days: int, seed: int = 3, segments: int = 0):
    """Prediction documents in the contract's shape: `reviews` reviewed ones plus 5 % pending; with `segments`,
    each with a `camera` c0..c<segments - 1>, in turn (the same documents otherwise)."""
    rng = random.Random(seed)
    total = reviews + reviews // 19  # 5 % of all documents pending
    span = days * 86400
    for i in range(total):
        at = (START + dt.timedelta(seconds=span * i / total)).replace(tzinfo=None)
        pred = rng.randrange(N_CLASSES)
        doc = {"_id": ObjectId(), "filename": f"img_{i:08d}.jpg", "output_prediction": pred,
               "output_confidence": round(rng.uniform(0.3, 1.0), 4), "timestamp": at}
        if segments:
            doc["camera"] = f"c{i % segments}"
        if i % 20 != 7:
            kind = rng.random()
            doc["output_validated"] = (True if kind < 0.02 else False if kind < 0.04 else
                                       pred if kind < 0.8 else rng.randrange(N_CLASSES))
            doc["timestamp_validated"] = at + dt.timedelta(seconds=rng.randint(30, 36000))
        yield doc


def write_data(cols: Collections, reviews: int, days: int, chunk: int = 20_000, segments: int = 0) -> dict:
    """Insert the source documents (logged) with their counted entries; $inc the hourly rollups derived from them
    (and with `segments`, the segment rollups of reviews and predictions)."""
    delta, buffer, entries, counted_n = RollupDelta(), [], [], 0
    predicted = PredictionDelta()
    derive_seconds = insert_seconds = 0.0
    now = dt.datetime.now(UTC)
    for doc in documents(reviews, days, segments=segments):
        began = time.perf_counter()
        segment = (("camera", doc["camera"]),) if segments else ()
        if segments:
            hour, inc = prediction_key(doc, N_CLASSES, HOUR)
            predicted.add(hour, inc, segment)
        if doc.get("output_validated") is not None:
            record = parse_document(doc, N_CLASSES)
            assert isinstance(record, Record), record
            counted = Counted.of(record, HOUR, segment)   # Europe/Madrid: hourly rollup periods
            delta.add(counted)
            doc |= {"logged": True, "logged_at": now}
            entries.append(counted.to_doc() | {"_id": doc["_id"], "at": now})   # the consumer's entry
            counted_n += 1
        derive_seconds += time.perf_counter() - began
        buffer.append(doc)
        if len(buffer) == chunk:
            insert_seconds += insert(cols, buffer, entries)
            buffer, entries = [], []
    insert_seconds += insert(cols, buffer, entries)
    began = time.perf_counter()
    updates = delta.updates()
    cols.rollups.bulk_write([UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
                             for hour, inc in updates], ordered=False)  # the consumer's write (consumer/batch.py)
    if segments:
        write_segment_rollups(None, cols.segment_rollups, delta.segment_updates(), now)
        write_segment_rollups(None, cols.segment_predictions, predicted.segment_updates(), now)
        cols.predictions.bulk_write([UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
                                     for hour, inc in predicted.updates()], ordered=False)
    rollup_seconds = time.perf_counter() - began
    return {"source_documents": cols.source.estimated_document_count(), "reviews": counted_n,
            "rollup_hours": len(updates), "insert_seconds": round(insert_seconds, 1),
            "derive_seconds": round(derive_seconds, 1), "rollup_write_seconds": round(rollup_seconds, 2)}


def insert(cols: Collections, docs: list[dict], entries: list[dict]) -> float:
    began = time.perf_counter()
    if docs:
        cols.source.insert_many(docs, ordered=False)
    if entries:
        cols.counted.insert_many(entries, ordered=False)
    return time.perf_counter() - began


def verify_with_replay(cols: Collections, config_path: Path, days: int) -> dict:
    """`python -m replay --rebuild` over `days` whole UTC days; the rebuilt hours must equal the derived ones."""
    first, last = START + dt.timedelta(days=10), START + dt.timedelta(days=10 + days)
    query = {"_id": {"$gte": first, "$lt": last}}
    derived = {doc["_id"]: doc for doc in cols.rollups.find(query)}
    reviews = sum(doc["reviews"] for doc in derived.values())
    out = io.StringIO()
    began = time.perf_counter()
    with redirect_stdout(out):
        code = replay_main(["--config", str(config_path), "--rebuild", "--from", first.isoformat(),
                            "--to", last.isoformat()])
    seconds = time.perf_counter() - began
    assert code == 0, out.getvalue()
    rebuilt = {doc["_id"]: doc for doc in cols.rollups.find(query)}
    strip = lambda doc: {k: v for k, v in doc.items() if k != "updated_at" and v != {} and v != 0}  # noqa: E731
    if {h: strip(d) for h, d in rebuilt.items()} != {h: strip(d) for h, d in derived.items()}:
        hour = min(h for h in derived.keys() | rebuilt.keys() if strip(derived.get(h, {})) != strip(rebuilt.get(h, {})))
        raise AssertionError(f"replay --rebuild disagrees with the derived rollups at {hour}: "
                             f"{derived.get(hour)} != {rebuilt.get(hour)}")
    return {"days": days, "hours": len(rebuilt), "reviews": reviews, "seconds": round(seconds, 2),
            "reviews_per_second": round(reviews / seconds), "identical": True}


# ---------------------------------------------------------------------------------------------- baseline

def raw_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """What the API reports, computed by scikit-learn on one entry per review."""
    labels = list(range(N_CLASSES))
    if len(y_true) == 0:
        return {"accuracy": None, **{a: dict.fromkeys(("precision", "recall", "f1")) for a in AVERAGES}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = {"accuracy": float(accuracy_score(y_true, y_pred))}
        result["per_class"] = [list(map(float, v)) for v in precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=np.nan)]
        for average in AVERAGES:
            p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                         zero_division=np.nan)
            result[average] = {"precision": _num(p), "recall": _num(r), "f1": _num(f)}
    return result


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def read_raw(cols: Collections, first: dt.date, last: dt.date, zone) -> dict:
    """The range's documents as arrays: one entry per review, plus the local day of each."""
    start, end = day_bounds(first, last, zone)
    y_true, y_pred, day, confidence, pending = [], [], [], [], 0
    fields = {"output_prediction": 1, "output_validated": 1, "timestamp": 1, "output_confidence": 1, "_id": 0}
    for doc in cols.source.find({"timestamp": {"$gte": start, "$lt": end}}, fields, batch_size=5000):
        truth, pred = doc.get("output_validated"), doc["output_prediction"]
        if truth is None:
            pending += 1
            continue
        y_pred.append(pred)
        y_true.append(pred if truth is True else REJECTED if truth is False else truth)
        day.append(doc["timestamp"].astimezone(zone).date())
        confidence.append(doc["output_confidence"])
    return {"y_true": np.array(y_true), "y_pred": np.array(y_pred), "day": day, "pending": pending,
            "mean_confidence": sum(confidence) / len(confidence) if confidence else None}


def raw_summary(raw: dict) -> dict:
    return {"reviews": len(raw["y_true"]), "pending": raw["pending"], **raw_metrics(raw["y_true"], raw["y_pred"])}


def raw_daily(raw: dict, first: dt.date, last: dt.date) -> dict:
    index: dict[dt.date, list[int]] = defaultdict(list)
    for i, day in enumerate(raw["day"]):
        index[day].append(i)
    out = {}
    day = first
    while day <= last:
        rows = np.array(index.get(day, []), dtype=np.int64)
        out[day.isoformat()] = {"reviews": len(rows), **raw_metrics(raw["y_true"][rows], raw["y_pred"][rows])}
        day += dt.timedelta(days=1)
    return out


def raw_classes(raw: dict) -> dict:
    """Per-class precision, recall, F1 and support, as /api/classes reports them."""
    return raw_metrics(raw["y_true"], raw["y_pred"])["per_class"]


def check_equal(summary: dict, daily: dict, classes: dict, base_summary: dict, base_daily: dict,
                base_classes: list) -> int:
    """Every metric the API gave equals the raw computation exactly; returns how many values were compared."""
    compared = 0
    for i, score in enumerate(("precision", "recall", "f1", "support")):
        expected = [None if np.isnan(v) else (int(v) if score == "support" else v) for v in base_classes[i]]
        assert classes[score] == expected, (score, classes[score], expected)
        compared += len(expected)
    for key in ("reviews", "pending", "accuracy"):
        assert summary[key] == base_summary[key], (key, summary[key], base_summary[key])
        compared += 1
    for average in AVERAGES:
        assert summary["averages"][average] == base_summary[average], average
        compared += 3
    for i, day in enumerate(daily["days"]):
        base = base_daily[day]
        assert daily["reviews"][i] == base["reviews"] and daily["accuracy"][i] == base["accuracy"], day
        for average in AVERAGES:
            for score in ("precision", "recall", "f1"):
                assert daily[score][average][i] == base[average][score], (day, average, score)
        compared += 8
    return compared


# ---------------------------------------------------------------------------------------------- the API

async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status, body[:300])
    return (time.perf_counter() - began) * 1000, body


async def wait_ready(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, "python -m web exited"
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("python -m web did not answer /healthz")


SEGMENT_WARM_LOGGED = re.compile(r"loaded (\d+) segment values at start in ([\d.]+) s")


def wait_segment_warm_up(log_path: Path, offset: int, timeout: float = 300) -> dict:
    """Wait until the web started last (its log from `offset`) says its segment warm-up is done: it loads a
    value only in a pause in requests (web.quiet), so the bench's back-to-back requests hold it back."""
    def logged() -> re.Match | None:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return SEGMENT_WARM_LOGGED.search(log.read().decode(errors="replace"))

    found = wait_for(logged, timeout=timeout, interval=0.2, what=f"the web's segment warm-up logged in {log_path}")
    return {"values": int(found[1]), "seconds": float(found[2])}


async def viewers_reload(base: str, urls: dict, tab: list[str], cols: Collections, viewers: int, rounds: int,
                         expected_reviews: int, web: psutil.Process | None = None) -> dict:
    """`viewers` dashboards on /api/stream; each round counts one review in the range (as the consumer does:
    the source document, its counted entry and an $inc of its hour, in that order) and every dashboard
    reloads `tab` at once when its `update` event arrives. Returns the reload times (event -> last answer)
    and write -> last answer, and checks every viewer's summary holds the new review."""
    raise_open_files(viewers * (len(tab) + 1))
    reload_ms: list[float] = []
    write_ms: list[float] = []
    by_endpoint: dict[str, list[float]] = {name: [] for name in tab}
    pending = list(cols.source.find({"output_validated": None,
                                     "timestamp": {"$gte": (START + dt.timedelta(days=30)).replace(tzinfo=None)}},
                                    limit=rounds))
    sessions = [aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
                for _ in range(viewers)]
    try:
        for session in sessions:   # the page is open: its answers loaded once, its connections kept
            await asyncio.gather(*(timed_get(session, urls[name]) for name in tab))
        queues: list[asyncio.Queue] = [asyncio.Queue() for _ in sessions]

        async def listen(session: aiohttp.ClientSession, queue: asyncio.Queue, connected: asyncio.Event) -> None:
            async with session.get(base + "/api/stream") as response:
                async for event in sse_events(response.content):
                    if event.get("event") == "status":
                        connected.set()
                    elif event.get("event") == "update":
                        queue.put_nowait(time.perf_counter())

        async def reload(session: aiohttp.ClientSession, queue: asyncio.Queue) -> tuple[float, int]:
            arrived = await queue.get()
            bodies = await asyncio.gather(*(timed_get(session, urls[name]) for name in tab))
            for name, (ms, _) in zip(tab, bodies):
                by_endpoint[name].append(ms)
            summary = json.loads(bodies[tab.index("summary")][1])
            return arrived, summary["reviews"]

        connected = [asyncio.Event() for _ in sessions]
        listeners = [asyncio.create_task(listen(s, q, c)) for s, q, c in zip(sessions, queues, connected)]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 60)
        await asyncio.sleep(1.0)
        cpu = {"bench": 0.0, "web": 0.0, "wall": 0.0}
        for doc in pending:
            began = (time.perf_counter(), time.process_time(), _cpu(web))
            for queue in queues:
                while not queue.empty():
                    queue.get_nowait()
            reloads = [asyncio.create_task(reload(s, q)) for s, q in zip(sessions, queues)]
            written = time.perf_counter()
            await asyncio.to_thread(count_one_review, cols, doc)
            expected_reviews += 1
            for task in asyncio.as_completed(reloads):
                arrived, reviews = await task
                done = time.perf_counter()
                assert reviews == expected_reviews, (reviews, expected_reviews)
                reload_ms.append((done - arrived) * 1000)
                write_ms.append((done - written) * 1000)
            cpu["wall"] += time.perf_counter() - began[0]
            cpu["bench"] += time.process_time() - began[1]
            cpu["web"] += _cpu(web) - began[2]
            await asyncio.sleep(0.5)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return {"viewers": viewers, "rounds": len(reload_ms) // max(viewers, 1), "tab": tab,
            "reload": percentiles(reload_ms, digits=1), "write_to_reloaded": percentiles(write_ms, digits=1),
            "requests": {name: percentiles(ms, digits=1) for name, ms in by_endpoint.items()},
            "cpu_seconds": {name: round(value, 2) for name, value in cpu.items()}}


def _cpu(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def raise_open_files(clients: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = clients * 2 + 256
    if soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def count_one_review(cols: Collections, doc: dict) -> None:
    """A reviewer confirms a pending prediction and the consumer counts it (source, counted entry, rollup)."""
    now = dt.datetime.now(UTC)
    doc = doc | {"output_validated": doc["output_prediction"], "timestamp_validated": now}
    record = parse_document(doc, N_CLASSES)
    counted = Counted.of(record, HOUR)
    delta = RollupDelta()
    delta.add(counted)
    cols.source.update_one({"_id": doc["_id"]}, {"$set": {"output_validated": doc["output_validated"],
                                                          "timestamp_validated": now, "logged": True}})
    cols.counted.insert_one(counted.to_doc() | {"_id": doc["_id"], "at": now})
    for hour, inc in delta.updates():
        cols.rollups.update_one({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)


async def cold(base: str, urls: dict) -> dict:
    """First requests after a fresh start (the connection to MongoDB already open, via /healthz)."""
    async with aiohttp.ClientSession() as session:
        return {name: (await timed_get(session, url))[0] for name, url in urls.items()}


async def warm(urls: dict, requests: int) -> tuple[dict, dict]:
    results, bodies = {}, {}
    async with aiohttp.ClientSession() as session:
        for name, url in urls.items():
            _, bodies[name] = await timed_get(session, url)
            results[name] = percentiles([(await timed_get(session, url))[0] for _ in range(requests)], digits=2)
    return results, bodies


async def by_segment(urls: dict, segments: int, requests: int, overall: dict, cols: Collections,
                     hour: dt.datetime) -> dict:
    """The endpoints with segment=camera:c3, sequentially: the first request of each (built from the segment
    rollups), then `requests` more (kept while they do not change), and the check that the summaries of every
    segment add up to the overall one's reviews."""
    chosen = {name: f"{url}&segment=camera:c3" for name, url in urls.items()}
    async with aiohttp.ClientSession() as session:
        first = {name: round((await timed_get(session, url))[0], 2) for name, url in chosen.items()}
    results, bodies = await warm(chosen, requests)
    async with aiohttp.ClientSession() as session:
        parts = [json.loads((await timed_get(session, f"{urls['summary']}&segment=camera:c{n}"))[1])["reviews"]
                 for n in range(segments)]
    total = json.loads(overall["summary"])["reviews"]
    if sum(parts) != total:
        raise AssertionError(f"the segments' reviews add up to {sum(parts)}, the overall summary says {total}")
    after = await after_batches(urls["summary"], chosen["summary"], cols, hour, AFTER_BATCH_ROUNDS)
    return {"values": segments, "requests": requests, "segment": "camera:c3", "first_ms": first, "warm": results,
            "segment_reviews": json.loads(bodies["summary"])["reviews"], "segments_add_up": True,
            "summary_after_a_batch": after}


async def after_batches(overall_url: str, segment_url: str, cols: Collections, hour: dt.datetime,
                        rounds: int) -> dict:
    """The summary, overall and of the segment, each asked first after a consumer batch: before each pair, the
    rollup and the segment rollup of `hour` (in the range) are written as a batch writes them (a $set of
    updated_at, so the figures stay those compared at the end). The overall answer re-reads the hours that
    changed, and so does the segment's: its day totals are kept per segment value and re-read only for the hours
    of its field the change fence saw written (web/segment_totals.py)."""
    overall, segment = [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            now = dt.datetime.now(UTC)
            cols.rollups.update_one({"_id": hour}, {"$set": {"updated_at": now}})
            cols.segment_rollups.update_one({"_id": segment_id(hour, "camera")}, {"$set": {"updated_at": now}})
            overall.append((await timed_get(session, overall_url))[0])
            segment.append((await timed_get(session, segment_url))[0])
    return {"rounds": rounds, "overall": percentiles(overall, digits=2), "segment": percentiles(segment, digits=2),
            "overall_ms": [round(ms, 1) for ms in overall], "segment_ms": [round(ms, 1) for ms in segment]}


async def concurrent(urls: dict, clients: int, per_client: int) -> dict:
    results = {}
    for name, url in urls.items():
        sessions = [aiohttp.ClientSession() for _ in range(clients)]
        try:
            for session in sessions:  # open every client's connection first
                await timed_get(session, url)
            latencies: list[float] = []

            async def client(session: aiohttp.ClientSession) -> None:
                for _ in range(per_client):
                    latencies.append((await timed_get(session, url))[0])

            began = time.perf_counter()
            await asyncio.gather(*(client(s) for s in sessions))
            wall = time.perf_counter() - began
        finally:
            await asyncio.gather(*(s.close() for s in sessions))
        results[name] = percentiles(latencies, digits=2) | {"requests_per_second": round(len(latencies) / wall)}
    return results


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000, help="reviews stored (default 1000000)")
    parser.add_argument("--days", type=int, default=100, help="days of prediction time they span (default 100)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent API clients (default 20)")
    parser.add_argument("--requests", type=int, default=100, help="warm sequential requests per endpoint "
                        "(default 100); each concurrent client makes as many divided by --clients, at least 10")
    parser.add_argument("--restarts", type=int, default=5, help="fresh web starts for cold figures (default 5)")
    parser.add_argument("--verify-days", type=int, default=1, help="days replay --rebuild recounts (default 1)")
    parser.add_argument("--viewers", type=int, default=200, help="SSE-connected dashboards reloading (default 200)")
    parser.add_argument("--reload-rounds", type=int, default=5, help="reviews counted while they watch (default 5)")
    parser.add_argument("--segments", type=int, default=0, help="camera values (segments.fields = ['camera']); "
                        "the endpoints are timed with segment=camera:c3 too (default 0: no segments)")
    parser.add_argument("--segment-requests", type=int, default=30,
                        help="sequential requests per endpoint with a segment (default 30)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "api.json"))
    args = parser.parse_args(argv)
    if args.days < RANGE_DAYS + 7:
        parser.error(f"--days must be at least {RANGE_DAYS + 7} (a {RANGE_DAYS}-day range inside the data)")
    web_process: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            port = free_port()
            raw_config = {"mongodb": {"database": "api_bench"}, "web": {"port": port, "host": "127.0.0.1"},
                          "profiles": {"local_store": False}}
            if args.segments:
                raw_config["segments"] = {"fields": ["camera"], "max_values": max(args.segments, 20)}
            config = config_from_mapping(raw_config, {"MONGODB_URI": mongo.uri}, source="bench")
            config_path = write_config(Path(tmp) / "config.toml", raw_config)
            client = connect(config)
            cols = Collections.of(client, config)
            ensure_indexes(cols)
            print(f"writing {args.reviews:,} reviews over {args.days} days ...", flush=True)
            data = write_data(cols, args.reviews, args.days, segments=args.segments)
            migrate_logged_as(client, cols, config)   # the consumer's first start does it once, not the rebuild
            os.environ |= {"MONGODB_URI": mongo.uri, "LOG_LEVEL": "WARNING"}
            verify = verify_with_replay(cols, config_path, args.verify_days)
            print(f"data: {data}\nreplay --rebuild cross-check: {verify}", flush=True)

            zone = config.model.zone
            first = (START + dt.timedelta(days=5)).astimezone(zone).date()
            last = first + dt.timedelta(days=RANGE_DAYS - 1)
            base = f"http://127.0.0.1:{port}"
            params = f"from={first.isoformat()}&to={last.isoformat()}"
            urls = {name: f"{base}/api/{name}?{params}" for name in ENDPOINTS}
            urls["volume"] = f"{base}/api/volume?{params}"

            colds: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
            firsts: list[float] = []
            startups: list[float] = []
            web_pid = None
            web_log = Path(tmp) / "web.log"
            for i in range(args.restarts):
                log_offset = web_log.stat().st_size if web_log.exists() else 0
                began = time.perf_counter()
                web_process = start("web", config_path, mongo.uri, env={"PORT": str(port), "LOG_LEVEL": "INFO"},
                                    log_path=web_log)
                asyncio.run(wait_ready(base, web_process))
                startups.append(time.perf_counter() - began)
                order = ENDPOINTS[i % len(ENDPOINTS):] + ENDPOINTS[:i % len(ENDPOINTS)]
                for n, (name, ms) in enumerate(asyncio.run(cold(base, {n: urls[n] for n in order})).items()):
                    colds[name].append(ms)
                    if n == 0:
                        firsts.append(ms)
                if i < args.restarts - 1:
                    stop(web_process)
            web_pid = web_process.pid
            measured = {name: urls[name] for name in ENDPOINTS}
            warm_results, bodies = asyncio.run(warm(measured, args.requests))
            per_client = max(args.requests // args.clients, 10)
            conc = asyncio.run(concurrent(measured, args.clients, per_client))
            viewers = None
            if args.viewers:
                print(f"{args.viewers} dashboards reloading on live updates ...", flush=True)
                viewers = asyncio.run(viewers_reload(base, urls, OVERVIEW_TAB, cols, args.viewers, args.reload_rounds,
                                                     json.loads(bodies["summary"])["reviews"], psutil.Process(web_pid)))
                _, bodies = asyncio.run(warm(measured, 1))   # the answers after those reviews, compared below
            in_range = dt.datetime.combine(first + dt.timedelta(days=1), dt.time(12), zone).astimezone(UTC)
            segment_warm_up = wait_segment_warm_up(web_log, log_offset) if args.segments else None
            segmented = (asyncio.run(by_segment(measured, args.segments, args.segment_requests, bodies, cols,
                                                in_range.replace(minute=0))) if args.segments else None)
            web_rss = round(psutil.Process(web_pid).memory_info().rss / 2**20, 1)
            stop(web_process)
            web_process = None
            summary_body, daily_body, classes_body = (json.loads(bodies[name]) for name in ENDPOINTS)

            print("baseline: reading the raw documents and computing with scikit-learn ...", flush=True)
            began = time.perf_counter()
            raw = read_raw(cols, first, last, zone)
            read_seconds = time.perf_counter() - began
            began = time.perf_counter()
            base_summary = raw_summary(raw)
            summary_seconds = time.perf_counter() - began
            began = time.perf_counter()
            base_daily = raw_daily(raw, first, last)
            daily_seconds = time.perf_counter() - began
            began = time.perf_counter()
            base_classes = raw_classes(raw)
            classes_seconds = time.perf_counter() - began
            compared = check_equal(summary_body, daily_body, classes_body, base_summary, base_daily, base_classes)
            client.close()
        finally:
            stop(web_process)
            mongo.stop()

    baseline_ms = {"summary": round((read_seconds + summary_seconds) * 1000),
                   "daily": round((read_seconds + daily_seconds) * 1000),
                   "classes": round((read_seconds + classes_seconds) * 1000)}
    warm_together = sum(warm_results[name]["p50_ms"] for name in ENDPOINTS)
    together = round(sum(baseline_ms.values()) / warm_together)
    result = {
        "reviews": args.reviews, "days": args.days, "range_days": RANGE_DAYS,
        "range": {"from": first.isoformat(), "to": last.isoformat(), "timezone": zone.key},
        "range_reviews": summary_body["reviews"], "data": data,
        "rollups_made_by": ("derived in memory with the pipeline's counting code (parse_document, Counted.of, "
                            "RollupDelta), one $inc upsert per hour; replay --rebuild of "
                            f"{verify['days']} day(s) recounted them identically"),
        "replay_rebuild_check": verify,
        "startup_seconds": percentiles(startups, digits=2),
        "cold_first_request": percentiles(firsts, digits=2) | {"samples_ms": [round(v, 1) for v in firsts]},
        "cold": {name: percentiles(ms, digits=2) | {"samples_ms": [round(v, 1) for v in ms]} for name, ms in colds.items()},
        "warm": warm_results, "warm_together": {"p50_sum_ms": round(warm_together, 2),
                                                "baseline_sum_ms": sum(baseline_ms.values()), "ratio": together},
        "concurrent": {"clients": args.clients, "requests_per_client": per_client, **conc},
        "viewers": viewers,
        "segments": segmented and segmented | {"warm_up": segment_warm_up, "ratio_to_unsegmented_p50": {
            name: {"warm": round(segmented["warm"][name]["p50_ms"] / warm_results[name]["p50_ms"], 2),
                   "cold": round(segmented["warm"][name]["p50_ms"] / percentiles(colds[name])["p50_ms"], 2)}
            for name in ENDPOINTS}},
        "web_rss_mib": web_rss,
        "baseline": {"read_seconds": round(read_seconds, 2), "summary_compute_seconds": round(summary_seconds, 3),
                     "daily_compute_seconds": round(daily_seconds, 3),
                     "classes_compute_seconds": round(classes_seconds, 3), "total_ms": baseline_ms,
                     "values_compared_equal": compared},
    }
    rows = []
    n = f"{summary_body['reviews'] / 1e6:.2f}M" if summary_body["reviews"] >= 100_000 else f"{summary_body['reviews']:,}"
    rows.append(["api", f"start-up s / first request after it ms p50 ({args.restarts} fresh starts)",
                 f"{result['startup_seconds']['p50_ms']} / {result['cold_first_request']['p50_ms']}", "", ""])
    for name in ENDPOINTS:
        b = baseline_ms[name]
        for label, figures in ((f"cold ({args.restarts} fresh starts)", result["cold"][name]),
                               ("warm", warm_results[name]),
                               (f"{args.clients} concurrent clients", conc[name])):
            rows.append(["api", f"/api/{name} {RANGE_DAYS} d ({n} reviews) {label} p50 / p95 ms vs raw ms",
                         f"{figures['p50_ms']} / {figures['p95_ms']}", b, f"{round(b / figures['p95_ms'])}x (p95)"])
    rows.append(["api", f"warm summary + daily + classes p50 ms together vs raw ms ({n} reviews)",
                 round(warm_together, 2), sum(baseline_ms.values()), f"{together}x (p50)"])
    rows.append(["api", f"{args.clients} clients requests/s " + " / ".join(ENDPOINTS),
                 " / ".join(str(conc[name]["requests_per_second"]) for name in ENDPOINTS), "", ""])
    if viewers:
        rows.append(["api", f"{viewers['viewers']} SSE dashboards reload {'+'.join(OVERVIEW_TAB)} on update p50 / p95 ms "
                     f"(write -> reloaded p95; {viewers['rounds']} reviews)",
                     f"{viewers['reload']['p50_ms']} / {viewers['reload']['p95_ms']}",
                     "", f"{viewers['write_to_reloaded']['p95_ms']}"])
    if segmented:
        rows.append(["api", "segment values loaded at start (web.warm, in pauses of requests) / seconds",
                     f"{segment_warm_up['values']} / {segment_warm_up['seconds']}", "", ""])
        for name in ENDPOINTS:
            one, cold_one = segmented["warm"][name], result["cold"][name]
            ratio = result["segments"]["ratio_to_unsegmented_p50"][name]
            rows.append(["api", f"/api/{name}?segment=camera:c3 ({args.segments} segments) p50 / p95 ms vs "
                         "unsegmented warm / cold p50 ms", f"{one['p50_ms']} / {one['p95_ms']}",
                         f"{warm_results[name]['p50_ms']} / {cold_one['p50_ms']}",
                         f"{ratio['warm']}x warm / {ratio['cold']}x cold"])
            rows.append(["api", f"/api/{name}?segment=camera:c3 first request after the warm-up ms vs unsegmented cold p50 ms",
                         segmented["first_ms"][name], cold_one["p50_ms"],
                         f"{round(segmented['first_ms'][name] / cold_one['p50_ms'], 2)}x cold"])
    if segmented:
        after = segmented["summary_after_a_batch"]
        rows.append(["api", f"/api/summary first request after a consumer batch ({after['rounds']} batches) p50 / p95 ms: "
                     "segment=camera:c3 vs overall", f"{after['segment']['p50_ms']} / {after['segment']['p95_ms']}",
                     f"{after['overall']['p50_ms']} / {after['overall']['p95_ms']}",
                     f"{round(after['segment']['p50_ms'] / after['overall']['p50_ms'], 1)}x (p50)"])
    rows.append(["api", "rollups: derived in memory by clara.rollups; replay --rebuild check reviews/s",
                 verify["reviews_per_second"], "", "identical"])
    result["rows"] = rows
    write_result(args.output, result)
    print(f"\n{args.reviews:,} reviews, {RANGE_DAYS}-day range {first}..{last} ({summary_body['reviews']:,} reviews); "
          f"baseline: read {read_seconds:.2f} s + summary {summary_seconds:.2f} s / daily {daily_seconds:.2f} s / "
          f"classes {classes_seconds:.2f} s; "
          f"{compared} values equal")
    for row in rows:
        print("  ".join(str(cell) for cell in row[1:]))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
