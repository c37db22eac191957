"""GET /metrics: Prometheus exposition through prometheus_client.

Three kinds of figures, each named by what it counts:

- **counters** that only grow, so `rate()` and `increase()` work: the consumer's own (batches, documents by
  outcome, reviews counted, profile deliveries per sink and webhook deliveries by outcome, worker errors),
  read from its telemetry document in MongoDB (clara.telemetry: a worker has no HTTP port), and this web
  process's requests;
- **histograms**: the consumer's batch durations and lag, this process's request latency per route;
- **gauges** over the current window (the last web.default_range_days days): reviews, pending, accuracy
  with its 95% Wilson interval, precision/recall/F1 by averaging, coverage, open alerts, backlog, lag; with
  segments.fields, the same window's figures per segment value (web.segment_metrics), within the cap.

Predictions and newly counted reviews by predicted class are counters from the same telemetry document:
the consumer adds a batch's counts after it commits (clara.telemetry).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from scipy.stats import binomtest

from clara import telemetry
from clara.config import Config
from web import keys, queries, reports, segment_metrics
from web.params import default_range, query

DOCUMENT_OUTCOMES = ("claimed", "corrected", "unreviewed", "rejected", "already_logged")
SEVERITIES = ("warning", "critical")
INTERVAL_LEVEL = 0.95


@web.middleware
async def count_requests(request: web.Request, handler) -> web.StreamResponse:
    """Count answered requests by route, method and status and time them (unmatched paths share one label)."""
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[keys.METRICS].observe(name, request.method, status, time.perf_counter() - started)


async def metrics(request: web.Request) -> web.Response:
    query(request, allowed=())
    app = request.app
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    days = default_range(config)
    now = dt.datetime.now(dt.timezone.utc)
    loop = asyncio.get_running_loop()
    by_day, pending, rejects, backlog, consumer, counters, alerts, segments, put_off = await asyncio.gather(
        app[keys.ROLLUP_CACHE].by_day(collections, days), queries.pending_reviews(collections, days),
        collections.rejects.count_documents({}), queries.outbox_backlog(collections),
        queries.consumer_state(collections, now), collections.state.find_one({"_id": telemetry.TELEMETRY_ID}),
        queries.open_alerts_by_severity(collections),
        loop.run_in_executor(None, segment_metrics.window_figures, app[keys.DRIFT_COLLECTIONS], config.segments,
                             *days.bounds) if config.segments.enabled else asyncio.sleep(0, []),
        queries.segments_pending(collections))
    summary = await loop.run_in_executor(None, reports.from_days, reports.summary, by_day, pending, days, config)
    hub = app[keys.HUB]
    figures = telemetry.read(counters)
    scraped = [*_window_families(config, summary, pending),
               *_state_families(consumer, backlog, rejects, alerts, len(hub.clients), hub.live, put_off),
               *_consumer_families(config, figures), *_prediction_families(config, figures),
               *segment_metrics.families(segments, config.web.default_range_days)]
    return web.Response(body=app[keys.METRICS].render(scraped), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _gauge(name: str, text: str, value: Any, labels: Mapping[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), _number(value))
    return family


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def wilson_interval(successes: int, trials: int, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy's binomtest); NaN without trials."""
    if trials <= 0:
        return math.nan, math.nan
    interval = binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def _window_families(config: Config, summary: Mapping[str, Any], pending: int) -> list[Metric]:
    window = f"the last {config.web.default_range_days} days"
    reviews, accuracy = summary["reviews"], summary["accuracy"]
    correct = round(accuracy * reviews) if accuracy is not None else 0
    low, high = wilson_interval(correct, reviews)
    interval = GaugeMetricFamily("clara_accuracy_interval",
                                 f"95% Wilson interval of accuracy over {window}, reviewed predictions",
                                 labels=["bound"])
    interval.add_metric(["lower"], low)
    interval.add_metric(["upper"], high)
    families = [
        _gauge("clara_reviews", f"Reviews of predictions made in {window}", reviews),
        _gauge("clara_pending_reviews", f"Predictions made in {window} not reviewed yet", pending),
        _gauge("clara_review_coverage", f"Share of the predictions made in {window} that are reviewed",
               reviews / (reviews + pending) if reviews + pending else None),
        _gauge("clara_rejected_without_class", f"Reviews in {window} that rejected the prediction without a class",
               summary["rejected_without_class"]),
        _gauge("clara_accuracy", f"Accuracy over {window}, reviewed predictions", accuracy),
        interval,
        _gauge("clara_mean_review_latency_seconds", f"Mean review latency over {window}",
               summary["mean_latency_seconds"]),
    ]
    for score in reports.SCORES:
        family = GaugeMetricFamily(f"clara_{score}", f"{score} over {window}, by averaging", labels=["average"])
        for average, value in summary["averages"].items():
            family.add_metric([average], _number(value[score]))
        families.append(family)
    return families


