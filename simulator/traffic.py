"""Live mode: predictions at a steady rate, and reviews written back after their delay.

Prediction i is due `i / rate` seconds after the start; that nominal offset (not the wall clock)
decides whether a drift is on, so a seed gives the same documents however the process is scheduled.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection

from simulator.connection import persist
from simulator.generator import PredictionStream, Settings

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
MAX_BATCH = 1000


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclasses.dataclass
class Stats:
    predictions: int = 0
    reviews: int = 0
    pending_reviews: int = 0   # scheduled but not yet due when the run ended


class LiveTraffic:
    """Writes `rate` predictions per second into `source` and their reviews when they fall due."""

    def __init__(self, source: Collection, settings: Settings, seed: int | str, rate: float, *,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], dt.datetime] = utcnow,
                 progress_every: float = 10.0):
        self.source, self.rate, self.clock, self.now = source, rate, clock, now
        self.stream = PredictionStream(settings, seed)
        self.progress_every = progress_every
        self.stats = Stats()
        self._reviews: list[tuple[float, int, Any, dict[str, Any]]] = []  # (due, index, _id, fields)

    def run(self, stop: threading.Event, duration: float | None = None) -> Stats:
        started = self.clock()
        deadline = None if duration is None else started + duration
        next_report = started + self.progress_every
        while not stop.is_set():
            now = self.clock()
            if deadline is not None and now >= deadline:
                break
            self._predict(now - started, stop)
            self._review(stop)
            if now >= next_report:
                log.info("%d predictions, %d reviews written; %d reviews to come",
                         self.stats.predictions, self.stats.reviews, len(self._reviews))
                next_report = now + self.progress_every
            wake = min(started + self.stats.predictions / self.rate, next_report,
                       self._reviews[0][0] if self._reviews else float("inf"),
                       float("inf") if deadline is None else deadline)
            stop.wait(max(0.0, wake - self.clock()))
        self.stats.pending_reviews = len(self._reviews)
        return self.stats

    def _predict(self, elapsed: float, stop: threading.Event) -> None:
        batch = []
        while len(batch) < MAX_BATCH and self.stats.predictions + len(batch) <= elapsed * self.rate:
            offset = (self.stats.predictions + len(batch)) / self.rate
            batch.append(self.stream.next(self.now(), offset))
        if not batch:
            return
        documents = [simulated.document for simulated in batch]
        if not persist(lambda: self.source.insert_many(documents, ordered=False), stop, "inserting predictions"):
            return
        written = self.clock()
        for simulated in batch:
            if simulated.review is not None:
                heapq.heappush(self._reviews, (written + simulated.review_delay, simulated.index,
                                               simulated.document["_id"], simulated.review))
        self.stats.predictions += len(batch)

    def _review(self, stop: threading.Event) -> None:
        now, due = self.clock(), []
        while self._reviews and self._reviews[0][0] <= now and len(due) < MAX_BATCH:
            due.append(heapq.heappop(self._reviews))
        if not due:
            return
        reviewed_at = self.now()
        updates = [UpdateOne({"_id": doc_id}, {"$set": fields | {"timestamp_validated": reviewed_at}})
                   for _, _, doc_id, fields in due]
        if not persist(lambda: self.source.bulk_write(updates, ordered=False), stop, "writing reviews"):
            self._reviews.extend(due)   # stopped before they landed: still to come
            heapq.heapify(self._reviews)
            return
        self.stats.reviews += len(due)
