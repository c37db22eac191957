"""web.quiet: the segment warm-up's wait for a pause in requests, through real HTTP requests."""

from __future__ import annotations

import asyncio

from aiohttp import web

from web.quiet import Quiet, note_requests


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_a_process_that_was_never_asked_anything_is_quiet_at_once():
    await asyncio.wait_for(Quiet().wait(0.25), 0.1)


async def test_the_wait_lasts_while_requests_keep_coming_and_ends_after_a_pause(aiohttp_client):
    quiet = Quiet()
    app = web.Application(middlewares=[note_requests(quiet)])
    app.router.add_get("/", _ok)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 200
    waiting = asyncio.create_task(quiet.wait(0.3))
    for _ in range(10):   # a request every 0.1 s for a second: never a pause of 0.3 s
        assert (await client.get("/")).status == 200
        await asyncio.sleep(0.1)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 1.0)


async def test_a_request_that_fails_still_ends_the_busy_time(aiohttp_client):
    async def fails(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text="no")

    quiet = Quiet()
    app = web.Application(middlewares=[note_requests(quiet)])
    app.router.add_get("/", fails)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 400
    ended = quiet.last
    await asyncio.wait_for(quiet.wait(0.2), 0.5)
    assert quiet.last == ended
