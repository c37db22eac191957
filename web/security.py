"""Headers every response carries, and the time limit of API requests.

The page loads only its own files (/static/, /vendor/), so the Content-Security-Policy allows nothing
else: no inline script or style, no framing (a page behind basic auth could otherwise be framed and
clicked through), no plugins. `nosniff` keeps browsers from running a JSON or text answer as a script.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from web import keys
from web.errors import error_response

log = logging.getLogger(__name__)

CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Endpoints that wait on MongoDB only briefly or not at all keep their own pace: the endless event stream.
UNLIMITED = frozenset({"/api/stream"})


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers above on every response, static files and errors included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def time_limit(request: web.Request, handler) -> web.StreamResponse:
    """An API request gets web.api_timeout_seconds, then is cancelled and answered 503, instead of waiting
    out the driver's server-selection timeout while requests pile up. (Not pymongo.timeout: under it the
    driver waits the whole limit for a server, even when mongodb.server_selection_timeout_seconds is shorter.)"""
    if not request.path.startswith("/api/") or request.path in UNLIMITED:
        return await handler(request)
    seconds = request.app[keys.CONFIG].web.api_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await handler(request)
    except TimeoutError:
        log.warning("%s %s: MongoDB did not answer within %g s", request.method, request.path, seconds)
        return error_response(503, f"MongoDB did not answer within {seconds:g} s (web.api_timeout_seconds)")
