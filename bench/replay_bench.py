"""Replay throughput and memory over N stored reviews, against the raw cursor read of the same documents.

Starts its own mongod (clara.embedded_mongo), inserts N reviewed, not yet logged predictions spread
over --days days, then in one run measures:

- the raw cursor read rate of those documents: the ceiling the issue measures replay against;
- the same read with each document parsed and its review counted in Python, nothing read or written besides:
  the most a review recount done in Python can reach, whatever it writes;
- the least MongoDB itself would do for a review recount on the server, a day per aggregation: each
  document's counted entry looked up, compared with what the document counts now, and the documents grouped
  by the review rollup's keys, the groups read back into Python, nothing written: the ceiling of moving the
  recount out of Python (issue #16 asks --rebuild for 0.4 of the raw read);
- MongoDB's own rate for the writes a backfill cannot avoid per review: its counted entry (a replace
  upserted into CLARA's counted collection) and the source's `logged`/`logged_at` flag, 1000 reviews per
  transaction, nothing planned: the ceiling for any backfill;
- MongoDB's own rate for exactly the backfill's transactions (bench.batch_writes: the reads of the documents
  and of what was counted, the counted entries, the flags, the rollup increments, the outbox entries and the
  checkpoint, every payload computed beforehand), catchup_batch_size reviews each: the fair bound, since a
  backfill also reads and writes rollups;
- `python -m replay` backfilling them without profile sinks (the consumer's batches);
- `python -m replay --rebuild` recounting every hour of data already processed (counted entries current);
- from scratch again, the backfill with whylogs profiles for the local store;
- `python -m replay --rebuild --profiles local`: recount and re-send every hour's profile.

Peak RSS is sampled through each phase. Prints a table, the backfill's rate over both bounds, and writes
bench/results/replay.json.

    python bench/replay_bench.py [--reviews 1000000] [--days 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import os
import random
import sys
import tempfile
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

import psutil
from pymongo import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.batch_writes import writes_alone_rate  # noqa: E402
from bench.stats import write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from clara.prediction_counts import MICROS, calibration_bin, confidence_micros, countable, has_confidence  # noqa: E402
from clara.records import Record, parse_document  # noqa: E402
from clara.rollups import CONFIDENCE_BINS, LATENCY_EDGES, Counted, RollupDelta  # noqa: E402
from consumer.migrate import migrate_logged_as  # noqa: E402
from replay.cli import main as replay_main  # noqa: E402
from tests.support.processes import write_config  # noqa: E402

UTC = dt.timezone.utc
START = dt.datetime(2025, 1, 1, tzinfo=UTC)


class RssSampler(threading.Thread):
    """Peak and sampled resident memory of this process while a phase runs."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.process, self.interval, self.samples = psutil.Process(), interval, []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(self.process.memory_info().rss)
            self.done.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()

    def summary(self) -> dict:
        mib = [s / 2**20 for s in self.samples] or [0.0]
        quarter = max(len(mib) // 4, 1)
        return {"peak_rss_mib": round(max(mib), 1), "first_quarter_peak_mib": round(max(mib[:quarter]), 1),
                "last_quarter_peak_mib": round(max(mib[-quarter:]), 1)}


def documents(n: int, days: int, seed: int = 1):
    rng = random.Random(seed)
    span = days * 86400
    for i in range(n):
        at = START + dt.timedelta(seconds=span * i / n)
        pred = rng.randrange(7)
        truth = pred if rng.random() < 0.8 else rng.randrange(7)
        yield {"filename": f"img_{i:08d}.jpg", "output_prediction": pred,
               "output_confidence": round(rng.uniform(0.3, 1.0), 4), "timestamp": at.replace(tzinfo=None),
               "output_validated": truth,
               "timestamp_validated": (at + dt.timedelta(minutes=rng.randint(1, 600))).replace(tzinfo=None)}


def insert(cols: Collections, n: int, days: int, chunk: int = 20_000) -> float:
    started, buffer = time.perf_counter(), []
    for doc in documents(n, days):
        buffer.append(doc)
        if len(buffer) == chunk:
            cols.source.insert_many(buffer, ordered=False)
            buffer = []
    if buffer:
        cols.source.insert_many(buffer, ordered=False)
    return time.perf_counter() - started


def write_markers(client: MongoClient, cols: Collections, n: int, batch: int = 1000) -> int:
    """The writes a backfill makes per review, alone and in their cheapest form (the consumer's): an insert of
    its counted entry and, for the batch, one update setting the source's `logged` flags, `batch` reviews per
    majority transaction."""
    now = dt.datetime.now(UTC)
    written, chunk = 0, []
    ids = cols.source.find({}, {"_id": 1}, batch_size=batch).sort("_id", 1)
    for doc in itertools.chain(ids, [None]):     # streamed: this phase needs no more memory than replay
        if doc is not None:
            chunk.append(doc["_id"])
        if chunk and (len(chunk) == batch or doc is None):
            entries = [{"_id": doc_id, "hour": now, "predicted": 1, "truth": 1, "confidence_micros": i,
                        "latency_ms": i, "at": now} for i, doc_id in enumerate(chunk)]

            def write(session, entries=entries, ids=chunk) -> None:
                cols.counted.insert_many(entries, ordered=False, session=session)
                cols.source.update_many({"_id": {"$in": ids}}, {"$set": {"logged": True, "logged_at": now}},
                                        session=session)

            with client.start_session() as session:
                session.with_transaction(write, read_concern=ReadConcern("snapshot"),
                                         write_concern=WriteConcern("majority"))
            written, chunk = written + len(chunk), []
    assert written == n
    return n


OWN_TRANSACTIONS = "MongoDB backfill transactions alone"
PARSE_AND_COUNT = "read + parse + count in Python"
SERVER_RECOUNT = "MongoDB recount alone (per day)"


def server_recount_pipeline(cols: Collections, n_classes: int, start: dt.datetime, end: dt.datetime) -> list:
    """The least a review recount run by MongoDB does for the documents predicted in [start, end): look each
    one's counted entry up, compare it with what the document counts now (clara.rollups.Counted.of, as
    clara.prediction_counts mirrors the parser), and group those that agree by the review rollup's keys
    (hour, true and predicted class, confidence, calibration and latency bins) with their confidence and
    latency sums; every other document comes back as a group of its own, by _id. Not CLARA's code: a bound."""
    confident = has_confidence()
    micros = {"$cond": [confident, confidence_micros(), None]}
    truth = {"$switch": {"branches": [{"case": {"$eq": ["$output_validated", True]}, "then": "$output_prediction"},
                                      {"case": {"$eq": ["$output_validated", False]}, "then": None}],
                         "default": "$output_validated"}}
    latency = {"$cond": [{"$and": [{"$eq": [{"$type": "$timestamp_validated"}, "date"]},
                                   {"$gte": ["$timestamp_validated", "$timestamp"]}]},
                         {"$subtract": ["$timestamp_validated", "$timestamp"]}, None]}
    hour = {"$dateTrunc": {"date": "$timestamp", "unit": "hour"}}
    entry = "$__counted"
    agrees = {"$and": [countable(n_classes), {"$not": [{"$in": [{"$type": "$output_validated"}, ["missing", "null"]]}]},
                       {"$eq": [{"$type": entry}, "object"]}, {"$eq": [f"{entry}.hour", hour]},
                       {"$eq": [f"{entry}.predicted", "$output_prediction"]}, {"$eq": [f"{entry}.truth", truth]},
                       {"$eq": [f"{entry}.confidence_micros", micros]}, {"$eq": [f"{entry}.latency_ms", latency]}]}
    key = {"hour": hour, "predicted": "$output_prediction", "truth": truth,
           "bin": {"$floor": {"$multiply": [{"$divide": [micros, MICROS]}, CONFIDENCE_BINS]}},
           "cal": {"$cond": [confident, calibration_bin(micros), None]},
           "latency_bin": {"$cond": [{"$eq": [latency, None]}, None, {"$sum": [
               {"$cond": [{"$gte": [latency, edge * 1000]}, 1, 0]} for edge in LATENCY_EDGES]}]}}
    return [{"$match": {"timestamp": {"$gte": start, "$lt": end}}},
            {"$lookup": {"from": cols.counted.name, "localField": "_id", "foreignField": "_id", "as": "__counted"}},
            {"$set": {"__counted": {"$first": "$__counted"}}},
            {"$group": {"_id": {"$cond": [agrees, key, {"document": "$_id"}]}, "n": {"$sum": 1},
                        "micros": {"$sum": {"$ifNull": [micros, 0]}}, "latency_ms": {"$sum": {"$ifNull": [latency, 0]}}}}]


def own_transactions_alone(client: MongoClient, config, docs: list[dict]) -> dict:
    """The backfill's transactions' server work alone (bench.batch_writes), as a row of the table; setting
    the scratch copy up is not timed, so neither is memory sampled."""
    alone = writes_alone_rate(client, config, docs, config.consumer.catchup_batch_size)
    return {"phase": OWN_TRANSACTIONS, "documents": len(docs), "seconds": alone["seconds"],
            "docs_per_second": alone["reviews_per_second"], "peak_rss_mib": "-", "first_quarter_peak_mib": "-",
            "last_quarter_peak_mib": "-"}


def phase(name: str, work) -> dict:
    with RssSampler() as rss:
        started = time.perf_counter()
        count = work()
        seconds = time.perf_counter() - started
    return {"phase": name, "documents": count, "seconds": round(seconds, 2),
            "docs_per_second": round(count / seconds), **rss.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000, help="stored reviews (default 1000000)")
    parser.add_argument("--days", type=int, default=60, help="days of prediction time they span (default 60)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "replay.json"))
    args = parser.parse_args(argv)
    os.environ["LOG_LEVEL"] = "WARNING"   # replay's own logging set-up reads it
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            raw = {"mongodb": {"database": "replay_bench"},
                   "profiles": {"local_store": True, "local_store_dir": str(Path(tmp) / "profiles")}}
            config = config_from_mapping(raw, {"MONGODB_URI": mongo.uri}, source="bench")
            config_path = write_config(Path(tmp) / "config.toml", raw)
            no_sinks_path = write_config(Path(tmp) / "no-sinks.toml", raw | {"profiles": {"local_store": False}})
            client = connect(config)
            cols = Collections.of(client, config)
            ensure_indexes(cols)
            inserted = insert(cols, args.reviews, args.days)
            migrate_logged_as(client, cols, config)   # the consumer's first start does it once, not replay's phases
            os.environ["MONGODB_URI"] = mongo.uri

            def read_all() -> int:
                return sum(1 for _ in cols.source.find({"timestamp": {"$gte": START}}, batch_size=1000))

            def parse_and_count() -> int:
                """The Python work a review recount in Python cannot skip, nothing else: each document read,
                parsed and counted into the review increments (no counted entries read, nothing written; the
                prediction counts are grouped by MongoDB: clara/prediction_counts.py)."""
                reviews, n = RollupDelta(), 0
                period = config.model.rollup_period
                for doc in cols.source.find({"timestamp": {"$gte": START}}, batch_size=1000):
                    record = parse_document(doc, config.n_classes)
                    if isinstance(record, Record) and record.reviewed:
                        reviews.add(Counted.of(record, period))
                    n += 1
                return n

            def server_recount() -> int:
                """The server's share of a recount moved out of Python (server_recount_pipeline), a day at a time."""
                agreed = 0
                for day in range(args.days):
                    start = START + dt.timedelta(days=day)
                    pipeline = server_recount_pipeline(cols, config.n_classes, start, start + dt.timedelta(days=1))
                    agreed += sum(group["n"] for group in cols.source.aggregate(pipeline)
                                  if "document" not in group["_id"])
                assert agreed == args.reviews, agreed   # every entry agrees: the whole recount stayed on the server
                return args.reviews

            def marker_writes() -> int:
                return write_markers(client, cols, args.reviews)

            def forget() -> None:
                cols.source.update_many({}, {"$unset": {"logged": "", "logged_at": ""}})
                # Dropped, not emptied: upserts into a collection just emptied by delete_many ran 6x slower
                # here (the deleted entries linger until MongoDB cleans them up), which no deployment sees.
                cols.counted.drop()
                ensure_indexes(cols)
                cols.rollups.delete_many({})
                cols.outbox.delete_many({})

            def replay(*extra: str, path: Path = config_path):
                def work() -> int:
                    out = io.StringIO()
                    with redirect_stdout(out):
                        code = replay_main(["--config", str(path), "--from", START.isoformat(), *extra])
                    assert code == 0, out.getvalue()
                    return args.reviews
                return work

            as_inserted = list(cols.source.find({"timestamp": {"$gte": START}}))   # before the flags are set
            rows = [phase("raw cursor read (ceiling)", read_all),
                    phase(PARSE_AND_COUNT, parse_and_count),
                    phase("MongoDB entry + flag writes alone", marker_writes),
                    own_transactions_alone(client, config, as_inserted)]
            del as_inserted
            forget()
            rows += [phase("replay backfill, no sinks", replay(path=no_sinks_path)),
                     phase("replay --rebuild", replay("--rebuild", path=no_sinks_path)),
                     phase(SERVER_RECOUNT, server_recount)]
            forget()
            rows += [phase("replay backfill, local store", replay()),
                     phase("replay --rebuild --profiles local", replay("--rebuild", "--profiles", "local"))]
            assert cols.source.count_documents({"logged": True}) == args.reviews == cols.counted.count_documents({})
            assert cols.outbox.count_documents({"_id": {"$regex": "^replay-"}}) == args.days * 24   # one per hour
            client.close()
        finally:
            mongo.stop()
    ceiling = rows[0]["docs_per_second"]
    for row in rows:
        row["ratio_to_ceiling"] = round(row["docs_per_second"] / ceiling, 3)
    rate = {row["phase"]: row["docs_per_second"] for row in rows}
    backfill = rate["replay backfill, no sinks"]
    bounds = {"backfill_over_entry_and_flag_writes": round(backfill / rate["MongoDB entry + flag writes alone"], 3),
              "backfill_over_its_transactions_alone": round(backfill / rate[OWN_TRANSACTIONS], 3),
              "rebuild_over_parse_and_count": round(rate["replay --rebuild"] / rate[PARSE_AND_COUNT], 3),
              "server_recount_over_raw_read": round(rate[SERVER_RECOUNT] / ceiling, 3)}
    result = {"reviews": args.reviews, "days": args.days, "hours": args.days * 24,
              "insert_seconds": round(inserted, 1), "catchup_batch_size": config.consumer.catchup_batch_size,
              "phases": rows, "bounds": bounds}
    write_result(args.output, result)
    print(f"{args.reviews:,} reviews over {args.days} days (inserted in {inserted:.1f} s)")
    print(f"{'phase':<36}{'docs/s':>10}{'seconds':>9}{'ratio':>8}{'peak RSS MiB':>14}{'1st/last quarter':>18}")
    for row in rows:
        print(f"{row['phase']:<36}{row['docs_per_second']:>10,}{row['seconds']:>9}{row['ratio_to_ceiling']:>8}"
              f"{row['peak_rss_mib']:>14}{row['first_quarter_peak_mib']:>9}/{row['last_quarter_peak_mib']}")
    print("backfill (no sinks) over the entry + flag writes alone: "
          f"{bounds['backfill_over_entry_and_flag_writes']}; over its own transactions alone: "
          f"{bounds['backfill_over_its_transactions_alone']}")
    print(f"--rebuild over reading, parsing and counting alone in Python: {bounds['rebuild_over_parse_and_count']} "
          f"(that alone is {rate[PARSE_AND_COUNT] / ceiling:.3f} of the raw read: the most a review recount in Python reaches)")
    print(f"a review recount left to MongoDB, its server work alone: {bounds['server_recount_over_raw_read']} of the raw "
          "read (the most a recount moved out of Python reaches, before it writes anything)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
