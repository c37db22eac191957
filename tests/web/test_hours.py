"""Hour-precise ranges and series per local hour: per-hour metrics equal scikit-learn on the raw documents of
exactly those hours and the sum of the rollup periods in them, in zones with 60- and 30-minute periods;
summaries, classes and volume over an hour range; a 400 naming the parameter for every malformed or too
long hourly range."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from clara.rollups import Totals
from tests.support.inserts import count_inserts
from tests.web.conftest import UTC, expected_metrics, make_documents
from web.hours import MAX_HOURLY_DAYS

HOUR = dt.timedelta(hours=1)
START = dt.datetime(2024, 5, 1, 0, tzinfo=UTC)   # three days of documents from here


@pytest.fixture(params=["Europe/Madrid", "Asia/Kolkata"])
def web_config(request, make_config):
    return make_config(model={"timezone": request.param}, consumer={"batch_max_seconds": 0.05})


@pytest.fixture
def documents(mongo_client, web_collections, web_config, process) -> list[dict]:
    docs = make_documents(random.Random(1130), START, 72, 8, web_config.n_classes)
    web_collections.source.insert_many(docs)
    process()
    count_inserts(mongo_client, web_collections, web_config, docs)
    return docs


async def _get(client, path: str, **params) -> dict:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def _within(docs, start: dt.datetime, end: dt.datetime) -> list[dict]:
    return [doc for doc in docs if start <= doc["timestamp"].replace(tzinfo=UTC) < end]


def _series(body: dict, index: int) -> dict:
    return {"reviews": body["reviews"][index], "accuracy": body["accuracy"][index],
            **{average: {score: body[score][average][index] for score in ("precision", "recall", "f1")}
               for average in ("macro", "weighted")}}


def _expected(docs, n_classes: int) -> dict:
    found = expected_metrics(docs, n_classes)
    if not found["reviews"]:
        return {"reviews": 0, "accuracy": None, **{a: dict.fromkeys(("precision", "recall", "f1")) for a in
                                                    ("macro", "weighted")}}
    return {key: found[key] for key in ("reviews", "accuracy", "macro", "weighted")}


async def test_hourly_metrics_equal_sklearn_and_the_summed_periods(client, documents, web_collections, web_config):
    zone, n, period = web_config.model.zone, web_config.n_classes, web_config.model.rollup_period
    assert period == (dt.timedelta(minutes=30) if zone.key == "Asia/Kolkata" else HOUR)
    body = await _get(client, "/api/daily", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"})
    start = dt.datetime(2024, 5, 1, 19, tzinfo=zone).astimezone(UTC)
    assert body["by"] == "hour" and "days" not in body
    assert body["range"] == {"from": "2024-05-01T19:00", "to": "2024-05-02T19:00", "timezone": zone.key,
                                  "start": start.isoformat(), "end": (start + 24 * HOUR).isoformat()}
    assert body["hours"] == [(start + k * HOUR).isoformat() for k in range(24)]
    for index, label in enumerate(body["hours"]):
        hour = dt.datetime.fromisoformat(label)
        assert hour.astimezone(zone).minute == 0, label   # local hours, in Kolkata half past a UTC hour
        assert _series(body, index) == _expected(_within(documents, hour, hour + HOUR), n), label
        stored = list(web_collections.rollups.find({"_id": {"$gte": hour, "$lt": hour + HOUR}}))
        assert len(stored) == HOUR // period              # every period of the hour holds reviews
        assert body["reviews"][index] == Totals.of(stored).reviews, label

    summary = await _get(client, "/api/summary", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"})
    everything = _expected(_within(documents, start, start + 24 * HOUR), n)
    assert (summary["reviews"], summary["accuracy"], summary["averages"]["macro"], summary["averages"]["weighted"]) \
        == (everything["reviews"], everything["accuracy"], everything["macro"], everything["weighted"])
    day_docs = _within(documents, start, start + 24 * HOUR)
    assert summary["pending"] == sum("output_validated" not in doc for doc in day_docs)
    classes = await _get(client, "/api/classes", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"})
    assert classes["recall"] == expected_metrics(_within(documents, start, start + 24 * HOUR), n)["recall"]

    intervals = await _get(client, "/api/intervals", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"})
    assert [row["hour"] for row in intervals["hours"]] == body["hours"]
    assert [row["accuracy"]["value"] for row in intervals["hours"]] == body["accuracy"]


async def test_an_offset_names_the_same_hours_and_whole_days_can_be_read_per_hour(client, documents, web_config):
    zone = web_config.model.zone
    start = dt.datetime(2024, 5, 2, 6, tzinfo=zone)
    local = await _get(client, "/api/daily", **{"from": "2024-05-02T06:00", "to": "2024-05-02T12:00"})
    utc_start, utc_end = start.astimezone(UTC), (start + 6 * HOUR).astimezone(UTC)
    offset = await _get(client, "/api/daily", **{"from": utc_start.strftime("%Y-%m-%dT%H:%MZ"),
                                                 "to": utc_end.strftime("%Y-%m-%dT%H:%M+00:00")})
    assert offset == local and len(local["hours"]) == 6

    days = await _get(client, "/api/daily", **{"from": "2024-05-01", "to": "2024-05-02"})
    hours = await _get(client, "/api/daily", **{"from": "2024-05-01", "to": "2024-05-02", "by": "hour"})
    assert days["by"] == "day" and len(days["days"]) == 2 and len(hours["hours"]) == 48
    assert sum(hours["reviews"][:24]) == days["reviews"][0] and sum(hours["reviews"][24:]) == days["reviews"][1]
    volume = await _get(client, "/api/volume", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"})
    assert volume["by"] == "hour" and len(volume["periods"]) == 24
    assert volume["total"]["reviews"] == sum(
        (await _get(client, "/api/daily", **{"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"}))["reviews"])


async def test_a_review_written_is_in_the_next_hourly_answer(client, documents, web_collections, process, web_config):
    params = {"from": "2024-05-01T19:00", "to": "2024-05-02T19:00"}
    before = await _get(client, "/api/daily", **params)
    hour = dt.datetime.fromisoformat(before["hours"][3])
    web_collections.source.insert_one({"_id": 999_999, "filename": "late.jpg", "output_prediction": 1,
                                       "output_confidence": 0.9, "timestamp": hour + dt.timedelta(minutes=40),
                                       "output_validated": 1, "timestamp_validated": hour + 2 * HOUR})
    process()
    after = await _get(client, "/api/daily", **params)
    assert after["reviews"][3] == before["reviews"][3] + 1
    assert after["reviews"][:3] + after["reviews"][4:] == before["reviews"][:3] + before["reviews"][4:]


@pytest.mark.parametrize("params,parameter,fragment", [
    ({"from": "2024-05-01T19:30", "to": "2024-05-02T19:30"}, "from", "does not start a local hour"),
    ({"from": "2024-05-01T19:00", "to": "2024-05-02"}, "to", "is a date while the other end has a time"),
    ({"from": "2024-05-01T19:00"}, "to", "needs both from and to"),
    ({"from": "2024-05-02T19:00", "to": "2024-05-02T19:00"}, "to", "is not after from"),
    ({"from": "2024-05-01T00:00", "to": "2024-05-08T01:00"}, "to", f"at most {MAX_HOURLY_DAYS * 24}"),
    ({"from": "2024-05-01T25:00", "to": "2024-05-02T01:00"}, "from", "not a calendar time"),
    ({"from": "2024-05-01T01:00+25:00", "to": "2024-05-02T01:00"}, "from", "not a calendar time"),
    ({"from": "2024-05-01 19:00", "to": "2024-05-02T19:00"}, "from", "expected YYYY-MM-DD"),
    ({"from": "2024-05-01T19:00", "to": "2024-05-02T19:00", "by": "day"}, "by", "is shown per hour"),
    ({"from": "2024-05-01", "to": "2024-05-08", "by": "hour"}, "by", f"at most {MAX_HOURLY_DAYS} days"),
    ({"from": "2024-05-01", "to": "2024-05-02", "by": "minute"}, "by", "not a granularity"),
])
async def test_bad_hourly_ranges_are_400s_naming_the_parameter(client, params, parameter, fragment):
    for path in ("/api/daily", "/api/intervals", "/api/volume"):
        response = await client.get(path, params=params)
        assert response.status == 400, (path, await response.text())
        error = (await response.json())["error"]
        assert error["parameter"] == parameter and fragment in error["message"], (path, error)
    if "by" not in params:
        for path in ("/api/summary", "/api/confusion", "/api/training", "/api/health", "/api/label-shift"):
            response = await client.get(path, params=params)
            assert response.status == 400 and (await response.json())["error"]["parameter"] == parameter, path


@pytest.mark.parametrize("web_config", ["Europe/Madrid"], indirect=True)
async def test_a_local_time_the_clocks_skip_is_refused(client):
    response = await client.get("/api/daily", params={"from": "2024-03-31T02:00", "to": "2024-03-31T05:00"})
    assert response.status == 400
    assert (await response.json())["error"]["parameter"] == "from"
    autumn = await _get(client, "/api/daily", **{"from": "2024-10-27T00:00", "to": "2024-10-27T06:00"})
    assert len(autumn["hours"]) == 7   # the hour from 02:00 comes twice
