"""/metrics through prometheus_client: window gauges equal the API's numbers, the consumer's counters and
histograms come from its telemetry document and only grow, request counts and latency per route."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from clara import telemetry
from consumer.batch import BatchResult
from tests.web.conftest import UTC, make_documents
from web.metrics import wilson_interval


async def scrape(client) -> dict[tuple[str, tuple], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(await response.text()) for sample in family.samples}


def types_of(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


async def test_window_gauges_equal_the_api(client, web_collections, process, web_config):
    now = dt.datetime.now(UTC)
    web_collections.source.insert_many(make_documents(random.Random(1), now - dt.timedelta(hours=30), 24, 3,
                                                      web_config.n_classes))
    process()
    web_collections.state.update_one({"_id": "consumer"}, {"$set": {"lag_seconds": 0.5, "last_batch_at": now}},
                                     upsert=True)
    web_collections.alerts.insert_many([{"_id": "a", "status": "open", "severity": "critical"},
                                        {"_id": "b", "status": "resolved", "severity": "warning"}])
    summary = await (await client.get("/api/summary")).json()
    values = await scrape(client)
    assert values[("clara_accuracy", ())] == summary["accuracy"]
    assert values[("clara_f1", (("average", "weighted"),))] == summary["averages"]["weighted"]["f1"]
    assert values[("clara_reviews", ())] == summary["reviews"]
    assert values[("clara_pending_reviews", ())] == summary["pending"]
    assert values[("clara_review_coverage", ())] == summary["reviews"] / (summary["reviews"] + summary["pending"])
    low, high = wilson_interval(round(summary["accuracy"] * summary["reviews"]), summary["reviews"])
    assert values[("clara_accuracy_interval", (("bound", "lower"),))] == low < summary["accuracy"]
    assert values[("clara_accuracy_interval", (("bound", "upper"),))] == high > summary["accuracy"]
    assert values[("clara_consumer_lag_seconds", ())] == 0.5
    assert values[("clara_outbox_backlog", ())] == web_collections.outbox.count_documents({})
    assert values[("clara_open_alerts", (("severity", "critical"),))] == 1
    assert values[("clara_open_alerts", (("severity", "warning"),))] == 0
    assert values[("clara_http_requests_total", (("method", "GET"), ("route", "/api/summary"), ("status", "200")))] == 1
    assert values[("clara_http_request_duration_seconds_count", (("route", "/api/summary"),))] == 1


async def test_without_reviews_window_figures_are_nan_not_zero(client):
    values = await scrape(client)
    assert math.isnan(values[("clara_accuracy", ())]) and values[("clara_reviews", ())] == 0
    assert math.isnan(values[("clara_accuracy_interval", (("bound", "lower"),))])
    assert math.isnan(values[("clara_consumer_lag_seconds", ())])
    assert values[("clara_reviews_counted_total", ())] == 0  # counters exist from the start, at zero
    assert values[("clara_webhook_deliveries_total", (("outcome", "failed"),))] == 0


def batch(claimed: int, seconds: float, batch_id: str = "b", **counts: int) -> BatchResult:
    return BatchResult(batch_id, claimed + sum(counts.values()), Counter(claimed=claimed, **counts), 1, 1, seconds)


async def test_consumer_counters_come_from_its_telemetry_and_only_grow(client, web_collections):
    cols = web_collections
    cols.state.update_one({"_id": "consumer"}, {"$set": {"last_batch": {"id": "live"}, "lag_seconds": 0.3}},
                          upsert=True)
    telemetry.record_batch(cols, batch(40, 0.02, "live", rejected=2))
    telemetry.record_batch(cols, batch(10, 0.7, "catch-up", corrected=1))  # not the state's batch: no lag
    first = await scrape(client)
    assert first[("clara_reviews_counted_total", ())] == 50
    assert first[("clara_consumer_batches_total", ())] == 2
    assert first[("clara_consumer_documents_total", (("outcome", "rejected"),))] == 2
    assert first[("clara_consumer_documents_total", (("outcome", "corrected"),))] == 1
    duration = {labels: value for (name, labels), value in first.items()
                if name == "clara_consumer_batch_duration_seconds_bucket"}
    assert duration[(("le", "0.01"),)] == 0 and duration[(("le", "0.025"),)] == 1
    assert duration[(("le", "1.0"),)] == 2 and duration[(("le", "+Inf"),)] == 2
    assert first[("clara_consumer_batch_duration_seconds_sum", ())] == 0.72
    assert first[("clara_consumer_batch_lag_seconds_count", ())] == 1
    assert first[("clara_consumer_batch_lag_seconds_bucket", (("le", "0.5"),))] == 1

    telemetry.record_batch(cols, batch(5, 0.01))
    telemetry.record_profile_deliveries(cols, type("Drain", (), {"delivered": {"local": 3}, "failed": {"whylabs": 1},
                                                                 "dead": {}})())
    telemetry.record_webhook_deliveries(cols, type("Drain", (), {"delivered": 2, "failed": 1, "dead": 0})())
    telemetry.record_worker_error(cols, "alerts")
    second = await scrape(client)
    for key, value in first.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")) and key[0].startswith("clara_consumer"):
            assert second[key] >= value, key
    assert second[("clara_reviews_counted_total", ())] == 55
    assert second[("clara_profile_deliveries_total", (("outcome", "delivered"), ("sink", "local")))] == 3
    assert second[("clara_profile_deliveries_total", (("outcome", "failed"), ("sink", "whylabs")))] == 1
    assert second[("clara_webhook_deliveries_total", (("outcome", "delivered"),))] == 2
    assert second[("clara_consumer_worker_errors_total", (("worker", "alerts"),))] == 1
    text = await (await client.get("/metrics")).text()
    kinds = types_of(text)
    assert kinds["clara_reviews_counted"] == "counter" and kinds["clara_accuracy"] == "gauge"
    assert kinds["clara_consumer_batch_duration_seconds"] == "histogram"
    assert kinds["clara_http_request_duration_seconds"] == "histogram"


def test_wilson_interval_matches_the_textbook_formula():
    k, n, z = 8, 10, 1.959963984540054
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n)
    assert math.isclose(low, centre - half, rel_tol=1e-9) and math.isclose(high, centre + half, rel_tol=1e-9)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


async def test_predictions_and_reviews_by_class_are_counters_from_the_consumers_batches(
        client, web_collections, web_config, mongo_client):
    from bson import Timestamp

    from consumer.batch import commit_batch
    from consumer.predictions import Inserted
    from tests.support.documents import predictions

    docs = predictions(30, start=dt.datetime(2026, 4, 1, tzinfo=UTC), reviewed_fraction=0.4)
    docs.append(dict(docs[0], _id="bad", output_prediction=99))
    web_collections.source.insert_many(docs)
    reviewed = [doc["_id"] for doc in docs if "output_validated" in doc and doc["_id"] != "bad"]
    result = commit_batch(mongo_client, web_collections, web_config, reviewed, sinks=(),
                          inserted=[Inserted(doc, Timestamp(0, 0)) for doc in docs])
    telemetry.record_batch(web_collections, result)
    figures = await scrape(client)
    classes = web_config.model.classes
    by_class = Counter(classes[doc["output_prediction"]] for doc in docs if doc["_id"] != "bad")
    for name in classes:
        assert figures[("clara_predictions_total", (("predicted_class", name),))] == by_class[name]
    assert figures[("clara_predictions_bad_total", ())] == 1
    reviews = Counter(classes[doc["output_prediction"]] for doc in docs if doc["_id"] in reviewed)
    assert sum(figures[("clara_reviews_counted_by_class_total", (("predicted_class", n),))] for n in classes) \
        == len(reviewed) == sum(reviews.values())
    assert figures[("clara_reviews_counted_by_class_total", (("predicted_class", classes[docs[1]["output_prediction"]]),))] \
        == reviews[classes[docs[1]["output_prediction"]]]
