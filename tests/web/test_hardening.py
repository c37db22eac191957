"""What every response carries and what the server refuses: security headers, exactly the page's vendor
files, over-long request lines and headers in the JSON error shape, and a time limit on API requests."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time

import pytest
from aiohttp import web as aiohttp_web

from web import assets, server
from web.app import create_app
from web.routes import STATIC
from web.security import SECURITY_HEADERS

PATHS = ("/", "/static/js/main.js", "/vendor/chart.js/dist/chart.umd.min.js", "/api/meta", "/api/summary",
         "/api/openapi.json", "/healthz", "/metrics", "/api/nothing", "/api/summary?from=x")


async def test_every_response_carries_the_security_headers(client):
    for path in PATHS:
        response = await client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    async with client.get("/api/stream") as stream:  # the event stream too, prepared by its handler
        assert stream.headers["Content-Security-Policy"] == csp


async def test_vendor_serves_exactly_the_files_the_page_loads(client):
    page = (STATIC / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="/vendor/([^"]+)"', page))
    assert loaded == set(assets.vendor_files())
    for name in loaded:
        response = await client.get(f"/vendor/{name}")
        assert response.status == 200 and response.content_type in ("application/javascript", "text/javascript")
    for path in ("/vendor/.package-lock.json", "/vendor/chart.js/package.json", "/vendor/chart.js/dist/chart.js",
                 "/vendor/@kurkle/color/dist/color.min.js", "/vendor/", "/vendor/../package.json"):
        response = await client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"]["status"] == 404


@pytest.fixture
async def served(web_config, web_collections):
    """The app behind web.server's runner (as `python -m web` serves it) on a free loopback port."""
    runner = server.AppRunner(create_app(web_config))
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await aiohttp_web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def raw_request(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n") if line)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize("head, status", [
    (b"GET /api/summary?from=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET /api/meta HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/meta HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", 400),
])
async def test_requests_aiohttp_refuses_get_the_json_error_shape_and_one_warning(served, head, status, caplog):
    caplog.set_level(logging.WARNING)
    got, headers, body = await raw_request(served, head)
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    error = json.loads(body)["error"]
    assert error["status"] == status and error["parameter"] is None and error["message"]
    refused = [r for r in caplog.records if r.name == "web.server"]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING and refused[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
async def silent_mongodb():
    """A server that accepts connections and never answers: MongoDB at its slowest."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        listener.close()


async def test_api_requests_answer_503_within_the_time_limit(aiohttp_client, make_config, silent_mongodb):
    config = make_config(web={"api_timeout_seconds": 0.5}, mongodb={"server_selection_timeout_seconds": 30.0})
    config = type(config)(**{**config.__dict__, "mongodb": type(config.mongodb)(
        **{**config.mongodb.__dict__, "uri": f"mongodb://127.0.0.1:{silent_mongodb}/?directConnection=true"})})
    client = await aiohttp_client(create_app(config))
    for path in ("/api/summary", "/api/health", "/api/alerts"):
        started = time.monotonic()
        response = await client.get(path)
        assert time.monotonic() - started < 3, path
        assert response.status == 503
        assert await response.json() == {"error": {
            "status": 503, "parameter": None,
            "message": "MongoDB did not answer within 0.5 s (web.api_timeout_seconds)"}}
    assert (await client.get("/api/meta")).status == 200  # what needs no database is unaffected
