"""A pause in requests: work that only makes later requests faster waits for one, so it never slows the
requests being answered.

The segment warm-up (web.warm) decodes and sums thousands of segment rollup documents per value, a few
hundred milliseconds of CPU each at 1M reviews; run while requests arrive it took the interpreter from them
(bench/api_bench.py measured the unsegmented cold classes at 140 ms against 44 ms). Every request notes its
start and its end here (the middleware); `wait` returns once none was noted for `seconds`. A connected
dashboard's event stream is noted when it opens and when it closes, so it does not hold the work back for
as long as it stays open.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

POLL_SECONDS = 0.05


class Quiet:
    def __init__(self) -> None:
        self.last = -float("inf")   # time.monotonic() of the last request's start or end

    def note(self) -> None:
        self.last = time.monotonic()

    async def wait(self, seconds: float) -> None:
        """Return once no request has started or ended for `seconds`."""
        while (idle := time.monotonic() - self.last) < seconds:
            await asyncio.sleep(max(seconds - idle, POLL_SECONDS))


def note_requests(quiet: Quiet):
    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        quiet.note()
        try:
            return await handler(request)
        finally:
            quiet.note()
    return middleware
