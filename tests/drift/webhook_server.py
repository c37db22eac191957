"""A local webhook receiver (aiohttp, 127.0.0.1, a free port) in a thread: fails on demand, records deliveries."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter

from aiohttp import web


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookServer:
    """Answers `fail_next` requests with 500, then 200; counts accepted requests per Idempotency-Key."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.fail_next = 0
        self.accepted: Counter[str] = Counter()
        self.bodies: dict[str, dict] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="down for maintenance")
        key = request.headers["Idempotency-Key"]
        with self._lock:
            self.accepted[key] += 1
            self.bodies[key] = body
        return web.json_response({"ok": True})

    def keys(self) -> list[str]:
        """The accepted Idempotency-Keys so far, safely from another thread."""
        with self._lock:
            return list(self.accepted)

    def start(self) -> WebhookServer:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="webhook-server", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the webhook server did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
