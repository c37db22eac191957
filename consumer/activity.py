"""The consumer's log at INFO: one summary line a minute instead of a line per batch (those go to DEBUG).

Under light traffic batches close several times a second; a line each buries what matters. The summary
says what an operator asks first: how much was done, how far behind the consumer is, what went wrong.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

from consumer.batch import BatchResult

log = logging.getLogger("consumer.activity")
SUMMARY_SECONDS = 60.0


class Activity:
    """Tallies batches between summaries; `note` after each batch, `flush` to log the summary now."""

    def __init__(self, every: float = SUMMARY_SECONDS, clock=time.monotonic):
        self.every, self.clock = every, clock
        self._reset()

    def _reset(self) -> None:
        self.started = self.clock()
        self.batches = self.documents = 0
        self.counts: Counter = Counter()
        self.lags: list[float] = []
        self.errors = 0

    def note(self, result: BatchResult, lag: float | None = None) -> None:
        self.batches += 1
        self.documents += result.documents
        self.counts.update(result.counts)
        if lag is not None:
            self.lags.append(lag)
        if self.clock() - self.started >= self.every:
            self.flush()

    def error(self) -> None:
        self.errors += 1

    def flush(self) -> None:
        if self.batches or self.errors:
            counts = self.counts
            lag = f", lag p95 {p95(self.lags):.2f} s" if self.lags else ""
            log.info("last %.0f s: %d batches, %d documents: %d reviews counted, %d corrected, %d withdrawn, "
                     "%d set aside%s, %d errors", self.clock() - self.started, self.batches, self.documents,
                     counts["claimed"], counts["corrected"], counts["unreviewed"], counts["rejected"], lag,
                     self.errors, extra={"summary_batches": self.batches, "summary_counts": dict(counts),
                                         "summary_errors": self.errors})
        self._reset()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
