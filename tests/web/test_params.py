"""Query parameters: dates are local days in the configured zone; anything wrong is a 400 naming it."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.mark.parametrize("params,parameter,fragment", [
    ({"from": "2024-13-01"}, "from", "not a calendar date"),
    ({"to": "2024-02-30"}, "to", "not a calendar date"),
    ({"from": "01/02/2024"}, "from", "expected YYYY-MM-DD"),
    ({"from": "２０２４-01-01"}, "from", "expected YYYY-MM-DD"),
    ({"from": "2024-01-01T00:00"}, "to", "an hour-precise range needs both from and to"),
    ({"from": "2024-01-01 00:00"}, "from", "expected YYYY-MM-DD"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from", "outside 1970-01-01"),
    ({"from": "2024-03-10", "to": "2024-03-01"}, "to", "is before from"),
    ({"from": "2020-01-01", "to": "2024-01-01"}, "to", "at most 400 (web.max_range_days)"),
    ({"days": "7"}, "days", "unknown query parameter; expected one of: from, to"),
    ({"average": "macro"}, "average", "unknown query parameter"),
])
async def test_bad_parameters_are_400s_naming_the_parameter(client, params, parameter, fragment):
    for path in ("/api/summary", "/api/daily", "/api/classes", "/api/confusion", "/api/training", "/api/health"):
        response = await client.get(path, params=params)
        assert response.status == 400, path
        error = (await response.json())["error"]
        assert error["parameter"] == parameter and fragment in error["message"], (path, error)


async def test_repeated_parameter_is_refused(client):
    response = await client.get("/api/summary?from=2024-01-01&from=2024-01-02")
    assert response.status == 400
    assert (await response.json())["error"] == {"status": 400, "parameter": "from", "message": "given more than once"}


async def test_endpoints_without_parameters_refuse_any(client):
    for path in ("/api/meta", "/api/openapi.json", "/healthz", "/metrics", "/api/stream"):
        response = await client.get(path, params={"from": "2024-01-01"})
        assert response.status == 400, path
        assert (await response.json())["error"]["parameter"] == "from"


async def test_range_defaults_to_the_configured_recent_days_in_the_zone(client, web_config):
    body = await (await client.get("/api/summary")).json()
    today = dt.datetime.now(web_config.model.zone).date()
    assert body["range"]["to"] == today.isoformat()
    assert body["range"]["from"] == (today - dt.timedelta(days=6)).isoformat()
    only_to = await (await client.get("/api/summary", params={"to": "2024-03-31"})).json()
    assert (only_to["range"]["from"], only_to["range"]["to"]) == ("2024-03-25", "2024-03-31")


async def test_a_dst_day_covers_23_utc_hours(client):
    body = await (await client.get("/api/summary", params={"from": "2024-03-31", "to": "2024-03-31"})).json()
    assert body["range"]["start"] == "2024-03-30T23:00:00+00:00"
    assert body["range"]["end"] == "2024-03-31T22:00:00+00:00"
    body = await (await client.get("/api/summary", params={"from": "2024-10-27", "to": "2024-10-27"})).json()
    assert (body["range"]["start"], body["range"]["end"]) == ("2024-10-26T22:00:00+00:00", "2024-10-27T23:00:00+00:00")


async def test_longest_range_is_accepted(client):
    response = await client.get("/api/daily", params={"from": "2023-01-01", "to": "2024-02-04"})
    assert response.status == 200
    assert len((await response.json())["days"]) == 400


async def test_from_alone_ends_today_within_the_longest_range_never_before_from(client, web_config):
    today = dt.datetime.now(web_config.model.zone).date()
    cases = {(today - dt.timedelta(days=3)).isoformat(): today,
             "1970-01-01": dt.date(1970, 1, 1) + dt.timedelta(days=web_config.web.max_range_days - 1),
             "9000-01-01": dt.date(9000, 1, 1),
             "9998-12-31": dt.date(9998, 12, 31)}   # the last day allowed: its longest range ends the same day
    for first, last in cases.items():
        response = await client.get("/api/summary", params={"from": first})
        assert response.status == 200, await response.text()
        assert (await response.json())["range"]["to"] == last.isoformat(), first
