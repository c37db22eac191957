"""Every number the API returns equals scikit-learn on the raw documents, across DST changes."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from tests.web.conftest import UTC, expected_metrics, local_day, make_documents

SPRING = dt.date(2024, 3, 31)   # Europe/Madrid: 02:00 -> 03:00, a 23-hour day
AUTUMN = dt.date(2024, 10, 27)  # Europe/Madrid: 03:00 -> 02:00, a 25-hour day


@pytest.fixture
def documents(web_collections, web_config, process) -> list[dict]:
    rng = random.Random(20240331)
    n = web_config.n_classes
    docs = (make_documents(rng, dt.datetime(2024, 3, 29, 21, tzinfo=UTC), 96, 4, n)
            + make_documents(rng, dt.datetime(2024, 10, 25, 21, tzinfo=UTC), 96, 4, n, first_id=100_000))
    web_collections.source.insert_many(docs)
    process()
    return docs


def _in_days(docs, zone, first, last):
    return [doc for doc in docs if first <= local_day(doc, zone) <= last]


async def _get(client, path, **params):
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


RANGES = [(SPRING, SPRING), (AUTUMN, AUTUMN), (dt.date(2024, 3, 29), dt.date(2024, 4, 2)),
          (dt.date(2024, 3, 30), dt.date(2024, 10, 28))]


async def test_summary_and_classes_equal_scikit_learn(client, documents, web_config):
    for first, last in RANGES:
        await _check_summary_and_classes(client, documents, web_config, first, last)


async def _check_summary_and_classes(client, documents, web_config, first, last):
    zone = web_config.model.zone
    chosen = _in_days(documents, zone, first, last)
    expected = expected_metrics(chosen, web_config.n_classes)
    summary = await _get(client, "/api/summary", **{"from": first.isoformat(), "to": last.isoformat()})
    assert summary["reviews"] == expected["reviews"] > 0
    assert summary["accuracy"] == expected["accuracy"]
    assert summary["averages"] == {"macro": expected["macro"], "weighted": expected["weighted"]}
    assert summary["samples_by_class"] == expected["support"]
    assert summary["rejected_without_class"] == sum(doc.get("output_validated") is False for doc in chosen)
    assert summary["pending"] == sum("output_validated" not in doc for doc in chosen)
    classes = await _get(client, "/api/classes", **{"from": first.isoformat(), "to": last.isoformat()})
    for score in ("precision", "recall", "f1", "support"):
        assert classes[score] == expected[score], score
    reviewed = [doc for doc in chosen if "output_validated" in doc]
    assert classes["predicted"] == [sum(doc["output_prediction"] == c for doc in reviewed)
                                    for c in range(web_config.n_classes)]


async def test_daily_series_equal_scikit_learn_per_local_day(client, documents, web_config):
    zone = web_config.model.zone
    first, last = dt.date(2024, 3, 29), dt.date(2024, 4, 3)
    daily = await _get(client, "/api/daily", **{"from": first.isoformat(), "to": last.isoformat()})
    assert daily["days"] == [(first + dt.timedelta(days=n)).isoformat() for n in range(6)]
    for index, day in enumerate(daily["days"]):
        expected = expected_metrics(_in_days(documents, zone, *(dt.date.fromisoformat(day),) * 2),
                                    web_config.n_classes)
        assert daily["reviews"][index] == expected["reviews"]
        assert daily["accuracy"][index] == expected["accuracy"]
        for average in ("macro", "weighted"):
            for score in ("precision", "recall", "f1"):
                assert daily[score][average][index] == (expected[average][score] if expected["reviews"] else None)
    # 2024-04-03 has no predictions at all: a gap, not a zero.
    assert daily["reviews"][-1] == 0 and daily["accuracy"][-1] is None and daily["f1"]["macro"][-1] is None
    # The DST day holds 23 hours of data, its neighbours 24.
    assert daily["reviews"][2] < daily["reviews"][1]


async def test_confusion_matrix_equals_scikit_learn(client, documents, web_config):
    zone, n = web_config.model.zone, web_config.n_classes
    chosen = [doc for doc in _in_days(documents, zone, AUTUMN, AUTUMN) if "output_validated" in doc]
    confirmed = [doc for doc in chosen if doc["output_validated"] is not False]
    y_true = [doc["output_prediction"] if doc["output_validated"] is True else doc["output_validated"]
              for doc in confirmed]
    y_pred = [doc["output_prediction"] for doc in confirmed]
    expected = confusion_matrix(y_true, y_pred, labels=list(range(n)))
    body = await _get(client, "/api/confusion", **{"from": AUTUMN.isoformat(), "to": AUTUMN.isoformat()})
    assert body["matrix"] == expected.tolist()
    rows = expected.sum(axis=1)
    assert body["rates"] == [[float(c) / rows[i] for c in row] if rows[i] else [None] * n
                             for i, row in enumerate(expected.tolist())]
    assert body["rejected"] == [sum(doc["output_prediction"] == c and doc["output_validated"] is False
                                    for doc in chosen) for c in range(n)]
    assert np.isclose(sum(sum(r for r in row if r is not None) for row in body["rates"]),
                      sum(1 for row in rows if row))


async def test_training_data_and_health(client, documents, web_config, web_collections):
    web_collections.rejects.insert_many([
        {"_id": "a", "reason": "output_prediction: missing", "field": "output_prediction", "at": dt.datetime.now(UTC)},
        {"_id": "b", "reason": "output_prediction: missing", "field": "output_prediction", "at": dt.datetime.now(UTC)},
        {"_id": "c", "reason": "timestamp: expected a date, got str 'x'", "field": "timestamp",
         "at": dt.datetime.now(UTC)}])
    web_collections.state.update_one({"_id": "consumer"}, {"$set": {"lag_seconds": 0.25,
                                                                     "last_batch_at": dt.datetime.now(UTC)}},
                                     upsert=True)
    params = {"from": SPRING.isoformat(), "to": SPRING.isoformat()}
    training = await _get(client, "/api/training", **params)
    assert training["training_counts"] == list(web_config.model.training_counts)
    summary = await _get(client, "/api/summary", **params)
    assert training["predicted"] == summary["predicted_by_class"]
    health = await _get(client, "/api/health", **params)
    assert health["rejects"]["total"] == 3
    assert [(r["reason"], r["count"]) for r in health["rejects"]["by_reason"]] == [
        ("output_prediction: missing", 2), ("timestamp: expected a date, got str 'x'", 1)]
    assert health["consumer"]["lag_seconds"] == 0.25
    assert health["segments_pending"] is None   # no segments.fields: nothing can trail
    assert health["pending"] == summary["pending"]
    reviewed = [doc for doc in _in_days(documents, web_config.model.zone, SPRING, SPRING) if "output_validated" in doc]
    latencies = [(doc["timestamp_validated"] - doc["timestamp"]).total_seconds() for doc in reviewed]
    assert health["latency"]["count"] == len(latencies)
    assert health["latency"]["mean_seconds"] == pytest.approx(sum(latencies) / len(latencies), abs=1e-3)
    assert sum(b["count"] for b in health["latency"]["histogram"]) == len(latencies)


async def test_meta_names_classes_zone_and_default_range(client, web_config):
    meta = await _get(client, "/api/meta")
    assert meta["classes"] == list(web_config.model.classes)
    assert meta["colors"] == list(web_config.model.colors)
    today = dt.datetime.now(web_config.model.zone).date()
    assert meta["default_range"]["to"] == today.isoformat()
    assert meta["default_range"]["from"] == (today - dt.timedelta(days=web_config.web.default_range_days - 1)).isoformat()
