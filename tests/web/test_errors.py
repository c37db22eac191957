"""The one JSON error shape, pinned: every error, whatever its source, renders the same way."""

from __future__ import annotations

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from web.app import create_app
from web.errors import error_body


def test_error_body_shape_is_pinned():
    assert error_body(400, "'x' is not a date; expected YYYY-MM-DD", "from") == {
        "error": {"status": 400, "parameter": "from", "message": "'x' is not a date; expected YYYY-MM-DD"}}
    assert error_body(404, "Not Found") == {"error": {"status": 404, "parameter": None, "message": "Not Found"}}


async def test_bad_parameter_is_a_400_in_the_shape(client):
    response = await client.get("/api/summary", params={"from": "yesterday"})
    assert response.status == 400
    assert await response.json() == {"error": {"status": 400, "parameter": "from",
                                               "message": "'yesterday' is not a date; expected YYYY-MM-DD"}}


async def test_unknown_route_and_method_are_json_errors(client):
    response = await client.get("/api/nothing-here")
    assert response.status == 404
    assert await response.json() == {"error": {"status": 404, "parameter": None, "message": "Not Found"}}
    response = await client.post("/api/summary")
    assert response.status == 405
    assert (await response.json())["error"]["status"] == 405
    assert response.headers["Allow"] == "GET,HEAD"


@pytest.fixture
async def unreachable_client(aiohttp_client, make_config):
    config = make_config(mongodb={"server_selection_timeout_seconds": 0.2})
    config = type(config)(**{**config.__dict__, "mongodb": type(config.mongodb)(
        **{**config.mongodb.__dict__, "uri": "mongodb://127.0.0.1:9/?directConnection=true"})})
    return await aiohttp_client(create_app(config))


async def test_mongodb_down_is_a_503_in_the_shape(unreachable_client):
    response = await unreachable_client.get("/api/summary")
    assert response.status == 503
    body = await response.json()
    assert body["error"]["status"] == 503 and body["error"]["parameter"] is None
    assert ServerSelectionTimeoutError.__name__ in body["error"]["message"]
    response = await unreachable_client.get("/healthz")
    assert response.status == 503
