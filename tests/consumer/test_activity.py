"""The consumer's INFO log: a summary a minute, not a line per batch."""

from __future__ import annotations

import logging
from collections import Counter

from consumer.activity import Activity, p95
from consumer.batch import BatchResult


def batch(**counts) -> BatchResult:
    return BatchResult("b", sum(counts.values()), Counter(counts), 1, 0, 0.01)


def test_batches_are_summed_into_one_line_a_minute(caplog):
    now = [0.0]
    activity = Activity(every=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="consumer.activity"):
        for second in range(0, 60, 2):
            now[0] = second
            activity.note(batch(claimed=3, corrected=1), lag=0.1 + second / 100)
        assert caplog.records == []
        now[0] = 60
        activity.error()
        activity.note(batch(claimed=2, rejected=1), lag=0.2)
    [line] = [r.getMessage() for r in caplog.records]
    assert line == ("last 60 s: 31 batches, 123 documents: 92 reviews counted, 30 corrected, 0 withdrawn, "
                    "1 set aside, lag p95 0.66 s, 1 errors")


def test_an_idle_minute_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="consumer.activity"):
        Activity().flush()
    assert caplog.records == []


def test_p95_is_the_nearest_rank():
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([0.5]) == 0.5
