"""A local stand-in for the part of the WhyLabs API that whylogs 1.6.4's WhyLabsWriter uses.

The writer (through whylabs-client 0.6.16) calls `POST /v1/log/async` with the API key in `X-API-Key`,
the dataset id in `X-WHYLABS-RESOURCE` and `{"datasetTimestamp": <epoch ms>, "segmentTags": []}`; the
answer's `uploadUrl` gets the profile bytes by `PUT`. The older `POST /v0/organizations/{org}/log/async/
{dataset}` (named in DESIGN.md) is answered the same way. The server runs its own event loop in a
background thread, records every profile that arrived, and fails on demand: an HTTP status for the next
N requests (optionally with Retry-After), a hang past the client's timeout, refused connections, or an
upload that is stored but whose answer is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Literal

from aiohttp import web

Phase = Literal["log", "upload", "any"]


@dataclasses.dataclass(frozen=True)
class Upload:
    """One profile that arrived by PUT."""

    org_id: str
    dataset_id: str
    dataset_timestamp: dt.datetime
    profile_id: str
    body: bytes


@dataclasses.dataclass
class _Fault:
    phase: Phase
    remaining: int
    status: int = 0
    retry_after: str | None = None
    hang_seconds: float = 0.0
    drop_answer: bool = False

    def matches(self, phase: str) -> bool:
        return self.remaining > 0 and not self.drop_answer and self.phase in (phase, "any")


class FakeWhyLabs:
    """Start with `start()`, stop with `stop()`; `endpoint` is the base URL to give the writer."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.uploads: list[Upload] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered; 0 = no answer)
        self._faults: list[_Fault] = []
        self._tickets: dict[str, tuple[str, str, dt.datetime]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._release: asyncio.Event | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeWhyLabs:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-whylabs", daemon=True)
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def refuse_connections(self) -> None:
        """Stop listening: clients get 'connection refused' until `accept_connections()`."""
        self._call(self._close_site())

    def accept_connections(self) -> None:
        self._call(self._open_site())

    # Faults ------------------------------------------------------------------------------------

    def fail(self, status: int, times: int = 1, phase: Phase = "any", retry_after: str | None = None) -> None:
        """Answer the next `times` matching requests with `status` (and a Retry-After header if given)."""
        self._add(_Fault(phase, times, status=status, retry_after=retry_after))

    def hang(self, seconds: float, times: int = 1, phase: Phase = "any") -> None:
        """Hold the next `times` matching requests for `seconds` before answering normally."""
        self._add(_Fault(phase, times, hang_seconds=seconds))

    def drop_answer(self, times: int = 1) -> None:
        """Store the next `times` uploads, then close the connection without answering."""
        self._add(_Fault("upload", times, drop_answer=True))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def uploads_for(self, dataset_timestamp: dt.datetime) -> list[Upload]:
        with self._lock:
            return [u for u in self.uploads if u.dataset_timestamp == dataset_timestamp]

    # Internals --------------------------------------------------------------------------------

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take(self, phase: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(phase):
                    fault.remaining -= 1
                    return fault
        return None

    def _call(self, coro) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/log/async", self._log_async)
        app.router.add_post("/v0/organizations/{org_id}/log/async/{dataset_id}", self._log_async)
        app.router.add_put("/upload/{ticket}", self._upload)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await self._open_site()

    async def _open_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def _close_site(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # Kept-alive connections would still reach us: close them too.
        assert self._runner is not None and self._runner.server is not None
        for handler in self._runner.server.connections:
            handler.force_close()

    async def _stop(self) -> None:
        assert self._release is not None and self._runner is not None
        self._release.set()
        await self._runner.cleanup()

    async def _fault(self, request: web.Request, phase: str) -> web.Response | None:
        fault = self._take(phase)
        if fault is None:
            return None
        if fault.hang_seconds:
            assert self._release is not None
            try:
                await asyncio.wait_for(self._release.wait(), fault.hang_seconds)
            except TimeoutError:
                pass
            return None
        if fault.status:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return web.json_response({"message": f"injected {fault.status}"}, status=fault.status, headers=headers)
        return None

    def _record(self, request: web.Request, status: int) -> None:
        with self._lock:
            self.requests.append((request.method, request.path, status))

    async def _log_async(self, request: web.Request) -> web.Response:
        injected = await self._fault(request, "log")
        if injected is not None:
            self._record(request, injected.status)
            return injected
        if self.api_key is not None and request.headers.get("X-API-Key") != self.api_key:
            self._record(request, 401)
            return web.json_response({"message": "bad API key"}, status=401)
        try:
            body = await request.json()
        except ConnectionResetError:  # the client gave up while the request was held
            self._record(request, 0)
            return web.Response(status=499)
        org_id = request.match_info.get("org_id") or _org_of(request.headers.get("X-API-Key", ""))
        dataset_id = request.match_info.get("dataset_id") or request.headers.get("X-WHYLABS-RESOURCE", "")
        stamp = dt.datetime.fromtimestamp(body["datasetTimestamp"] / 1000, tz=dt.timezone.utc)
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets[ticket] = (org_id, dataset_id, stamp)
        self._record(request, 200)
        return web.json_response({"id": f"log-{ticket}", "modelId": dataset_id,
                                  "uploadUrl": f"{self.endpoint}/upload/{ticket}",
                                  "uploadTimestamp": body["datasetTimestamp"]})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        injected = await self._fault(request, "upload")
        fault_drop = injected is None and self._take_drop()
        if injected is not None:
            self._record(request, injected.status)
            return injected
        ticket = request.match_info["ticket"]
        with self._lock:
            known = self._tickets.get(ticket)
        if known is None:
            self._record(request, 403)
            return web.Response(status=403, text="unknown or expired upload URL")
        try:
            body = await request.read()
        except ConnectionResetError:
            self._record(request, 0)
            return web.Response(status=499)
        with self._lock:
            self.uploads.append(Upload(known[0], known[1], known[2], f"log-{ticket}", body))
        if fault_drop:
            self._record(request, 0)
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        self._record(request, 200)
        return web.Response(status=200)

    def _take_drop(self) -> bool:
        with self._lock:
            for fault in self._faults:
                if fault.drop_answer and fault.remaining > 0:
                    fault.remaining -= 1
                    return True
        return False


def _org_of(api_key: str) -> str:
    # WhyLabs API keys read "<key id>.<secret>:<org id>"; the v1 path carries no org of its own.
    return api_key.rpartition(":")[2] if ":" in api_key else ""


def running_server(api_key: str | None = None) -> Iterator[FakeWhyLabs]:
    """Generator for fixtures: a started server, stopped afterwards."""
    server = FakeWhyLabs(api_key).start()
    try:
        yield server
    finally:
        server.stop()
