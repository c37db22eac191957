"""The consumer's batch transaction with and without segments, alternating in one run on one mongod.

Starts its own mongod (clara.embedded_mongo), then per round and per mode (`off`: no segments; `on`:
segments.fields = model_version (3 values) and site (10 values)) a fresh database: inserts N predictions
spread over --hours hours, counts them as the stream does (consumer.batch.commit_batch with insert events,
--batch per transaction, every batch full as while the consumer is behind: segment increments are put off
and folded once per segments.fold_seconds, --fold-seconds, and what is left is folded at the end of the step,
timed into it), then the increments applied batch by batch with no other work (the reads of the cut and of
the admitted values, and the rollup increments, every payload computed beforehand by the same code, into a
scratch database of the mode's own): MongoDB's cost of applying every batch's own; then reviews every one
of them and counts the reviews as the catch-up does (commit_batch, --batch ids per transaction). The two modes' batches are interleaved one by one (off, on,
on, off, ...), so that the machine's changing load (other processes) falls on both alike; a short round
warms up first. The rate is documents per second of commit_batch time. Apart from MongoDB, the
outbox drain's cost is timed too: one hour's 150 new reviews profiled and merged into the local store,
per drain (with segments, one profile per value besides). Prints the median per mode, the on/off ratios and
each mode's predictions rate over its writes alone; writes bench/results/segments.json.

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
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from clara.predictions import PredictionDelta, classify  # noqa: E402
from clara.segment_pending import Folding, fold_all  # noqa: E402
from clara.segment_rollups import write_segment_rollups  # noqa: E402
from consumer.batch import admission_of, commit_batch  # noqa: E402
from consumer.outbox_queue import HourRows, outbox_entry, sink_names  # noqa: E402
from consumer.predictions import STATE_ID, Inserted  # noqa: E402

from consumer.sinks import LocalProfileStore, OutboxEntry  # noqa: E402
from consumer.sinks.profiles import hour_view  # noqa: E402

UTC = dt.timezone.utc
MODES = {"off": {}, "on": {"segments": {"fields": ["model_version", "site"], "max_values": 20}}}


def documents(n: int, hours: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    return [{"filename": f"img_{i:08d}.jpg", "output_prediction": rng.randrange(7),
             "output_confidence": round(rng.uniform(0.3, 1.0), 4),
             "timestamp": start + dt.timedelta(seconds=hours * 3600 * i / n),
             "model_version": f"v{rng.randrange(3)}", "site": f"site-{rng.randrange(10)}"} for i in range(n)]


class Lane:
    """One mode's database, config and documents, timed batch by batch."""

    def __init__(self, uri: str, tmp: Path, mode: str, docs: list[dict], run: int):
        raw = {"mongodb": {"database": f"segments_bench_{run}_{mode}"},
               "profiles": {"local_store": True, "local_store_dir": str(tmp / f"profiles-{run}-{mode}")}} | MODES[mode]
        self.config = config_from_mapping(raw, {"MONGODB_URI": uri}, source="bench")
        self.client = connect(self.config)
        self.cols = Collections.of(self.client, self.config)
        ensure_indexes(self.cols)
        # The collections exist, as beside a consumer that has run: a transaction's first write to a collection
        # creates it, once per deployment, which would otherwise weigh on the first batches of a mode.
        self.cols.state.insert_one({"_id": "bench"})
        for collection in (self.cols.segment_rollups, self.cols.segment_predictions, self.cols.segment_pending,
                           self.cols.outbox):
            if collection.name not in self.cols.db.list_collection_names():
                self.cols.db.create_collection(collection.name)
        self.docs = [dict(doc) for doc in docs]
        self.cols.source.insert_many(self.docs)
        self.sinks = sink_names(self.config)
        # Every bench batch is full, as the stream's and the catch-up's are while behind.
        self.folding = Folding(self.config.segments.fold_seconds) if self.config.segments.enabled else None
        self.seconds = {"predictions": 0.0, "predictions_writes_alone": 0.0, "reviews": 0.0}
        alone = config_from_mapping(raw | {"mongodb": {"database": raw["mongodb"]["database"] + "_alone"}},
                                    {"MONGODB_URI": uri}, source="bench")
        self.alone = Collections.of(self.client, alone)
        ensure_indexes(self.alone)
        self.alone.state.insert_one({"_id": "bench"})
        for collection in (self.alone.predictions, self.alone.segment_predictions):
            if collection.name not in self.alone.db.list_collection_names():
                self.alone.db.create_collection(collection.name)

    def predictions(self, batch: slice) -> None:
        inserted = [Inserted(doc, Timestamp(1, 1)) for doc in self.docs[batch]]
        started = time.perf_counter()
        commit_batch(self.client, self.cols, self.config, [], sinks=self.sinks, inserted=inserted,
                     folding=self.folding, full=True)
        self.seconds["predictions"] += time.perf_counter() - started

    def folded(self, step: str) -> None:
        """What the step's batches put off, folded as an idle consumer does, timed into the step."""
        started = time.perf_counter()
        fold_all(self.client, self.cols)
        self.seconds[step] += time.perf_counter() - started
        if self.folding is not None:
            self.folding.committed(False, False)

    def predictions_writes_alone(self, batch: slice) -> None:
        """The server work of `predictions(batch)` alone: its payloads computed first, then one transaction of
        the same reads and writes."""
        config, now = self.config, dt.datetime.now(UTC)
        admission = admission_of(self.alone, config, None)
        delta = PredictionDelta()
        for doc in self.docs[batch]:
            key, _ = classify(doc, config.n_classes, config.model.rollup_period)
            delta.add(*key, admission.segment_of(doc) if admission is not None else ())
        writes = [UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": now}}, upsert=True)
                  for hour, inc in delta.updates()]
        segment_writes = delta.segment_updates()

        def transaction(session) -> None:
            self.alone.state.find_one({"_id": STATE_ID}, session=session)
            admission_of(self.alone, config, session)
            self.alone.predictions.bulk_write(writes, ordered=False, session=session)
            if admission is not None:
                write_segment_rollups(session, self.alone.segment_predictions, segment_writes, now)

        started = time.perf_counter()
        with self.client.start_session() as session:
            session.with_transaction(transaction, read_concern=ReadConcern("snapshot"),
                                     write_concern=WriteConcern("majority"))
        self.seconds["predictions_writes_alone"] += time.perf_counter() - started

    def review_all(self, seed: int) -> None:
        rng = random.Random(seed)
        reviewed_at = dt.datetime(2026, 3, 5, tzinfo=UTC)
        self.cols.source.bulk_write([UpdateOne({"_id": doc["_id"]}, {"$set": {
            "output_validated": doc["output_prediction"] if rng.random() < 0.8 else rng.randrange(7),
            "timestamp_validated": reviewed_at}}) for doc in self.docs], ordered=False)

    def reviews(self, batch: slice) -> None:
        ids = [doc["_id"] for doc in self.docs[batch]]
        started = time.perf_counter()
        commit_batch(self.client, self.cols, self.config, ids, sinks=self.sinks, folding=self.folding, full=True)
        self.seconds["reviews"] += time.perf_counter() - started

    def close(self) -> dict:
        assert sum(d.get("reviews", 0) for d in self.cols.rollups.find()) == len(self.docs), "reviews miscounted"
        self.client.drop_database(self.config.mongodb.database)
        self.client.drop_database(self.alone.db.name)
        self.client.close()
        return {f"{kind}_per_second": len(self.docs) / seconds for kind, seconds in self.seconds.items()}