def _state_families(consumer: Mapping[str, Any], backlog: int, rejects: int, alerts: Mapping[str, int],
                    clients: int, live: bool, segments_pending: Mapping[str, Any] | None) -> list[Metric]:
    open_alerts = GaugeMetricFamily("clara_open_alerts", "Drift, performance and operational alerts open now",
                                    labels=["severity"])
    for severity in sorted(set(SEVERITIES) | set(alerts)):
        open_alerts.add_metric([severity], alerts.get(severity, 0))
    return [
        _gauge("clara_consumer_lag_seconds", "Consumer lag, as last reported by the consumer", consumer["lag_seconds"]),
        _gauge("clara_consumer_seconds_since_last_batch", "Seconds since the consumer's last batch",
               consumer["seconds_since_last_batch"]),
        _gauge("clara_outbox_backlog", "Profile entries waiting in the outbox", backlog),
        _gauge("clara_rejected_documents", "Source documents set aside as invalid", rejects),
        open_alerts,
        _gauge("clara_live_clients", "Connected live-update (SSE) clients", clients),
        _gauge("clara_rollups_followed", "1 while the web process follows the rollups' change stream", int(live)),
        *([] if segments_pending is None else [_gauge(
            "clara_segments_pending_batches", "Batches whose segment increments the consumer put off while behind: "
            "segment figures lack them until folded (the overall ones count them)", segments_pending["batches"])]),
    ]


def _counter(name: str, text: str, labels: list[str], samples: Iterable[tuple[list[str], float]]) -> Metric:
    family = CounterMetricFamily(name, text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _histogram(name: str, text: str, figures: Mapping[str, Any]) -> Metric:
    family = HistogramMetricFamily(name, text)
    family.add_metric([], [(floatToGoString(edge), n) for edge, n in figures["buckets"]], figures["sum"])
    return family


def _consumer_families(config: Config, counts: Mapping[str, Any]) -> list[Metric]:
    documents = {outcome: 0 for outcome in DOCUMENT_OUTCOMES} | counts["documents"]
    sinks = ({"local": {}} if config.profiles.local_store else {}) | counts["profiles"]
    return [
        _counter("clara_reviews_counted", "Reviews the consumer counted into the rollups for the first time "
                 "(corrections are counted apart)", [], [([], documents["claimed"])]),
        _counter("clara_consumer_batches", "Batches the consumer committed", [], [([], counts["batches"])]),
        _counter("clara_consumer_documents", "Documents in committed batches, by what happened to them (claimed: "
                 "newly counted, corrected, unreviewed: withdrawn, rejected: set aside, already_logged...)",
                 ["outcome"], [([outcome], n) for outcome, n in sorted(documents.items())]),
        _counter("clara_profile_deliveries", "Outbox entries handed to a profile sink, by sink and outcome "
                 "(failed: retried later; dead: refused for good)", ["sink", "outcome"],
                 [([sink, outcome], (figures or {}).get(outcome, 0)) for sink, figures in sorted(sinks.items())
                  for outcome in telemetry.OUTCOMES]),
        _counter("clara_webhook_deliveries", "Alert webhook deliveries tried, by outcome", ["outcome"],
                 [([outcome], n) for outcome, n in counts["webhooks"].items()]),
        _counter("clara_consumer_worker_errors", "Rounds of the consumer's delivery and alert workers that failed",
                 ["worker"], [([worker], n) for worker, n in sorted(counts["worker_errors"].items())]),
        _histogram("clara_consumer_batch_duration_seconds", "Time to commit one batch", counts["batch_seconds"]),
        _histogram("clara_consumer_batch_lag_seconds", "Review-to-commit lag of the consumer's live batches",
                   counts["lag_seconds"]),
    ]


def _prediction_families(config: Config, counts: Mapping[str, Any]) -> list[Metric]:
    """By predicted class, counters from the consumer's telemetry: every prediction counted at insert (the
    all-predictions population; a recount after lost history refills the rollups without adding here) and
    reviews newly counted (the reviewed population)."""
    classes = list(enumerate(config.model.classes))
    predictions, reviews = counts["by_class"]["predictions"], counts["by_class"]["reviews"]
    return [
        _counter("clara_predictions", "Predictions counted at insert (all predictions), by predicted class",
                 ["predicted_class"], [([name], predictions.get(str(i), 0)) for i, name in classes]),
        _counter("clara_predictions_bad", "Predictions counted at insert that break the record contract",
                 [], [([], predictions.get("bad", 0))]),
        _counter("clara_reviews_counted_by_class", "Reviews counted for the first time (reviewed predictions), "
                 "by predicted class", ["predicted_class"], [([name], reviews.get(str(i), 0)) for i, name in classes]),
    ]
