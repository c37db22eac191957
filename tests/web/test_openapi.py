"""/api/openapi.json describes every route, and fuzzing the API from it never gets a 500."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from aiohttp import web

from web.app import create_app
from web.openapi import document

MAX_EXAMPLES = 25


async def test_every_route_is_described(client):
    described = set((await (await client.get("/api/openapi.json")).json())["paths"])
    routed = {route.resource.canonical for route in client.app.router.routes()
              if route.method == "GET" and not route.resource.canonical.startswith(("/static", "/vendor"))}
    assert routed - {"/"} == described


def test_document_is_json_serialisable_and_names_the_error_shape():
    spec = document()
    assert spec["components"]["schemas"]["Error"]["properties"]["error"]["required"] == ["status", "parameter",
                                                                                         "message"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_url(web_config, web_collections):
    """The app served from its own thread and event loop, for schemathesis's synchronous client."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(web_config))
    port = _free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="web-under-fuzz", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_fuzz_no_server_errors(live_url):
    """Every described operation but the endless stream, fuzzed: valid and invalid parameters alike."""
    schema = schemathesis.openapi.from_url(f"{live_url}/api/openapi.json")
    operations = [result.ok() for result in schema.exclude(path="/api/stream").get_all_operations()]
    # schemathesis leaves out the schema's own URL; everything else is fuzzed
    assert {op.path for op in operations} >= set(document()["paths"]) - {"/api/stream", "/api/openapi.json"}
    spec = document()["paths"]
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        if mode is GenerationMode.NEGATIVE and not spec[operation.path]["get"]["parameters"]:
            continue  # nothing to get wrong
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            case.call_and_validate(base_url=live_url, checks=[not_a_server_error, response_schema_conformance])

        fuzz()
