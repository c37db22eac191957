"""Serving the app: aiohttp's runner, with the errors aiohttp answers itself in the one JSON error shape.

A request aiohttp cannot parse (a request line or header over its 8 KB limit, a malformed request) never
reaches a middleware: aiohttp answers it with a `text/plain` 400 and logs a traceback at ERROR. Here it
gets the JSON error shape and the security headers, and one WARNING line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

from web.errors import error_body
from web.security import SECURITY_HEADERS

log = logging.getLogger(__name__)


class RequestHandler(web.RequestHandler):
    """aiohttp's protocol handler, answering its own errors in the JSON error shape."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
            text = "internal error; see the server log"
        elif isinstance(exc, LineTooLong):
            status, text = _too_long(exc)
            log.warning("refused a request from %s: HTTP %d, %s", request.remote, status, text)
        else:
            text = " ".join(str(getattr(exc, "message", None) or message or exc or "bad request").split())[:300]
            log.warning("refused a request from %s: HTTP %d, %s", request.remote, status, text)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was sent already; cannot send the error instead")
        response = web.json_response(error_body(status, text), status=status, headers=SECURITY_HEADERS)
        response.force_close()
        return response


def _too_long(exc: LineTooLong) -> tuple[int, str]:
    """414 for the request line (its target starts with '/' or is absolute), 431 for a header; never echoed."""
    line, limit = exc.args[0], exc.args[1]
    target = bytes(line, "latin-1") if isinstance(line, str) else bytes(line)
    if target.startswith((b"/", b"http://", b"https://")):
        return 414, f"the request line (method, path and query) is longer than {limit} bytes"
    return 431, f"a request header is longer than {limit} bytes"


class Server(web.Server):
    def __call__(self) -> RequestHandler:
        return RequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """web.AppRunner whose connections are served by RequestHandler."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = Server  # same state, one method more specific
        return server


def run(app: web.Application, host: str, port: int, *, shutdown_timeout: float = 5.0,
        on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (what web.run_app does, with AppRunner)."""

    async def serve() -> None:
        runner = AppRunner(app, handle_signals=True, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            if on_ready is not None:
                on_ready()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(serve())
