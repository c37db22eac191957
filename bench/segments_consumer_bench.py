"""The real consumer's throughput with and without segments, under bulk writes, alternating on one mongod.

Starts its own mongod (clara.embedded_mongo). Per round and per mode (`off`: the documents carry
model_version (3 values) and site (10 values) but no segments are configured; `on`: segments.fields = both,
the default segments.fold_seconds unless --fold-seconds) a fresh database and a fresh consumer
(`python -m consumer`, a subprocess, profiles to the local store). It first counts warm-up predictions,
reviewed at insert, one per model version and per site, and the bench waits until the consumer's workers
have done their first rounds (their profiles delivered, drift evaluated): their first round imports
whylogs, scipy and scikit-learn, seconds of CPU once per start, which would otherwise land on the first
phase at a moment that varies run to run, and a segment value is admitted once in a deployment's life (the
batch that admits one counts in its transaction, not ahead). What is measured is the consumer's steady
pace. Then, while it runs:

1. predictions: N predictions inserted by insert_many of --bulk (a model service's bulk import, prediction
   times over the last two hours), timed from the first insert until the prediction rollups count all N
   and, with segments, every field's segment rollups do too (the figures a user reads are complete; how
   long after the overall ones is printed as the segments' trail);
2. reviews: the same N reviewed by bulk_write of --bulk UpdateOne (a labelling tool's bulk save), timed
   the same way over the review rollups.

The modes alternate off, on, on, off, ... so that the machine's changing load falls on both alike. Prints the
median rate per mode, on / off of the medians, each round's on / off and their median, and the CPU each
phase took per 1000 documents in the consumer's follower process, its workers' process, mongod and this
process (the writer): on 2 cores shared by all of them, where the segments' cost goes, and a measure less
noisy than the rates. Writes bench/results/segments_consumer.json.

    .venv/bin/python -m bench.segments_consumer_bench [--documents 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pymongo import UpdateOne

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.consumer_bench import predictions, review_plan, stop_consumer  # noqa: E402
from bench.stats import write_result  # noqa: E402
from clara.config import config_from_mapping  # noqa: E402
from clara.db import Collections, connect, ensure_indexes  # noqa: E402
from clara.embedded_mongo import EmbeddedMongo  # noqa: E402
from drift.evaluate import DRIFT_STATE_ID  # noqa: E402
from tests.support.processes import start, write_config  # noqa: E402

FIELDS = ("model_version", "site")
PROCESSES = ("follower", "workers", "mongod", "writer")
RATES = ("predictions_per_second", "reviews_per_second")
KINDS = {"predictions": ("predictions", "segment_predictions"), "reviews": ("rollups", "segment_rollups")}


def overall_total(cols: Collections, kind: str) -> int:
    overall = getattr(cols, KINDS[kind][0])
    return sum(doc.get(kind, 0) for doc in overall.find({}, {kind: 1}))


def segment_totals(cols: Collections, kind: str) -> list[int]:
    """Each segment field's count of `kind`, summed over its values."""
    segments = getattr(cols, KINDS[kind][1])
    counted = []
    for field in FIELDS:
        pipeline = [{"$match": {"_id.field": field}}, {"$project": {"values": {"$objectToArray": "$values"}}},
                    {"$unwind": "$values"}, {"$group": {"_id": None, "n": {"$sum": f"$values.v.{kind}"}}}]
        counted.append(next(iter(segments.aggregate(pipeline)), {"n": 0})["n"])
    return counted


def wait_for(cols: Collections, kind: str, total: int, segmented: bool, consumer: subprocess.Popen,
             timeout: float) -> tuple[float, float]:
    """perf_counter times when the overall count of `kind` and then (with segments) every field's first
    reached `total`, polled every 20 ms: the segment totals only once the overall one is complete, so that
    polling them does not weigh on the segmented mode alone."""
    deadline = time.monotonic() + timeout
    counts = [lambda: [overall_total(cols, kind)]] + ([lambda: segment_totals(cols, kind)] if segmented else [])
    reached = []
    for count in counts:
        while True:
            counted = count()
            if min(counted) >= total:
                if max(counted) > total:
                    raise RuntimeError(f"{kind} over-counted: {counted}, expected {total}")
                break
            if consumer.poll() is not None:
                raise RuntimeError(f"the consumer exited with {consumer.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not reach {total} in {timeout:.0f} s: {counted}")
            time.sleep(0.02)
        reached.append(time.perf_counter())
    return reached[0], reached[-1]


