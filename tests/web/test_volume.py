"""/api/volume: predictions per local day (per UTC hour for short ranges) split into reviewed / rejected /
pending, and the review coverage, equal to counts on the raw documents, across DST changes; today so far;
the error shape for bad parameters; live updates when a prediction is counted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random

import pytest

from clara.predictions import predictions_by_day
from clara.rollups import hour_of
from tests.web.conftest import UTC, local_day, make_documents
from tests.support.inserts import count_inserts
from tests.web.prediction_rollups import expected_volume, is_bad, utc_hour
from tests.web.test_sse import read_event, read_until, wait_live
from web import keys

SPRING = dt.date(2024, 3, 31)   # Europe/Madrid: a 23-hour day
AUTUMN = dt.date(2024, 10, 27)  # a 25-hour day


def bad_documents(start: dt.datetime, n_classes: int) -> list[dict]:
    """Documents that break the contract but carry a prediction time: counted as predictions, as bad."""
    base = {"filename": "bad.jpg", "output_confidence": 0.5}
    return [base | {"_id": 900_000, "output_prediction": n_classes + 3, "timestamp": start + dt.timedelta(hours=5)},
            base | {"_id": 900_001, "output_prediction": 1, "output_confidence": 1.5,
                    "timestamp": start + dt.timedelta(hours=30)},
            base | {"_id": 900_002, "output_prediction": 2, "output_validated": n_classes + 1,   # a bad review
                    "timestamp": start + dt.timedelta(hours=50), "timestamp_validated": start + dt.timedelta(hours=51)}]


@pytest.fixture
def documents(mongo_client, web_collections, web_config, process) -> list[dict]:
    rng = random.Random(1027)
    n = web_config.n_classes
    spring, autumn = dt.datetime(2024, 3, 29, 21, tzinfo=UTC), dt.datetime(2024, 10, 25, 21, tzinfo=UTC)
    docs = (make_documents(rng, spring, 96, 5, n) + make_documents(rng, autumn, 96, 5, n, first_id=100_000)
            + bad_documents(spring, n))
    web_collections.source.insert_many(docs)
    process()                                                  # reviews: the review rollups
    count_inserts(mongo_client, web_collections, web_config, docs)   # every prediction: the prediction rollups
    return docs


async def _get(client, **params):
    response = await client.get("/api/volume", params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def _expected(docs, n_classes) -> dict:
    counts = expected_volume(docs, n_classes)
    reviews = counts["reviewed"] + counts["rejected"]
    return {"predictions": counts["predictions"], "bad": counts["bad"], "reviewed": counts["reviewed"],
            "rejected": counts["rejected"], "pending": counts["pending"], "reviews": reviews,
            "coverage": reviews / (reviews + counts["pending"]) if reviews + counts["pending"] else None}


def _column(body, index) -> dict:
    return {name: body[name][index] for name in ("predictions", "bad", "reviewed", "rejected", "pending", "reviews",
                                                 "coverage")}


async def test_per_day_series_and_coverage_equal_the_raw_documents_across_dst(client, documents, web_config):
    zone, n = web_config.model.zone, web_config.n_classes
    first, last = dt.date(2024, 3, 28), dt.date(2024, 11, 2)
    body = await _get(client, **{"from": first.isoformat(), "to": last.isoformat()})
    assert body["by"] == "day"
    assert body["periods"][0] == first.isoformat() and body["periods"][-1] == last.isoformat()
    assert len(body["periods"]) == (last - first).days + 1
    checked = 0
    for index, label in enumerate(body["periods"]):
        day = dt.date.fromisoformat(label)
        chosen = [doc for doc in documents if local_day(doc, zone) == day]
        assert _column(body, index) == _expected(chosen, n), label
        checked += bool(chosen)
    assert checked == 10                           # the days that hold documents, DST days among them
    spring, autumn = body["periods"].index(SPRING.isoformat()), body["periods"].index(AUTUMN.isoformat())
    assert body["predictions"][spring] == 23 * 5 + 1 and body["bad"][spring] == 1   # 23 hours, and one bad one
    assert body["predictions"][autumn] == 25 * 5
    assert body["coverage"][0] is None             # no predictions: no coverage, never a zero
    assert body["total"] == _expected([doc for doc in documents if first <= local_day(doc, zone) <= last], n)
    assert body["recounting"] is False


async def test_per_hour_series_for_two_days_equal_the_raw_documents(client, documents, web_config):
    n = web_config.n_classes
    body = await _get(client, **{"from": "2024-03-30", "to": SPRING.isoformat()})
    assert body["by"] == "hour"
    start = dt.datetime.fromisoformat(body["range"]["start"])
    assert len(body["periods"]) == 24 + 23         # the spring day has 23 hours
    for index, label in enumerate(body["periods"]):
        hour = dt.datetime.fromisoformat(label)
        assert hour == start + dt.timedelta(hours=index)
        assert _column(body, index) == _expected([doc for doc in documents if utc_hour(doc) == hour], n), label
    per_day = await _get(client, **{"from": "2024-03-30", "to": SPRING.isoformat(), "by": "day"})
    assert per_day["by"] == "day" and per_day["total"] == body["total"]
    longer = {"from": "2024-03-29", "to": "2024-04-02"}
    assert (await _get(client, **longer))["by"] == "day"            # more than 2 days: per day by default
    hourly = await _get(client, **longer, by="hour")                 # ... per hour when asked
    assert len(hourly["periods"]) == 5 * 24 - 1 and hourly["total"] == (await _get(client, **longer))["total"]


async def test_the_prediction_rollups_read_are_the_stored_ones(client, documents, web_config, web_collections):
    """The web reads the prediction rollups (through its cache), not the raw documents: a change to a stored
    hour shows, and per-day sums equal clara.predictions.predictions_by_day over the stored hours."""
    zone = web_config.model.zone
    params = {"from": "2024-10-25", "to": "2024-10-29"}
    before = await _get(client, **params)
    hour = dt.datetime(2024, 10, 26, 10, tzinfo=UTC)
    web_collections.predictions.update_one({"_id": hour}, {"$inc": {"predictions": 7, "classes.0": 7},
                                                           "$set": {"updated_at": dt.datetime.now(UTC)}})
    after = await _get(client, **params)
    index = after["periods"].index(local_day({"timestamp": hour}, zone).isoformat())
    assert after["predictions"][index] == before["predictions"][index] + 7
    assert after["pending"][index] == before["pending"][index] + 7
    stored = predictions_by_day(web_collections.predictions.find(), zone)
    for label, count in zip(after["periods"], after["predictions"]):
        day = dt.date.fromisoformat(label)
        assert count == (stored[day].predictions if day in stored else 0)


async def test_today_so_far_and_no_values_after_now(client, mongo_client, web_collections, web_config, process):
    now = dt.datetime.now(UTC)
    zone, n = web_config.model.zone, web_config.n_classes
    today = now.astimezone(zone).date()
    start_of_today = dt.datetime.combine(today, dt.time(), zone).astimezone(UTC)
    rng = random.Random(7)
    docs = [doc for doc in make_documents(rng, start_of_today, 30, 4, n) if doc["timestamp"] <= now]
    web_collections.source.insert_many(docs)
    process()
    count_inserts(mongo_client, web_collections, web_config, docs)
    body = await _get(client, **{"from": today.isoformat(), "to": (today + dt.timedelta(days=1)).isoformat()})
    expected = _expected(docs, n)
    assert {name: body["today"][name] for name in expected} == expected
    assert body["today"]["day"] == today.isoformat()
    assert body["by"] == "hour"
    last = body["periods"].index(hour_of(now).isoformat())
    assert all(value is None for value in body["predictions"][last + 1:])      # the future: no values
    assert all(value is not None for value in body["predictions"][:last + 1])
    assert body["total"]["predictions"] == len(docs)
    per_day = await _get(client, **{"from": today.isoformat(), "to": (today + dt.timedelta(days=1)).isoformat(),
                                    "by": "day"})
    assert per_day["predictions"] == [len(docs), None]


@pytest.mark.parametrize("params, parameter, words", [
    ({"by": "week"}, "by", "not a granularity"),
    ({"by": "HOUR"}, "by", "expected one of: day, hour"),
    ({"by": "day", "limit": "3"}, "limit", "unknown query parameter"),
    ({"from": "2024-03-05", "to": "2024-03-01"}, "to", "before from"),
])
async def test_bad_parameters_get_the_error_shape(client, params, parameter, words):
    response = await client.get("/api/volume", params=params)
    assert response.status == 400
    body = await response.json()
    assert body["error"]["status"] == 400 and body["error"]["parameter"] == parameter
    assert words in body["error"]["message"]


async def test_a_counted_prediction_is_a_live_update(client, mongo_client, web_collections, web_config):
    await wait_live(client)
    now = dt.datetime.now(UTC)
    doc = {"_id": 42, "filename": "live.jpg", "output_prediction": 1, "output_confidence": 0.9, "timestamp": now}
    async with client.get("/api/stream") as response:
        assert (await read_event(response))["event"] == "status"
        await asyncio.to_thread(web_collections.source.insert_one, doc)
        await asyncio.to_thread(count_inserts, mongo_client, web_collections, web_config, [doc])
        update = await read_until(response, "update", timeout=3.0)
        assert json.loads(update["data"]) == {"hours": [hour_of(now).isoformat()]}
        assert update["id"] == client.app[keys.HUB].last_id
    body = await _get(client)
    assert body["today"]["predictions"] == 1 and body["today"]["pending"] == 1 and body["today"]["coverage"] == 0


async def test_training_mix_beside_all_and_reviewed_predictions(client, documents, web_config):
    zone, n = web_config.model.zone, web_config.n_classes
    first, last = dt.date(2024, 3, 29), dt.date(2024, 4, 2)
    response = await client.get("/api/training", params={"from": first.isoformat(), "to": last.isoformat()})
    body = await response.json()
    chosen = [doc for doc in documents if first <= local_day(doc, zone) <= last]
    valid = [doc for doc in chosen if not is_bad(doc, n)]
    reviewed = [doc for doc in valid if doc.get("output_validated") is not None]
    assert body["training_counts"] == list(web_config.model.training_counts)
    assert body["all_predicted"] == [sum(doc["output_prediction"] == c for doc in valid) for c in range(n)]
    assert body["all_predictions"] == len(chosen) and body["bad"] == len(chosen) - len(valid) == 3
    assert body["predicted"] == [sum(doc["output_prediction"] == c for doc in reviewed) for c in range(n)]
    truth = [doc["output_prediction"] if doc["output_validated"] is True else doc["output_validated"]
             for doc in reviewed if doc["output_validated"] is not False]
    assert body["reviewed_true"] == [truth.count(c) for c in range(n)]
    assert body["reviews"] == len(reviewed)
    assert body["rejected_without_class"] == sum(doc["output_validated"] is False for doc in reviewed)


class TestZonesWithHalfAndQuarterHourOffsets:
    """Days and hours stay exact where local midnight is not a UTC hour: rollup periods of 30 or 15 minutes."""

    @pytest.fixture(params=["Asia/Kolkata", "Asia/Kathmandu"])
    def web_config(self, request, make_config):
        return make_config(model={"timezone": request.param}, consumer={"batch_max_seconds": 0.05})

    async def test_per_day_and_per_local_hour_series_equal_the_raw_documents(
            self, client, mongo_client, web_collections, web_config, process):
        zone, n = web_config.model.zone, web_config.n_classes
        docs = make_documents(random.Random(11), dt.datetime(2024, 5, 1, 12, tzinfo=UTC), 60, 6, n)
        web_collections.source.insert_many(docs)
        process()
        count_inserts(mongo_client, web_collections, web_config, docs)
        daily = await _get(client, **{"from": "2024-05-01", "to": "2024-05-04"})
        assert daily["by"] == "day"
        for index, label in enumerate(daily["periods"]):
            chosen = [doc for doc in docs if local_day(doc, zone) == dt.date.fromisoformat(label)]
            assert _column(daily, index) == _expected(chosen, n), label
        hourly = await _get(client, **{"from": "2024-05-02", "to": "2024-05-03"})
        assert hourly["by"] == "hour" and len(hourly["periods"]) == 48
        for index, label in enumerate(hourly["periods"]):
            hour = dt.datetime.fromisoformat(label)
            assert hour.astimezone(zone).minute == 0   # local hours, though not UTC ones
            chosen = [doc for doc in docs if hour <= doc["timestamp"].replace(tzinfo=UTC) < hour + dt.timedelta(hours=1)]
            assert _column(hourly, index) == _expected(chosen, n), label
        assert hourly["total"] == _expected([doc for doc in docs if local_day(doc, zone) in
                                             (dt.date(2024, 5, 2), dt.date(2024, 5, 3))], n)
