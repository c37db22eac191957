"""Operations endpoints: /healthz (is MongoDB reachable?), /metrics (Prometheus text), request counts."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

import pymongo
from aiohttp import web
from pymongo.errors import PyMongoError

from web import keys, queries, reports
from web.errors import error_response
from web.params import default_range, query

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A health check must answer promptly: a load balancer would rather hear "down" than wait for
# the client's full server-selection timeout.
HEALTHZ_TIMEOUT_SECONDS = 2.0


@web.middleware
async def count_requests(request: web.Request, handler) -> web.StreamResponse:
    """Count answered requests by route, method and status (unmatched paths share one label)."""
    status = 500
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
        request.app[keys.REQUESTS][(name, request.method, status)] += 1


async def healthz(request: web.Request) -> web.Response:
    query(request, allowed=())
    try:
        with pymongo.timeout(HEALTHZ_TIMEOUT_SECONDS):
            await queries.ping(request.app[keys.COLLECTIONS])
    except PyMongoError as exc:
        return error_response(503, f"MongoDB is unreachable: {type(exc).__name__}")
    return web.json_response({"status": "ok", "mongodb": "reachable"})


async def metrics(request: web.Request) -> web.Response:
    query(request, allowed=())
    app = request.app
    config, collections = app[keys.CONFIG], app[keys.COLLECTIONS]
    days = default_range(config)
    by_day, pending, rejects, backlog, consumer = await asyncio.gather(
        app[keys.ROLLUP_CACHE].by_day(collections, days), queries.pending_reviews(collections, days),
        collections.rejects.count_documents({}), queries.outbox_backlog(collections),
        queries.consumer_state(collections, dt.datetime.now(dt.timezone.utc)))
    summary = await asyncio.get_running_loop().run_in_executor(
        None, reports.from_days, reports.summary, by_day, pending, days, config)
    window = f"the last {config.web.default_range_days} days"
    lines = Exposition()
    lines.gauge("clara_reviews", f"Reviews of predictions made in {window}", summary["reviews"])
    lines.gauge("clara_pending_reviews", f"Predictions made in {window} not reviewed yet", pending)
    lines.gauge("clara_rejected_without_class", f"Reviews in {window} that rejected the prediction without a class",
                summary["rejected_without_class"])
    lines.gauge("clara_accuracy", f"Accuracy over {window}", summary["accuracy"])
    for score in reports.SCORES:
        lines.gauge(f"clara_{score}", f"{score} over {window}, by averaging",
                    *[(value[score], {"average": average}) for average, value in summary["averages"].items()])
    lines.gauge("clara_mean_review_latency_seconds", f"Mean review latency over {window}",
                summary["mean_latency_seconds"])
    lines.gauge("clara_consumer_lag_seconds", "Consumer lag, as last reported by the consumer", consumer["lag_seconds"])
    lines.gauge("clara_consumer_seconds_since_last_batch", "Seconds since the consumer's last batch",
                consumer["seconds_since_last_batch"])
    lines.gauge("clara_outbox_backlog", "Profiles waiting in the outbox", backlog)
    lines.gauge("clara_rejected_documents", "Source documents set aside as invalid", rejects)
    lines.gauge("clara_live_clients", "Connected live-update (SSE) clients", len(app[keys.HUB].clients))
    lines.gauge("clara_rollups_followed", "1 while the web process follows the rollups' change stream",
                int(app[keys.HUB].live))
    lines.counter("clara_http_requests_total", "HTTP requests answered, by route, method and status",
                  *[(n, {"route": route, "method": method, "status": str(status)})
                    for (route, method, status), n in sorted(app[keys.REQUESTS].items())])
    return web.Response(body=lines.text().encode(), headers={"Content-Type": PROMETHEUS_TYPE})


class Exposition:
    """Prometheus text exposition format, version 0.0.4."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def gauge(self, name: str, help_text: str, *samples) -> None:
        self._family(name, "gauge", help_text, samples)

    def counter(self, name: str, help_text: str, *samples) -> None:
        self._family(name, "counter", help_text, samples)

    def _family(self, name: str, kind: str, help_text: str, samples) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for sample in samples:
            value, labels = sample if isinstance(sample, tuple) else (sample, {})
            rendered = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {_number(value)}" if rendered else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(int(value))
