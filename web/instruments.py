"""This process's Prometheus registry: request metrics observed as requests are answered, plus the
families /metrics reads from MongoDB for one scrape (web.metrics)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric

# Upper edges (seconds) of the request latency histogram.
REQUEST_SECONDS_EDGES = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """This process's Prometheus registry: request metrics observed as requests are answered, and the
    families read from MongoDB for one scrape (set by `render`, which runs without awaiting in between)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("clara_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("clara_http_request_duration_seconds", "Time to answer an HTTP request, by route",
                                 ["route"], buckets=REQUEST_SECONDS_EDGES, registry=self.registry)
        self._scraped: list[Metric] = []
        self.registry.register(self)

    def collect(self) -> Iterable[Metric]:
        return list(self._scraped)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        if route != "/api/stream":  # an event stream lasts as long as its client stays
            self.latency.labels(route).observe(seconds)

    def render(self, scraped: list[Metric]) -> bytes:
        self._scraped = scraped
        try:
            return generate_latest(self.registry)
        finally:
            self._scraped = []