def one_round(uri: str, tmp: Path, docs: list[dict], batch: int, run: int) -> dict[str, dict]:
    """Both modes over the same documents, their batches interleaved (off, on, on, off, ...)."""
    lanes = {mode: Lane(uri, tmp, mode, docs, run) for mode in MODES}
    batches = [slice(i, i + batch) for i in range(0, len(docs), batch)]
    for step in ("predictions", "predictions_writes_alone", "reviews"):
        if step == "reviews":
            for lane in lanes.values():
                lane.review_all(run)
        for i, part in enumerate(batches):
            for mode in (list(MODES) if i % 2 == 0 else list(reversed(MODES))):
                getattr(lanes[mode], step)(part)
        if step != "predictions_writes_alone":
            for lane in lanes.values():
                lane.folded(step)
    return {mode: lane.close() for mode, lane in lanes.items()}


def drain_ms(segmented: bool, rows: int = 150, drains: int = 10) -> float:
    """Milliseconds per drain of one hour: `rows` new reviews profiled (per segment value too, when
    `segmented`) and merged into the local store's hour file, `drains` times into the same file."""
    hour = dt.datetime(2026, 3, 1, 10, tzinfo=UTC)
    classes = config_from_mapping({}, {}).model.classes
    with tempfile.TemporaryDirectory(prefix="segments-bench-store-") as directory:
        store = LocalProfileStore(directory)
        started = time.perf_counter()
        for i in range(drains):
            rng = random.Random(i)
            columns = HourRows([rng.randrange(7) for _ in range(rows)], [rng.randrange(7) for _ in range(rows)],
                               [rng.uniform(0.3, 1.0) for _ in range(rows)], [rng.uniform(1, 900) for _ in range(rows)],
                               {"model_version": [f"v{rng.randrange(3)}" for _ in range(rows)],
                                "site": [f"site-{rng.randrange(10)}" for _ in range(rows)]} if segmented else {})
            entry = OutboxEntry.from_document(outbox_entry(f"b{i}", hour, columns, ["local"], hour))
            built = hour_view([entry], hour, classes, performance=True)
            store.deliver(hour, built.view, [entry.id], **({"segments": built.segments} if built.segments else {}))
        return (time.perf_counter() - started) * 1000 / drains


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000, help="predictions, all reviewed (default 20000)")
    parser.add_argument("--hours", type=int, default=48, help="hours of prediction time they span (default 48)")
    parser.add_argument("--batch", type=int, default=500, help="documents per transaction (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of off and on (default 3)")
    parser.add_argument("--fold-seconds", type=float, default=None,
                        help="segments.fold_seconds of the segmented mode (default: the setting's default)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "segments.json"))
    args = parser.parse_args(argv)
    if args.fold_seconds is not None:
        MODES["on"]["segments"]["fold_seconds"] = args.fold_seconds
    docs = documents(args.documents, args.hours)
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="segments-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            one_round(mongo.uri, Path(tmp), docs[:args.batch * 4], args.batch, 0)   # warm-up, not counted
            for run in range(1, args.rounds + 1):
                for mode, rates in one_round(mongo.uri, Path(tmp), docs, args.batch, run).items():
                    runs[mode].append(rates)
                    print(f"round {run} {mode}: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()), flush=True)
        finally:
            mongo.stop()
    for mode, rows in runs.items():   # the consumer's other work: the outbox drain (no MongoDB involved)
        for rates in rows:
            rates["drain_ms_per_hour"] = drain_ms(mode == "on")
    medians = {mode: {key: round(statistics.median(r[key] for r in rows)) for key in rows[0]}
               for mode, rows in runs.items()}
    ratios = {key: round(medians["on"][key] / medians["off"][key], 3) for key in medians["off"]}
    of_alone = {mode: round(statistics.median(r["predictions_per_second"] / r["predictions_writes_alone_per_second"]
                                              for r in rows), 3) for mode, rows in runs.items()}
    write_result(args.output, {"documents": args.documents, "hours": args.hours, "batch": args.batch,
                               "rounds": args.rounds, "runs": runs, "median": medians, "on_over_off": ratios,
                               "predictions_over_writes_alone": of_alone})
    print(f"median off: {medians['off']}\nmedian on:  {medians['on']}\non / off: {ratios}\n"
          f"predictions / their writes alone: {of_alone}\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
