"""/api/alerts, /api/alerts/{id} and /api/drift over alerts the real drift engine wrote; 400s and 404s in
the one error shape; an `alerts` event on the live stream soon after an alert opens."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from bson import ObjectId

from tests.web.alerts_history import (DAYS, DRIFT_ON, alert_sections, evaluate_during_drift, history_end, load,
                                     open_and_resolve, raise_floor)
from drift import queries as drift_queries
from tests.support.calls import noted_calls
from tests.web.test_sse import read_event, read_until, wait_live
from web.app import create_app
from web.drift_series import chart_series

DAY = dt.timedelta(days=1)


@pytest.fixture
def web_config(make_config):
    return make_config(**alert_sections(history_end()),
                       web={"sse_heartbeat_seconds": 0.5, "sse_max_updates_per_second": 10.0},
                       consumer={"batch_max_seconds": 0.05})


@pytest.fixture
def history(mongo_client, web_collections, web_config) -> dt.datetime:
    end = history_end()
    load(mongo_client, web_collections, web_config, end)
    return end


async def test_alerts_the_drift_engine_wrote(client, web_collections, web_config, history):
    during, after = open_and_resolve(web_collections, web_config, history)
    opened = [t for t in during.transitions if t.key == "accuracy:last_n"]
    assert [t.kind for t in opened] == ["opened"]
    assert any(t.alert_id == opened[0].alert_id and t.kind == "resolved" for t in after.transitions)
    floor = [t for t in raise_floor(web_collections, web_config, history).transitions if t.kind == "opened"]
    assert [t.key for t in floor] == ["accuracy:last_n"]
    first, last = (history - DAYS * DAY).date().isoformat(), history.date().isoformat()

    body = await (await client.get("/api/alerts", params={"from": first, "to": last})).json()
    assert body["open"][0]["id"] == floor[0].alert_id  # newest first
    assert {a["id"] for a in body["open"]} == {a["_id"] for a in web_collections.alerts.find({"status": "open"})}
    current = body["open"][0]
    assert (current["status"], current["severity"], current["type"]) == ("open", "critical", "performance")
    assert current["threshold"]["floor"] == 0.97 and current["message"].startswith("accuracy 0.")
    assert "below the floor 0.97" in current["message"]
    assert current["window"]["kind"] == "last_n" and current["statistic"]["name"] == "accuracy"
    assert "deliveries" not in current and "transitions" not in current
    resolved_ids = {a["id"] for a in body["past"]}
    assert opened[0].alert_id in resolved_ids and {a["status"] for a in body["past"]} == {"resolved"}
    stored = web_collections.alerts.find_one({"_id": opened[0].alert_id})
    past = next(a for a in body["past"] if a["id"] == opened[0].alert_id)
    assert past["message"] == stored["message"] and past["resolved_at"] == stored["resolved_at"].isoformat()
    assert body["range"]["from"] == first and body["limit"] == 100

    only_open = await (await client.get("/api/alerts", params={"limit": "0"})).json()
    assert only_open["past"] == [] and only_open["open"] == body["open"]
    before = await (await client.get("/api/alerts", params={"from": "2020-01-01", "to": "2020-01-31"})).json()
    assert before["past"] == [] and before["open"] == body["open"]  # open alerts whatever the range

    detail = await (await client.get(f"/api/alerts/{opened[0].alert_id}")).json()
    assert [t["kind"] for t in detail["transitions"]] == ["opened", "resolved"]
    assert detail["status"] == "resolved" and detail["id"] == opened[0].alert_id

    drift = await (await client.get("/api/drift", params={"from": first, "to": last})).json()
    assert drift["evaluated_at"] == (history + dt.timedelta(minutes=5)).isoformat()
    assert any(f["key"] == "accuracy:last_n" and f["firing"] for f in drift["findings"])
    assert drift["days"][0] == first and drift["days"][-1] == last and len(drift["days"]) == DAYS + 1
    accuracy = next(s for s in drift["series"] if s["key"] == "accuracy:day")
    assert accuracy["values"][-1] is None and None not in accuracy["values"][:-1]  # today: no reviews, a gap
    assert accuracy["firing"][DRIFT_ON] is True and accuracy["firing"][1] is False
    assert all(line < value for line, value in zip(accuracy["threshold"][:2], accuracy["values"][:2]))
    prediction = next(s for s in drift["series"] if s["key"] == "prediction_drift:day")
    assert prediction["threshold"] == [web_config.drift.class_mix_min_distance] * (DAYS + 1)


async def test_the_day_checks_are_kept_until_a_rollup_changes(client, web_collections, web_config, history,
                                                               monkeypatch):
    """/api/drift's day checks are a function of the rollups: computed once while the change fence sees none of
    them change, and again (with the change in them) after a review rollup is written."""
    computed = noted_calls(monkeypatch, drift_queries, "daily_statistics", lambda cols, config, first, last: first)
    params = {"from": (history - DAYS * DAY).date().isoformat(), "to": history.date().isoformat()}
    first = await (await client.get("/api/drift", params=params)).json()
    assert await (await client.get("/api/drift", params=params)).json() == first and len(computed) == 1
    day = dt.datetime.fromisoformat(first["days"][1]).replace(tzinfo=web_config.model.zone)
    hour = web_collections.rollups.find_one({"_id": {"$gte": day, "$lt": day + DAY}})["_id"]
    web_collections.rollups.update_one({"_id": hour}, {"$inc": {"reviews": 400, "cells.0_1": 400}})
    after = await (await client.get("/api/drift", params=params)).json()
    accuracy = [next(s for s in body["series"] if s["key"] == "accuracy:day")["values"][1] for body in (first, after)]
    assert len(computed) == 2 and accuracy[1] < accuracy[0]


def test_chart_series_spreads_points_over_the_range(web_config):
    days = [dt.date(2025, 3, 1) + n * DAY for n in range(3)]
    daily = {"days": ["2025-03-02"], "series": {
        "accuracy:day": [{"day": "2025-03-02", "value": 0.8, "p_value": 0.5, "firing": False,
                          "reference_value": 0.9}],
        "backlog:pending": [{"day": "2025-03-02", "value": 3, "p_value": None, "firing": False}]}}
    [series] = chart_series(daily, days, web_config)
    assert series["values"] == [None, 0.8, None] and series["firing"] == [None, False, None]
    assert series["threshold"] == [None, pytest.approx(0.9 - web_config.drift.accuracy_min_drop), None]
    assert (series["detector"], series["subject"], series["statistic"]) == ("accuracy", "day", "accuracy")


@pytest.mark.parametrize("params,parameter,fragment", [
    ({"limit": "ten"}, "limit", "not a whole number"),
    ({"limit": "-1"}, "limit", "not a whole number"),
    ({"limit": "1001"}, "limit", "outside 0..1000"),
    ({"from": "2024-02-30"}, "from", "not a calendar date"),
    ({"from": "2024-03-10", "to": "2024-03-01"}, "to", "is before from"),
    ({"status": "open"}, "status", "unknown query parameter; expected one of: from, to, limit"),
])
async def test_bad_alerts_parameters_are_400s_naming_them(client, params, parameter, fragment):
    response = await client.get("/api/alerts", params=params)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["parameter"] == parameter and fragment in error["message"]


async def test_drift_refuses_what_it_does_not_take(client):
    response = await client.get("/api/drift", params={"limit": "5"})
    assert response.status == 400 and (await response.json())["error"]["parameter"] == "limit"
    response = await client.get("/api/drift", params={"from": "yesterday"})
    assert (await response.json())["error"]["parameter"] == "from"
    response = await client.get("/api/drift", params={"segment": "site:north"})   # no segment fields configured
    assert response.status == 400 and (await response.json())["error"]["parameter"] == "segment"


@pytest.mark.parametrize("segment, fragment", [("site", "is not field:value"), ("lens:x", "is not a segment field"),
                                               ("site:" + "x" * 101, "at most 100")])
async def test_drift_refuses_a_bad_segment_naming_it(aiohttp_client, make_config, segment, fragment):
    client = await aiohttp_client(create_app(make_config(segments={"fields": ["site"]})))
    response = await client.get("/api/drift", params={"segment": segment})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["parameter"] == "segment" and fragment in error["message"]
    body = await (await client.get("/api/drift", params={"segment": "site:never"})).json()
    assert body["segment"] == {"field": "site", "value": "never"} and body["findings"] == body["series"] == []


async def test_unknown_alert_is_a_404_and_a_malformed_id_a_400(client):
    unknown = str(ObjectId())
    response = await client.get(f"/api/alerts/{unknown}")
    assert response.status == 404
    assert await response.json() == {"error": {"status": 404, "parameter": None, "message": f"no alert {unknown}"}}
    response = await client.get("/api/alerts/not-an-id")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["parameter"] == "id" and "24 hexadecimal digits" in error["message"]
    response = await client.get(f"/api/alerts/{unknown}", params={"full": "1"})
    assert response.status == 400 and (await response.json())["error"]["parameter"] == "full"


async def test_an_opened_alert_reaches_the_stream(client, web_collections, web_config, history):
    await wait_live(client)
    async with client.get("/api/stream") as response:
        await read_event(response)  # status
        during = await asyncio.to_thread(evaluate_during_drift, web_collections, web_config, history)
        opened = {t.alert_id for t in during.transitions if t.kind == "opened"}
        assert "accuracy:last_n" in {t.key for t in during.transitions}
        seen: set[str] = set()
        async with asyncio.timeout(2.0):  # the alerts were opened by the time the evaluation returned
            while not opened <= seen:
                event = await read_until(response, "alerts")
                seen.update(json.loads(event["data"])["ids"] or [])
