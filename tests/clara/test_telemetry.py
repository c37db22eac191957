"""The consumer's telemetry document: $inc only, histograms in fixed buckets, never an exception."""

from __future__ import annotations

import logging
import math
from collections import Counter

from pymongo import MongoClient

from clara import telemetry
from clara.db import Collections
from consumer.batch import BatchResult


def test_batches_add_up_and_histograms_are_cumulative_when_read(collections):
    for seconds in (0.004, 0.03, 0.03, 100.0):
        telemetry.record_batch(collections, BatchResult("x", 3, Counter(claimed=2, rejected=1), 1, 1, seconds))
    figures = telemetry.read(collections.state.find_one({"_id": telemetry.TELEMETRY_ID}))
    assert figures["batches"] == 4 and figures["documents"] == {"claimed": 8, "rejected": 4}
    buckets = dict(figures["batch_seconds"]["buckets"])
    assert buckets[0.01] == 1 and buckets[0.05] == 3 and buckets[60.0] == 3 and buckets[math.inf] == 4
    assert figures["batch_seconds"]["count"] == 4
    assert figures["lag_seconds"]["count"] == 0  # no state document named this batch


def test_an_empty_document_reads_as_zeros():
    figures = telemetry.read(None)
    assert figures["batches"] == 0 and figures["webhooks"] == {"delivered": 0, "failed": 0, "dead": 0}
    assert figures["worker_errors"] == {"outbox-delivery": 0, "alerts": 0}
    assert dict(figures["lag_seconds"]["buckets"])[math.inf] == 0


def test_a_failing_write_is_logged_not_raised(config, caplog):
    with MongoClient("mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=100) as client:
        cols = Collections.of(client, config)
        with caplog.at_level(logging.WARNING, logger="clara.telemetry"):
            telemetry.record_batch(cols, BatchResult("x", 1, Counter(claimed=1), 1, 0, 0.1))
            telemetry.record_worker_error(cols, "alerts")
    assert len([r for r in caplog.records if r.name == "clara.telemetry"]) == 2