class CpuMeter:
    """CPU seconds (user + system) of the consumer's follower process, its workers' process (and any other
    child), mongod and this process, from one reading to the next."""

    def __init__(self, consumer: subprocess.Popen, mongod_pid: int):
        follower = psutil.Process(consumer.pid)
        self.groups = {"follower": [follower], "workers": follower.children(recursive=True),
                       "mongod": [psutil.Process(mongod_pid)], "writer": [psutil.Process()]}
        self.last = self._read()

    def _read(self) -> dict[str, float]:
        return {name: sum(sum(process.cpu_times()[:2]) for process in processes)
                for name, processes in self.groups.items()}

    def lap(self) -> dict[str, float]:
        """CPU seconds per group since the previous lap (or the start)."""
        now = self._read()
        spent, self.last = {name: now[name] - self.last[name] for name in now}, now
        return spent


def wait_for_workers(cols: Collections, consumer: subprocess.Popen, timeout: float) -> None:
    """Until the consumer's workers have done a round each: drift evaluated, and the outbox empty (the warm-up
    review's entry, written with its count, delivered and so deleted)."""
    deadline = time.monotonic() + timeout
    while cols.state.find_one({"_id": DRIFT_STATE_ID, "evaluated_at": {"$exists": True}}) is None \
            or cols.outbox.find_one() is not None:
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with {consumer.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the consumer's workers did not finish a round in {timeout:.0f} s")
        time.sleep(0.05)


def one_run(uri: str, mongod_pid: int, tmp: Path, mode: str, n: int, bulk: int, fold_seconds: float | None,
            run: int, timeout: float) -> dict:
    raw = {"mongodb": {"database": f"segments_consumer_{run}_{mode}"},
           "profiles": {"local_store": True, "local_store_dir": str(tmp / f"profiles-{run}-{mode}")}}
    if mode == "on":
        raw["segments"] = {"fields": list(FIELDS)} | ({"fold_seconds": fold_seconds} if fold_seconds is not None
                                                      else {})
    config = config_from_mapping(raw, {"MONGODB_URI": uri}, source="bench")
    client = connect(config)
    cols = Collections.of(client, config)
    ensure_indexes(cols)
    docs = list(predictions(n, seed=run, segment_fields=True))
    consumer = start("consumer", write_config(tmp / f"config-{run}-{mode}.toml", raw), uri,
                     log_path=tmp / f"consumer-{run}-{mode}.log")
    try:
        segmented = mode == "on"
        warm_up = warm_up_docs(run)
        cols.source.insert_many(warm_up)   # the stream is open once they are counted
        wait_for(cols, "predictions", len(warm_up), segmented, consumer, timeout)
        wait_for(cols, "reviews", len(warm_up), segmented, consumer, timeout)
        wait_for_workers(cols, consumer, timeout)
        meter = CpuMeter(consumer, mongod_pid)
        started = time.perf_counter()
        for i in range(0, n, bulk):
            cols.source.insert_many(docs[i:i + bulk], ordered=False)
        overall, predicted = (at - started for at in wait_for(cols, "predictions", n + len(warm_up), segmented,
                                                               consumer, timeout))
        predictions_cpu = meter.lap()
        warm_ids = {doc["_id"] for doc in warm_up}
        plan = [(doc_id, truth) for doc_id, truth in review_plan(cols.source, seed=run) if doc_id not in warm_ids]
        started = time.perf_counter()
        for i in range(0, len(plan), bulk):
            now = dt.datetime.now(dt.timezone.utc)
            cols.source.bulk_write([UpdateOne({"_id": doc_id}, {"$set": {"output_validated": truth,
                                                                         "timestamp_validated": now}})
                                    for doc_id, truth in plan[i:i + bulk]], ordered=False)
        overall_reviewed, reviewed = (at - started for at in wait_for(cols, "reviews", n + len(warm_up), segmented,
                                                                       consumer, timeout))
        reviews_cpu = meter.lap()
    finally:
        stop_consumer(consumer)
    client.drop_database(config.mongodb.database)
    client.close()
    return {"predictions_per_second": n / predicted, "reviews_per_second": n / reviewed,
            "predictions_segment_trail_ms": 1000 * (predicted - overall),
            "reviews_segment_trail_ms": 1000 * (reviewed - overall_reviewed),
            **{f"{kind}_cpu_ms_per_1000_{name}": 1e6 * cpu[name] / n
               for kind, cpu in (("predictions", predictions_cpu), ("reviews", reviews_cpu)) for name in PROCESSES}}


def warm_up_docs(run: int) -> list[dict]:
    """One prediction per model version and per site, reviewed at insert (its predicted class)."""
    now, seen, chosen = dt.datetime.now(dt.timezone.utc), set(), []
    for doc in predictions(1000, seed=1000 + run, segment_fields=True):
        values = {(field, doc[field]) for field in FIELDS}
        if values - seen:
            seen |= values
            chosen.append(doc | {"output_validated": doc["output_prediction"], "timestamp_validated": now})
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000, help="predictions, all reviewed (default 20000)")
    parser.add_argument("--bulk", type=int, default=1000, help="documents per insert_many / bulk_write (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of off and on (default 3)")
    parser.add_argument("--fold-seconds", type=float, default=None,
                        help="segments.fold_seconds of the segmented mode (default: the setting's default)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the consumer (default 600)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "segments_consumer.json"))
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="segments-consumer-bench-") as tmp:
        mongo = EmbeddedMongo(Path(tmp) / "db").start()
        try:
            for run in range(1, args.rounds + 1):
                for mode in ("off", "on") if run % 2 else ("on", "off"):
                    rates = one_run(mongo.uri, mongo.process.pid, Path(tmp), mode, args.documents, args.bulk,
                                    args.fold_seconds, run, args.timeout)
                    runs[mode].append(rates)
                    print(f"round {run} {mode}: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()), flush=True)
        finally:
            mongo.stop()
    medians = {mode: {key: round(statistics.median(r[key] for r in rows), 1 if "_cpu_" in key else None)
                      for key in rows[0]} for mode, rows in runs.items()}
    ratios = {key: round(medians["on"][key] / medians["off"][key], 3) for key in RATES}
    # Each round's two runs are back to back: their ratio leaves out most of the machine's drift between rounds.
    per_round = {key: [round(on[key] / off[key], 3) for on, off in zip(runs["on"], runs["off"])] for key in RATES}
    paired = {key: round(statistics.median(values), 3) for key, values in per_round.items()}
    # CPU ms per 1000 documents, every process, per kind and mode (the sum of the per-process medians).
    cpu = {kind: {mode: round(sum(medians[mode][f"{kind}_cpu_ms_per_1000_{name}"] for name in PROCESSES), 1)
                  for mode in medians} for kind in KINDS}
    write_result(args.output, {"documents": args.documents, "bulk": args.bulk, "rounds": args.rounds,
                               "fold_seconds": args.fold_seconds, "runs": runs, "median": medians,
                               "on_over_off": ratios, "on_over_off_per_round": per_round,
                               "on_over_off_per_round_median": paired, "cpu_ms_per_1000": cpu})
    print(f"median off: {medians['off']}\nmedian on:  {medians['on']}\non / off: {ratios}\n"
          f"on / off per round: {per_round}\non / off, median of the rounds' ratios: {paired}")
    for kind, total in cpu.items():
        print(f"{kind}: CPU ms per 1000 documents, median off / on: " + ", ".join(
            f"{name} {medians['off'][f'{kind}_cpu_ms_per_1000_{name}']} / {medians['on'][f'{kind}_cpu_ms_per_1000_{name}']}"
            for name in PROCESSES) + f"; all {total['off']} / {total['on']} ({total['on'] / total['off']:.3f}x)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
