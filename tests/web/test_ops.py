"""/healthz, and optional access control on every route but /healthz (/metrics: test_metrics.py)."""

from __future__ import annotations

import base64

import pytest

from web.app import create_app

ROUTES = ("/", "/api/meta", "/api/summary", "/api/stream", "/api/openapi.json", "/metrics",
          "/static/js/main.js", "/vendor/chart.js/dist/chart.umd.min.js")


async def test_healthz_pings_mongodb(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "mongodb": "reachable"}


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
