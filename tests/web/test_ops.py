"""/healthz, /metrics in Prometheus text, and optional access control on every route but /healthz."""

from __future__ import annotations

import base64
import datetime as dt
import random

import pytest

from tests.web.conftest import UTC, make_documents
from web.app import create_app

ROUTES = ("/", "/api/meta", "/api/summary", "/api/stream", "/api/openapi.json", "/metrics",
          "/static/js/main.js", "/vendor/chart.js/dist/chart.umd.min.js")


async def test_healthz_pings_mongodb(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "mongodb": "reachable"}


def samples(text: str) -> dict[str, str]:
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")}


async def test_metrics_in_prometheus_text(client, web_collections, process, web_config):
    now = dt.datetime.now(UTC)
    web_collections.source.insert_many(make_documents(random.Random(1), now - dt.timedelta(hours=30), 24, 3,
                                                      web_config.n_classes))
    process()
    web_collections.state.update_one({"_id": "consumer"}, {"$set": {"lag_seconds": 0.5, "last_batch_at": now}},
                                     upsert=True)
    summary = await (await client.get("/api/summary")).json()
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await response.text()
    assert "# TYPE clara_accuracy gauge" in text and "# TYPE clara_http_requests_total counter" in text
    values = samples(text)
    assert float(values["clara_accuracy"]) == summary["accuracy"]
    assert float(values['clara_f1{average="weighted"}']) == summary["averages"]["weighted"]["f1"]
    assert int(values["clara_reviews"]) == summary["reviews"]
    assert int(values["clara_pending_reviews"]) == summary["pending"]
    assert float(values["clara_consumer_lag_seconds"]) == 0.5
    assert values["clara_outbox_backlog"] == str(web_collections.outbox.count_documents({}))
    assert values['clara_http_requests_total{route="/api/summary",method="GET",status="200"}'] == "1"


async def test_metrics_without_reviews_are_nan_not_zero(client):
    values = samples(await (await client.get("/metrics")).text())
    assert values["clara_accuracy"] == "NaN" and values["clara_reviews"] == "0"
    assert values["clara_consumer_lag_seconds"] == "NaN"


@pytest.fixture
async def guarded(aiohttp_client, make_config, web_collections):
    config = make_config()
    web = type(config.web)(**{**config.web.__dict__, "api_token": "s3cret", "basic_auth": "ana:pass word"})
    return await aiohttp_client(create_app(type(config)(**{**config.__dict__, "web": web})))


async def test_every_route_but_healthz_needs_credentials(guarded):
    assert (await guarded.get("/healthz")).status == 200
    basic = "Basic " + base64.b64encode(b"ana:pass word").decode()
    for path in ROUTES:
        response = await guarded.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert (await response.json())["error"]["status"] == 401
        for header in ("Bearer wrong", "Basic " + base64.b64encode(b"ana:nope").decode(), "Basic %%%"):
            assert (await guarded.get(path, headers={"Authorization": header})).status == 401, (path, header)
    for header in ("Bearer s3cret", basic):
        for path in ROUTES:
            if path == "/api/stream":
                continue
            assert (await guarded.get(path, headers={"Authorization": header})).status == 200, (path, header)
