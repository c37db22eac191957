"""The consumer's own counters, kept in MongoDB for the web's /metrics (a worker has no HTTP port).

One document in the state collection, `{_id: "telemetry"}`, that only ever grows by `$inc`:

    {batches: n, documents: {"<outcome>": n}, by_class: {predictions: {"<class>"|"bad": n}, reviews: {"<class>": n}},
     batch_seconds: HISTOGRAM, lag_seconds: HISTOGRAM,
     profiles: {"<sink>": {"delivered": n, "failed": n, "dead": n}},
     webhooks: {"delivered": n, "failed": n, "dead": n}, worker_errors: {"<worker>": n}, updated_at: <date>}
    HISTOGRAM = {count: n, sum: seconds, buckets: {"<upper edge>": n}}   (not cumulative; "+Inf" last)

`documents` counts a batch's documents by what happened to them (consumer.batch's counts: claimed, i.e.
newly counted reviews, corrected, unreviewed, rejected, already_logged, pending, set_aside...). The
figures are operational, written after each batch outside its transaction: a write lost to a crash
undercounts by one batch, and a failing write is logged, never raised into the consumer's loop. Every
consumer of the deployment adds to the same document, so the web exposes counters that never decrease.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import math
from collections.abc import Mapping
from typing import Any

from pymongo.errors import PyMongoError

from clara.db import CONSUMER_STATE_ID, Collections

log = logging.getLogger(__name__)
TELEMETRY_ID = "telemetry"
OUTCOMES = ("delivered", "failed", "dead")
WORKERS = ("outbox-delivery", "alerts")  # consumer.main's PeriodicWorker names
# Upper edges (seconds) of the histograms' buckets.
BATCH_SECONDS_EDGES = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_SECONDS_EDGES = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
INF = "+Inf"


def bucket_key(edge: float | None) -> str:
    """A bucket's field name: its upper edge without '.', which MongoDB field names cannot hold."""
    return INF if edge is None else f"{edge:g}".replace(".", "_")


def _observe(inc: dict[str, Any], field: str, edges: tuple[float, ...], value: float) -> None:
    index = bisect.bisect_left(edges, value)
    inc[f"{field}.count"] = 1
    inc[f"{field}.sum"] = float(value)
    inc[f"{field}.buckets.{bucket_key(edges[index] if index < len(edges) else None)}"] = 1


def _add(cols: Collections, inc: Mapping[str, Any]) -> None:
    if not inc:
        return
    try:
        cols.state.update_one({"_id": TELEMETRY_ID},
                              {"$inc": dict(inc), "$currentDate": {"updated_at": True}}, upsert=True)
    except PyMongoError as exc:
        log.warning("could not update the consumer's telemetry (%s: %s); /metrics misses this round",
                    type(exc).__name__, exc)


def record_batch(cols: Collections, result: Any) -> None:
    """Count one committed batch (a consumer.batch.BatchResult): its documents by outcome, its duration and,
    when this batch reported one in the consumer's state document, its lag."""
    inc: dict[str, Any] = {"batches": 1}
    for outcome, n in result.counts.items():
        if n:
            inc[f"documents.{outcome}"] = int(n)
    for key, n in getattr(result, "by_class", {}).items():   # "predictions.<class>", "reviews.<class>"
        if n:
            inc[f"by_class.{key}"] = int(n)
    _observe(inc, "batch_seconds", BATCH_SECONDS_EDGES, result.duration_seconds)
    try:
        state = cols.state.find_one({"_id": CONSUMER_STATE_ID}, {"last_batch.id": 1, "lag_seconds": 1}) or {}
    except PyMongoError:
        state = {}
    lag = state.get("lag_seconds")
    if (state.get("last_batch") or {}).get("id") == result.batch_id and isinstance(lag, (int, float)):
        _observe(inc, "lag_seconds", LAG_SECONDS_EDGES, max(float(lag), 0.0))
    _add(cols, inc)


def record_profile_deliveries(cols: Collections, result: Any) -> None:
    """Count one outbox drain (a consumer.sinks.DrainResult): outbox entries per sink and outcome."""
    inc = {f"profiles.{sink}.{outcome}": int(n) for outcome in OUTCOMES
           for sink, n in (getattr(result, outcome, None) or {}).items() if n}
    _add(cols, inc)


def record_webhook_deliveries(cols: Collections, result: Any) -> None:
    """Count one webhook drain (a drift.webhooks.DrainResult): deliveries by outcome."""
    _add(cols, {f"webhooks.{outcome}": int(getattr(result, outcome)) for outcome in OUTCOMES
                if getattr(result, outcome, 0)})


def record_worker_error(cols: Collections, worker: str) -> None:
    """Count one failed round of a consumer worker (the outbox delivery or the alerts worker)."""
    _add(cols, {f"worker_errors.{worker}": 1})


def read(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The telemetry document as plain numbers, with every known field present (zeros when never written);
    histograms as {count, sum, buckets: [(upper edge, cumulative count), ..., (inf, count)]}."""
    doc = doc or {}

    def histogram(field: str, edges: tuple[float, ...]) -> dict[str, Any]:
        raw = doc.get(field) or {}
        buckets = raw.get("buckets") or {}
        cumulative, running = [], 0
        for edge in (*edges, None):
            running += int(buckets.get(bucket_key(edge), 0))
            cumulative.append((math.inf if edge is None else edge, running))
        return {"count": int(raw.get("count", 0)), "sum": float(raw.get("sum", 0.0)), "buckets": cumulative}

    updated = doc.get("updated_at")
    return {"batches": int(doc.get("batches", 0)),
            "documents": {str(k): int(v) for k, v in (doc.get("documents") or {}).items()},
            "by_class": {kind: {str(k): int(v) for k, v in ((doc.get("by_class") or {}).get(kind) or {}).items()}
                         for kind in ("predictions", "reviews")},
            "batch_seconds": histogram("batch_seconds", BATCH_SECONDS_EDGES),
            "lag_seconds": histogram("lag_seconds", LAG_SECONDS_EDGES),
            "profiles": {str(sink): {outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES}
                         for sink, counts in (doc.get("profiles") or {}).items()},
            "webhooks": {outcome: int((doc.get("webhooks") or {}).get(outcome, 0)) for outcome in OUTCOMES},
            "worker_errors": {worker: 0 for worker in WORKERS}
            | {str(k): int(v) for k, v in (doc.get("worker_errors") or {}).items()},
            "updated_at": updated if isinstance(updated, dt.datetime) else None}
